"""TCP: the header with its flags and options, and its checksum over the IPv4 pseudo-header.

Role: what connection tracking, NAT and the L4 load balancer read (ports, SYN/ACK/FIN/RST), and what a router's
REJECT with ``tcp-reset`` would write. `parse` checks the data offset against the segment and returns a `TcpHeader`
and the payload; `build` packs a header and payload with the checksum computed. Options stay raw bytes on the
header; `parse_options` / `build_options` read and write them as (kind, data) pairs.

May import: `midonet.packets.errors`, `midonet.packets.checksum`, `midonet.packets.ipv4`.

Reference: RFC 9293 (TCP, section 3.1 header format and 3.2 options), RFC 3168 (ECE, CWR).

Wire format::

    src_port(2) dst_port(2) seq(4) ack(4) data_offset/reserved(1) flags(1) window(2) checksum(2) urgent(2)
    options (data_offset*4 - 20 bytes)

Invariants: a data offset below 5 or past the end of the segment raises `MalformedPacket`; ``parse(build(h, p))``
gives ``(h, p)`` back for options padded to a multiple of 4.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass, field

from midonet.packets import checksum as _checksum
from midonet.packets.errors import MalformedPacket
from midonet.packets.ipv4 import PROTO_TCP, ip_to_bytes

__all__ = [
    "ACK",
    "CWR",
    "ECE",
    "FIN",
    "HEADER_LENGTH",
    "PSH",
    "RST",
    "SYN",
    "URG",
    "TcpHeader",
    "build",
    "build_options",
    "flag_names",
    "is_checksum_valid",
    "parse",
    "parse_options",
]

FIN = 0x01
SYN = 0x02
RST = 0x04
PSH = 0x08
ACK = 0x10
URG = 0x20
ECE = 0x40
CWR = 0x80
_FLAG_NAMES = ((FIN, "F"), (SYN, "S"), (RST, "R"), (PSH, "P"), (ACK, "A"), (URG, "U"), (ECE, "E"), (CWR, "C"))

HEADER_LENGTH = 20
MAX_HEADER_LENGTH = 60
OPTION_EOL = 0
OPTION_NOP = 1
OPTION_MSS = 2

_HEADER = struct.Struct("!HHIIBBHHH")


def flag_names(flags: int) -> str:
    """The flags as scapy and tcpdump letters, e.g. ``"SA"`` for SYN+ACK."""
    return "".join(name for bit, name in _FLAG_NAMES if flags & bit)


@dataclass(frozen=True, slots=True)
class TcpHeader:
    """A TCP header; `checksum` is as parsed (`build` computes it afresh) and takes no part in equality."""

    src_port: int
    dst_port: int
    seq: int = 0
    ack: int = 0
    flags: int = 0
    window: int = 65535
    urgent: int = 0
    options: bytes = b""
    checksum: int = field(default=0, compare=False)

    @property
    def header_length(self) -> int:
        return HEADER_LENGTH + len(self.options)

    def pack(self) -> bytes:
        if len(self.options) % 4 or len(self.options) > MAX_HEADER_LENGTH - HEADER_LENGTH:
            raise ValueError(f"TCP options must be padded to 4 and at most 40 bytes, not {len(self.options)}")
        if not (0 <= self.src_port <= 0xFFFF and 0 <= self.dst_port <= 0xFFFF):
            raise ValueError(f"TCP port out of range: {self.src_port} / {self.dst_port}")
        offset = (self.header_length >> 2) << 4
        return _HEADER.pack(
            self.src_port, self.dst_port, self.seq, self.ack, offset, self.flags, self.window, 0, self.urgent,
        ) + self.options


def parse_options(raw: bytes) -> tuple[tuple[int, bytes], ...]:
    """The options in ``raw`` as (kind, data) pairs, up to the first EOL; a NOP is ``(1, b"")``."""
    options: list[tuple[int, bytes]] = []
    i = 0
    while i < len(raw):
        kind = raw[i]
        if kind == OPTION_EOL:
            break
        if kind == OPTION_NOP:
            options.append((OPTION_NOP, b""))
            i += 1
            continue
        if i + 1 >= len(raw) or raw[i + 1] < 2 or i + raw[i + 1] > len(raw):
            raise MalformedPacket("tcp", f"option {kind} has a bad or missing length")
        options.append((kind, bytes(raw[i + 2 : i + raw[i + 1]])))
        i += raw[i + 1]
    return tuple(options)


def build_options(options: Iterable[tuple[int, bytes]]) -> bytes:
    """(kind, data) pairs packed and padded with EOL octets to a multiple of 4."""
    raw = b"".join(
        bytes((kind,)) if kind in (OPTION_EOL, OPTION_NOP) else bytes((kind, len(data) + 2)) + data
        for kind, data in options
    )
    return raw + bytes(-len(raw) % 4)


def parse(segment: bytes) -> tuple[TcpHeader, bytes]:
    """The header and payload of the TCP ``segment`` (an IPv4 payload)."""
    if len(segment) < HEADER_LENGTH:
        raise MalformedPacket("tcp", f"{len(segment)} bytes are shorter than the 20-byte header")
    src, dst, seq, ack, offset, flags, window, csum, urgent = _HEADER.unpack_from(segment)
    hlen = (offset >> 4) * 4
    if not HEADER_LENGTH <= hlen <= len(segment):
        raise MalformedPacket("tcp", f"data offset {hlen} outside [20, {len(segment)}]")
    options = bytes(segment[HEADER_LENGTH:hlen])
    header = TcpHeader(src, dst, seq, ack, flags, window, urgent, options, csum)
    return header, bytes(segment[hlen:])


def is_checksum_valid(segment: bytes, src_ip: str, dst_ip: str) -> bool:
    pseudo = _checksum.pseudo_header_sum(ip_to_bytes(src_ip), ip_to_bytes(dst_ip), PROTO_TCP, len(segment))
    return _checksum.is_valid(segment, pseudo)


def build(header: TcpHeader, payload: bytes, src_ip: str, dst_ip: str) -> bytes:
    """The segment: header, options and payload, with the checksum computed for these IPv4 addresses."""
    segment = header.pack() + payload
    value = _checksum.l4_checksum(ip_to_bytes(src_ip), ip_to_bytes(dst_ip), PROTO_TCP, segment)
    return segment[:16] + value.to_bytes(2, "big") + segment[18:]
