"""The flow simulator: the first packet of a flow through the virtual topology (spec section 3).

Role: given an immutable topology snapshot, the state tables and a packet, decide what the virtual network does
with it, and what the flow installed for the rest of the packets must match, do and be invalidated by
(ARCHITECTURE.md rule 2). Pure: no I/O, no clock, no store; "not yet" when data is missing.

May import: `midonet.packets`, `midonet.topology`, `midonet.state` (an import-linter contract holds it).

Modules, one concept each:
    pipeline    -- the stages in order, declared once (ports, mirrors, filters, devices, routing, egress)
    results     -- the closed family of verdicts, `SimulationResult`, continuations and how forks merge
    context     -- `PacketContext`, the one mutable object of a simulation
    topology    -- device snapshots (`BridgeDevice`, `RouterDevice`, `PortDevice`, `ChainDevice` ...),
                   the `VirtualTopology` protocol and `NotYet`
    mappers     -- records -> devices (`BridgeMapper` ...), and `InMemoryTopology`
    driver      -- `simulate`: DHCP first, then continue / fork / merge, "not yet", the result
    config      -- `SimulationConfig`: what the caller knows about its host (underlay MTU, DHCP MTU)
    routing     -- `RoutingTable`: longest prefix, source filter, weights, ECMP
    conditions  -- rule conditions compiled to checks
    icmp        -- the packets a device generates: ICMP errors, echo replies, ARP replies and requests
    ipmath      -- IPv4 addresses and subnets as integers
    devices/    -- port, bridge, router, chain, nat, load_balancer, mirror, dhcp (one device per module)

Typical use::

    topology = InMemoryTopology(records)
    tables = state.tables.in_memory(clock)
    result = simulate_frame(frame, in_port, topology, tables, tracing=True)
    tables.apply(result.state_writes)       # and tables.release(...) when the flow goes (at once if none)
    for packet in result.generated:
        simulate_generated(packet, topology, tables)
"""
