"""`FlowMatch`: a packet's header fields, with a record of which ones the simulation read; `parse_frame`.

Role: the packet as the simulation sees it (spec 3.1). The agent makes one from each upcall with `parse_frame`, the
hot path, which decodes a whole frame straight into one flat `__slots__` object (three or four precompiled
`struct` unpacks, no object per layer). Devices read fields through properties; every read records the field in
the *seen* mask, and the installed megaflow matches exactly the seen fields and wildcards the rest
(MidoNet's ``docs/megaflow.md``). Devices that rewrite the packet (NAT, TTL decrement, MAC rewrite, VLAN push/pop)
assign fields; the simulator keeps a `copy` of the match as received and turns ``final.diff(original)`` into the
datapath's set-field actions, so devices never write actions themselves.

May import: `midonet.packets.errors` and `midonet.packets.ethernet` constants only.

Fields (all None when the packet has no such header; `vlan_ids` is ``()`` on an untagged Ethernet frame)::

    in_port                                            where the packet came in (never wildcarded)
    eth_src eth_dst eth_type vlan_ids                  L2; eth_type is the one after the VLAN tags
    arp_op arp_sha arp_spa arp_tha arp_tpa             ARP (IPv4 over Ethernet)
    ip_src ip_dst ip_proto ip_tos ip_ttl ip_frag       IPv4; ip_frag "none" | "first" | "later"
    tp_src tp_dst                                      TCP/UDP ports; ICMP type and code (as MidoNet does)
    icmp_id icmp_data                                  ICMP echo identifier; an ICMP error's quoted datagram

Tracking (three masks, one bit per field, in the order above):
  * reading a field through its property marks it *seen*; `peek`, `key`, `as_dict`, `diff`, ``==`` and ``repr``
    never do, for code that must not widen the mask (tracing, logging, tests);
  * assigning a field marks it *modified*; `diff` compares values, so a field set back to its original value
    yields no action;
  * `icmp_id` and `icmp_data` are userspace-only (spec 1.7): reading either, or `mark_userspace_only` (GARP), makes
    `userspace_only` true and the agent installs no kernel flow for the packet.

`mask_fields` is what the megaflow must match exactly: the seen fields, `in_port`, and the fields each seen field
presupposes (an IP field needs the EtherType, a port the protocol and the fragment kind: a datapath cannot match a
port without knowing the packet has one).

Malformed frames: `parse_frame` raises `MalformedPacket` (and nothing else) for a frame cut short inside the
Ethernet, VLAN, ARP, IPv4 or L4 header, an IPv4 version or header length out of range, a total length past the end
of the frame, a TCP data offset or UDP length out of range, and ARP that is not Ethernet/IPv4. It does not verify
checksums or IPv4 options (use `ipv4.parse` for those); unknown EtherTypes and IP protocols are not errors, their
upper fields are just None.
"""

from __future__ import annotations

import operator
import struct
from collections.abc import Callable, Iterable
from typing import Literal, TypeAlias

from midonet.packets.errors import MalformedPacket
from midonet.packets.ethernet import ETH_TYPE_ARP, ETH_TYPE_IPV4, VLAN_TPIDS

__all__ = ["BITS", "FIELDS", "FieldValue", "FlowMatch", "IpFrag", "parse_frame"]

IpFrag: TypeAlias = Literal["none", "first", "later"]
FieldValue: TypeAlias = int | str | tuple[int, ...] | bytes | None

FIELDS: tuple[str, ...] = (
    "in_port", "eth_src", "eth_dst", "eth_type", "vlan_ids",
    "arp_op", "arp_sha", "arp_spa", "arp_tha", "arp_tpa",
    "ip_src", "ip_dst", "ip_proto", "ip_tos", "ip_ttl", "ip_frag",
    "tp_src", "tp_dst", "icmp_id", "icmp_data",
)  # fmt: skip
_SLOT = {name: "_" + name for name in FIELDS}
BITS = {name: 1 << i for i, name in enumerate(FIELDS)}  # the bit of each field in the seen / modified masks

_IN_PORT = 1 << 0
_ETH_SRC = 1 << 1
_ETH_DST = 1 << 2
_ETH_TYPE = 1 << 3
_VLAN_IDS = 1 << 4
_ARP_OP = 1 << 5
_ARP_SHA = 1 << 6
_ARP_SPA = 1 << 7
_ARP_THA = 1 << 8
_ARP_TPA = 1 << 9
_IP_SRC = 1 << 10
_IP_DST = 1 << 11
_IP_PROTO = 1 << 12
_IP_TOS = 1 << 13
_IP_TTL = 1 << 14
_IP_FRAG = 1 << 15
_TP_SRC = 1 << 16
_TP_DST = 1 << 17
_ICMP_ID = 1 << 18
_ICMP_DATA = 1 << 19

_USERSPACE = _ICMP_ID | _ICMP_DATA
_ARP = _ARP_OP | _ARP_SHA | _ARP_SPA | _ARP_THA | _ARP_TPA
_IP = _IP_SRC | _IP_DST | _IP_PROTO | _IP_TOS | _IP_TTL | _IP_FRAG
_L4 = _TP_SRC | _TP_DST | _ICMP_ID | _ICMP_DATA
# What a seen field presupposes in a datapath match (applied in the order listed: L4 first, so its needs cascade).
_PREREQUISITES = ((_L4, _IP_PROTO | _IP_FRAG), (_ICMP_ID | _ICMP_DATA, _TP_SRC), (_ARP | _IP | _L4, _ETH_TYPE))


def _names(mask: int) -> frozenset[str]:
    """The field names of `mask`. Every first packet asks for its megaflow's (`mask_fields`), and a host's flows
    have a handful of masks: each one's set is kept (bounded) and given again."""
    names = _NAMES.get(mask)
    if names is None:
        if len(_NAMES) >= _NAMES_MAX:
            _NAMES.clear()
        names = _NAMES[mask] = frozenset(name for name, bit in BITS.items() if mask & bit)
    return names


_NAMES: dict[int, frozenset[str]] = {}
_NAMES_MAX = 1 << 12
_GETTERS: dict[tuple[str, ...], Callable[[FlowMatch], tuple[FieldValue, ...]]] = {}


def _getter(slots: tuple[str, ...]) -> Callable[[FlowMatch], tuple[FieldValue, ...]]:
    """A tuple of the attributes `slots` of a match (`attrgetter` gives one value, not a tuple, for one name)."""
    if len(slots) > 1:
        return operator.attrgetter(*slots)
    if slots:
        one = operator.attrgetter(slots[0])
        return lambda match: (one(match),)
    return lambda match: ()


def _bits(fields: Iterable[str]) -> int:
    mask = 0
    for name in fields:
        if name not in BITS:
            raise ValueError(f"not a FlowMatch field: {name!r}")
        mask |= BITS[name]
    return mask


class FlowMatch:
    """A packet's header fields with the seen / modified record; see the module docstring.

    Build one from a frame with `parse_frame`, or by keywords (generated packets, tests)::

        FlowMatch(eth_src="02:00:00:00:00:01", eth_dst=..., eth_type=0x0800, ip_src="10.0.0.1", ...)
    """

    __slots__ = (*_SLOT.values(), "_seen", "_modified", "_userspace")

    def __init__(
        self,
        *,
        in_port: int | str | None = None,
        eth_src: str | None = None,
        eth_dst: str | None = None,
        eth_type: int | None = None,
        vlan_ids: tuple[int, ...] | None = None,
        arp_op: int | None = None,
        arp_sha: str | None = None,
        arp_spa: str | None = None,
        arp_tha: str | None = None,
        arp_tpa: str | None = None,
        ip_src: str | None = None,
        ip_dst: str | None = None,
        ip_proto: int | None = None,
        ip_tos: int | None = None,
        ip_ttl: int | None = None,
        ip_frag: IpFrag | None = None,
        tp_src: int | None = None,
        tp_dst: int | None = None,
        icmp_id: int | None = None,
        icmp_data: bytes | None = None,
    ) -> None:
        self._in_port = in_port
        self._eth_src = eth_src
        self._eth_dst = eth_dst
        self._eth_type = eth_type
        self._vlan_ids = vlan_ids
        self._arp_op = arp_op
        self._arp_sha = arp_sha
        self._arp_spa = arp_spa
        self._arp_tha = arp_tha
        self._arp_tpa = arp_tpa
        self._ip_src = ip_src
        self._ip_dst = ip_dst
        self._ip_proto = ip_proto
        self._ip_tos = ip_tos
        self._ip_ttl = ip_ttl
        self._ip_frag = ip_frag
        self._tp_src = tp_src
        self._tp_dst = tp_dst
        self._icmp_id = icmp_id
        self._icmp_data = icmp_data
        self._seen = 0
        self._modified = 0
        self._userspace = False

    @property
    def in_port(self) -> int | str | None:
        """The datapath port number or the virtual port id the packet came in on."""
        self._seen |= _IN_PORT
        return self._in_port

    @in_port.setter
    def in_port(self, value: int | str | None) -> None:
        self._modified |= _IN_PORT
        self._in_port = value

    @property
    def eth_src(self) -> str | None:
        """Source MAC, ``"aa:bb:cc:dd:ee:ff"``."""
        self._seen |= _ETH_SRC
        return self._eth_src

    @eth_src.setter
    def eth_src(self, value: str | None) -> None:
        self._modified |= _ETH_SRC
        self._eth_src = value

    @property
    def eth_dst(self) -> str | None:
        """Destination MAC."""
        self._seen |= _ETH_DST
        return self._eth_dst

    @eth_dst.setter
    def eth_dst(self, value: str | None) -> None:
        self._modified |= _ETH_DST
        self._eth_dst = value

    @property
    def eth_type(self) -> int | None:
        """EtherType after the VLAN tags (0x0800 IPv4, 0x0806 ARP, ...)."""
        self._seen |= _ETH_TYPE
        return self._eth_type

    @eth_type.setter
    def eth_type(self, value: int | None) -> None:
        self._modified |= _ETH_TYPE
        self._eth_type = value

    @property
    def vlan_ids(self) -> tuple[int, ...] | None:
        """VLAN ids, outermost first; ``()`` for an untagged frame."""
        self._seen |= _VLAN_IDS
        return self._vlan_ids

    @vlan_ids.setter
    def vlan_ids(self, value: tuple[int, ...] | None) -> None:
        self._modified |= _VLAN_IDS
        self._vlan_ids = value

    @property
    def arp_op(self) -> int | None:
        """ARP operation (1 request, 2 reply)."""
        self._seen |= _ARP_OP
        return self._arp_op

    @arp_op.setter
    def arp_op(self, value: int | None) -> None:
        self._modified |= _ARP_OP
        self._arp_op = value

    @property
    def arp_sha(self) -> str | None:
        """ARP sender hardware address."""
        self._seen |= _ARP_SHA
        return self._arp_sha

    @arp_sha.setter
    def arp_sha(self, value: str | None) -> None:
        self._modified |= _ARP_SHA
        self._arp_sha = value

    @property
    def arp_spa(self) -> str | None:
        """ARP sender protocol address."""
        self._seen |= _ARP_SPA
        return self._arp_spa

    @arp_spa.setter
    def arp_spa(self, value: str | None) -> None:
        self._modified |= _ARP_SPA
        self._arp_spa = value

    @property
    def arp_tha(self) -> str | None:
        """ARP target hardware address."""
        self._seen |= _ARP_THA
        return self._arp_tha

    @arp_tha.setter
    def arp_tha(self, value: str | None) -> None:
        self._modified |= _ARP_THA
        self._arp_tha = value

    @property
    def arp_tpa(self) -> str | None:
        """ARP target protocol address."""
        self._seen |= _ARP_TPA
        return self._arp_tpa

    @arp_tpa.setter
    def arp_tpa(self, value: str | None) -> None:
        self._modified |= _ARP_TPA
        self._arp_tpa = value

    @property
    def ip_src(self) -> str | None:
        """IPv4 source, dotted quad."""
        self._seen |= _IP_SRC
        return self._ip_src

    @ip_src.setter
    def ip_src(self, value: str | None) -> None:
        self._modified |= _IP_SRC
        self._ip_src = value

    @property
    def ip_dst(self) -> str | None:
        """IPv4 destination."""
        self._seen |= _IP_DST
        return self._ip_dst

    @ip_dst.setter
    def ip_dst(self, value: str | None) -> None:
        self._modified |= _IP_DST
        self._ip_dst = value

    @property
    def ip_proto(self) -> int | None:
        """IPv4 protocol (1 ICMP, 6 TCP, 17 UDP)."""
        self._seen |= _IP_PROTO
        return self._ip_proto

    @ip_proto.setter
    def ip_proto(self, value: int | None) -> None:
        self._modified |= _IP_PROTO
        self._ip_proto = value

    @property
    def ip_tos(self) -> int | None:
        """IPv4 type-of-service octet (DSCP and ECN)."""
        self._seen |= _IP_TOS
        return self._ip_tos

    @ip_tos.setter
    def ip_tos(self, value: int | None) -> None:
        self._modified |= _IP_TOS
        self._ip_tos = value

    @property
    def ip_ttl(self) -> int | None:
        """IPv4 time to live."""
        self._seen |= _IP_TTL
        return self._ip_ttl

    @ip_ttl.setter
    def ip_ttl(self, value: int | None) -> None:
        self._modified |= _IP_TTL
        self._ip_ttl = value

    @property
    def ip_frag(self) -> IpFrag | None:
        """``"none"``, ``"first"`` or ``"later"`` fragment."""
        self._seen |= _IP_FRAG
        return self._ip_frag

    @ip_frag.setter
    def ip_frag(self, value: IpFrag | None) -> None:
        self._modified |= _IP_FRAG
        self._ip_frag = value

    @property
    def tp_src(self) -> int | None:
        """TCP/UDP source port; the ICMP type for ICMP."""
        self._seen |= _TP_SRC
        return self._tp_src

    @tp_src.setter
    def tp_src(self, value: int | None) -> None:
        self._modified |= _TP_SRC
        self._tp_src = value

    @property
    def tp_dst(self) -> int | None:
        """TCP/UDP destination port; the ICMP code for ICMP."""
        self._seen |= _TP_DST
        return self._tp_dst

    @tp_dst.setter
    def tp_dst(self, value: int | None) -> None:
        self._modified |= _TP_DST
        self._tp_dst = value

    @property
    def icmp_id(self) -> int | None:
        """ICMP echo identifier (userspace-only)."""
        self._seen |= _ICMP_ID
        return self._icmp_id

    @icmp_id.setter
    def icmp_id(self, value: int | None) -> None:
        self._modified |= _ICMP_ID
        self._icmp_id = value

    @property
    def icmp_data(self) -> bytes | None:
        """An ICMP error's quoted datagram (userspace-only)."""
        self._seen |= _ICMP_DATA
        return self._icmp_data

    @icmp_data.setter
    def icmp_data(self, value: bytes | None) -> None:
        self._modified |= _ICMP_DATA
        self._icmp_data = value

    # ---- reading without recording, and the record itself ----

    def peek(self, field: str) -> FieldValue:
        """The value of ``field`` without marking it seen."""
        slot = _SLOT.get(field)
        if slot is None:
            raise ValueError(f"not a FlowMatch field: {field!r}")
        value: FieldValue = getattr(self, slot)
        return value

    def key(self, fields: Iterable[str] = FIELDS) -> tuple[FieldValue, ...]:
        """The values of ``fields``, in that order, without marking them seen (a flow-table key): one C call, an
        `attrgetter` made once for each tuple of names (a new flow's key reads a dozen)."""
        names = fields if isinstance(fields, tuple) else tuple(fields)
        getter = _GETTERS.get(names)
        if getter is None:
            unknown = [field for field in names if field not in _SLOT]
            if unknown:
                raise ValueError(f"not FlowMatch fields: {unknown!r}")
            if len(_GETTERS) >= _NAMES_MAX:
                _GETTERS.clear()
            getter = _GETTERS[names] = _getter(tuple(_SLOT[field] for field in names))
        return getter(self)

    def as_dict(self) -> dict[str, FieldValue]:
        """Every field and its value, without marking anything seen."""
        return {name: getattr(self, slot) for name, slot in _SLOT.items()}

    def fields_seen(self) -> frozenset[str]:
        """Exactly the fields read through their properties (or `mark_seen`) since creation."""
        return _names(self._seen)

    def fields_modified(self) -> frozenset[str]:
        """The fields assigned through their properties since creation."""
        return _names(self._modified)

    @property
    def seen_mask(self) -> int:
        """The seen fields as a bitmask (`BITS`), for cheap set arithmetic."""
        return self._seen

    def mask_fields(self) -> frozenset[str]:
        """The fields the megaflow must match exactly: seen, `in_port`, and what they presuppose."""
        mask = self._seen | _IN_PORT
        for present, needed in _PREREQUISITES:
            if mask & present:
                mask |= needed
        return _names(mask)

    def mark_seen(self, *fields: str) -> None:
        """Record ``fields`` as seen without reading them (a condition that tested a peeked value)."""
        self._seen |= _bits(fields)

    @property
    def userspace_only(self) -> bool:
        """Whether the packet must be simulated every time, with no kernel flow (spec 1.7)."""
        return self._userspace or bool(self._seen & _USERSPACE)

    def mark_userspace_only(self) -> None:
        self._userspace = True

    def clear_tracking(self) -> None:
        """Forget what was seen and modified, and the userspace-only mark."""
        self._seen = 0
        self._modified = 0
        self._userspace = False

    # ---- copies and differences ----

    def copy(self) -> FlowMatch:
        """An independent copy: the same field values and the same seen / modified / userspace record."""
        clone = _new(FlowMatch)
        _copy_slots(self, clone)
        return clone

    def restore(self, snapshot: FlowMatch) -> None:
        """Put back the field values and modified record of ``snapshot`` (taken with `copy`), keeping what was seen.

        For forks (spec 3.1): each branch starts from the saved match, and the flow must match on everything any
        branch read, so the seen record accumulates.
        """
        seen, userspace = self._seen | snapshot._seen, self._userspace or snapshot._userspace
        _copy_slots(snapshot, self)
        self._seen, self._userspace = seen, userspace

    def diff(self, base: FlowMatch) -> dict[str, FieldValue]:
        """The fields (all but `in_port`) whose value here differs from ``base``, with the value here.

        ``final.diff(original)`` is the set of rewrites to perform on the packet (`frame.apply` takes it as is).
        """
        return _diff_slots(self, base)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FlowMatch):
            return NotImplemented
        return all(getattr(self, slot) == getattr(other, slot) for slot in _SLOT.values())

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v!r}" for k, v in self.as_dict().items() if v is not None)
        return f"FlowMatch({shown})"


_new = object.__new__


def _compile_copy(slots: tuple[str, ...]) -> Callable[[FlowMatch, FlowMatch], None]:
    """`copy_slots(src, dst)`: every slot of `src` assigned to `dst` as straight-line code, compiled once (as
    `dataclasses` does for `__init__`). A simulation copies its match two or three times a packet; a
    getattr/setattr loop over the 23 slots cost 1.3 us a copy, this 0.25 (benchmarks/sim_bench.py)."""
    body = "\n".join(f"    dst.{slot} = src.{slot}" for slot in slots)
    namespace: dict[str, Callable[[FlowMatch, FlowMatch], None]] = {}
    exec(f"def copy_slots(src, dst):\n{body}\n", namespace)   # our own slot names, nothing else
    return namespace["copy_slots"]


_copy_slots = _compile_copy(FlowMatch.__slots__)


def _compile_diff(slots: dict[str, str]) -> Callable[[FlowMatch, FlowMatch], dict[str, FieldValue]]:
    """`diff_slots(mine, base)`: {field: mine's value} for every field but `in_port` whose values differ, in
    `FIELDS` order, as straight-line code compiled once (every forwarded first packet is diffed at emission: a
    getattr loop cost 1.4 us, this 0.5)."""
    body = "".join(f"    if mine.{slot} != base.{slot}:\n        out[{name!r}] = mine.{slot}\n"
                   for name, slot in slots.items() if name != "in_port")
    namespace: dict[str, Callable[[FlowMatch, FlowMatch], dict[str, FieldValue]]] = {}
    exec(f"def diff_slots(mine, base):\n    out = {{}}\n{body}    return out\n", namespace)   # our own names
    return namespace["diff_slots"]


_diff_slots = _compile_diff(_SLOT)

_UNPACK_IPV4 = struct.Struct("!BBHHHBBH4s4s").unpack_from
_UNPACK_ARP = struct.Struct("!HHBBH6s4s6s4s").unpack_from
_UNPACK_PORTS = struct.Struct("!HH").unpack_from
_UNPACK_ICMP = struct.Struct("!BBHH").unpack_from
_ARP_PREFIX = b"\x00\x01\x08\x00\x06\x04"
_PROTO_ICMP, _PROTO_TCP, _PROTO_UDP = 1, 6, 17

# Dotted-quad text of the addresses seen lately. Formatting one costs 0.24 us, a hit 0.05 us: this cache takes
# parse_frame from 1.25 to 0.9 us an Ethernet/IPv4/UDP frame (benchmarks/packet_bench.py). Bounded: emptied when full.
_IP_TEXT: dict[bytes, str] = {}
_IP_TEXT_MAX = 1 << 16


def _ip_text(raw: bytes) -> str:
    text = _IP_TEXT.get(raw)
    if text is None:
        if len(_IP_TEXT) >= _IP_TEXT_MAX:
            _IP_TEXT.clear()
        text = _IP_TEXT[raw] = f"{raw[0]}.{raw[1]}.{raw[2]}.{raw[3]}"
    return text


def parse_frame(data: bytes, in_port: int | str | None = None) -> FlowMatch:
    """Decode an Ethernet frame into a `FlowMatch` (nothing seen or modified); `MalformedPacket` if it is broken."""
    n = len(data)
    if n < 14:
        raise MalformedPacket("ethernet", f"frame of {n} bytes is shorter than the 14-byte header")
    m = _new(FlowMatch)
    m._in_port = in_port
    m._eth_dst = data[0:6].hex(":")
    m._eth_src = data[6:12].hex(":")
    eth_type = (data[12] << 8) | data[13]
    off = 14
    if eth_type in VLAN_TPIDS:
        vids = []
        while eth_type in VLAN_TPIDS:
            if n < off + 4:
                raise MalformedPacket("vlan", f"802.1Q tag at offset {off - 2} runs past the end of the frame")
            vids.append(((data[off] << 8) | data[off + 1]) & 0xFFF)
            eth_type = (data[off + 2] << 8) | data[off + 3]
            off += 4
        m._vlan_ids = tuple(vids)
    else:
        m._vlan_ids = ()
    m._eth_type = eth_type
    m._seen = m._modified = 0
    m._userspace = False
    m._arp_op = m._arp_sha = m._arp_spa = m._arp_tha = m._arp_tpa = None
    if eth_type == ETH_TYPE_IPV4:
        _parse_ipv4(m, data, off, n)
        return m
    m._ip_src = m._ip_dst = m._ip_proto = m._ip_tos = m._ip_ttl = m._ip_frag = None
    m._tp_src = m._tp_dst = m._icmp_id = m._icmp_data = None
    if eth_type == ETH_TYPE_ARP:
        if n < off + 28:
            raise MalformedPacket("arp", f"{n - off} bytes are shorter than the 28-byte Ethernet/IPv4 ARP packet")
        if data[off : off + 6] != _ARP_PREFIX:
            raise MalformedPacket("arp", "not Ethernet/IPv4 ARP")
        _, _, _, _, m._arp_op, sha, spa, tha, tpa = _UNPACK_ARP(data, off)
        m._arp_sha = sha.hex(":")
        m._arp_spa = _IP_TEXT.get(spa) or _ip_text(spa)
        m._arp_tha = tha.hex(":")
        m._arp_tpa = _IP_TEXT.get(tpa) or _ip_text(tpa)
    return m


def _parse_ipv4(m: FlowMatch, data: bytes, off: int, n: int) -> None:
    if n < off + 20:
        raise MalformedPacket("ipv4", f"{n - off} bytes are shorter than the 20-byte header")
    vihl, m._ip_tos, total, _, frag, m._ip_ttl, proto, _, src, dst = _UNPACK_IPV4(data, off)
    hlen = (vihl & 0xF) << 2
    if vihl >> 4 != 4 or hlen < 20:
        raise MalformedPacket("ipv4", f"version {vihl >> 4} / header length {hlen} is not IPv4")
    end = off + total
    if total < hlen or end > n:
        raise MalformedPacket("ipv4", f"total length {total} outside [{hlen}, {n - off}]")
    m._ip_src = _IP_TEXT.get(src) or _ip_text(src)
    m._ip_dst = _IP_TEXT.get(dst) or _ip_text(dst)
    m._ip_proto = proto
    m._icmp_id = m._icmp_data = None
    if frag & 0x1FFF:
        m._ip_frag = "later"
        m._tp_src = m._tp_dst = None
        return
    m._ip_frag = "first" if frag & 0x2000 else "none"
    off += hlen
    avail = end - off
    if proto == _PROTO_TCP:
        if avail < 20:
            raise MalformedPacket("tcp", f"{avail} bytes are shorter than the 20-byte header")
        doff = (data[off + 12] >> 4) << 2
        if doff < 20 or doff > avail:
            raise MalformedPacket("tcp", f"data offset {doff} outside [20, {avail}]")
        m._tp_src, m._tp_dst = _UNPACK_PORTS(data, off)
    elif proto == _PROTO_UDP:
        if avail < 8:
            raise MalformedPacket("udp", f"{avail} bytes are shorter than the 8-byte header")
        m._tp_src, m._tp_dst = _UNPACK_PORTS(data, off)
        length = (data[off + 4] << 8) | data[off + 5]
        if length < 8 or (length > avail and not frag & 0x2000):
            raise MalformedPacket("udp", f"length {length} outside [8, {avail}]")
    elif proto == _PROTO_ICMP:
        if avail < 8:
            raise MalformedPacket("icmp", f"{avail} bytes are shorter than the 8-byte header")
        kind, code, _, ident = _UNPACK_ICMP(data, off)
        m._tp_src = kind
        m._tp_dst = code
        if kind == 0 or kind == 8:
            m._icmp_id = ident
        elif kind == 3 or kind == 11 or kind == 12:
            m._icmp_data = bytes(data[off + 8 : end])
    else:
        m._tp_src = m._tp_dst = None
