"""The bundle of state tables handed to a simulation, and how requested writes are applied.

Role: `simulate(ctx, topology, tables)` reads the tables in a `StateTables`; the writes it asks for come back
in the result (`SimulationResult.state_writes`), and the caller applies them with `apply` after the simulation:
the agent once the flow is installed, tests and `midonet trace` straight away. Some writes take a reference for
the flow the result installs; `release` drops those references when the flow is removed -- at once when the
result installs no flow (consumed, postponed, userspace-only), as the original runs a packet's flow-removed
callbacks when it installs nothing. `in_memory(clock)` builds the in-memory tables tests and the offline trace use.

    StateWrite
    ├── MacLearned      (mac_table)  one more reference to (bridge, vlan, mac, port)         released: forget
    ├── Ip4MacLearned   (mac_table)  a bridge learned ip -> mac from a gratuitous ARP
    ├── ArpLearned      (arp_cache)  a router learned ip -> mac
    ├── ConnTracked     (conntrack)  a forward flow's return key, one reference               released: release
    ├── NatBound        (nat)        NAT key -> binding (kept if present), one reference     released: unref
    └── NatDeleted      (nat)        remove a NAT key

Besides the tables: `nat_leaser` (SNAT ports, which a simulation reserves as it allocates them) and `random` (the
draws of dynamic DNAT and the load balancer), both injected like the clock.

May import: `midonet.state.*`, `midonet.topology.ids`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import assert_never

from midonet.state.arp_cache import ArpCache, ArpLearned, InMemoryArpCache
from midonet.state.clock import Clock
from midonet.state.conntrack import ConnTrack, ConnTracked, InMemoryConnTrack
from midonet.state.mac_table import (
    InMemoryIp4MacTable,
    InMemoryMacTable,
    Ip4MacLearned,
    Ip4MacTable,
    MacLearned,
    MacTable,
)
from midonet.state.nat import InMemoryNatLeaser, InMemoryNatTable, NatBound, NatDeleted, NatLeaser, NatTable
from midonet.state.randomness import RandomSource, SeededRandom

StateWrite = MacLearned | Ip4MacLearned | ArpLearned | ConnTracked | NatBound | NatDeleted


@dataclass(frozen=True, slots=True)
class StateTables:
    """What a simulation may read besides the topology."""

    mac_table: MacTable
    ip4_mac: Ip4MacTable
    arp_cache: ArpCache
    conntrack: ConnTrack
    nat: NatTable
    nat_leaser: NatLeaser
    random: RandomSource

    def apply(self, writes: Iterable[StateWrite]) -> None:
        """Apply the writes a simulation asked for, in order."""
        for write in writes:
            match write:
                case MacLearned(bridge, vlan, mac, port):
                    self.mac_table.learn(bridge, vlan, mac, port)
                case Ip4MacLearned(bridge, ip, mac):
                    self.ip4_mac.put(bridge, ip, mac)
                case ArpLearned(router, ip, mac):
                    self.arp_cache.learn(router, ip, mac)
                case ConnTracked(key):
                    self.conntrack.track(key)
                case NatBound(key, binding):
                    self.nat.bind(key, binding)
                case NatDeleted(key):
                    self.nat.delete(key)
                case _:
                    assert_never(write)

    def release(self, writes: Iterable[StateWrite]) -> None:
        """Drop the references `apply` took for a flow, now gone (its flow-removed callbacks)."""
        for write in writes:
            match write:
                case MacLearned(bridge, vlan, mac, port):
                    self.mac_table.forget(bridge, vlan, mac, port)
                case ConnTracked(key):
                    self.conntrack.release(key)
                case NatBound(key, _):
                    self.nat.unref(key)
                case Ip4MacLearned() | ArpLearned() | NatDeleted():
                    pass
                case _:
                    assert_never(write)


@dataclass(frozen=True, slots=True)
class InMemoryTables(StateTables):
    """`StateTables` over the in-memory implementations (typed, so tests can reach `expire()` and friends)."""

    mac_table: InMemoryMacTable
    ip4_mac: InMemoryIp4MacTable
    arp_cache: InMemoryArpCache
    conntrack: InMemoryConnTrack
    nat: InMemoryNatTable
    nat_leaser: InMemoryNatLeaser

    def expire(self) -> None:
        """Remove every expired entry (MAC, ARP, conntrack, NAT keys, idle port blocks): the agent's sweeps."""
        self.mac_table.expire()
        self.arp_cache.expire()
        self.conntrack.expire()
        self.nat.expire()
        self.nat_leaser.expire()


def in_memory(clock: Clock, rng: RandomSource | None = None, *, async_nat_leases: bool = False) -> InMemoryTables:
    """Fresh, empty in-memory tables ageing by `clock`, drawing from `rng` (a `SeededRandom(0)` if None);
    `async_nat_leases`: the SNAT leaser answers "not yet" until `nat_leaser.lease_pending()` (as the agent's)."""
    leaser = InMemoryNatLeaser(clock, asynchronous=async_nat_leases)
    return InMemoryTables(mac_table=InMemoryMacTable(clock), ip4_mac=InMemoryIp4MacTable(),
                          arp_cache=InMemoryArpCache(clock), conntrack=InMemoryConnTrack(clock),
                          nat=InMemoryNatTable(clock, leaser), nat_leaser=leaser,
                          random=rng if rng is not None else SeededRandom(0))
