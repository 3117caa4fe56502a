"""The topology model: one typed, immutable record per MidoNet object.

Role: the data model the API writes, the store keeps and the agent simulates (spec section 2).
May import: `midonet.packets` only. Does no I/O.

Modules:
    ids        -- `NewType` ids and their allocation (uuid4, tunnel keys)
    errors     -- the error tree every layer above maps to its own form (HTTP 4xx, CLI message)
    record     -- the `Record` base, field introspection and the JSON codec
    validate   -- field validators (CIDR, MAC, ranges, enums) raising `ValidationError`
    devices    -- Bridge, Router, Port, Route
    chains     -- Condition, Chain, Rule (and NatTarget, PortRange)
    groups     -- PortGroup, IPAddrGroup
    hosts      -- Host, TunnelZone, TunnelZoneHost
    l4lb       -- LoadBalancer, Pool, PoolMember, Vip, HealthMonitor
    services   -- Mirror, BgpPeer, BgpNetwork, DhcpSubnet, DhcpHost, Vtep, TraceRequest, QosPolicy + rules
    bindings   -- the referential-integrity table (CASCADE / CLEAR / ERROR), spec section 1.2
    registry   -- every record class by name (the store's and the API's index)
"""
