"""The bundle of state tables handed to a simulation, and how requested writes are applied.

Role: `simulate(ctx, topology, tables)` reads the tables in a `StateTables`; the writes it asks for come back
in the result (`SimulationResult.state_writes`), and the caller applies them with `apply` after the simulation:
the agent once the flow is installed, tests and `midonet trace` straight away. `in_memory(clock)` builds the
in-memory tables tests and the offline trace use.

    StateWrite
    ├── MacLearned      (mac_table)  one more reference to (bridge, vlan, mac, port)
    ├── Ip4MacLearned   (mac_table)  a bridge learned ip -> mac from a gratuitous ARP
    └── ArpLearned      (arp_cache)  a router learned ip -> mac

May import: `midonet.state.*`, `midonet.topology.ids`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import assert_never

from midonet.state.arp_cache import ArpCache, ArpLearned, InMemoryArpCache
from midonet.state.clock import Clock
from midonet.state.conntrack import ConnTrack, InMemoryConnTrack
from midonet.state.mac_table import (
    InMemoryIp4MacTable,
    InMemoryMacTable,
    Ip4MacLearned,
    Ip4MacTable,
    MacLearned,
    MacTable,
)

StateWrite = MacLearned | Ip4MacLearned | ArpLearned


@dataclass(frozen=True, slots=True)
class StateTables:
    """What a simulation may read besides the topology."""

    mac_table: MacTable
    ip4_mac: Ip4MacTable
    arp_cache: ArpCache
    conntrack: ConnTrack

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
                case _:
                    assert_never(write)


@dataclass(frozen=True, slots=True)
class InMemoryTables(StateTables):
    """`StateTables` over the in-memory implementations (typed, so tests can reach `expire()` and friends)."""

    mac_table: InMemoryMacTable
    ip4_mac: InMemoryIp4MacTable
    arp_cache: InMemoryArpCache
    conntrack: InMemoryConnTrack


def in_memory(clock: Clock) -> InMemoryTables:
    """Fresh, empty in-memory tables ageing by `clock`."""
    return InMemoryTables(mac_table=InMemoryMacTable(clock), ip4_mac=InMemoryIp4MacTable(),
                          arp_cache=InMemoryArpCache(clock), conntrack=InMemoryConnTrack(clock))
