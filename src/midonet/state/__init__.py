"""The mutable state simulations read and write: MAC tables, ARP caches, connection tracking, NAT.

Role: what the flow simulator consults besides the topology snapshot (spec 3.3 MAC learning, 3.4 ARP table,
3.6 connection tracking, 3.7 NAT). Each table is a `Protocol` (what the simulation and the agent call) plus a small
in-memory implementation; the agent backs them with the store's replicated state tables later. Expiry is driven
by an injected `Clock`: nothing here reads the time by itself.

The simulation never writes a table: it *requests* writes (`MacLearned`, `Ip4MacLearned`, `ArpLearned`,
`ConnTracked`, `NatBound`, `NatDeleted`), which the caller applies after the simulation (`tables.apply`) and
releases when the flow goes (`tables.release`). Reads are the only calls made during a simulation, but one: the
SNAT leaser reserves the port it hands out (`nat`).

May import: `midonet.packets`, `midonet.topology`. Does no I/O.

Modules:
    clock       -- the `Clock` protocol (seconds, monotonic)
    mac_table   -- per bridge and VLAN MAC -> port, with reference counts and expiry; a bridge's IPv4 -> MAC table
    arp_cache   -- a router's IPv4 -> MAC table with stale and expiry times
    conntrack   -- connection-tracking keys, the `ConnTrack` protocol and an in-memory table
    nat         -- NAT keys and bindings (`NatTable`), the SNAT port allocator over leased blocks (`NatLeaser`)
    randomness  -- the `RandomSource` protocol (NAT and load-balancer draws) and a seeded default
    tables      -- `StateTables`, the bundle handed to a simulation, and `apply` for requested writes
"""
