"""UDP: the 8-byte header, its length, and its checksum over the IPv4 pseudo-header.

Role: the transport of DHCP, VXLAN, and half the flows MidoNet simulates. `parse` checks the header against the
bytes it came in and returns a `UdpHeader` and the payload the length field announces; `build` packs a header and
payload with the length and checksum computed.

May import: `midonet.packets.errors`, `midonet.packets.checksum`, `midonet.packets.ipv4`.

Reference: RFC 768; RFC 1122 section 4.1.3.4 (checksum 0 means "not computed"; a computed 0 is sent as 0xFFFF).

Wire format::

    src_port(2) dst_port(2) length(2) checksum(2) payload

Invariants: a parsed payload is exactly ``length - 8`` bytes; a length below 8 or past the end of the segment
raises `MalformedPacket`. A checksum of 0 is valid (no checksum; VXLAN sends that, RFC 7348 section 5); `build`
writes 0 when asked not to compute one and never writes 0 for a computed one.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from midonet.packets import checksum as _checksum
from midonet.packets.errors import MalformedPacket
from midonet.packets.ipv4 import PROTO_UDP, ip_to_bytes

__all__ = ["HEADER_LENGTH", "UdpHeader", "build", "is_checksum_valid", "parse"]

HEADER_LENGTH = 8
_HEADER = struct.Struct("!HHHH")


@dataclass(frozen=True, slots=True)
class UdpHeader:
    """Source and destination ports; `length` and `checksum` as parsed (computed afresh by `build`, not compared)."""

    src_port: int
    dst_port: int
    length: int = field(default=0, compare=False)
    checksum: int = field(default=0, compare=False)


def parse(segment: bytes) -> tuple[UdpHeader, bytes]:
    """The header and payload of the UDP datagram ``segment`` (an IPv4 payload); bytes past `length` are cut."""
    if len(segment) < HEADER_LENGTH:
        raise MalformedPacket("udp", f"{len(segment)} bytes are shorter than the 8-byte header")
    src, dst, length, csum = _HEADER.unpack_from(segment)
    if not HEADER_LENGTH <= length <= len(segment):
        raise MalformedPacket("udp", f"length {length} outside [8, {len(segment)}]")
    return UdpHeader(src, dst, length, csum), bytes(segment[HEADER_LENGTH:length])


def is_checksum_valid(segment: bytes, src_ip: str, dst_ip: str) -> bool:
    """Whether the datagram's checksum is right for these IPv4 addresses (0, "not computed", counts as right)."""
    if len(segment) < HEADER_LENGTH:
        raise MalformedPacket("udp", f"{len(segment)} bytes are shorter than the 8-byte header")
    if segment[6:8] == b"\x00\x00":
        return True
    pseudo = _checksum.pseudo_header_sum(ip_to_bytes(src_ip), ip_to_bytes(dst_ip), PROTO_UDP, len(segment))
    return _checksum.is_valid(segment, pseudo)


def build(header: UdpHeader, payload: bytes, src_ip: str, dst_ip: str, *, with_checksum: bool = True) -> bytes:
    """The datagram with its length and (unless ``with_checksum`` is false) checksum computed."""
    length = HEADER_LENGTH + len(payload)
    if length > 0xFFFF:
        raise ValueError(f"UDP datagram of {length} bytes exceeds 65535")
    if not (0 <= header.src_port <= 0xFFFF and 0 <= header.dst_port <= 0xFFFF):
        raise ValueError(f"UDP port out of range: {header.src_port} / {header.dst_port}")
    segment = _HEADER.pack(header.src_port, header.dst_port, length, 0) + payload
    if not with_checksum:
        return segment
    value = _checksum.l4_checksum(ip_to_bytes(src_ip), ip_to_bytes(dst_ip), PROTO_UDP, segment) or 0xFFFF
    return segment[:6] + value.to_bytes(2, "big") + segment[8:]
