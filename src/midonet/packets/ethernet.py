"""Ethernet II frames with 802.1Q VLAN tags, possibly stacked (802.1ad QinQ), and MAC addresses.

Role: the outermost layer. `parse` splits a frame into an `EthernetHeader` (addresses, the VLAN tag stack outermost
first, and the *inner* EtherType, the one after the last tag) and its payload; `build` does the reverse;
`push_vlan` / `pop_vlan` edit the tag stack of a frame in place of the simulator's VLAN actions.

May import: `midonet.packets.errors` only.

Wire format (IEEE 802.3 clause 3, IEEE 802.1Q clause 9.6)::

    dst(6) src(6) [TPID(2) TCI(2)]* EtherType(2) payload
    TCI = PCP(3 bits) DEI(1 bit) VID(12 bits)

Tag protocol identifiers recognised: 0x8100 (C-tag), 0x88A8 (S-tag) and 0x9100 (pre-standard QinQ). MAC addresses
are lower-case colon-separated strings ("aa:bb:cc:dd:ee:ff") everywhere above this module, as in `FlowMatch`.

Invariants: `parse(build(h, p)) == (h, p)` for every header whose tags carry a recognised TPID; a frame shorter than
its headers raises `MalformedPacket`, never anything else. The frame check sequence is not part of the bytes we
see (the kernel strips it), and frames are not padded to 60 bytes unless asked (`pad=True`).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from functools import lru_cache

from midonet.packets.errors import MalformedPacket

__all__ = [
    "BROADCAST",
    "ETH_TYPE_ARP",
    "ETH_TYPE_IPV4",
    "ETH_TYPE_IPV6",
    "ETH_TYPE_QINQ",
    "ETH_TYPE_VLAN",
    "HEADER_LENGTH",
    "MIN_FRAME_LENGTH",
    "VLAN_TPIDS",
    "EthernetHeader",
    "VlanTag",
    "build",
    "is_broadcast",
    "is_multicast",
    "mac_from_bytes",
    "mac_to_bytes",
    "parse",
    "pop_vlan",
    "push_vlan",
]

ETH_TYPE_IPV4 = 0x0800
ETH_TYPE_ARP = 0x0806
ETH_TYPE_VLAN = 0x8100
ETH_TYPE_QINQ = 0x88A8
ETH_TYPE_IPV6 = 0x86DD
VLAN_TPIDS = frozenset({ETH_TYPE_VLAN, ETH_TYPE_QINQ, 0x9100})

HEADER_LENGTH = 14
TAG_LENGTH = 4
MIN_FRAME_LENGTH = 60
BROADCAST = "ff:ff:ff:ff:ff:ff"

_HEADER = struct.Struct("!6s6sH")
_TAG = struct.Struct("!HH")
_HEX = frozenset("0123456789abcdefABCDEF")


@lru_cache(maxsize=4096)
def mac_to_bytes(mac: str) -> bytes:
    """``"aa:bb:cc:dd:ee:ff"`` (or with ``-`` separators) to its 6 bytes; `ValueError` if it is not a MAC.

    Cached like `ipv4.ip_to_bytes` (pure, bounded LRU): frames are built and rewritten for a few MACs at a time.
    """
    parts = mac.replace("-", ":").split(":")
    if len(parts) != 6 or any(len(p) != 2 or not _HEX.issuperset(p) for p in parts):
        raise ValueError(f"not a MAC address: {mac!r}")
    return bytes(int(p, 16) for p in parts)


def mac_from_bytes(raw: bytes) -> str:
    """6 bytes to the canonical lower-case ``"aa:bb:cc:dd:ee:ff"``."""
    if len(raw) != 6:
        raise ValueError(f"a MAC address is 6 bytes, not {len(raw)}")
    return raw.hex(":")


def is_broadcast(mac: str) -> bool:
    return mac.lower() == BROADCAST


def is_multicast(mac: str) -> bool:
    """The group bit (least significant bit of the first octet) is set; broadcast is multicast too."""
    return bool(int(mac[:2], 16) & 1)


@dataclass(frozen=True, slots=True)
class VlanTag:
    """One 802.1Q tag: VLAN id, priority code point, drop-eligible indicator, and its TPID."""

    vid: int
    pcp: int = 0
    dei: int = 0
    tpid: int = ETH_TYPE_VLAN

    def __post_init__(self) -> None:
        if not 0 <= self.vid <= 0xFFF:
            raise ValueError(f"VLAN id out of range: {self.vid}")
        if not 0 <= self.pcp <= 7 or self.dei not in (0, 1):
            raise ValueError(f"bad VLAN priority {self.pcp} / DEI {self.dei}")
        if self.tpid not in VLAN_TPIDS:
            raise ValueError(f"not a VLAN TPID: {self.tpid:#06x}")

    @property
    def tci(self) -> int:
        return (self.pcp << 13) | (self.dei << 12) | self.vid


@dataclass(frozen=True, slots=True)
class EthernetHeader:
    """Destination and source MAC, the VLAN tags (outermost first) and the EtherType after the last tag."""

    dst: str
    src: str
    eth_type: int
    vlans: tuple[VlanTag, ...] = ()

    @property
    def vlan_ids(self) -> tuple[int, ...]:
        return tuple(t.vid for t in self.vlans)

    @property
    def length(self) -> int:
        return HEADER_LENGTH + TAG_LENGTH * len(self.vlans)

    def pack(self) -> bytes:
        if not 0 <= self.eth_type <= 0xFFFF:
            raise ValueError(f"EtherType out of range: {self.eth_type}")
        dst, src = mac_to_bytes(self.dst), mac_to_bytes(self.src)
        if not self.vlans:
            return _HEADER.pack(dst, src, self.eth_type)
        tags = b"".join(_TAG.pack(t.tpid, t.tci) for t in self.vlans)
        return dst + src + tags + self.eth_type.to_bytes(2, "big")


def parse(frame: bytes) -> tuple[EthernetHeader, bytes]:
    """Split ``frame`` into its header and payload; `MalformedPacket` if a header or tag is cut short."""
    if len(frame) < HEADER_LENGTH:
        raise MalformedPacket("ethernet", f"frame of {len(frame)} bytes is shorter than the 14-byte header")
    dst, src, eth_type = _HEADER.unpack_from(frame)
    offset = HEADER_LENGTH - 2
    tags: list[VlanTag] = []
    while eth_type in VLAN_TPIDS:
        if len(frame) < offset + TAG_LENGTH + 2:
            raise MalformedPacket("vlan", f"802.1Q tag at offset {offset} runs past the end of the frame")
        tci, next_type = _TAG.unpack_from(frame, offset + 2)
        tags.append(VlanTag(vid=tci & 0xFFF, pcp=tci >> 13, dei=(tci >> 12) & 1, tpid=eth_type))
        eth_type = next_type
        offset += TAG_LENGTH
    header = EthernetHeader(dst=dst.hex(":"), src=src.hex(":"), eth_type=eth_type, vlans=tuple(tags))
    return header, bytes(frame[offset + 2 :])


def build(header: EthernetHeader, payload: bytes, *, pad: bool = False) -> bytes:
    """The frame ``header`` + ``payload``; with ``pad`` zero-filled to the 60-byte Ethernet minimum."""
    frame = header.pack() + payload
    if pad and len(frame) < MIN_FRAME_LENGTH:
        frame += bytes(MIN_FRAME_LENGTH - len(frame))
    return frame


def push_vlan(frame: bytes, vid: int, *, pcp: int = 0, tpid: int = ETH_TYPE_VLAN) -> bytes:
    """``frame`` with a new outermost VLAN tag (right after the source MAC)."""
    if len(frame) < HEADER_LENGTH:
        raise MalformedPacket("ethernet", f"frame of {len(frame)} bytes is shorter than the 14-byte header")
    tag = VlanTag(vid=vid, pcp=pcp, tpid=tpid)
    return frame[:12] + _TAG.pack(tag.tpid, tag.tci) + frame[12:]


def pop_vlan(frame: bytes) -> bytes:
    """``frame`` without its outermost VLAN tag: `ValueError` if it has none, `MalformedPacket` if it is cut short."""
    if len(frame) < HEADER_LENGTH:
        raise MalformedPacket("ethernet", f"frame of {len(frame)} bytes is shorter than the 14-byte header")
    (tpid,) = struct.unpack_from("!H", frame, 12)
    if tpid not in VLAN_TPIDS:
        raise ValueError(f"frame has no VLAN tag to pop (EtherType {tpid:#06x})")
    if len(frame) < HEADER_LENGTH + TAG_LENGTH:
        raise MalformedPacket("vlan", "802.1Q tag runs past the end of the frame")
    return frame[:12] + frame[16:]
