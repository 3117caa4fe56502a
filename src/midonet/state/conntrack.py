"""Connection tracking: is this packet the start of a connection, or a reply? (spec 3.6)

Role: the table behind rule conditions `match_forward_flow` / `match_return_flow`. A key is the connection's
5-tuple plus the id of the *device* (bridge or router) it entered, so a reply may come back through any port of
that device. Only IPv4 TCP, UDP and ICMP are tracked (ICMP uses the echo identifier as both ports).

A packet is a *return* flow when its key is in the table, else a *forward* flow. When a forward flow is emitted
from an exterior port, the agent writes the *return* key (`ConnTrackKey.reply(egress_device)`) with one reference
held by the forward flow; the key expires `idle` seconds (60 s) after the last reference went.

The simulation consults `contains` (through `PacketContext.is_forward_flow`) and, when a forward flow it looked
up is emitted from an exterior port, requests the return key built from the packet as it leaves (after NAT) and
the egress device: `ConnTracked(key)`, one reference held by the flow (`StateTables.apply` / `release`).
Flow-state replication and persistence are the agent's (spec 4): keys another host wrote come in with `touch`.

May import: `midonet.topology.ids`, `midonet.state.clock`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Protocol

from midonet.state.clock import Clock

CONNTRACK_IDLE = 60.0
TRACKED_PROTOCOLS = frozenset({1, 6, 17})   # ICMP, TCP, UDP


class ConnTrackKey(NamedTuple):
    """(source IP, source port, destination IP, destination port, IP protocol, device id)."""

    ip_src: str
    tp_src: int
    ip_dst: str
    tp_dst: int
    proto: int
    device: str

    def reply(self, device: str) -> ConnTrackKey:
        """The key a reply to this connection carries, as it enters `device` (the egress device)."""
        return ConnTrackKey(self.ip_dst, self.tp_dst, self.ip_src, self.tp_src, self.proto, device)


@dataclass(frozen=True, slots=True)
class ConnTracked:
    """Requested write: the return key of a forward flow, one reference held by the flow (`trackConnection`)."""

    key: ConnTrackKey


class ConnTrack(Protocol):
    def contains(self, key: ConnTrackKey) -> bool:
        """True if `key` was written as a return key: packets with it are return flows."""
        ...

    def track(self, key: ConnTrackKey) -> None:
        """Write `key` (or add a reference to it)."""
        ...

    def release(self, key: ConnTrackKey) -> None:
        """Drop a reference taken by `track`; the key lives `idle` seconds more."""
        ...


class InMemoryConnTrack:
    """`ConnTrack` in a dictionary; keys without references expire by the clock it is handed."""

    def __init__(self, clock: Clock, idle: float = CONNTRACK_IDLE) -> None:
        self._clock = clock
        self._idle = idle
        self._refs: dict[ConnTrackKey, int] = {}
        self._released: dict[ConnTrackKey, float] = {}

    def contains(self, key: ConnTrackKey) -> bool:
        return key in self._refs or key in self._released

    def track(self, key: ConnTrackKey) -> None:
        self._refs[key] = self._refs.get(key, 0) + 1
        self._released.pop(key, None)

    def release(self, key: ConnTrackKey) -> None:
        count = self._refs.get(key, 0) - 1
        if count > 0:
            self._refs[key] = count
        elif key in self._refs:
            del self._refs[key]
            self._released[key] = self._clock.now()

    def touch(self, key: ConnTrackKey) -> None:
        """Import `key` from elsewhere (a peer's flow state, a restart's saved state, spec 4.2): present with no
        reference of ours, so it lives `idle` seconds from now; a key our flows hold is left as it is."""
        if key not in self._refs:
            self._released[key] = self._clock.now()

    def expire(self) -> list[ConnTrackKey]:
        """Remove keys released `idle` seconds ago or more; returns them (flows tagged with them go too)."""
        deadline = self._clock.now() - self._idle
        gone = [key for key, since in self._released.items() if since <= deadline]
        for key in gone:
            del self._released[key]
        return gone

    def __len__(self) -> int:
        return len(self._refs) + len(self._released)
