"""The byte layouts shared with the tc-BPF program (bpf/dp.c): flow keys, masks, actions, ports, upcalls.

Role: the pure half of the Linux datapath. It turns a `FlowKey` into the kernel's 80-byte `struct mn_key` (and
its mask) and back, a tuple of `Action`s into the kernel's action array and back, and reads the counters and the
16-byte header the program puts in front of an upcalled packet. Nothing here does I/O; a unit test checks these
layouts against the compiled object's BTF, so dp.c and this module cannot drift apart silently.

What the kernel can express (anything else stays in userspace, `midonet.datapath.linux.datapath`):

    keys     the `KERNEL_FIELDS` (every `KEY_FIELDS` name but icmp_id and icmp_data), with at most two
             VLAN ids in `vlan_ids`; a field may match None ("the packet has no such header")
    actions  at most `MAX_ACTIONS` after SetFields is split into one action per field; Userspace only last;
             SetTunnel with a VNI of 24 bits and IPv4 addresses

Masks are all-or-nothing per field (the contract's megaflows), so a mask is just the set of field names; the
kernel stores it as a `struct mn_key` of all-ones bytes over those fields, with `present` bits saying which
fields it matches (and, in a flow key, which of them the packet has).

May import: `midonet.datapath.base`, `midonet.packets`.
"""

from __future__ import annotations

import enum
import functools
import socket
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import assert_never

from midonet.datapath.base import (
    KEY_FIELDS,
    Action,
    FlowKey,
    Output,
    PopVlan,
    PortKind,
    PushVlan,
    SetFields,
    SetTunnel,
    Userspace,
)
from midonet.packets.flowmatch import BITS, FieldValue

MAX_MASKS = 32
MAX_FLOWS = 65536   # mn_flows' max_entries (dp.c)
MAX_ACTIONS = 32
META_LEN = 16
EXEC_LEN = 96
EXEC_MAGIC = b"mn-exec!"
PROBE_ETH_TYPE = 0x88B5
PROBE_MAGIC = b"mn-probe"

FIELD_BITS: dict[str, int] = {**BITS, "tunnel_id": 1 << 20}
KERNEL_FIELDS: frozenset[str] = frozenset(KEY_FIELDS) - {"icmp_id", "icmp_data"}

# struct mn_key: mask_id present in_port tunnel_id eth_dst eth_src eth_type vlan0 vlan1 n_vlans ip_proto ip_src
# ip_dst ip_tos ip_ttl ip_frag pad0 tp_src tp_dst arp_op pad1 arp_spa arp_tpa arp_sha arp_tha pad2
KEY = struct.Struct("<IIII6s6sHHHBB4s4sBBBxHHHxx4s4s6s6s4x")
KEY_SIZE = KEY.size   # 80
# Byte ranges of each field in struct mn_key (for building masks).
_SPANS: dict[str, tuple[tuple[int, int], ...]] = {
    "in_port": ((8, 4),), "tunnel_id": ((12, 4),), "eth_dst": ((16, 6),), "eth_src": ((22, 6),),
    "eth_type": ((28, 2),), "vlan_ids": ((30, 2), (32, 2), (34, 1)), "ip_proto": ((35, 1),),
    "ip_src": ((36, 4),), "ip_dst": ((40, 4),), "ip_tos": ((44, 1),), "ip_ttl": ((45, 1),), "ip_frag": ((46, 1),),
    "tp_src": ((48, 2),), "tp_dst": ((50, 2),), "arp_op": ((52, 2),), "arp_spa": ((56, 4),),
    "arp_tpa": ((60, 4),), "arp_sha": ((64, 6),), "arp_tha": ((70, 6),),
}  # fmt: skip
_FRAG_CODES = {"none": 1, "first": 2, "later": 3}
_FRAG_NAMES = {code: name for name, code in _FRAG_CODES.items()}

# struct mn_action: kind flags u16 u32 bytes[8]
ACTION = struct.Struct("<BBHI8s")
# struct mn_flow: packets bytes last_used n_actions reserved, then the actions
FLOW_HEADER = struct.Struct("<QQQII")
FLOW_SIZE = FLOW_HEADER.size + MAX_ACTIONS * ACTION.size   # 544
PORT = struct.Struct("<II")          # struct mn_port: ifindex kind
CONFIG = struct.Struct("<IIII")      # struct mn_config: upcall_ifindex n_masks next_port reserved
META = struct.Struct("!BBHII2s2x")   # struct mn_meta: magic reason port tunnel_id tunnel_src eth_type
EXEC = struct.Struct("<80sII8s")     # struct mn_exec: key seq in_port magic (at the end of an executed packet)
U32 = struct.Struct("<I")
U64 = struct.Struct("<Q")

_GROUP_START = 1   # mn_action.flags: the first field of a SetFields


class Act(enum.IntEnum):
    OUTPUT = 1
    SET_ETH_SRC = 2
    SET_ETH_DST = 3
    SET_IP_SRC = 4
    SET_IP_DST = 5
    SET_IP_TTL = 6
    SET_IP_TOS = 7
    SET_TP_SRC = 8
    SET_TP_DST = 9
    PUSH_VLAN = 10
    POP_VLAN = 11
    SET_TUNNEL = 12
    USERSPACE = 13


_SET_KINDS = {
    "eth_src": Act.SET_ETH_SRC, "eth_dst": Act.SET_ETH_DST, "ip_src": Act.SET_IP_SRC, "ip_dst": Act.SET_IP_DST,
    "ip_ttl": Act.SET_IP_TTL, "ip_tos": Act.SET_IP_TOS, "tp_src": Act.SET_TP_SRC, "tp_dst": Act.SET_TP_DST,
}  # fmt: skip
_SET_FIELDS = {kind: name for name, kind in _SET_KINDS.items()}


class PortType(enum.IntEnum):
    NETDEV = 1
    VXLAN = 2

    @classmethod
    def of(cls, kind: PortKind) -> PortType:
        return cls.NETDEV if kind is PortKind.NETDEV else cls.VXLAN

    @property
    def kind(self) -> PortKind:
        return PortKind.NETDEV if self is PortType.NETDEV else PortKind.VXLAN


class Reason(enum.IntEnum):
    """Why the program sent a packet up (struct mn_meta.reason)."""

    MISS = 1
    USERSPACE = 2
    PROBE = 3
    EXECUTE = 4   # a kernel execute whose flow was gone: run it in userspace


class Counter(enum.IntEnum):
    """The slots of the per-CPU counters map (enum mn_counter)."""

    HITS = 0
    MISSES = 1
    MALFORMED = 2
    NO_PORT = 3
    NO_TUNNEL = 4
    BAD_ENCAPSULATION = 5
    ACTION_FAILED = 6
    NO_UPCALL = 7
    UPCALLS_SENT = 8


class Inexpressible(ValueError):
    """A key or an action list the kernel program cannot carry: the flow stays in userspace."""


# ---- values ----

def _mac(value: FieldValue) -> bytes:
    if not isinstance(value, str):
        raise Inexpressible(f"not a MAC address: {value!r}")
    raw = _MACS.get(value)
    if raw is None:
        raw = bytes.fromhex(value.replace(":", ""))
        if len(raw) != 6:
            raise Inexpressible(f"not a MAC address: {value!r}")
        if len(_MACS) >= _MACS_MAX:
            _MACS.clear()
        _MACS[value] = raw
    return raw


_MACS: dict[str, bytes] = {}   # the MACs of recent keys and actions: every flow key has two (bounded)
_MACS_MAX = 1 << 12


def _ip(value: FieldValue) -> bytes:
    if not isinstance(value, str):
        raise Inexpressible(f"not an IPv4 address: {value!r}")
    try:
        return socket.inet_pton(socket.AF_INET, value)
    except OSError:
        raise Inexpressible(f"not an IPv4 address: {value!r}") from None


def _int(value: FieldValue, bits: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < (1 << bits):
        raise Inexpressible(f"not a {bits}-bit number: {value!r}")
    return value


def _mac_text(raw: bytes) -> str:
    return raw.hex(":")


def _ip_text(raw: bytes) -> str:
    return f"{raw[0]}.{raw[1]}.{raw[2]}.{raw[3]}"


# ---- keys and masks ----

def check_key(key: FlowKey) -> None:
    """Raise `Inexpressible` unless the kernel can match `key` exactly."""
    pack_key(key, 0)


_NEVER_NONE = frozenset({"in_port", "eth_src", "eth_dst", "eth_type", "vlan_ids"})
_PUT_U32 = struct.Struct("<I").pack_into
_PUT_U16 = struct.Struct("<H").pack_into


def _put_vlans(raw: bytearray, value: FieldValue) -> None:
    if not isinstance(value, tuple) or len(value) > 2:
        raise Inexpressible(f"the kernel matches at most two VLAN ids, not {value!r}")
    for i, vid in enumerate(value):
        _PUT_U16(raw, 30 + 2 * i, _int(vid, 12))
    raw[34] = len(value)


def _put_frag(raw: bytearray, value: FieldValue) -> None:
    code = _FRAG_CODES.get(value) if isinstance(value, str) else None
    if code is None:
        raise Inexpressible(f"not an ip_frag: {value!r}")
    raw[46] = code


_MAC, _IP, _U32, _U16, _U8, _VLANS, _FRAG = range(7)


def _kind(name: str) -> int:
    if name in ("eth_src", "eth_dst", "arp_sha", "arp_tha"):
        return _MAC
    if name in ("ip_src", "ip_dst", "arp_spa", "arp_tpa"):
        return _IP
    if name in ("in_port", "tunnel_id"):
        return _U32
    if name in ("eth_type", "tp_src", "tp_dst", "arp_op"):
        return _U16
    if name in ("ip_proto", "ip_tos", "ip_ttl"):
        return _U8
    return _VLANS if name == "vlan_ids" else _FRAG


# How each kernel field is written into a struct mn_key: (its `present` bit, its kind, its offset in `_SPANS`).
_FIELD_SPECS: dict[str, tuple[int, int, int]] = {
    name: (FIELD_BITS[name], _kind(name), _SPANS[name][0][0]) for name in KERNEL_FIELDS
}


def pack_key(key: FlowKey, slot: int, names: tuple[str, ...] | None = None) -> bytes:
    """The kernel lookup key of flow key `key` under mask slot `slot`; `Inexpressible` if it cannot be one.

    Once per installed flow. A key whose fields all have a value is packed by its mask's `struct` (made on first
    use: 1.9 us a key of twelve fields, against 4.8 us field by field); a key with a None (that field's `present`
    bit stays clear), or one that cannot be packed, field by field (`_pack_key_by_field`, which says why).
    `names`: the key's mask, if the caller has it already."""
    fields = key.fields
    if names is None:
        names = key.mask
    packer = _KEY_PACKERS.get(names)
    if packer is None:
        if len(_KEY_PACKERS) >= 256:
            _KEY_PACKERS.clear()
        packer = _KEY_PACKERS[names] = _key_packer(names)
    if packer is _NO_PACKER:
        return _pack_key_by_field(key, slot)
    packed, order, present = packer
    args: list[object] = [slot, present]
    try:
        for index, kind in order:
            value = fields[index][1]
            if kind == _MAC:
                args.append(_mac(value))
            elif kind == _IP:
                args.append(_ip(value))
            elif kind == _U16:
                args.append(_int(value, 16))
            elif kind == _U32:
                args.append(_int(value, 32))
            elif kind == _U8:
                args.append(_int(value, 8))
            elif kind == _VLANS:
                if value != ():
                    return _pack_key_by_field(key, slot)
                args += (0, 0, 0)
            else:
                args.append(_FRAG_CODES[value])   # type: ignore[index]
        return packed.pack(*args)
    except (Inexpressible, KeyError, TypeError):
        return _pack_key_by_field(key, slot)


_KeyPacker = tuple[struct.Struct, tuple[tuple[int, int], ...], int]
_NO_PACKER: _KeyPacker = (struct.Struct(""), (), 0)
_KEY_PACKERS: dict[tuple[str, ...], _KeyPacker] = {}
_KIND_FORMATS = {_MAC: "6s", _IP: "4s", _U32: "I", _U16: "H", _U8: "B", _VLANS: "HHB", _FRAG: "B"}
_KIND_SIZES = {kind: struct.calcsize("<" + fmt) for kind, fmt in _KIND_FORMATS.items()}


def _key_packer(names: tuple[str, ...]) -> _KeyPacker:
    """The `struct` of a key with exactly these fields, every one with a value: slot, present, then the fields
    by offset with the gaps as padding; and where each field's value is in the key, by offset."""
    if any(name not in _FIELD_SPECS for name in names):
        return _NO_PACKER
    placed = sorted(range(len(names)), key=lambda i: _FIELD_SPECS[names[i]][2])
    fmt, at, present, order = "<II", 8, 0, []
    for index in placed:
        bit, kind, offset = _FIELD_SPECS[names[index]]
        fmt += "x" * (offset - at) + _KIND_FORMATS[kind]
        at = offset + _KIND_SIZES[kind]
        present |= bit
        order.append((index, kind))
    return struct.Struct(fmt + "x" * (KEY_SIZE - at)), tuple(order), present


def _pack_key_by_field(key: FlowKey, slot: int) -> bytes:
    raw = bytearray(KEY_SIZE)
    present = 0
    for name, value in key.fields:
        spec = _FIELD_SPECS.get(name)
        if spec is None:
            raise Inexpressible(f"the kernel does not match {name}")
        if value is None:
            if name in _NEVER_NONE:
                raise Inexpressible(f"{name} is never None on an Ethernet frame")
            continue
        bit, kind, at = spec
        present |= bit
        if kind == _MAC:
            raw[at : at + 6] = _mac(value)
        elif kind == _IP:
            raw[at : at + 4] = _ip(value)
        elif kind == _U16:
            _PUT_U16(raw, at, _int(value, 16))
        elif kind == _U32:
            _PUT_U32(raw, at, _int(value, 32))
        elif kind == _U8:
            raw[at] = _int(value, 8)
        elif kind == _VLANS:
            _put_vlans(raw, value)
        else:
            _put_frag(raw, value)
    _PUT_U32(raw, 0, slot)
    _PUT_U32(raw, 4, present)
    return bytes(raw)


@functools.lru_cache(maxsize=256)
def pack_mask(fields: tuple[str, ...]) -> bytes:
    """The kernel mask matching exactly `fields` (all kernel fields); its `mask_id` says "slot in use"."""
    raw = bytearray(KEY_SIZE)
    present = 0
    for name in fields:
        if name not in KERNEL_FIELDS:
            raise Inexpressible(f"the kernel does not match {name}")
        present |= FIELD_BITS[name]
        for offset, length in _SPANS[name]:
            raw[offset : offset + length] = b"\xff" * length
    U32.pack_into(raw, 0, 1)
    U32.pack_into(raw, 4, present)
    return bytes(raw)


def mask_fields(mask: bytes) -> tuple[str, ...]:
    """The field names a kernel mask matches, in `KEY_FIELDS` order."""
    present = U32.unpack_from(mask, 4)[0]
    return tuple(name for name in KEY_FIELDS if name in KERNEL_FIELDS and present & FIELD_BITS[name])


def mask_in_use(mask: bytes) -> bool:
    return bool(U32.unpack_from(mask, 0)[0])


def with_slot(raw: bytes, slot: int) -> bytes:
    """Kernel flow key `raw` moved to mask slot `slot`."""
    return U32.pack(slot) + raw[4:]


def key_slot(raw: bytes) -> int:
    """The mask slot a kernel flow key was stored under."""
    slot: int = U32.unpack_from(raw, 0)[0]
    return slot


def unpack_key(raw: bytes, fields: Sequence[str]) -> FlowKey:
    """The `FlowKey` of kernel flow key `raw` whose mask matches `fields`."""
    (_, present, in_port, tunnel_id, eth_dst, eth_src, eth_type, vlan0, vlan1, n_vlans, ip_proto, ip_src, ip_dst,
     ip_tos, ip_ttl, ip_frag, tp_src, tp_dst, arp_op, arp_spa, arp_tpa, arp_sha, arp_tha) = KEY.unpack(raw)
    decoded: dict[str, FieldValue] = {
        "in_port": in_port, "tunnel_id": tunnel_id, "eth_dst": _mac_text(eth_dst), "eth_src": _mac_text(eth_src),
        "eth_type": eth_type, "vlan_ids": (vlan0, vlan1)[:n_vlans], "ip_proto": ip_proto,
        "ip_src": _ip_text(ip_src), "ip_dst": _ip_text(ip_dst), "ip_tos": ip_tos, "ip_ttl": ip_ttl,
        "ip_frag": _FRAG_NAMES.get(ip_frag), "tp_src": tp_src, "tp_dst": tp_dst, "arp_op": arp_op,
        "arp_spa": _ip_text(arp_spa), "arp_tpa": _ip_text(arp_tpa), "arp_sha": _mac_text(arp_sha),
        "arp_tha": _mac_text(arp_tha),
    }  # fmt: skip
    return FlowKey.of({name: decoded[name] if present & FIELD_BITS[name] else None for name in fields})


# ---- actions and flows ----

def _set_action(name: str, value: FieldValue, first: bool) -> bytes:
    kind, flags = _SET_KINDS[name], _GROUP_START if first else 0
    match name:
        case "eth_src" | "eth_dst":
            return ACTION.pack(kind, flags, 0, 0, _mac(value) + b"\0\0")
        case "ip_src" | "ip_dst":
            return ACTION.pack(kind, flags, 0, 0, _ip(value) + bytes(4))
        case "ip_ttl" | "ip_tos":
            return ACTION.pack(kind, flags, _int(value, 8), 0, bytes(8))
        case _:   # tp_src, tp_dst
            return ACTION.pack(kind, flags, _int(value, 16), 0, bytes(8))


def pack_actions(actions: Sequence[Action]) -> list[bytes]:
    """The kernel actions of `actions`; `Inexpressible` if the program cannot run them."""
    packed: list[bytes] = []
    for i, action in enumerate(actions):
        match action:
            case Output(port):
                packed.append(ACTION.pack(Act.OUTPUT, 0, 0, _int(port, 32), bytes(8)))
            case SetFields(changes):
                if not changes:
                    raise Inexpressible("an empty SetFields")
                packed += [_set_action(name, value, j == 0) for j, (name, value) in enumerate(changes)]
            case PushVlan(vid):
                packed.append(ACTION.pack(Act.PUSH_VLAN, 0, _int(vid, 12), 0, bytes(8)))
            case PopVlan():
                packed.append(ACTION.pack(Act.POP_VLAN, 0, 0, 0, bytes(8)))
            case SetTunnel(key, src, dst):
                packed.append(ACTION.pack(Act.SET_TUNNEL, 0, 0, _int(key, 24), _ip(src) + _ip(dst)))
            case Userspace():
                if i != len(actions) - 1:
                    raise Inexpressible("Userspace before other actions")
                packed.append(ACTION.pack(Act.USERSPACE, 0, 0, 0, bytes(8)))
            case _:
                assert_never(action)
    if len(packed) > MAX_ACTIONS:
        raise Inexpressible(f"{len(packed)} kernel actions, at most {MAX_ACTIONS}")
    return packed


def unpack_actions(packed: Sequence[bytes]) -> tuple[Action, ...]:
    """The `Action`s of kernel actions (the inverse of `pack_actions`)."""
    actions: list[Action] = []
    changes: list[tuple[str, FieldValue]] = []

    def flush() -> None:
        if changes:
            actions.append(SetFields(tuple(changes)))
            changes.clear()

    for raw in packed:
        kind, flags, u16, u32, data = ACTION.unpack(raw)
        if kind in _SET_FIELDS:
            if flags & _GROUP_START:
                flush()
            name = _SET_FIELDS[Act(kind)]
            value: FieldValue
            if name in ("eth_src", "eth_dst"):
                value = _mac_text(data[:6])
            elif name in ("ip_src", "ip_dst"):
                value = _ip_text(data[:4])
            else:
                value = u16
            changes.append((name, value))
            continue
        flush()
        match kind:
            case Act.OUTPUT:
                actions.append(Output(u32))
            case Act.PUSH_VLAN:
                actions.append(PushVlan(u16))
            case Act.POP_VLAN:
                actions.append(PopVlan())
            case Act.SET_TUNNEL:
                actions.append(SetTunnel(u32, _ip_text(data[:4]), _ip_text(data[4:8])))
            case Act.USERSPACE:
                actions.append(Userspace())
            case _:
                raise ValueError(f"unknown kernel action {kind}")
    flush()
    return tuple(actions)


def pack_flow(actions: Sequence[Action]) -> bytes:
    """A fresh `struct mn_flow` (zero stats) running `actions`; `Inexpressible` if it cannot.

    Cached by action list: many flows share one (every flow to a port through the same router hop), and packing
    costs 3 us against a dictionary probe (benchmarks/datapath_bench.py, agent new flows/s)."""
    return _pack_flow(actions if isinstance(actions, tuple) else tuple(actions))


@functools.lru_cache(maxsize=4096)
def _pack_flow(actions: tuple[Action, ...]) -> bytes:
    packed = pack_actions(actions)
    body = b"".join(packed) + bytes(ACTION.size * (MAX_ACTIONS - len(packed)))
    return FLOW_HEADER.pack(0, 0, 0, len(packed), 0) + body


@dataclass(frozen=True, slots=True)
class KernelFlow:
    packets: int
    bytes: int
    last_used_ns: int   # 0: never used
    actions: tuple[Action, ...]


def unpack_flow(raw: bytes) -> KernelFlow:
    packets, size, last_used, n_actions, _ = FLOW_HEADER.unpack_from(raw, 0)
    start = FLOW_HEADER.size
    packed = [raw[start + i * ACTION.size : start + (i + 1) * ACTION.size] for i in range(min(n_actions, MAX_ACTIONS))]
    return KernelFlow(packets, size, last_used, unpack_actions(packed))


def unpack_flow_stats(raw: bytes) -> tuple[int, int, int]:
    """(packets, bytes, last_used_ns) of a `struct mn_flow`, without decoding its actions."""
    packets, size, last_used, _, _ = FLOW_HEADER.unpack_from(raw, 0)
    return packets, size, last_used


# ---- upcalls ----

@dataclass(frozen=True, slots=True)
class Meta:
    """The header the program puts in front of an upcalled packet."""

    reason: Reason
    port: int
    tunnel_id: int | None
    tunnel_src: str | None


def unpack_meta(raw: bytes) -> Meta | None:
    """The upcall header at the start of `raw`, or None if it is not one. Once per upcall: headers repeat (one per
    port and reason, one per tunnel key and peer), so each one's record is kept (bounded) and given again."""
    if len(raw) < META_LEN:
        return None
    head = raw[:META_LEN]
    meta = _METAS.get(head)
    if meta is not None:
        return meta
    magic, reason, port, tunnel, src, eth_type = META.unpack_from(raw, 0)
    if magic != 0x02 or eth_type != _PROBE_ETH_TYPE or reason not in Reason._value2member_map_:
        return None
    if tunnel & 0x80000000:
        meta = Meta(Reason(reason), port, tunnel & 0xFFFFFF, _ip_text(src.to_bytes(4, "big")))
    else:
        meta = Meta(Reason(reason), port, None, None)
    if len(_METAS) >= _METAS_MAX:
        _METAS.clear()
    _METAS[head] = meta
    return meta


_METAS: dict[bytes, Meta] = {}
_METAS_MAX = 1 << 12
_PROBE_ETH_TYPE = PROBE_ETH_TYPE.to_bytes(2, "big")


# ---- kernel executes ----

def exec_trailer(key_bytes: bytes, seq: int, in_port: int) -> bytes:
    """The `struct mn_exec` put at the end of a packet executed through the kernel flow with key `key_bytes`."""
    return EXEC.pack(key_bytes, seq & 0xFFFFFFFF, in_port, EXEC_MAGIC)


def exec_seq(frame: bytes) -> int | None:
    """The execute number of a frame that carries a `struct mn_exec` at its end, or None."""
    if len(frame) < EXEC_LEN or frame[-8:] != EXEC_MAGIC:
        return None
    _, seq, _, _ = EXEC.unpack_from(frame, len(frame) - EXEC_LEN)
    return int(seq)


def probe_frame(token: bytes, eth_src: str = "02:00:00:00:00:01") -> bytes:
    """A frame the program sends straight up as a probe (never counted, never seen by the handler)."""
    return b"\xff" * 6 + _mac(eth_src) + PROBE_ETH_TYPE.to_bytes(2, "big") + PROBE_MAGIC + token


def probe_token(frame: bytes) -> bytes | None:
    """The token of a probe frame, or None if `frame` is not one."""
    if len(frame) >= 22 and frame[12:14] == PROBE_ETH_TYPE.to_bytes(2, "big") and frame[14:22] == PROBE_MAGIC:
        return frame[22:]
    return None


def sum_counters(values: Mapping[Counter, Sequence[bytes]]) -> dict[Counter, int]:
    """Per-CPU counter slots summed."""
    return {which: sum(U64.unpack(v)[0] for v in per_cpu) for which, per_cpu in values.items()}
