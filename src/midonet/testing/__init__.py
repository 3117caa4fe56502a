"""The test kit we ship: throwaway servers, fakes and the conformance suites every backend must pass.

    zookeeper -- `ZooKeeperServer`: a real standalone ZooKeeper on a free loopback port, stopped by PID
    clock      -- `FakeClock`, moved by hand, for everything that ages (MAC, ARP, conntrack tables)
    topologies -- `TopologyBuilder` (records with deterministic ids) and `two_subnet_router` (spec 11)
    frames     -- one-call frames for tests: udp, tcp, ping, ARP request / reply, gratuitous ARP, ICMP error
    network    -- `SimulatedNetwork`: frames in at a port, simulated, writes applied, frames out
    state_conformance -- the checks every implementation of the `midonet.state` table protocols must pass
    store_topology -- `StoreTopology`: topology records written through a store, as the API would write them
    fakehosts  -- `FakeCloud`: fake hypervisors (memory datapath + real agent each) over one store and underlay
    scenario   -- the scenario file format (docs/sandbox.md): parse, deploy through the API, judge the captures
    sandbox    -- `Sandbox`: a scenario played on fake hosts with the API in one process (`midonet sandbox run`)
"""
