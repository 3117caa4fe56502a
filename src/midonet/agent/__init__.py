"""The per-host agent: binds ports, simulates first packets, installs flows (ARCHITECTURE.md; spec 1.3-1.7, 3.12).

One concept per module, in MidoNet's words:

    agent           -- `Agent`: the wiring, start / stop / tick, statistics and metrics
    events          -- `EventGate`: the agent's one lock; store events and upcalls go through it
    host            -- `HostService`: Host record, `alive` and `interfaces` state keys (spec 1.4)
    tunnel_zones    -- `TunnelZones`: my tunnel-zone address and my peers' (spec 1.6)
    bindings        -- `PortBindings`: bound ports -> datapath ports, `Port.active`, the VXLAN port (spec 1.5)
    topology_cache  -- `TopologyCache`: the simulator's `VirtualTopology` from store watches (spec 1.3)
    state_tables    -- MAC, IPv4 -> MAC and ARP tables through the store's state tables
    flow_table      -- `FlowTable`: desired vs installed flows, tags, expiry classes, invalidation (spec 3.12)
    waiting_room    -- `WaitingRoom`: packets whose simulation answered "not yet"
    translate       -- virtual outputs -> datapath actions (local output, VXLAN tunnel) (spec 3.12, 5.1)
    workflow        -- `PacketWorkflow`: upcall -> simulate -> translate -> install + execute (spec 1.7)
    admission       -- `AdmissionControl`: token buckets per datapath port, before the workflow (spec 1.7)
    flowstate_wire  -- the flow-state message: versioned, bounded binary encoding, its frame (spec 2.4, 4.4)
    flowstate_storage -- `FlowStateStorage`: the local flow-state log, crash-safe (spec 4.5)
    flowstate       -- `FlowStateReplicator`: keys to the interested hosts (`PeerResolver`) before the packet,
                       from peers, restart, moves (spec 4)
    nat_leasing     -- `StoreNatLeaser`: SNAT port blocks leased through the store (spec 3.7)
    metrics         -- counters, `AgentStatistics`, Prometheus text export
    interning       -- `Memo`: one object for the equal action lists and tag sets many flows share

May import: `midonet.packets`, `topology`, `store`, `state`, `simulation`, `datapath`. Imported only by `cli`
and `testing` (an import-linter contract holds both directions).
"""

from midonet.agent.agent import Agent, AgentConfig
from midonet.agent.host import InterfaceSource
from midonet.agent.metrics import AgentDrop, AgentStatistics
from midonet.datapath.base import InterfaceInfo

__all__ = ["Agent", "AgentConfig", "AgentDrop", "AgentStatistics", "InterfaceInfo", "InterfaceSource"]
