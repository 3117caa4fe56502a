"""Whole frames: `parse` to a `FlowMatch`, `build` from one, and `apply` a simulation's rewrites to a frame.

Role: the bridge between the simulation's view of a packet (a `FlowMatch`) and its bytes. Devices that answer or
generate packets (ARP replies, ICMP echo replies and errors, DHCP, tests, the sandbox) describe the frame as a
`FlowMatch` plus payload and `build` it with every length and checksum right. When the simulation rewrote the packet
(``final.diff(original)``: MACs, VLANs, IPs, TOS, TTL, ports, ICMP id or quoted datagram), the agent executes it in
userspace with `apply`, which patches the bytes in place and fixes the checksums incrementally (RFC 1624), so a
1,500-byte payload is never summed again for a NAT'd port.

May import: the other modules of `midonet.packets`.

`build` rules (values are read with `FlowMatch.peek`: building records nothing):
  * `eth_src` and `eth_dst` are required; `vlan_ids` become 802.1Q tags (outermost first); `eth_type` defaults to
    ARP when `arp_op` is set and to IPv4 otherwise.
  * ARP needs `arp_op`, `arp_sha`, `arp_spa`, `arp_tpa` (`arp_tha` defaults to zeros).
  * IPv4 needs `ip_src`, `ip_dst`, `ip_proto`; `ip_ttl` defaults to 64, `ip_tos` to 0; `ip_frag` "first" sets MF,
    "later" writes ``frag_offset`` (default 185, i.e. 1,480 bytes) and no L4 header.
  * TCP and UDP need `tp_src` and `tp_dst`; ICMP takes its type from `tp_src` and code from `tp_dst`, the echo
    identifier from `icmp_id` and an error's quoted datagram from `icmp_data` (the payload follows it).

`apply` accepts the keys of `FlowMatch.diff` that a datapath can set (spec 3.1 "calculateActionsFromMatchDiff"):
eth_src, eth_dst, vlan_ids, ip_src, ip_dst, ip_tos, ip_ttl, tp_src, tp_dst, icmp_id, icmp_data. Any other key, or
a port rewrite on a packet without ports (ARP, a later fragment), is a `ValueError`; a malformed frame is a
`MalformedPacket`. On a first fragment, address and port rewrites adjust the TCP/UDP checksum by their difference,
which is right for the whole datagram; a UDP checksum of 0 stays 0.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping

from midonet.packets import arp, checksum, ethernet, icmp, ipv4, tcp, udp
from midonet.packets.flowmatch import FieldValue, FlowMatch, parse_frame

__all__ = ["APPLICABLE", "apply", "build", "parse"]

parse = parse_frame

APPLICABLE = frozenset({
    "eth_src", "eth_dst", "vlan_ids", "ip_src", "ip_dst", "ip_tos", "ip_ttl", "tp_src", "tp_dst", "icmp_id",
    "icmp_data",
})  # fmt: skip
LATER_FRAGMENT_OFFSET = 185


def _need(spec: FlowMatch, name: str) -> FieldValue:
    value = spec.peek(name)
    if value is None:
        raise ValueError(f"building this frame needs {name}")
    return value


def _str(spec: FlowMatch, name: str) -> str:
    value = _need(spec, name)
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a str, not {value!r}")
    return value


def _int(spec: FlowMatch, name: str, default: int | None = None) -> int:
    value = spec.peek(name)
    if value is None and default is not None:
        return default
    if not isinstance(value, int):
        raise ValueError(f"building this frame needs {name} as an int, not {value!r}")
    return value


def _l4(spec: FlowMatch, proto: int, payload: bytes, src: str, dst: str, *, tcp_flags: int, icmp_seq: int,
        icmp_mtu: int, udp_checksum: bool) -> bytes:  # fmt: skip
    if proto == ipv4.PROTO_TCP:
        header = tcp.TcpHeader(_int(spec, "tp_src"), _int(spec, "tp_dst"), flags=tcp_flags)
        return tcp.build(header, payload, src, dst)
    if proto == ipv4.PROTO_UDP:
        segment = udp.UdpHeader(_int(spec, "tp_src"), _int(spec, "tp_dst"))
        return udp.build(segment, payload, src, dst, with_checksum=udp_checksum)
    if proto == ipv4.PROTO_ICMP:
        kind, code = _int(spec, "tp_src"), _int(spec, "tp_dst", 0)
        if kind in icmp.ECHO_TYPES:
            rest = (_int(spec, "icmp_id", 0) << 16) | icmp_seq
        else:
            rest = icmp_mtu if (kind, code) == (icmp.TYPE_UNREACHABLE, icmp.CODE_FRAG_NEEDED) else 0
        quoted = spec.peek("icmp_data")
        data = (quoted if isinstance(quoted, bytes) else b"") + payload
        return icmp.build(icmp.IcmpMessage(kind, code, rest, data))
    return payload


def build(
    spec: FlowMatch,
    payload: bytes = b"",
    *,
    ip_ident: int = 0,
    dont_fragment: bool = False,
    frag_offset: int = LATER_FRAGMENT_OFFSET,
    tcp_flags: int = tcp.SYN,
    icmp_seq: int = 0,
    icmp_mtu: int = 0,
    udp_checksum: bool = True,
    pad: bool = False,
) -> bytes:
    """The frame ``spec`` describes, carrying ``payload``; `ValueError` if a field it needs is missing."""
    vlan_ids = spec.peek("vlan_ids") or ()
    if not isinstance(vlan_ids, tuple) or not all(isinstance(v, int) for v in vlan_ids):
        raise ValueError(f"vlan_ids must be a tuple of ints, not {vlan_ids!r}")
    eth_type = spec.peek("eth_type")
    if eth_type is None:
        eth_type = ethernet.ETH_TYPE_ARP if spec.peek("arp_op") is not None else ethernet.ETH_TYPE_IPV4
    if not isinstance(eth_type, int):
        raise ValueError(f"eth_type must be an int, not {eth_type!r}")
    if eth_type == ethernet.ETH_TYPE_ARP:
        tha = _str(spec, "arp_tha") if spec.peek("arp_tha") is not None else arp.ZERO_MAC
        packet = arp.ArpPacket(_int(spec, "arp_op"), _str(spec, "arp_sha"), _str(spec, "arp_spa"), tha,
                               _str(spec, "arp_tpa"))  # fmt: skip
        body = arp.build(packet) + payload
    elif eth_type == ethernet.ETH_TYPE_IPV4:
        src, dst, proto = _str(spec, "ip_src"), _str(spec, "ip_dst"), _int(spec, "ip_proto")
        frag = spec.peek("ip_frag") or "none"
        flags = (ipv4.FLAG_DF if dont_fragment else 0) | (ipv4.FLAG_MF if frag == "first" else 0)
        offset = frag_offset if frag == "later" else 0
        segment = payload if frag == "later" else _l4(
            spec, proto, payload, src, dst, tcp_flags=tcp_flags, icmp_seq=icmp_seq, icmp_mtu=icmp_mtu,
            udp_checksum=udp_checksum,
        )
        header = ipv4.IPv4Header(src=src, dst=dst, proto=proto, ttl=_int(spec, "ip_ttl", 64),
                                 tos=_int(spec, "ip_tos", 0), ident=ip_ident, flags=flags, frag_offset=offset)
        body = ipv4.build(header, segment)
    else:
        body = payload
    tags = tuple(ethernet.VlanTag(vid) for vid in vlan_ids)
    head = ethernet.EthernetHeader(_str(spec, "eth_dst"), _str(spec, "eth_src"), eth_type, tags)
    return ethernet.build(head, body, pad=pad)


# ---- apply ----

_WORD = struct.Struct("!H")


def _read16(buf: bytes | bytearray, at: int) -> int:
    value: int = _WORD.unpack_from(buf, at)[0]
    return value


def _set16(buf: bytearray, at: int, value: int) -> int:
    """Write a 16-bit word, returning the old one."""
    old = _read16(buf, at)
    _WORD.pack_into(buf, at, value)
    return old


def _port(value: FieldValue, name: str) -> int:
    if not isinstance(value, int) or not 0 <= value <= 0xFFFF:
        raise ValueError(f"{name} must be an int in [0, 65535], not {value!r}")
    return value


def _byte(value: FieldValue, name: str) -> int:
    if not isinstance(value, int) or not 0 <= value <= 0xFF:
        raise ValueError(f"{name} must be an int in [0, 255], not {value!r}")
    return value


def _retag(buf: bytearray, old_ids: tuple[int, ...], new_ids: FieldValue) -> bytearray:
    """The frame with its VLAN stack replaced; tags keep their TPID and priority by position from the inside."""
    if not isinstance(new_ids, tuple) or not all(isinstance(v, int) for v in new_ids):
        raise ValueError(f"vlan_ids must be a tuple of ints, not {new_ids!r}")
    old_tags = [bytes(buf[12 + 4 * i : 16 + 4 * i]) for i in range(len(old_ids))]
    tags = []
    for depth, vid in enumerate(reversed(new_ids)):
        if not 0 <= vid <= 0xFFF:
            raise ValueError(f"VLAN id out of range: {vid}")
        if depth < len(old_tags):
            tpid, tci = struct.unpack("!HH", old_tags[-1 - depth])
        else:
            tpid, tci = ethernet.ETH_TYPE_VLAN, 0
        tags.append(struct.pack("!HH", tpid, (tci & 0xF000) | vid))
    return buf[:12] + b"".join(reversed(tags)) + buf[12 + 4 * len(old_ids) :]


def apply(frame: bytes, changes: Mapping[str, FieldValue]) -> bytes:
    """``frame`` with the ``changes`` (field -> new value, as `FlowMatch.diff` gives) written, checksums fixed."""
    if not APPLICABLE.issuperset(changes):
        raise ValueError(f"cannot rewrite {sorted(set(changes) - APPLICABLE)} in a frame")
    match = parse_frame(frame)
    buf = bytearray(frame)
    if "eth_dst" in changes:
        buf[0:6] = ethernet.mac_to_bytes(str(changes["eth_dst"]))
    if "eth_src" in changes:
        buf[6:12] = ethernet.mac_to_bytes(str(changes["eth_src"]))
    old_ids = match.vlan_ids or ()  # a private parse: reading through properties records nothing that matters
    l3 = ethernet.HEADER_LENGTH + ethernet.TAG_LENGTH * len(old_ids)
    l3_changes = {k: v for k, v in changes.items() if k.startswith(("ip_", "tp_", "icmp_"))}
    if l3_changes:
        if match.eth_type != ethernet.ETH_TYPE_IPV4:
            raise ValueError(f"cannot rewrite {sorted(l3_changes)} in a frame that is not IPv4")
        buf = _apply_ipv4(buf, l3, match, l3_changes)
    if "vlan_ids" in changes:
        buf = _retag(buf, old_ids, changes["vlan_ids"])
    return bytes(buf)


def _apply_ipv4(buf: bytearray, l3: int, match: FlowMatch, changes: Mapping[str, FieldValue]) -> bytearray:
    hlen = (buf[l3] & 0xF) * 4
    if _HEADER_ONLY.issuperset(changes):   # a router's hop (TTL): nothing the L4 checksum covers changes
        if "ip_tos" in changes:
            buf[l3 + 1] = _byte(changes["ip_tos"], "ip_tos")
        if "ip_ttl" in changes:
            buf[l3 + 8] = _byte(changes["ip_ttl"], "ip_ttl")
        buf[l3 + 10 : l3 + 12] = b"\x00\x00"
        _WORD.pack_into(buf, l3 + 10, checksum.checksum(bytes(buf[l3 : l3 + hlen])))
        return buf
    l4, end = l3 + hlen, l3 + _read16(buf, l3 + 2)
    proto, frag = match.ip_proto, match.ip_frag
    pseudo: list[tuple[int, int]] = []  # (old, new) words of the pseudo-header and ports: the L4 checksum delta
    for name, at in (("ip_src", l3 + 12), ("ip_dst", l3 + 16)):
        if name in changes:
            new = ipv4.ip_to_bytes(str(changes[name]))
            pseudo += [(_read16(buf, at), _read16(new, 0)), (_read16(buf, at + 2), _read16(new, 2))]
            buf[at : at + 4] = new
    if "ip_tos" in changes:
        buf[l3 + 1] = _byte(changes["ip_tos"], "ip_tos")
    if "ip_ttl" in changes:
        buf[l3 + 8] = _byte(changes["ip_ttl"], "ip_ttl")
    l4_changes = {k: v for k, v in changes.items() if k.startswith(("tp_", "icmp_"))}
    if l4_changes and (frag == "later" or proto not in (ipv4.PROTO_TCP, ipv4.PROTO_UDP, ipv4.PROTO_ICMP)):
        raise ValueError(f"cannot rewrite {sorted(l4_changes)}: the packet carries no TCP/UDP/ICMP header")
    if proto in (ipv4.PROTO_TCP, ipv4.PROTO_UDP) and frag != "later":
        if {"icmp_id", "icmp_data"} & l4_changes.keys():
            raise ValueError("cannot rewrite ICMP fields of a TCP/UDP packet")
        for name, at in (("tp_src", l4), ("tp_dst", l4 + 2)):
            if name in changes:
                new_port = _port(changes[name], name)
                pseudo.append((_set16(buf, at, new_port), new_port))
        at = l4 + (16 if proto == ipv4.PROTO_TCP else 6)
        stored = _read16(buf, at)
        if pseudo and not (proto == ipv4.PROTO_UDP and stored == 0):
            for old, new_word in pseudo:
                stored = checksum.update(stored, old, new_word)
            _WORD.pack_into(buf, at, 0xFFFF if stored == 0 and proto == ipv4.PROTO_UDP else stored)
    elif proto == ipv4.PROTO_ICMP and l4_changes:
        buf, end = _apply_icmp(buf, l3, l4, end, frag, l4_changes)
    buf[l3 + 10 : l3 + 12] = b"\x00\x00"
    _WORD.pack_into(buf, l3 + 10, checksum.checksum(bytes(buf[l3:l4])))
    return buf


_HEADER_ONLY = frozenset({"ip_ttl", "ip_tos"})


def _apply_icmp(buf: bytearray, l3: int, l4: int, end: int, frag: str | None,
                changes: Mapping[str, FieldValue]) -> tuple[bytearray, int]:  # fmt: skip
    if "icmp_id" in changes and buf[l4] not in icmp.ECHO_TYPES:
        raise ValueError(f"ICMP type {buf[l4]} carries no echo identifier")
    if "icmp_data" in changes and buf[l4] not in icmp.ERROR_TYPES:
        raise ValueError(f"ICMP type {buf[l4]} quotes no datagram")
    stored = _read16(buf, l4 + 2)
    if "tp_src" in changes or "tp_dst" in changes:
        kind = _byte(changes.get("tp_src", buf[l4]), "tp_src")
        code = _byte(changes.get("tp_dst", buf[l4 + 1]), "tp_dst")
        stored = checksum.update(stored, _set16(buf, l4, (kind << 8) | code), (kind << 8) | code)
    if "icmp_id" in changes:
        ident = _port(changes["icmp_id"], "icmp_id")
        stored = checksum.update(stored, _set16(buf, l4 + 4, ident), ident)
    _WORD.pack_into(buf, l4 + 2, stored)
    if "icmp_data" in changes:
        data = changes["icmp_data"]
        if not isinstance(data, bytes):
            raise ValueError(f"icmp_data must be bytes, not {data!r}")
        if frag != "none":
            raise ValueError("cannot replace the ICMP data of a fragment")
        buf = buf[: l4 + 8] + data + buf[end:]
        end = l4 + 8 + len(data)
        if end - l3 > 0xFFFF:
            raise ValueError("ICMP data too long for an IPv4 datagram")
        _WORD.pack_into(buf, l3 + 2, end - l3)
        buf[l4 + 2 : l4 + 4] = b"\x00\x00"
        _WORD.pack_into(buf, l4 + 2, checksum.checksum(bytes(buf[l4:end])))
    return buf, end
