"""Packet specs: `key=value,...` text -> a packet -> a frame, and a frame -> the same keys (for `midonet trace`).

Role: the language `midonet trace --step PORT_ID:SPEC` describes packets in, and the one it reports them in. A
spec is comma-separated `key=value` items; what is not given takes a default, so the smallest spec is empty.
`parse_spec` gives a complete, normalised *packet* (a dict of the keys below), `build_frame` its bytes and
`describe_frame` the packet a frame carries, in the same keys; `reply_items` the spec of a packet's answer.
Invariant (tested): ``describe_frame(build_frame(p)) == p`` for every packet `parse_spec` returns.

    key          values                                  default
    eth_src      MAC (aa:bb:cc:dd:ee:ff or aa-bb-...)    02:00:00:00:00:01
    eth_dst      MAC                                     ff:ff:ff:ff:ff:ff for an ARP request (and a reply
                                                         without arp_tha), else 02:00:00:00:00:02
    vlan         802.1Q VLAN id 0-4095                   untagged
    eth_type     ipv4, arp or a number (0x86dd, 2054)    arp if an arp_* key is given, else ipv4
    arp_op       request, reply or a number              request
    arp_sha      MAC                                     eth_src
    arp_spa      IPv4 address                            (required for ARP)
    arp_tha      MAC                                     00:00:00:00:00:00 (a reply: eth_dst if given)
    arp_tpa      IPv4 address                            (required for ARP)
    ip_src       IPv4 address                            10.0.0.1
    ip_dst       IPv4 address                            10.0.0.2
    ip_proto     tcp, udp, icmp or a number 0-255        icmp if an icmp_* key is given, else udp
    ip_ttl       0-255                                   64
    ip_frag      none, first, later                      none
    tp_src       TCP/UDP port 0-65535                    10000
    tp_dst       TCP/UDP port 0-65535                    80
    icmp_type    0-255                                   8 (echo request)
    icmp_code    0-255                                   0
    icmp_id      0-65535, echo request/reply only        1
    dhcp         discover, request (or a message type    none; makes a DHCP client message from eth_src:
                 number 1-8)                             UDP 68 -> 67, 0.0.0.0 -> 255.255.255.255, broadcast
    payload_len  bytes after the L4 header, 0-9000       0 (not for ARP; a DHCP message's own length)

A key that does not apply to the packet (ip_src on ARP, tp_dst on ICMP, icmp_id on an ICMP error, a port on a
later fragment) is an error rather than silently ignored. Every error is a `SpecError` naming the key.

Reported packets carry the same keys, with `vlan` only on a tagged frame (a list when there are several tags),
the L4 keys only where the frame has that header, and `payload_len` what follows the L4 header (an ICMP error's
quoted datagram included). A UDP 67/68 payload that parses as DHCP is reported as `dhcp` (its message type:
discover, offer, request, decline, ack, nak, release, inform) and, when it assigns one, `dhcp_yiaddr` (a
report-only key: the address offered or acknowledged).

May import: `midonet.packets`.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping

from midonet.packets import dhcp as dhcp_packets
from midonet.packets import frame as frames
from midonet.packets.arp import OP_REPLY, OP_REQUEST, ZERO_MAC
from midonet.packets.ethernet import BROADCAST, ETH_TYPE_ARP, ETH_TYPE_IPV4, VLAN_TPIDS
from midonet.packets.flowmatch import FlowMatch, parse_frame
from midonet.packets.icmp import ECHO_TYPES
from midonet.packets.ipv4 import PROTO_ICMP, PROTO_TCP, PROTO_UDP

PacketValue = int | str | list[int]
Packet = dict[str, PacketValue]

SPEC_KEYS: tuple[str, ...] = (
    "eth_src", "eth_dst", "vlan", "eth_type",
    "arp_op", "arp_sha", "arp_spa", "arp_tha", "arp_tpa",
    "ip_src", "ip_dst", "ip_proto", "ip_ttl", "ip_frag",
    "tp_src", "tp_dst", "icmp_type", "icmp_code", "icmp_id", "dhcp", "payload_len",
)  # fmt: skip
REPORT_KEYS: tuple[str, ...] = (*SPEC_KEYS[:-1], "dhcp_yiaddr", SPEC_KEYS[-1])
"""The keys of reported packets, in order: the spec's and `dhcp_yiaddr`."""

DEFAULT_ETH_SRC = "02:00:00:00:00:01"
DEFAULT_ETH_DST = "02:00:00:00:00:02"
DEFAULT_IP_SRC = "10.0.0.1"
DEFAULT_IP_DST = "10.0.0.2"
MAX_PAYLOAD = 9000

ETH_TYPES = {"ipv4": ETH_TYPE_IPV4, "arp": ETH_TYPE_ARP}
ARP_OPS = {"request": OP_REQUEST, "reply": OP_REPLY}
IP_PROTOS = {"icmp": PROTO_ICMP, "tcp": PROTO_TCP, "udp": PROTO_UDP}
IP_FRAGS = ("none", "first", "later")
DHCP_TYPES = {name: number for number, name in enumerate(
    ("discover", "offer", "request", "decline", "ack", "nak", "release", "inform"), 1)}
DHCP_XID = 0x4D494430              # "MID0": the transaction id of the DHCP messages specs make
DHCP_PARAMETERS = bytes((1, 3, 6, 15, 26, 28, 51, 54, 121))

_ARP_KEYS = frozenset({"arp_op", "arp_sha", "arp_spa", "arp_tha", "arp_tpa"})
_IP_KEYS = frozenset({"ip_src", "ip_dst", "ip_proto", "ip_ttl", "ip_frag"})
_PORT_KEYS = frozenset({"tp_src", "tp_dst"})
_ICMP_KEYS = frozenset({"icmp_type", "icmp_code", "icmp_id"})
_MAC = re.compile(r"^[0-9a-fA-F]{2}([:-][0-9a-fA-F]{2}){5}$")


class SpecError(ValueError):
    """A spec that cannot describe a packet; `key` names the offending key (None when no key is to blame)."""

    def __init__(self, key: str | None, message: str) -> None:
        super().__init__(f"{key}: {message}" if key else message)
        self.key = key
        self.message = message


# ---- values ----

def _mac(key: str, raw: str) -> str:
    if not _MAC.match(raw):
        raise SpecError(key, f"not a MAC address: {raw!r} (expected aa:bb:cc:dd:ee:ff)")
    return raw.replace("-", ":").lower()


def _ipv4(key: str, raw: str) -> str:
    try:
        return str(ipaddress.IPv4Address(raw))
    except ValueError:
        raise SpecError(key, f"not an IPv4 address: {raw!r}") from None


def _int(key: str, raw: str, low: int, high: int) -> int:
    try:
        value = int(raw, 0)
    except ValueError:
        raise SpecError(key, f"not a number: {raw!r}") from None
    if not low <= value <= high:
        raise SpecError(key, f"must be between {low} and {high}, not {value}")
    return value


def _named(key: str, raw: str, names: Mapping[str, int], high: int) -> int:
    """A value by name (`tcp`) or by number (`6`, `0x06`)."""
    value = names.get(raw.lower())
    if value is not None:
        return value
    if raw[:1].isdigit():
        return _int(key, raw, 0, high)
    raise SpecError(key, f"must be {', '.join(names)} or a number, not {raw!r}")


def _name_of(value: int, names: Mapping[str, int]) -> PacketValue:
    for name, number in names.items():
        if number == value:
            return name
    return value


def _number(value: PacketValue, names: Mapping[str, int]) -> int:
    if isinstance(value, str):
        return names[value]
    assert isinstance(value, int)
    return value


# ---- spec -> packet ----

def split_spec(text: str, extra: tuple[str, ...] = ()) -> dict[str, str]:
    """`"a=1,b=2"` -> `{"a": "1", "b": "2"}`, checking the syntax and the key names (the spec's and `extra`), not
    the values."""
    known = SPEC_KEYS + extra
    given: dict[str, str] = {}
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        key, sep, raw = item.partition("=")
        key, raw = key.strip().lower(), raw.strip()
        if not sep or not key:
            raise SpecError(None, f"expected key=value, got {item!r}")
        if key not in known:
            raise SpecError(key, f"unknown key; the keys are {', '.join(known)}")
        if key in given:
            raise SpecError(key, "given twice")
        if not raw:
            raise SpecError(key, "no value")
        given[key] = raw
    return given


def parse_spec(text: str) -> Packet:
    """The complete packet `text` describes, defaults filled in (see the module docstring)."""
    return parse_items(split_spec(text))


def parse_items(given: Mapping[str, str]) -> Packet:
    """The complete packet the `key: value` items describe (`split_spec` checked their names)."""
    packet: Packet = {"eth_src": _mac("eth_src", given.get("eth_src", DEFAULT_ETH_SRC))}
    if "vlan" in given:
        packet["vlan"] = _int("vlan", given["vlan"], 0, 4095)
    if "eth_type" in given:
        eth_type = _named("eth_type", given["eth_type"], ETH_TYPES, 0xFFFF)
        if eth_type in VLAN_TPIDS:
            raise SpecError("eth_type", f"{eth_type:#06x} is a VLAN tag: give vlan=ID instead")
    else:
        eth_type = ETH_TYPE_ARP if _ARP_KEYS & given.keys() else ETH_TYPE_IPV4
    packet["eth_type"] = _name_of(eth_type, ETH_TYPES)
    if eth_type == ETH_TYPE_ARP:
        _refuse(given, _IP_KEYS | _PORT_KEYS | _ICMP_KEYS | {"payload_len"}, "an ARP packet")
        return _arp(given, packet)
    _refuse(given, _ARP_KEYS, "a packet that is not ARP")
    if "dhcp" in given:
        return _dhcp(given, packet)
    packet["eth_dst"] = _mac("eth_dst", given.get("eth_dst", DEFAULT_ETH_DST))
    if eth_type == ETH_TYPE_IPV4:
        _ipv4_packet(given, packet)
    else:
        _refuse(given, _IP_KEYS | _PORT_KEYS | _ICMP_KEYS, f"EtherType {eth_type:#06x}")
    packet["payload_len"] = _int("payload_len", given.get("payload_len", "0"), 0, MAX_PAYLOAD)
    return _ordered(packet)


def _refuse(given: Mapping[str, str], keys: frozenset[str] | set[str], what: str) -> None:
    for key in SPEC_KEYS:
        if key in keys and key in given:
            raise SpecError(key, f"does not apply to {what}")


def _arp(given: Mapping[str, str], packet: Packet) -> Packet:
    op = _named("arp_op", given.get("arp_op", "request"), ARP_OPS, 0xFFFF)
    for key in ("arp_spa", "arp_tpa"):
        if key not in given:
            raise SpecError(key, "required for an ARP packet")
    eth_dst = _mac("eth_dst", given["eth_dst"]) if "eth_dst" in given else None
    tha = _mac("arp_tha", given["arp_tha"]) if "arp_tha" in given else None
    if tha is None:
        tha = eth_dst if op == OP_REPLY and eth_dst is not None else ZERO_MAC
    if eth_dst is None:
        eth_dst = tha if op == OP_REPLY and tha != ZERO_MAC else BROADCAST
    packet["eth_dst"] = eth_dst
    packet["arp_op"] = _name_of(op, ARP_OPS)
    packet["arp_sha"] = _mac("arp_sha", given["arp_sha"]) if "arp_sha" in given else packet["eth_src"]
    packet["arp_spa"] = _ipv4("arp_spa", given["arp_spa"])
    packet["arp_tha"] = tha
    packet["arp_tpa"] = _ipv4("arp_tpa", given["arp_tpa"])
    return _ordered(packet)


def _ipv4_packet(given: Mapping[str, str], packet: Packet) -> None:
    packet["ip_src"] = _ipv4("ip_src", given.get("ip_src", DEFAULT_IP_SRC))
    packet["ip_dst"] = _ipv4("ip_dst", given.get("ip_dst", DEFAULT_IP_DST))
    if "ip_proto" in given:
        proto = _named("ip_proto", given["ip_proto"], IP_PROTOS, 0xFF)
    elif _ICMP_KEYS & given.keys():
        if _PORT_KEYS & given.keys():
            raise SpecError(min(_PORT_KEYS & given.keys()), "give ip_proto: both tp_* and icmp_* keys are given")
        proto = PROTO_ICMP
    else:
        proto = PROTO_UDP
    packet["ip_proto"] = _name_of(proto, IP_PROTOS)
    packet["ip_ttl"] = _int("ip_ttl", given.get("ip_ttl", "64"), 0, 255)
    frag = given.get("ip_frag", "none").lower()
    if frag not in IP_FRAGS:
        raise SpecError("ip_frag", f"must be {', '.join(IP_FRAGS)}, not {given['ip_frag']!r}")
    packet["ip_frag"] = frag
    if frag == "later":
        _refuse(given, _PORT_KEYS | _ICMP_KEYS, "a later fragment (it has no L4 header)")
    elif proto in (PROTO_TCP, PROTO_UDP):
        _refuse(given, _ICMP_KEYS, f"ip_proto={packet['ip_proto']}")
        packet["tp_src"] = _int("tp_src", given.get("tp_src", "10000"), 0, 0xFFFF)
        packet["tp_dst"] = _int("tp_dst", given.get("tp_dst", "80"), 0, 0xFFFF)
    elif proto == PROTO_ICMP:
        _refuse(given, _PORT_KEYS, "ip_proto=icmp (use icmp_type and icmp_code)")
        kind = packet["icmp_type"] = _int("icmp_type", given.get("icmp_type", "8"), 0, 0xFF)
        packet["icmp_code"] = _int("icmp_code", given.get("icmp_code", "0"), 0, 0xFF)
        if kind in ECHO_TYPES:
            packet["icmp_id"] = _int("icmp_id", given.get("icmp_id", "1"), 0, 0xFFFF)
        elif "icmp_id" in given:
            raise SpecError("icmp_id", f"only echo requests and replies have one (icmp_type is {kind})")
    else:
        _refuse(given, _PORT_KEYS | _ICMP_KEYS, f"ip_proto={proto}")


def _dhcp(given: Mapping[str, str], packet: Packet) -> Packet:
    """A DHCP client message from eth_src (the spec's `dhcp` key)."""
    kind = _named("dhcp", given["dhcp"], DHCP_TYPES, 8)
    if kind < 1:
        raise SpecError("dhcp", "must be a message type between 1 and 8")
    _refuse(given, _ICMP_KEYS | {"payload_len"}, "a DHCP message")
    if given.get("ip_proto", "udp").lower() not in ("udp", "17") or given.get("ip_frag", "none") != "none":
        raise SpecError("dhcp", "a DHCP message is an unfragmented UDP datagram")
    packet["eth_dst"] = _mac("eth_dst", given.get("eth_dst", BROADCAST))
    packet |= {"ip_src": _ipv4("ip_src", given.get("ip_src", "0.0.0.0")),
               "ip_dst": _ipv4("ip_dst", given.get("ip_dst", "255.255.255.255")), "ip_proto": "udp",
               "ip_ttl": _int("ip_ttl", given.get("ip_ttl", "64"), 0, 255), "ip_frag": "none",
               "tp_src": _int("tp_src", given.get("tp_src", str(dhcp_packets.CLIENT_PORT)), 0, 0xFFFF),
               "tp_dst": _int("tp_dst", given.get("tp_dst", str(dhcp_packets.SERVER_PORT)), 0, 0xFFFF),
               "dhcp": _name_of(kind, DHCP_TYPES)}
    packet["payload_len"] = len(_dhcp_message(str(packet["eth_src"]), kind))
    return _ordered(packet)


def _dhcp_message(chaddr: str, kind: int) -> bytes:
    options = ((dhcp_packets.OPT_MESSAGE_TYPE, bytes((kind,))), (dhcp_packets.OPT_PARAMETER_REQUEST, DHCP_PARAMETERS))
    return dhcp_packets.build(dhcp_packets.DhcpMessage(op=dhcp_packets.OP_REQUEST, xid=DHCP_XID, chaddr=chaddr,
                                                       options=options))


def _dhcp_fields(payload: bytes) -> Packet:
    """`dhcp` (and `dhcp_yiaddr`) of a UDP payload that is a DHCP message; nothing if it is not one."""
    try:
        message = dhcp_packets.parse(payload)
    except ValueError:
        return {}
    kind = message.message_type
    if kind is None:
        return {}
    fields: Packet = {"dhcp": _name_of(kind, DHCP_TYPES)}
    if message.yiaddr != "0.0.0.0":
        fields["dhcp_yiaddr"] = message.yiaddr
    return fields


def _ordered(packet: Packet) -> Packet:
    return {key: packet[key] for key in REPORT_KEYS if key in packet}


def reply_items(packet: Mapping[str, PacketValue]) -> dict[str, str]:
    """The spec items of the answer to `packet`, as its receiver would send it: addresses and ports swapped, an
    echo request answered by an echo reply, a fresh TTL (IPv4 only: an ARP or other frame has no obvious answer)."""
    if packet.get("eth_type") != "ipv4":
        raise SpecError("reply", "only an IPv4 packet can be replied to")
    items = {"eth_src": str(packet["eth_dst"]), "eth_dst": str(packet["eth_src"]),
             "ip_src": str(packet["ip_dst"]), "ip_dst": str(packet["ip_src"]), "ip_proto": str(packet["ip_proto"])}
    if "vlan" in packet and isinstance(packet["vlan"], int):
        items["vlan"] = str(packet["vlan"])
    if "tp_src" in packet and "dhcp" not in packet:
        items |= {"tp_src": str(packet["tp_dst"]), "tp_dst": str(packet["tp_src"])}
    if "icmp_type" in packet:
        kind = packet["icmp_type"]
        items |= {"icmp_type": "0" if kind == 8 else str(kind), "icmp_code": str(packet["icmp_code"])}
        if "icmp_id" in packet:
            items["icmp_id"] = str(packet["icmp_id"])
    return items


# ---- packet <-> frame ----

def build_frame(packet: Mapping[str, PacketValue]) -> bytes:
    """The frame of a packet `parse_spec` (or `describe_frame`) gave."""
    def text(key: str) -> str | None:
        value = packet.get(key)
        return value if isinstance(value, str) else None

    def number(key: str) -> int | None:
        value = packet.get(key)
        return value if isinstance(value, int) else None

    vlan = packet.get("vlan")
    vlans = () if vlan is None else tuple(vlan) if isinstance(vlan, list) else (int(vlan),)
    eth_type = _number(packet["eth_type"], ETH_TYPES)
    arp_op, proto = packet.get("arp_op"), packet.get("ip_proto")
    frag = text("ip_frag")
    spec = FlowMatch(
        eth_src=text("eth_src"), eth_dst=text("eth_dst"), eth_type=eth_type, vlan_ids=vlans,
        arp_op=None if arp_op is None else _number(arp_op, ARP_OPS), arp_sha=text("arp_sha"),
        arp_spa=text("arp_spa"), arp_tha=text("arp_tha"), arp_tpa=text("arp_tpa"),
        ip_src=text("ip_src"), ip_dst=text("ip_dst"), ip_proto=None if proto is None else _number(proto, IP_PROTOS),
        ip_ttl=number("ip_ttl"), ip_frag="first" if frag == "first" else "later" if frag == "later" else None,
        tp_src=number("tp_src") if "tp_src" in packet else number("icmp_type"),
        tp_dst=number("tp_dst") if "tp_dst" in packet else number("icmp_code"),
        icmp_id=number("icmp_id"),
    )
    kind = packet.get("dhcp")
    if kind is not None:
        payload = _dhcp_message(str(packet["eth_src"]), _number(kind, DHCP_TYPES))
    else:
        payload = bytes(number("payload_len") or 0)
    return frames.build(spec, payload)


def describe_frame(data: bytes) -> Packet:
    """The packet `data` carries, in the keys of a spec (see the module docstring)."""
    m = parse_frame(data)          # a private parse: reading through the properties records nothing that matters
    packet: Packet = {"eth_src": str(m.eth_src), "eth_dst": str(m.eth_dst)}
    vlans = m.vlan_ids or ()
    if vlans:
        packet["vlan"] = vlans[0] if len(vlans) == 1 else list(vlans)
    eth_type = m.eth_type or 0
    packet["eth_type"] = _name_of(eth_type, ETH_TYPES)
    l3 = 14 + 4 * len(vlans)
    if eth_type == ETH_TYPE_ARP:
        packet |= {"arp_op": _name_of(m.arp_op or 0, ARP_OPS), "arp_sha": str(m.arp_sha),
                   "arp_spa": str(m.arp_spa), "arp_tha": str(m.arp_tha), "arp_tpa": str(m.arp_tpa)}
        return _ordered(packet)
    if eth_type != ETH_TYPE_IPV4:
        packet["payload_len"] = len(data) - l3
        return _ordered(packet)
    proto = m.ip_proto or 0
    packet |= {"ip_src": str(m.ip_src), "ip_dst": str(m.ip_dst), "ip_proto": _name_of(proto, IP_PROTOS),
               "ip_ttl": m.ip_ttl or 0, "ip_frag": str(m.ip_frag)}
    header = (data[l3] & 0xF) * 4
    total = int.from_bytes(data[l3 + 2 : l3 + 4], "big")
    l4 = 0
    if m.ip_frag != "later":
        if proto in (PROTO_TCP, PROTO_UDP):
            packet["tp_src"], packet["tp_dst"] = m.tp_src or 0, m.tp_dst or 0
            l4 = (data[l3 + header + 12] >> 4) * 4 if proto == PROTO_TCP else 8
            if proto == PROTO_UDP and {m.tp_src, m.tp_dst} == {dhcp_packets.CLIENT_PORT, dhcp_packets.SERVER_PORT}:
                packet |= _dhcp_fields(data[l3 + header + 8 : l3 + total])
        elif proto == PROTO_ICMP:
            kind = m.tp_src or 0
            packet["icmp_type"], packet["icmp_code"] = kind, m.tp_dst or 0
            if kind in ECHO_TYPES:
                packet["icmp_id"] = m.icmp_id or 0
            l4 = 8
    packet["payload_len"] = total - header - l4
    return _ordered(packet)


def summary(packet: Mapping[str, PacketValue]) -> str:
    """One line for people: `udp 10.0.1.1:10000 > 10.0.2.1:80 ttl 64, 02:..:01 > 02:..:02`."""
    l2 = f"{packet.get('eth_src')} > {packet.get('eth_dst')}"
    if "vlan" in packet:
        l2 += f" vlan {packet['vlan']}"
    if packet.get("eth_type") == "arp":
        what = f"ARP {packet.get('arp_op')}"
        if packet.get("arp_op") == "reply":
            return f"{what} {packet.get('arp_spa')} is at {packet.get('arp_sha')}, {l2}"
        return f"{what} who has {packet.get('arp_tpa')} tell {packet.get('arp_spa')}, {l2}"
    eth_type = packet.get("eth_type")
    if eth_type != "ipv4":
        return f"EtherType {eth_type:#06x}, {l2}" if isinstance(eth_type, int) else f"EtherType {eth_type}, {l2}"
    proto = packet.get("ip_proto")
    src, dst = packet.get("ip_src"), packet.get("ip_dst")
    if "dhcp" in packet:
        offered = f" {packet['dhcp_yiaddr']}" if "dhcp_yiaddr" in packet else ""
        flow = f"DHCP {packet['dhcp']}{offered} {src}:{packet['tp_src']} > {dst}:{packet['tp_dst']}"
    elif "tp_src" in packet:
        flow = f"{proto} {src}:{packet['tp_src']} > {dst}:{packet['tp_dst']}"
    elif "icmp_type" in packet:
        flow = f"icmp {src} > {dst} type {packet['icmp_type']} code {packet['icmp_code']}"
        if "icmp_id" in packet:
            flow += f" id {packet['icmp_id']}"
    else:
        flow = f"ip proto {proto} {src} > {dst}"
    frag = "" if packet.get("ip_frag") == "none" else f" {packet.get('ip_frag')} fragment"
    return f"{flow} ttl {packet.get('ip_ttl')}{frag}, {l2}"


__all__ = ["REPORT_KEYS", "SPEC_KEYS", "Packet", "PacketValue", "SpecError", "build_frame", "describe_frame",
           "parse_items", "parse_spec", "reply_items", "split_spec", "summary"]
