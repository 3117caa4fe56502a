"""A bridge's tables: MAC -> port per VLAN (MAC learning) and IPv4 -> MAC (ARP suppression).

Role: the MAC table a bridge forwards unicast frames by, and the IPv4 -> MAC table it answers ARP requests from
(spec 3.3 steps 4 and 5). The simulation reads both; it never writes: it reports `MacLearned` (a frame from `mac`
arrived on `port`) and `Ip4MacLearned` (a gratuitous ARP announced `ip` at `mac`), and the caller applies them.

MAC learning is reference counted, as the original's `MacFlowCount`: every installed flow that learned
(mac, vlan, port) holds one reference (`learn` adds it, `forget` drops it when the flow goes). The first reference
writes the entry, moving the MAC if it was on another port. An entry whose references all went stays for
`expiry` seconds (15 s, `bridge.mac_port_mapping_expire`) and is removed by `expire()`, which returns what it
removed so the agent can invalidate flows tagged with it. Entries written with `put` (the API's static entries)
are never expired.

MACs are the lower-case colon strings of `midonet.packets`; VLAN 0 is "untagged".

May import: `midonet.topology.ids`, `midonet.state.clock`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Protocol

from midonet.state.clock import Clock
from midonet.topology.ids import BridgeId, PortId

MAC_EXPIRY = 15.0
"""Seconds an unreferenced learned MAC entry survives (`bridge.mac_port_mapping_expire`)."""


@dataclass(frozen=True, slots=True)
class MacLearned:
    """Requested write: a frame from `mac` on VLAN `vlan` came in through `port` of `bridge` (one reference)."""

    bridge: BridgeId
    vlan: int
    mac: str
    port: PortId


@dataclass(frozen=True, slots=True)
class Ip4MacLearned:
    """Requested write: a gratuitous ARP announced `ip` at `mac` on `bridge` (spec 3.3 step 5, GARP)."""

    bridge: BridgeId
    ip: str
    mac: str


class MacEntry(NamedTuple):
    bridge: BridgeId
    vlan: int
    mac: str
    port: PortId


class MacTable(Protocol):
    """Per bridge and VLAN, MAC -> port."""

    def lookup(self, bridge: BridgeId, vlan: int, mac: str) -> PortId | None: ...

    def learn(self, bridge: BridgeId, vlan: int, mac: str, port: PortId) -> None:
        """Add a reference to (mac, vlan, port); the first one writes the entry (moving the MAC)."""
        ...

    def forget(self, bridge: BridgeId, vlan: int, mac: str, port: PortId) -> None:
        """Drop a reference taken by `learn` (the flow that learned it is gone)."""
        ...


class Ip4MacTable(Protocol):
    """Per bridge, IPv4 -> MAC (Neutron-seeded or learned from gratuitous ARP)."""

    def lookup(self, bridge: BridgeId, ip: str) -> str | None: ...

    def put(self, bridge: BridgeId, ip: str, mac: str) -> None: ...


class InMemoryMacTable:
    """`MacTable` in a dictionary, with reference counts and expiry by the clock it is handed."""

    def __init__(self, clock: Clock, expiry: float = MAC_EXPIRY) -> None:
        self._clock = clock
        self._expiry = expiry
        self._ports: dict[tuple[BridgeId, int], dict[str, PortId]] = {}
        self._refs: dict[MacEntry, int] = {}
        self._unreferenced: dict[MacEntry, float] = {}   # entry -> time its last reference went
        self._static: set[MacEntry] = set()

    def lookup(self, bridge: BridgeId, vlan: int, mac: str) -> PortId | None:
        table = self._ports.get((bridge, vlan))
        return None if table is None else table.get(mac)

    def learn(self, bridge: BridgeId, vlan: int, mac: str, port: PortId) -> None:
        key = MacEntry(bridge, vlan, mac, port)
        self._refs[key] = self._refs.get(key, 0) + 1
        self._unreferenced.pop(key, None)
        self._ports.setdefault((bridge, vlan), {})[mac] = port

    def forget(self, bridge: BridgeId, vlan: int, mac: str, port: PortId) -> None:
        key = MacEntry(bridge, vlan, mac, port)
        count = self._refs.get(key, 0) - 1
        if count > 0:
            self._refs[key] = count
            return
        self._refs.pop(key, None)
        if self.lookup(bridge, vlan, mac) == port:
            self._unreferenced[key] = self._clock.now()

    def put(self, bridge: BridgeId, vlan: int, mac: str, port: PortId) -> None:
        """A static entry (the API's): never expires."""
        self._ports.setdefault((bridge, vlan), {})[mac] = port
        self._static.add(MacEntry(bridge, vlan, mac, port))

    def remove(self, bridge: BridgeId, vlan: int, mac: str) -> None:
        table = self._ports.get((bridge, vlan))
        port = None if table is None else table.pop(mac, None)
        if port is not None:
            self._static.discard(MacEntry(bridge, vlan, mac, port))

    def expire(self) -> list[MacEntry]:
        """Remove entries unreferenced for `expiry` seconds; returns them (for flow invalidation)."""
        deadline = self._clock.now() - self._expiry
        gone: list[MacEntry] = []
        for key, since in list(self._unreferenced.items()):
            if since > deadline:
                continue
            del self._unreferenced[key]
            if key in self._static or self.lookup(key.bridge, key.vlan, key.mac) != key.port:
                continue
            del self._ports[(key.bridge, key.vlan)][key.mac]
            gone.append(key)
        return gone

    def references(self, bridge: BridgeId, vlan: int, mac: str, port: PortId) -> int:
        return self._refs.get(MacEntry(bridge, vlan, mac, port), 0)

    def entries(self, bridge: BridgeId, vlan: int = 0) -> dict[str, PortId]:
        """A copy of one bridge's MAC table on one VLAN."""
        return dict(self._ports.get((bridge, vlan), {}))


class InMemoryIp4MacTable:
    """`Ip4MacTable` in a dictionary. Entries do not expire (Neutron seeds them; GARPs overwrite them)."""

    def __init__(self) -> None:
        self._macs: dict[tuple[BridgeId, str], str] = {}

    def lookup(self, bridge: BridgeId, ip: str) -> str | None:
        return self._macs.get((bridge, ip))

    def put(self, bridge: BridgeId, ip: str, mac: str) -> None:
        self._macs[(bridge, ip)] = mac

    def remove(self, bridge: BridgeId, ip: str) -> None:
        self._macs.pop((bridge, ip), None)
