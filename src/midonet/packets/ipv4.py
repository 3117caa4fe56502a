"""IPv4: addresses, the header with its options and fragment fields, fragmentation and reassembly.

Role: the network layer of everything MidoNet routes. `parse` checks a datagram's header (version, header length,
total length, options) and returns an `IPv4Header` and the payload it announces (trailing Ethernet padding is cut);
`build` packs a header and payload with the total length and header checksum computed. `fragment` splits a datagram
to fit an MTU, copying the options marked "copied" into every fragment; `reassemble` puts a datagram back together
from its fragments in any order.

May import: `midonet.packets.errors`, `midonet.packets.checksum`.

Reference: RFC 791 (header, options, fragmentation), RFC 1122 section 3.2.1, RFC 815 (reassembly bookkeeping).

Wire format::

    ver/ihl(1) tos(1) total_length(2) ident(2) flags/frag_offset(2) ttl(1) proto(1) checksum(2) src(4) dst(4)
    options (ihl*4 - 20 bytes)

Invariants: `frag_offset` is in 8-byte units as on the wire (`offset_bytes` gives bytes); `parse` never returns a
payload longer than the total length says, and raises `MalformedPacket` (never another error) for any header that
is cut short or inconsistent. Header checksums are verified only when asked (`verify=True`): like a switch, the
datapath forwards what it is given, and the fast path (`flowmatch.parse_frame`) does not pay for it.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from functools import lru_cache

from midonet.packets import checksum as _checksum
from midonet.packets.errors import MalformedPacket

__all__ = [
    "FLAG_DF",
    "FLAG_MF",
    "HEADER_LENGTH",
    "PROTO_ICMP",
    "PROTO_TCP",
    "PROTO_UDP",
    "IPv4Header",
    "IPv4Option",
    "build",
    "build_options",
    "fragment",
    "ip_from_bytes",
    "ip_from_int",
    "ip_to_bytes",
    "ip_to_int",
    "parse",
    "parse_options",
    "reassemble",
]

PROTO_ICMP = 1
PROTO_TCP = 6
PROTO_UDP = 17

FLAG_RESERVED = 0x4
FLAG_DF = 0x2
FLAG_MF = 0x1

HEADER_LENGTH = 20
MAX_HEADER_LENGTH = 60
OPTION_EOL = 0
OPTION_NOP = 1

_HEADER = struct.Struct("!BBHHHBBH4s4s")


@lru_cache(maxsize=4096)
def ip_to_bytes(ip: str) -> bytes:
    """``"10.0.0.1"`` to its 4 bytes; `ValueError` if it is not a dotted-quad IPv4 address.

    Cached (a pure function; a bounded LRU): building a frame converts the same few addresses several times, and the
    strict parse costs 1.3 us where a cache hit costs 0.1 us.
    """
    parts = ip.split(".")
    if len(parts) != 4 or not all(p.isdigit() and p.isascii() and len(p) <= 3 for p in parts):
        raise ValueError(f"not an IPv4 address: {ip!r}")
    values = [int(p) for p in parts]
    if any(v > 255 for v in values):
        raise ValueError(f"not an IPv4 address: {ip!r}")
    return bytes(values)


def ip_from_bytes(raw: bytes) -> str:
    if len(raw) != 4:
        raise ValueError(f"an IPv4 address is 4 bytes, not {len(raw)}")
    return f"{raw[0]}.{raw[1]}.{raw[2]}.{raw[3]}"


def ip_to_int(ip: str) -> int:
    return int.from_bytes(ip_to_bytes(ip), "big")


def ip_from_int(value: int) -> str:
    if not 0 <= value <= 0xFFFFFFFF:
        raise ValueError(f"IPv4 address out of range: {value}")
    return ip_from_bytes(value.to_bytes(4, "big"))


@dataclass(frozen=True, slots=True)
class IPv4Option:
    """One option: its type octet (copied flag, class, number) and its data (without type and length octets).

    EOL (type 0) and NOP (type 1) are single octets and carry no data.
    """

    type: int
    data: bytes = b""

    @property
    def copied(self) -> bool:
        """Whether the option must be copied into every fragment (the type's high bit)."""
        return bool(self.type & 0x80)

    def pack(self) -> bytes:
        if self.type in (OPTION_EOL, OPTION_NOP):
            if self.data:
                raise ValueError(f"IPv4 option {self.type} carries no data")
            return bytes((self.type,))
        if not 0 <= self.type <= 255 or len(self.data) > 38:
            raise ValueError(f"bad IPv4 option type {self.type} / data length {len(self.data)}")
        return bytes((self.type, len(self.data) + 2)) + self.data


def parse_options(raw: bytes) -> tuple[IPv4Option, ...]:
    """The options in ``raw`` (the header bytes after the first 20), up to the first EOL; NOPs are kept."""
    options: list[IPv4Option] = []
    i = 0
    while i < len(raw):
        kind = raw[i]
        if kind == OPTION_EOL:
            break
        if kind == OPTION_NOP:
            options.append(IPv4Option(OPTION_NOP))
            i += 1
            continue
        if i + 1 >= len(raw):
            raise MalformedPacket("ipv4", f"option {kind} has no length octet")
        length = raw[i + 1]
        if length < 2 or i + length > len(raw):
            raise MalformedPacket("ipv4", f"option {kind} has bad length {length}")
        options.append(IPv4Option(kind, bytes(raw[i + 2 : i + length])))
        i += length
    return tuple(options)


def build_options(options: Iterable[IPv4Option]) -> bytes:
    """The options packed and padded with EOL octets to a multiple of 4; `ValueError` past 40 bytes."""
    raw = b"".join(o.pack() for o in options)
    raw += bytes(-len(raw) % 4)
    if len(raw) > MAX_HEADER_LENGTH - HEADER_LENGTH:
        raise ValueError(f"IPv4 options of {len(raw)} bytes exceed the 40-byte limit")
    return raw


@dataclass(frozen=True, slots=True)
class IPv4Header:
    """An IPv4 header. `options` are the raw option bytes (see `parse_options` / `build_options`).

    `total_length` and `checksum` are what was on the wire when parsed; `build` computes both afresh, and neither
    takes part in equality, so ``parse(build(h, p))[0] == h``.
    """

    src: str
    dst: str
    proto: int
    ttl: int = 64
    tos: int = 0
    ident: int = 0
    flags: int = 0
    frag_offset: int = 0
    options: bytes = b""
    total_length: int = field(default=0, compare=False)
    checksum: int = field(default=0, compare=False)

    @property
    def header_length(self) -> int:
        return HEADER_LENGTH + len(self.options)

    @property
    def dont_fragment(self) -> bool:
        return bool(self.flags & FLAG_DF)

    @property
    def more_fragments(self) -> bool:
        return bool(self.flags & FLAG_MF)

    @property
    def offset_bytes(self) -> int:
        return self.frag_offset * 8

    @property
    def is_fragment(self) -> bool:
        return self.more_fragments or self.frag_offset != 0

    @property
    def frag(self) -> str:
        """``"none"``, ``"first"`` (offset 0, more to come) or ``"later"``, as `FlowMatch.ip_frag`."""
        if self.frag_offset:
            return "later"
        return "first" if self.more_fragments else "none"

    def pack(self, payload_length: int) -> bytes:
        """The header bytes for a payload of ``payload_length`` bytes, checksum included."""
        if len(self.options) % 4 or len(self.options) > MAX_HEADER_LENGTH - HEADER_LENGTH:
            raise ValueError(f"IPv4 options must be padded to 4 and at most 40 bytes, not {len(self.options)}")
        total = self.header_length + payload_length
        if total > 0xFFFF:
            raise ValueError(f"IPv4 datagram of {total} bytes exceeds 65535")
        if not (0 <= self.frag_offset <= 0x1FFF and 0 <= self.flags <= 7):
            raise ValueError(f"bad IPv4 flags {self.flags} / fragment offset {self.frag_offset}")
        head = _HEADER.pack(
            0x40 | (self.header_length >> 2), self.tos, total, self.ident,
            (self.flags << 13) | self.frag_offset, self.ttl, self.proto, 0,
            ip_to_bytes(self.src), ip_to_bytes(self.dst),
        ) + self.options
        value = _checksum.checksum(head)
        return head[:10] + value.to_bytes(2, "big") + head[12:]


def parse(data: bytes, *, verify: bool = False) -> tuple[IPv4Header, bytes]:
    """The header and payload of the datagram at the start of ``data`` (anything past its total length is cut)."""
    n = len(data)
    if n < HEADER_LENGTH:
        raise MalformedPacket("ipv4", f"{n} bytes are shorter than the 20-byte header")
    vihl, tos, total, ident, frag, ttl, proto, csum, src, dst = _HEADER.unpack_from(data)
    if vihl >> 4 != 4:
        raise MalformedPacket("ipv4", f"version {vihl >> 4} is not 4")
    hlen = (vihl & 0xF) * 4
    if hlen < HEADER_LENGTH:
        raise MalformedPacket("ipv4", f"header length {hlen} is below 20")
    if not hlen <= total <= n:
        raise MalformedPacket("ipv4", f"total length {total} outside [{hlen}, {n}]")
    options = bytes(data[HEADER_LENGTH:hlen])
    parse_options(options)
    if verify and not _checksum.is_valid(data[:hlen]):
        raise MalformedPacket("ipv4", "bad header checksum")
    header = IPv4Header(
        src=ip_from_bytes(src), dst=ip_from_bytes(dst), proto=proto, ttl=ttl, tos=tos, ident=ident,
        flags=frag >> 13, frag_offset=frag & 0x1FFF, options=options, total_length=total, checksum=csum,
    )
    return header, bytes(data[hlen:total])


def build(header: IPv4Header, payload: bytes) -> bytes:
    """The datagram: ``header`` with total length and checksum computed, then ``payload``."""
    return header.pack(len(payload)) + payload


def _copied_options(raw: bytes) -> bytes:
    return build_options(o for o in parse_options(raw) if o.copied)


def fragment(datagram: bytes, mtu: int) -> list[bytes]:
    """``datagram`` split into fragments of at most ``mtu`` bytes (itself, alone, if it fits).

    Fragments of a fragment keep the original offsets and the last one keeps its MF flag. `ValueError` if the
    datagram has DF set and does not fit (the router answers ICMP frag-needed instead), or if the MTU cannot carry
    the header and 8 bytes of data.
    """
    header, payload = parse(datagram)
    if header.header_length + len(payload) <= mtu:
        return [build(header, payload)]
    if header.dont_fragment:
        raise ValueError(f"datagram of {header.header_length + len(payload)} bytes has DF set and exceeds MTU {mtu}")
    later_options = _copied_options(header.options)
    fragments: list[bytes] = []
    offset = 0
    while offset < len(payload):
        options = header.options if offset == 0 else later_options
        room = (mtu - HEADER_LENGTH - len(options)) // 8 * 8
        if room <= 0:
            raise ValueError(f"MTU {mtu} cannot carry an IPv4 header and 8 bytes of data")
        chunk = payload[offset : offset + room]
        last = offset + len(chunk) >= len(payload)
        flags = (header.flags & ~FLAG_MF) | (header.flags & FLAG_MF if last else FLAG_MF)
        piece = replace(header, options=options, flags=flags, frag_offset=header.frag_offset + offset // 8)
        fragments.append(build(piece, chunk))
        offset += len(chunk)
    return fragments


def reassemble(fragments: Iterable[bytes]) -> bytes:
    """The datagram the ``fragments`` (in any order, duplicates allowed) came from.

    `MalformedPacket` if they belong to different datagrams, overlap with different contents, leave a gap, or no
    fragment ends the datagram.
    """
    pieces: dict[int, bytes] = {}
    first: IPv4Header | None = None
    key: tuple[str, str, int, int] | None = None
    end: int | None = None
    for raw in fragments:
        header, payload = parse(raw)
        this_key = (header.src, header.dst, header.proto, header.ident)
        if key is None:
            key = this_key
        elif this_key != key:
            raise MalformedPacket("ipv4", f"fragment of datagram {this_key} mixed with {key}")
        start = header.offset_bytes
        if header.more_fragments and len(payload) % 8:
            raise MalformedPacket("ipv4", f"non-final fragment at {start} carries {len(payload)} bytes, not 8k")
        if start == 0:
            first = header
        if not header.more_fragments:
            if end is not None and end != start + len(payload):
                raise MalformedPacket("ipv4", "two fragments claim to end the datagram at different lengths")
            end = start + len(payload)
        if start in pieces and pieces[start] != payload:
            raise MalformedPacket("ipv4", f"two different fragments at offset {start}")
        pieces[start] = payload
    if first is None or end is None:
        raise MalformedPacket("ipv4", "the first or the last fragment is missing")
    data = bytearray()
    for start in sorted(pieces):
        if start != len(data):
            raise MalformedPacket("ipv4", f"fragments overlap or leave a gap at offset {len(data)}")
        data += pieces[start]
    if len(data) != end:
        raise MalformedPacket("ipv4", f"fragments run to {len(data)} bytes, past the end at {end}")
    if first.header_length + end > 0xFFFF:
        raise MalformedPacket("ipv4", f"fragments add up to {first.header_length + end} bytes, past 65535")
    whole = replace(first, flags=first.flags & ~FLAG_MF, frag_offset=0)
    return build(whole, bytes(data))
