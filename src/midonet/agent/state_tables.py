"""MAC, IPv4 -> MAC and ARP tables through the store's state tables: learned by one agent, seen by all (spec 3.3,
3.4, 3.12).

Role: the simulator's `StateTables` for a real agent (`midonet.state.tables`: the in-memory tables are for tests
and `midonet trace`). Each table mirrors store state tables, in the layout `midonet.api.bridgetables` documents
(the API writes static entries into the same tables, persistent; agents write learned entries, owned by their
session so that they vanish with the agent):

    MacLearningTable  (Bridge, id, "mac_table:<vlan>")  MAC -> port id
    Ip4MacMap         (Bridge, id, "ip4_mac_table")     IPv4 -> MAC
    ArpTable          (Router, id, "arp_table")         IPv4 -> MAC

Loading: a table is mirrored on first use, synchronously (watch, then read the snapshot): a simulation never
waits for a table. From then on the watch (on the store's thread, through the agent's `EventGate`) keeps the
mirror; our own writes come back through it too, harmlessly.

Writes: a simulation's `StateWrite`s land in the local mirror at once (the next packet sees them) and in the store
(the other agents see them through their watches).

* MAC learning is reference counted as the original's `MacFlowCount`: every flow that learned (mac, vlan, port)
  holds a reference (`learn`; the flow's removal callback `forget`s). The first reference writes the entry; an
  entry whose references all went is removed from the store `MAC_EXPIRY` (15 s) later by `expire()`.
* ARP entries are stale 60 s and expire 90 s after they were learned *or seen* here (each agent ages entries by
  its own clock from when it got them); the agent that wrote an entry removes it from the store when it expires.
  A removal seen in the store is not acted on: the entry went because its writer's copy expired (ours expires
  by our own clock about then) or because its writer's session ended (an agent restarting: the address still
  answers at that MAC). Dropping it would stop every flow routed to that address until a new ARP exchange, which
  needs the restarting agent.

Invalidation by tag (the tags `simulation.devices` put on flows, `simulation.results.FlowTag`):

    a MAC appears on a port      ("flooded", bridge, vlan, mac)          flows flooded because it was unknown
    a MAC moves or goes          ("mac", bridge, mac, vlan, old port)    flows to it, and from it on the old port
    an IPv4 -> MAC entry changes  bridge id                              routed flows resolved through the bridge
    an ARP entry changes or goes  ("arp", router, ip)                    flows routed to that next hop
    an ARP entry appears          ready("arp", "router/ip")              packets waiting for it are retried

Connection tracking and NAT bindings are this agent's tables in memory (`InMemoryConnTrack`, `InMemoryNatTable`):
the keys its simulations write, and the keys its peers send (`agent.flowstate` imports them, spec 4); their expiry
invalidates the flows tagged ("conntrack", key) and ("nat", key). SNAT port blocks are leased through the store
(`agent.nat_leasing.StoreNatLeaser`, spec 3.7). `random` (dynamic DNAT, the load balancer, the choice of a NAT
block) is a `SeededRandom` the agent seeds.

Threads: simulations call the tables under the agent's lock; watch callbacks take it through the gate.

May import: `midonet.state`, `midonet.store`, `midonet.topology`, `agent.events`, `agent.nat_leasing`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, TypeVar

from midonet.agent.events import EventGate
from midonet.agent.nat_leasing import StoreNatLeaser
from midonet.simulation.results import FlowTag
from midonet.state.arp_cache import ARP_EXPIRATION, ARP_STALE, ArpEntry
from midonet.state.clock import Clock
from midonet.state.conntrack import InMemoryConnTrack
from midonet.state.mac_table import MAC_EXPIRY, MacEntry
from midonet.state.nat import InMemoryNatTable
from midonet.state.randomness import RandomSource
from midonet.state.tables import StateTables
from midonet.store.base import StateTable, Store, Subscription
from midonet.topology.devices import Bridge, Router
from midonet.topology.ids import BridgeId, PortId, RouterId
from midonet.topology.record import Record

log = logging.getLogger(__name__)

Invalidate = Callable[[FlowTag], None]
Ready = Callable[[str, str], None]
TableAddress = tuple[type[Record], str, str]
Change = Callable[[str, str | None, str | None], None]


def mac_table_name(vlan: int) -> str:
    return f"mac_table:{vlan}"


Mirror = tuple[StateTable, dict[str, str]]   # a store state table and its local copy
K = TypeVar("K", bound=Hashable)


class _Loaded(dict[K, Mirror]):
    """Mirrors by a key of their own (`_Mirrors.shortcut`): a plain dictionary lookup once loaded."""

    __slots__ = ("_load",)

    def __init__(self, load: Callable[[K], Mirror]) -> None:
        super().__init__()
        self._load = load

    def __missing__(self, key: K) -> Mirror:
        found = self[key] = self._load(key)
        return found


class _Mirrors:
    """Local copies of store state tables, loaded on first use and kept by a watch."""

    def __init__(self, store: Store, gate: EventGate) -> None:
        self._store = store
        self._gate = gate
        self._tables: dict[TableAddress, Mirror] = {}
        self._subs: list[Subscription] = []
        self._shortcuts: list[_Loaded[Any]] = []

    def shortcut(self, load: Callable[[K], Mirror]) -> _Loaded[K]:
        """A table class's mirrors by a key of its own, each loaded by `load` (which calls `get`) on first use: a
        lookup per packet without building the address and the callback; emptied with the mirrors."""
        found = _Loaded(load)
        self._shortcuts.append(found)
        return found

    def get(self, address: TableAddress, on_change: Change) -> Mirror:
        found = self._tables.get(address)
        if found is not None:
            return found
        table = self._store.state_table(*address)
        entries: dict[str, str] = {}
        found = self._tables[address] = (table, entries)

        def changed(key: str, old: str | None, new: str | None) -> None:
            self._gate.run(lambda: on_change(key, entries.get(key), new))

        self._subs.append(table.watch(changed))
        entries.update(table.snapshot())
        return found

    def stop(self) -> None:
        for sub in self._subs:
            sub.cancel()
        self._subs.clear()
        self._tables.clear()
        for shortcut in self._shortcuts:
            shortcut.clear()


class MacLearningTable:
    """`state.mac_table.MacTable` over the bridges' `mac_table:<vlan>` state tables; see the module docstring."""

    def __init__(self, mirrors: _Mirrors, clock: Clock, invalidate: Invalidate, *, expiry: float = MAC_EXPIRY) -> None:
        self._mirrors = mirrors
        self._clock = clock
        self._invalidate = invalidate
        self._expiry = expiry
        self._refs: dict[MacEntry, int] = {}
        self._unreferenced: dict[MacEntry, float] = {}
        self._loaded: _Loaded[tuple[BridgeId, int]] = mirrors.shortcut(self._load)

    def _load(self, key: tuple[BridgeId, int]) -> Mirror:
        bridge, vlan = key
        return self._mirrors.get((Bridge, bridge, mac_table_name(vlan)),
                                 lambda mac, old, new: self._changed(bridge, vlan, mac, old, new))

    def _entries(self, bridge: BridgeId, vlan: int) -> Mirror:
        return self._loaded[(bridge, vlan)]

    def lookup(self, bridge: BridgeId, vlan: int, mac: str) -> PortId | None:
        port = self._entries(bridge, vlan)[1].get(mac)
        return None if port is None else PortId(port)

    def learn(self, bridge: BridgeId, vlan: int, mac: str, port: PortId) -> None:
        key = MacEntry(bridge, vlan, mac, port)
        count = self._refs.get(key, 0)
        self._refs[key] = count + 1
        self._unreferenced.pop(key, None)
        table, entries = self._entries(bridge, vlan)
        current = entries.get(mac)
        if current == port and count:
            return
        self._changed(bridge, vlan, mac, current, port)
        table.put(mac, port)

    def forget(self, bridge: BridgeId, vlan: int, mac: str, port: PortId) -> None:
        key = MacEntry(bridge, vlan, mac, port)
        count = self._refs.get(key, 0) - 1
        if count > 0:
            self._refs[key] = count
            return
        self._refs.pop(key, None)
        self._unreferenced[key] = self._clock.now()

    def references(self, bridge: BridgeId, vlan: int, mac: str, port: PortId) -> int:
        return self._refs.get(MacEntry(bridge, vlan, mac, port), 0)

    def expire(self) -> list[MacEntry]:
        """Remove from the store the entries unreferenced for `expiry` seconds; returns them."""
        deadline = self._clock.now() - self._expiry
        gone = [key for key, since in self._unreferenced.items() if since <= deadline]
        for key in gone:
            del self._unreferenced[key]
            table, entries = self._entries(key.bridge, key.vlan)
            if entries.get(key.mac) == key.port:
                self._changed(key.bridge, key.vlan, key.mac, key.port, None)
                table.remove(key.mac, key.port)
        return gone

    def entries(self, bridge: BridgeId, vlan: int = 0) -> dict[str, str]:
        return dict(self._entries(bridge, vlan)[1])

    def _changed(self, bridge: BridgeId, vlan: int, mac: str, old: str | None, new: str | None) -> None:
        """Apply a change to the mirror and invalidate what it makes stale."""
        if old == new:
            return
        entries = self._entries(bridge, vlan)[1]
        if new is None:
            entries.pop(mac, None)
        else:
            entries[mac] = new
            self._invalidate(("flooded", bridge, vlan, mac))
        if old is not None:
            self._invalidate(("mac", bridge, mac, vlan, old))


class Ip4MacMap:
    """`state.mac_table.Ip4MacTable` over the bridges' `ip4_mac_table` state tables."""

    def __init__(self, mirrors: _Mirrors, invalidate: Invalidate) -> None:
        self._mirrors = mirrors
        self._invalidate = invalidate
        self._loaded: _Loaded[BridgeId] = mirrors.shortcut(
            lambda bridge: mirrors.get((Bridge, bridge, "ip4_mac_table"),
                                       lambda ip, old, new: self._changed(bridge, ip, old, new)))

    def _entries(self, bridge: BridgeId) -> Mirror:
        return self._loaded[bridge]

    def lookup(self, bridge: BridgeId, ip: str) -> str | None:
        return self._entries(bridge)[1].get(ip)

    def put(self, bridge: BridgeId, ip: str, mac: str) -> None:
        table, entries = self._entries(bridge)
        if entries.get(ip) != mac:
            self._changed(bridge, ip, entries.get(ip), mac)
            table.put(ip, mac)

    def _changed(self, bridge: BridgeId, ip: str, old: str | None, new: str | None) -> None:
        if old == new:
            return
        entries = self._entries(bridge)[1]
        if new is None:
            entries.pop(ip, None)
        else:
            entries[ip] = new
        self._invalidate(bridge)


@dataclass(slots=True)
class _Arp:
    mac: str
    stale_at: float
    expires_at: float
    fresh: ArpEntry | None = None   # what a lookup gives before `stale_at`, made once


class ArpTable:
    """`state.arp_cache.ArpCache` over the routers' `arp_table` state tables; see the module docstring."""

    def __init__(self, mirrors: _Mirrors, clock: Clock, invalidate: Invalidate, ready: Ready, *,
                 stale: float = ARP_STALE, expiration: float = ARP_EXPIRATION) -> None:
        self._mirrors = mirrors
        self._clock = clock
        self._invalidate = invalidate
        self._ready = ready
        self._stale = stale
        self._expiration = expiration
        self._times: dict[tuple[RouterId, str], _Arp] = {}
        self._mine: set[tuple[RouterId, str]] = set()
        self._loaded: _Loaded[RouterId] = mirrors.shortcut(
            lambda router: mirrors.get((Router, router, "arp_table"),
                                       lambda ip, old, new: self._stored(router, ip, old, new)))

    def _entries(self, router: RouterId) -> Mirror:
        return self._loaded[router]

    def lookup(self, router: RouterId, ip: str) -> ArpEntry | None:
        mac = self._entries(router)[1].get(ip)
        if mac is None:
            return None
        times = self._times.get((router, ip))
        now = self._clock.now()
        if times is None or times.mac != mac:    # loaded with the table, or changed: its age starts now
            times = self._times[(router, ip)] = _Arp(mac, now + self._stale, now + self._expiration)
        if now >= times.expires_at:
            return None
        if now >= times.stale_at:
            return ArpEntry(mac, stale=True)
        fresh = times.fresh
        if fresh is None:
            fresh = times.fresh = ArpEntry(mac)
        return fresh

    def learn(self, router: RouterId, ip: str, mac: str) -> None:
        table, entries = self._entries(router)
        old = entries.get(ip)
        now = self._clock.now()
        self._times[(router, ip)] = _Arp(mac, now + self._stale, now + self._expiration)
        self._mine.add((router, ip))
        self._changed(router, ip, old, mac)
        table.put(ip, mac)

    def expire(self) -> list[tuple[RouterId, str]]:
        """Forget the entries past their expiry (and remove those we wrote from the store); returns them."""
        now = self._clock.now()
        gone = [key for key, t in self._times.items() if now >= t.expires_at]
        for router, ip in gone:
            times = self._times.pop((router, ip))
            table, entries = self._entries(router)
            if entries.get(ip) == times.mac:
                self._changed(router, ip, times.mac, None)
                if (router, ip) in self._mine:
                    table.remove(ip, times.mac)
            self._mine.discard((router, ip))
        return gone

    def entries(self, router: RouterId) -> dict[str, str]:
        return dict(self._entries(router)[1])

    def _stored(self, router: RouterId, ip: str, old: str | None, new: str | None) -> None:
        """A change seen in the store: removals are left to our own expiry (module docstring)."""
        if new is not None:
            self._changed(router, ip, old, new)

    def _changed(self, router: RouterId, ip: str, old: str | None, new: str | None) -> None:
        entries = self._entries(router)[1]
        if new is None:
            entries.pop(ip, None)
            self._times.pop((router, ip), None)
        else:
            entries[ip] = new
            times = self._times.get((router, ip))
            if times is None or times.mac != new:
                now = self._clock.now()
                self._times[(router, ip)] = _Arp(new, now + self._stale, now + self._expiration)
            self._ready("arp", f"{router}/{ip}")
        if old != new:
            self._invalidate(("arp", router, ip))


class StoreStateTables:
    """The bundle: the simulator's `StateTables` (`tables`) over the store, and their housekeeping."""

    def __init__(self, store: Store, gate: EventGate, clock: Clock, invalidate: Invalidate, ready: Ready,
                 rng: RandomSource) -> None:
        self._invalidate = invalidate
        self._mirrors = _Mirrors(store, gate)
        self.mac_table = MacLearningTable(self._mirrors, clock, invalidate)
        self.ip4_mac = Ip4MacMap(self._mirrors, invalidate)
        self.arp_table = ArpTable(self._mirrors, clock, invalidate, ready)
        self.conntrack = InMemoryConnTrack(clock)
        self.nat_leaser = StoreNatLeaser(store, gate, clock, rng, ready)
        self.nat = InMemoryNatTable(clock, self.nat_leaser)
        self.tables = StateTables(mac_table=self.mac_table, ip4_mac=self.ip4_mac, arp_cache=self.arp_table,
                                  conntrack=self.conntrack, nat=self.nat, nat_leaser=self.nat_leaser, random=rng)

    def expire(self) -> None:
        """Age the tables (the agent's `tick`), invalidating the flows of expired flow-state keys."""
        self.mac_table.expire()
        self.arp_table.expire()
        for key in self.conntrack.expire():
            self._invalidate(("conntrack", key))
        for nat_key, _ in self.nat.expire():
            self._invalidate(("nat", nat_key))
        self.nat_leaser.expire()

    def stop(self) -> None:
        self.nat_leaser.stop()
        self._mirrors.stop()
