"""ICMP for IPv4: echo request and reply, and the errors that carry the offending datagram's header.

Role: routers answer pings to their port addresses and send errors (net/host unreachable, filter-prohibited,
frag-needed, time-exceeded) built from the packet as it was before NAT (spec 3.4 "ICMP errors"); NAT translates an
error by rewriting the datagram header embedded in it (spec 3.7, MidoNet's ``docs/icmp-over-nat.md``). `parse`
and `build` handle the message; `echo_request` / `echo_reply` and `unreachable` / `frag_needed` / `time_exceeded`
make them; `parse_embedded` and `rewrite_embedded` read and rewrite the embedded header.

May import: `midonet.packets.errors`, `midonet.packets.checksum`, `midonet.packets.ipv4`.

Reference: RFC 792 (message formats), RFC 1191 (the next-hop MTU in frag-needed), RFC 1812 section 4.3.2.3 (an
error quotes the original IP header and at least its first 8 data bytes).

Wire format::

    type(1) code(1) checksum(2) rest(4) data
    rest = identifier(2) sequence(2)          echo request (8) / reply (0)
         = unused(2) next_hop_mtu(2)         destination unreachable (3), code 4 "fragmentation needed"
         = pointer(1) unused(3)              parameter problem (12)
    data = original IP header + 8 bytes      errors: 3, 11, 12

Invariants: `parse` raises `MalformedPacket` for fewer than 8 bytes (and, with ``verify=True``, a bad checksum);
`build` always writes a correct checksum; `rewrite_embedded` keeps the embedded IP header checksum right and
adjusts the embedded UDP/TCP checksum when the quoted bytes include it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from midonet.packets import checksum as _checksum
from midonet.packets.errors import MalformedPacket
from midonet.packets.ipv4 import PROTO_ICMP, PROTO_TCP, PROTO_UDP, ip_from_bytes, ip_to_bytes

__all__ = [
    "CODE_FRAG_NEEDED",
    "CODE_HOST_UNREACHABLE",
    "CODE_NET_UNREACHABLE",
    "CODE_PORT_UNREACHABLE",
    "CODE_PROHIBITED",
    "ERROR_TYPES",
    "TYPE_ECHO_REPLY",
    "TYPE_ECHO_REQUEST",
    "TYPE_PARAMETER_PROBLEM",
    "TYPE_TIME_EXCEEDED",
    "TYPE_UNREACHABLE",
    "EmbeddedHeader",
    "IcmpMessage",
    "build",
    "echo_reply",
    "echo_request",
    "embedded_bytes",
    "frag_needed",
    "parse",
    "parse_embedded",
    "rewrite_embedded",
    "time_exceeded",
    "unreachable",
]

TYPE_ECHO_REPLY = 0
TYPE_UNREACHABLE = 3
TYPE_ECHO_REQUEST = 8
TYPE_TIME_EXCEEDED = 11
TYPE_PARAMETER_PROBLEM = 12
ECHO_TYPES = frozenset({TYPE_ECHO_REQUEST, TYPE_ECHO_REPLY})
ERROR_TYPES = frozenset({TYPE_UNREACHABLE, TYPE_TIME_EXCEEDED, TYPE_PARAMETER_PROBLEM})

CODE_NET_UNREACHABLE = 0
CODE_HOST_UNREACHABLE = 1
CODE_PROTOCOL_UNREACHABLE = 2
CODE_PORT_UNREACHABLE = 3
CODE_FRAG_NEEDED = 4
CODE_PROHIBITED = 13
CODE_TTL_EXCEEDED = 0

HEADER_LENGTH = 8
QUOTED_DATA = 8

_HEADER = struct.Struct("!BBHI")
_IP_HEAD = struct.Struct("!BBHHHBBH4s4s")


@dataclass(frozen=True, slots=True)
class IcmpMessage:
    """A message: type, code, the 4-byte "rest of header" as an integer, and the data after it."""

    type: int
    code: int
    rest: int = 0
    data: bytes = b""
    checksum: int = field(default=0, compare=False)

    @property
    def ident(self) -> int:
        """Echo identifier (upper half of `rest`)."""
        return self.rest >> 16

    @property
    def seq(self) -> int:
        """Echo sequence number (lower half of `rest`)."""
        return self.rest & 0xFFFF

    @property
    def mtu(self) -> int:
        """Next-hop MTU of a frag-needed error (lower half of `rest`)."""
        return self.rest & 0xFFFF

    @property
    def is_error(self) -> bool:
        return self.type in ERROR_TYPES

    def pack(self) -> bytes:
        if not (0 <= self.type <= 255 and 0 <= self.code <= 255 and 0 <= self.rest <= 0xFFFFFFFF):
            raise ValueError(f"bad ICMP type {self.type} / code {self.code} / rest {self.rest}")
        head = _HEADER.pack(self.type, self.code, 0, self.rest)
        value = _checksum.checksum(head + self.data)
        return head[:2] + value.to_bytes(2, "big") + head[4:] + self.data


def parse(data: bytes, *, verify: bool = False) -> IcmpMessage:
    """The ICMP message ``data`` (an IPv4 payload)."""
    if len(data) < HEADER_LENGTH:
        raise MalformedPacket("icmp", f"{len(data)} bytes are shorter than the 8-byte header")
    if verify and not _checksum.is_valid(data):
        raise MalformedPacket("icmp", "bad checksum")
    kind, code, csum, rest = _HEADER.unpack_from(data)
    return IcmpMessage(kind, code, rest, bytes(data[HEADER_LENGTH:]), csum)


def build(message: IcmpMessage) -> bytes:
    return message.pack()


def echo_request(ident: int, seq: int, data: bytes = b"") -> IcmpMessage:
    if not (0 <= ident <= 0xFFFF and 0 <= seq <= 0xFFFF):
        raise ValueError(f"echo identifier / sequence out of range: {ident} / {seq}")
    return IcmpMessage(TYPE_ECHO_REQUEST, 0, (ident << 16) | seq, data)


def echo_reply(request: IcmpMessage) -> IcmpMessage:
    """The reply to an echo request: same identifier, sequence and data (RFC 792)."""
    if request.type != TYPE_ECHO_REQUEST:
        raise ValueError(f"ICMP type {request.type} is not an echo request")
    return IcmpMessage(TYPE_ECHO_REPLY, 0, request.rest, request.data)


def embedded_bytes(datagram: bytes, quoted: int = QUOTED_DATA) -> bytes:
    """What an error quotes of ``datagram``: its IP header (with options) and first ``quoted`` data bytes."""
    if len(datagram) < 20 or datagram[0] >> 4 != 4 or (datagram[0] & 0xF) < 5:
        raise MalformedPacket("ipv4", "an ICMP error must quote an IPv4 datagram")
    hlen = (datagram[0] & 0xF) * 4
    if hlen > len(datagram):
        raise MalformedPacket("ipv4", f"header length {hlen} runs past the {len(datagram)}-byte datagram")
    return bytes(datagram[: hlen + quoted])


def unreachable(code: int, datagram: bytes, *, mtu: int = 0) -> IcmpMessage:
    """Destination unreachable about ``datagram`` (with ``mtu`` set for code 4, frag-needed)."""
    return IcmpMessage(TYPE_UNREACHABLE, code, mtu & 0xFFFF, embedded_bytes(datagram))


def frag_needed(datagram: bytes, mtu: int) -> IcmpMessage:
    """Fragmentation needed and DF set (RFC 1191): ``datagram`` does not fit the next hop's ``mtu``."""
    return unreachable(CODE_FRAG_NEEDED, datagram, mtu=mtu)


def time_exceeded(datagram: bytes, code: int = CODE_TTL_EXCEEDED) -> IcmpMessage:
    """Time exceeded in transit (TTL reached zero) about ``datagram``."""
    return IcmpMessage(TYPE_TIME_EXCEEDED, code, 0, embedded_bytes(datagram))


@dataclass(frozen=True, slots=True)
class EmbeddedHeader:
    """The fields NAT and rule conditions read from an error's quoted datagram (spec 2.2 ``icmp_data_*``).

    Ports are None when the quote stops before them or the quoted datagram is a later fragment; for a quoted
    ICMP message `tp_src` / `tp_dst` are its type and code, and `icmp_id` its echo identifier.
    """

    ip_src: str
    ip_dst: str
    ip_proto: int
    tp_src: int | None
    tp_dst: int | None
    icmp_id: int | None


def _quoted_header_length(data: bytes) -> int:
    if len(data) < 20 or data[0] >> 4 != 4:
        raise MalformedPacket("icmp", "quoted datagram is not an IPv4 header")
    hlen = (data[0] & 0xF) * 4
    if hlen < 20 or hlen > len(data):
        raise MalformedPacket("icmp", f"quoted IPv4 header length {hlen} is bad for {len(data)} bytes")
    return hlen


def parse_embedded(data: bytes) -> EmbeddedHeader:
    """The quoted header in an error's ``data`` (`FlowMatch.icmp_data`); `MalformedPacket` if it is not IPv4."""
    hlen = _quoted_header_length(data)
    _, _, _, _, frag, _, proto, _, src, dst = _IP_HEAD.unpack_from(data)
    tp_src = tp_dst = icmp_id = None
    l4 = data[hlen:]
    if frag & 0x1FFF == 0 and len(l4) >= 4:
        if proto in (PROTO_TCP, PROTO_UDP):
            tp_src, tp_dst = struct.unpack_from("!HH", l4)
        elif proto == PROTO_ICMP:
            tp_src, tp_dst = l4[0], l4[1]
            if tp_src in ECHO_TYPES and len(l4) >= 6:
                (icmp_id,) = struct.unpack_from("!H", l4, 4)
    return EmbeddedHeader(ip_from_bytes(src), ip_from_bytes(dst), proto, tp_src, tp_dst, icmp_id)


def _patch16(buf: bytearray, offset: int, value: int) -> int:
    """Write ``value`` at ``offset``; the old value is returned (for checksum adjustment)."""
    old = int.from_bytes(buf[offset : offset + 2], "big")
    buf[offset : offset + 2] = value.to_bytes(2, "big")
    return old


def rewrite_embedded(
    data: bytes,
    *,
    ip_src: str | None = None,
    ip_dst: str | None = None,
    tp_src: int | None = None,
    tp_dst: int | None = None,
) -> bytes:
    """``data`` (an error's quoted datagram) with the given fields replaced, checksums kept right.

    The quoted IP header checksum is recomputed; the quoted UDP checksum (in the first 8 bytes) or TCP checksum
    (if quoted) is adjusted for the address and port changes, unless it is a UDP "no checksum" zero. Ports apply
    to TCP and UDP only; `ValueError` if asked to rewrite ports that the quote does not carry.
    """
    if any(p is not None and not 0 <= p <= 0xFFFF for p in (tp_src, tp_dst)):
        raise ValueError(f"port out of range: {tp_src} / {tp_dst}")
    hlen = _quoted_header_length(data)
    buf = bytearray(data)
    old_addrs = bytes(buf[12:20])
    if ip_src is not None:
        buf[12:16] = ip_to_bytes(ip_src)
    if ip_dst is not None:
        buf[16:20] = ip_to_bytes(ip_dst)
    buf[10:12] = b"\x00\x00"
    buf[10:12] = _checksum.checksum(bytes(buf[:hlen])).to_bytes(2, "big")
    proto, later = buf[9], int.from_bytes(buf[6:8], "big") & 0x1FFF
    if (tp_src is not None or tp_dst is not None) and (proto not in (PROTO_TCP, PROTO_UDP) or later or
                                                       len(buf) < hlen + 4):
        raise ValueError("the quoted datagram carries no TCP/UDP ports to rewrite")
    changes: list[tuple[int, int]] = []  # (old word, new word) pairs covered by the L4 checksum
    addrs = bytes(buf[12:20])
    for i in range(0, 8, 2):
        changes.append((int.from_bytes(old_addrs[i : i + 2], "big"), int.from_bytes(addrs[i : i + 2], "big")))
    if tp_src is not None:
        changes.append((_patch16(buf, hlen, tp_src), tp_src))
    if tp_dst is not None:
        changes.append((_patch16(buf, hlen + 2, tp_dst), tp_dst))
    csum_at = {PROTO_UDP: hlen + 6, PROTO_TCP: hlen + 16}.get(proto)
    if csum_at is not None and not later and len(buf) >= csum_at + 2:
        stored = int.from_bytes(buf[csum_at : csum_at + 2], "big")
        if not (proto == PROTO_UDP and stored == 0):
            for old, new in changes:
                stored = _checksum.update(stored, old, new)
            if proto == PROTO_UDP and stored == 0:
                stored = 0xFFFF
            buf[csum_at : csum_at + 2] = stored.to_bytes(2, "big")
    return bytes(buf)
