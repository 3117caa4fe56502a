"""ARP for IPv4 over Ethernet: requests, replies and gratuitous ARP.

Role: what bridges (ARP suppression from the MAC/IP tables) and routers (answering for their port IPs, resolving
next hops) read and write. `parse` decodes the 28-byte Ethernet/IPv4 ARP packet that follows an Ethernet header of
EtherType 0x0806; `build` encodes one; `request`, `reply` and `gratuitous` make the packets MidoNet sends.

May import: `midonet.packets.errors`, `midonet.packets.ethernet`, `midonet.packets.ipv4`.

Reference: RFC 826 (the protocol), RFC 5227 section 3 (gratuitous ARP / ARP announcements); spec 3.3 (bridge ARP
handling) and 3.4 (router ARP). Gratuitous ARP is one reason a match is userspace-only (spec 1.7).

Wire format::

    htype(2)=1 ptype(2)=0x0800 hlen(1)=6 plen(1)=4 op(2) sha(6) spa(4) tha(6) tpa(4)

Invariants: only hardware type Ethernet with protocol IPv4 is accepted; `parse` raises `MalformedPacket` for any
other combination and for a packet shorter than 28 bytes (trailing Ethernet padding is ignored);
`parse(build(p)) == p`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from midonet.packets.errors import MalformedPacket
from midonet.packets.ethernet import BROADCAST, mac_to_bytes
from midonet.packets.ipv4 import ip_from_bytes, ip_to_bytes

__all__ = [
    "HTYPE_ETHERNET",
    "LENGTH",
    "OP_REPLY",
    "OP_REQUEST",
    "PTYPE_IPV4",
    "ArpPacket",
    "build",
    "gratuitous",
    "parse",
    "reply",
    "request",
]

HTYPE_ETHERNET = 1
PTYPE_IPV4 = 0x0800
OP_REQUEST = 1
OP_REPLY = 2
LENGTH = 28
ZERO_MAC = "00:00:00:00:00:00"

_PACKET = struct.Struct("!HHBBH6s4s6s4s")


@dataclass(frozen=True, slots=True)
class ArpPacket:
    """An Ethernet/IPv4 ARP packet: operation, sender and target hardware (MAC) and protocol (IPv4) addresses."""

    op: int
    sha: str
    spa: str
    tha: str
    tpa: str

    @property
    def is_request(self) -> bool:
        return self.op == OP_REQUEST

    @property
    def is_reply(self) -> bool:
        return self.op == OP_REPLY

    @property
    def is_gratuitous(self) -> bool:
        """Sender and target protocol addresses are the same: an announcement, not a question (RFC 5227)."""
        return self.spa == self.tpa

    def pack(self) -> bytes:
        if not 0 <= self.op <= 0xFFFF:
            raise ValueError(f"ARP operation out of range: {self.op}")
        return _PACKET.pack(
            HTYPE_ETHERNET, PTYPE_IPV4, 6, 4, self.op,
            mac_to_bytes(self.sha), ip_to_bytes(self.spa), mac_to_bytes(self.tha), ip_to_bytes(self.tpa),
        )


def parse(data: bytes) -> ArpPacket:
    """The ARP packet at the start of ``data``; `MalformedPacket` unless it is a whole Ethernet/IPv4 ARP packet."""
    if len(data) < LENGTH:
        raise MalformedPacket("arp", f"{len(data)} bytes are shorter than the 28-byte Ethernet/IPv4 ARP packet")
    htype, ptype, hlen, plen, op, sha, spa, tha, tpa = _PACKET.unpack_from(data)
    if (htype, ptype, hlen, plen) != (HTYPE_ETHERNET, PTYPE_IPV4, 6, 4):
        raise MalformedPacket("arp", f"not Ethernet/IPv4 ARP: htype {htype} ptype {ptype:#06x} hlen {hlen} plen {plen}")
    return ArpPacket(op=op, sha=sha.hex(":"), spa=ip_from_bytes(spa), tha=tha.hex(":"), tpa=ip_from_bytes(tpa))


def build(packet: ArpPacket) -> bytes:
    return packet.pack()


def request(sha: str, spa: str, tpa: str) -> ArpPacket:
    """The question "who has ``tpa``? tell ``spa``" (target MAC unknown: zeros), sent to the broadcast MAC."""
    return ArpPacket(op=OP_REQUEST, sha=sha, spa=spa, tha=ZERO_MAC, tpa=tpa)


def reply(to: ArpPacket, mac: str) -> ArpPacket:
    """The answer to request ``to``: ``to.tpa`` is at ``mac``, sent back to the asker."""
    if not to.is_request:
        raise ValueError("only an ARP request can be answered")
    return ArpPacket(op=OP_REPLY, sha=mac, spa=to.tpa, tha=to.sha, tpa=to.spa)


def gratuitous(mac: str, ip: str, *, op: int = OP_REQUEST) -> ArpPacket:
    """An announcement that ``ip`` is at ``mac`` (sender and target IP equal), broadcast as a request or a reply."""
    return ArpPacket(op=op, sha=mac, spa=ip, tha=BROADCAST if op == OP_REPLY else ZERO_MAC, tpa=ip)
