"""The in-memory underlay: the physical network between fake hosts, routing frames by underlay IPv4 address.

Role: what the hosts' NICs and the switches between them would be. A fake host registers under its underlay
address (`add_host`) and binds UDP ports on it (a memory datapath binds `OVERLAY_UDP_PORT`, 6677, for its VXLAN
port). `deliver(frame)` takes a whole outer frame (real bytes: Ethernet / IPv4 / UDP / VXLAN / inner frame, as
`midonet.packets.vxlan.encapsulate` builds it), reads the outer IPv4 destination and UDP destination port, and
hands the frame to the endpoint bound there, scheduled on the run loop (`runloop.run_soon`), so a frame crossing
the underlay is processed after the sender's current work, never nested inside it.

    MemoryUnderlay
    ├── hosts      {underlay IPv4: UnderlayHost}     (a MemoryHost: its endpoints by UDP port)
    ├── observers  callbacks shown every frame offered (tests check the encapsulation bytes)
    └── counters   delivered, drops by UnderlayDrop

Drops, counted: a frame that is not Ethernet / IPv4 / UDP (`malformed`), to an address no host has
(`unknown_destination`), to a UDP port nothing is bound to (`no_listener`). The underlay is flat and lossless
otherwise: no TTL, no MTU, no reordering. Outer MACs carry no meaning here; `underlay_mac(ip)` is the MAC a
host's NIC has, derived from its address so senders need no ARP.

Threads: one lock guards the registry and counters; receivers run on the run loop, never under it.

May import: `midonet.packets`, `midonet.datapath.base`, `midonet.datapath.memory.runloop`.
"""

from __future__ import annotations

import enum
import functools
import logging
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from midonet.datapath.base import DatapathError
from midonet.datapath.memory import runloop
from midonet.packets import MalformedPacket, ethernet, ipv4, udp

log = logging.getLogger(__name__)

Endpoint = Callable[[bytes], None]


class UnderlayHost(Protocol):
    """What the underlay needs of a host: its address and what listens on its UDP ports."""

    @property
    def underlay_ip(self) -> str: ...

    def endpoint(self, udp_port: int) -> Endpoint | None: ...


class UnderlayDrop(enum.StrEnum):
    MALFORMED = "malformed"                      # not an Ethernet / IPv4 / UDP frame
    UNKNOWN_DESTINATION = "unknown_destination"  # no host has the outer destination address
    NO_LISTENER = "no_listener"                  # the host has nothing bound to the UDP destination port


@dataclass(frozen=True, slots=True)
class UnderlayStatistics:
    delivered: int = 0
    drops: tuple[tuple[UnderlayDrop, int], ...] = ()

    def dropped(self, reason: UnderlayDrop | None = None) -> int:
        return sum(n for r, n in self.drops if reason is None or r == reason)


def underlay_mac(ip: str) -> str:
    """The MAC of the fake NIC holding underlay address `ip`: 02:00 and the address's four bytes."""
    return "02:00:" + ipv4.ip_to_bytes(ip).hex(":")


class MemoryUnderlay:
    """A flat IPv4 network between fake hosts; see the module docstring."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._hosts: dict[str, UnderlayHost] = {}
        self._observers: list[Endpoint] = []
        self._delivered = 0
        self._drops: Counter[UnderlayDrop] = Counter()

    def add_host(self, host: UnderlayHost) -> None:
        """Register `host` under its underlay address; DatapathError if another host has it."""
        ip = host.underlay_ip
        ipv4.ip_to_bytes(ip)   # ValueError for a malformed address
        with self._lock:
            if ip in self._hosts:
                raise DatapathError(f"underlay address {ip} is already taken")
            self._hosts[ip] = host

    def remove_host(self, ip: str) -> None:
        """Forget the host at `ip` (frames to it are dropped as unknown from now on); nothing if there is none."""
        with self._lock:
            self._hosts.pop(ip, None)

    def host(self, ip: str) -> UnderlayHost | None:
        with self._lock:
            return self._hosts.get(ip)

    def addresses(self) -> list[str]:
        with self._lock:
            return list(self._hosts)

    def observe(self, observer: Endpoint) -> None:
        """Show `observer` every frame offered to the underlay from now on, before routing (a capture point)."""
        with self._lock:
            self._observers = [*self._observers, observer]

    def deliver(self, frame: bytes) -> None:
        """Route `frame` to the endpoint at its outer IPv4 destination and UDP port (scheduled), or drop it."""
        for observer in self._observers:
            observer(frame)
        try:
            dst_ip, dst_port = _destination(frame)
        except MalformedPacket:
            self._count(UnderlayDrop.MALFORMED)
            return
        with self._lock:
            host = self._hosts.get(dst_ip)
        endpoint = host.endpoint(dst_port) if host is not None else None
        if endpoint is None:
            self._count(UnderlayDrop.UNKNOWN_DESTINATION if host is None else UnderlayDrop.NO_LISTENER)
            return
        with self._lock:
            self._delivered += 1
        runloop.run_soon(functools.partial(endpoint, frame))

    def statistics(self) -> UnderlayStatistics:
        with self._lock:
            drops = tuple(sorted((r, n) for r, n in self._drops.items() if n))
            return UnderlayStatistics(self._delivered, drops)

    def _count(self, reason: UnderlayDrop) -> None:
        if log.isEnabledFor(logging.DEBUG):
            log.debug("underlay: frame dropped (%s)", reason)
        with self._lock:
            self._drops[reason] += 1


def _destination(frame: bytes) -> tuple[str, int]:
    """The outer IPv4 destination and UDP destination port of `frame`; MalformedPacket if it has none."""
    header, payload = ethernet.parse(frame)
    if header.eth_type != ethernet.ETH_TYPE_IPV4:
        raise MalformedPacket("underlay", f"EtherType {header.eth_type:#06x} is not IPv4")
    ip_header, segment = ipv4.parse(payload)
    if ip_header.proto != ipv4.PROTO_UDP or ip_header.is_fragment:
        raise MalformedPacket("underlay", "not an unfragmented UDP datagram")
    udp_header, _ = udp.parse(segment)
    return ip_header.dst, udp_header.dst_port
