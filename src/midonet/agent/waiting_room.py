"""The waiting room: packets whose simulation answered "not yet", parked until the data arrives (spec 1.3, 1.7).

Role: the original's `WaitingRoom`. A simulation that needs something the agent has not loaded (a device, a MAC
or ARP table, a port's location) ends `Postponed(kind, id)` (or translation raises `NotYet(kind, id)`); the packet
is parked here under that (kind, id). When the agent learns that (kind, id) is available (`ready`), the packets
waiting for it are handed back (`take_ready`) and simulated again **from scratch**: they may be parked again for
something else, keeping their first deadline.

A packet waits at most `timeout` seconds (3 s, the original's default) from when it was first parked; `expire()`
hands back the packets past their deadline, and the agent drops them with a 5 s error flow. The room holds at
most `capacity` packets; past it `park` refuses (the agent drops the packet and counts it).

    WaitingRoom
    ├── waiting  {(kind, id): [ParkedPacket]}     in arrival order
    └── ready    [(kind, id)]                      announced, not yet taken

Threads: not thread-safe; the agent uses it under its `EventGate` lock.

May import: `midonet.datapath` (FlowKey), `midonet.state.clock`.
"""

from __future__ import annotations

from dataclasses import dataclass

from midonet.datapath.base import FlowKey
from midonet.state.clock import Clock

WAIT_TIMEOUT = 3.0
CAPACITY = 10_000

Missing = tuple[str, str]
"""(kind, id) of what a packet waits for: ("port", id), ("arp", "router/ip"), ("mac_table", "bridge/vlan") ..."""


@dataclass(slots=True, eq=False)
class ParkedPacket:
    """A packet waiting to be simulated again: its bytes, where it came in (a datapath port) or, for a packet a
    device generated, the virtual port it leaves by, and until when it may wait."""

    frame: bytes
    dp_port: int | None
    deadline: float
    egress_port: str | None = None
    depth: int = 0                # generated packets: how many generations from the upcall that caused them
    waiting_for: Missing = ("", "")
    attempts: int = 1
    key: FlowKey | None = None    # the flow key of the last attempt (for the error flow if it times out)


class WaitingRoom:
    """Packets parked by what they wait for; see the module docstring."""

    def __init__(self, clock: Clock, *, timeout: float = WAIT_TIMEOUT, capacity: int = CAPACITY) -> None:
        self._clock = clock
        self._timeout = timeout
        self._capacity = capacity
        self._waiting: dict[Missing, list[ParkedPacket]] = {}
        self._ready: list[Missing] = []
        self._count = 0

    def new(self, frame: bytes, dp_port: int) -> ParkedPacket:
        """A packet from the datapath, not parked yet, with its deadline starting now."""
        return ParkedPacket(frame, dp_port, self._clock.now() + self._timeout)

    def new_generated(self, frame: bytes, egress_port: str, depth: int) -> ParkedPacket:
        """A packet a device generated, to leave by `egress_port`, not parked yet."""
        return ParkedPacket(frame, None, self._clock.now() + self._timeout, egress_port, depth)

    def too_late(self, packet: ParkedPacket) -> bool:
        """Whether `packet` has waited its time already (give up instead of parking it again)."""
        return self._clock.now() >= packet.deadline

    def park(self, packet: ParkedPacket, missing: Missing, key: FlowKey | None = None) -> bool:
        """Park `packet` until `missing` is ready; False (not parked) when the room is full."""
        if self._count >= self._capacity:
            return False
        packet.waiting_for = missing
        packet.key = key
        self._waiting.setdefault(missing, []).append(packet)
        self._count += 1
        return True

    def ready(self, kind: str, ident: str) -> None:
        """(kind, id) has arrived: its packets will be handed back by the next `take_ready`."""
        missing = (kind, ident)
        if missing in self._waiting:
            self._ready.append(missing)

    @property
    def has_ready(self) -> bool:
        """Whether `take_ready` would hand anything back (a peek: read without the agent's lock, after every event)."""
        return bool(self._ready)

    def take_ready(self) -> list[ParkedPacket]:
        """The packets whose data arrived since the last call, in the order they were parked per item."""
        if not self._ready:
            return []
        out: list[ParkedPacket] = []
        for missing in self._ready:
            packets = self._waiting.pop(missing, None)
            if packets:
                out.extend(packets)
        self._ready.clear()
        self._count -= len(out)
        for packet in out:
            packet.attempts += 1
        return out

    def expire(self) -> list[ParkedPacket]:
        """Take out the packets past their deadline."""
        now = self._clock.now()
        out: list[ParkedPacket] = []
        for missing in list(self._waiting):
            packets = self._waiting[missing]
            late = [p for p in packets if now >= p.deadline]
            if not late:
                continue
            out.extend(late)
            kept = [p for p in packets if now < p.deadline]
            if kept:
                self._waiting[missing] = kept
            else:
                del self._waiting[missing]
        self._count -= len(out)
        return out

    def waiting_for(self) -> list[Missing]:
        """What parked packets wait for now."""
        return list(self._waiting)

    def clear(self) -> list[ParkedPacket]:
        out = [p for packets in self._waiting.values() for p in packets]
        self._waiting.clear()
        self._ready.clear()
        self._count = 0
        return out

    def __len__(self) -> int:
        return self._count
