"""Packets in scenario files: what a VM sends (a `midonet trace` spec, with the VM's own defaults) and what an
expectation asks for (the spec's keys that must match a captured frame).

Role: a send's spec is `simulation.packetspec`'s language; what is not given comes from the sending VM, as its own
stack would fill it in: `eth_src` its MAC, `ip_src` (and an ARP packet's `arp_spa`) its address, `eth_dst` the MAC
of the next hop (the destination on the VM's subnet, else its gateway), which the VM finds with ARP. An expectation
is a spec too, but only the keys it gives are compared, each normalised (`AA-BB-..` is `aa:bb:..`, `ip_proto=17` is
`udp`), so `ip_src=10.0.0.1,tp_dst=9` holds for any frame from 10.0.0.1 to port 9.

May import: `midonet.simulation.packetspec`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

from midonet.simulation.packetspec import (
    ARP_OPS,
    DHCP_TYPES,
    ETH_TYPES,
    IP_FRAGS,
    IP_PROTOS,
    Packet,
    PacketValue,
    SpecError,
    build_frame,
    parse_items,
    split_spec,
)

EXPECT_KEYS = ("dhcp_yiaddr",)        # report-only keys an expectation may ask for
_MACS = frozenset({"eth_src", "eth_dst", "arp_sha", "arp_tha"})
_IPS = frozenset({"arp_spa", "arp_tpa", "ip_src", "ip_dst", "dhcp_yiaddr"})
_NAMED: Mapping[str, Mapping[str, int]] = {"eth_type": ETH_TYPES, "ip_proto": IP_PROTOS, "arp_op": ARP_OPS,
                                           "dhcp": DHCP_TYPES}
PLACEHOLDER_MAC = "02:00:00:00:00:00"


def _normal(key: str, raw: str) -> PacketValue:
    """One expected value in the form `describe_frame` reports it; SpecError if it cannot be one."""
    text = raw.strip().lower()
    if key in _MACS:
        parts = text.replace("-", ":").split(":")
        if len(parts) != 6 or not all(len(p) == 2 and all(c in "0123456789abcdef" for c in p) for p in parts):
            raise SpecError(key, f"not a MAC address: {raw!r}")
        return ":".join(parts)
    if key in _IPS:
        try:
            return str(ipaddress.IPv4Address(text))
        except ValueError:
            raise SpecError(key, f"not an IPv4 address: {raw!r}") from None
    if key in _NAMED:
        names = _NAMED[key]
        if text in names:
            return text
        try:
            number = int(text, 0)
        except ValueError:
            raise SpecError(key, f"must be {', '.join(names)} or a number, not {raw!r}") from None
        return next((name for name, n in names.items() if n == number), number)
    if key == "ip_frag":
        if text not in IP_FRAGS:
            raise SpecError(key, f"must be {', '.join(IP_FRAGS)}, not {raw!r}")
        return text
    try:
        return int(text, 0)
    except ValueError:
        raise SpecError(key, f"not a number: {raw!r}") from None


def expected(text: str) -> dict[str, PacketValue]:
    """The keys an expectation gives, normalised; SpecError for a bad key or value."""
    return {key: _normal(key, raw) for key, raw in split_spec(text, EXPECT_KEYS).items()}


def mismatches(want: Mapping[str, PacketValue], packet: Mapping[str, PacketValue]) -> list[str]:
    """The keys of `want` a captured packet does not match (empty: it matches)."""
    out = []
    for key, value in want.items():
        got = packet.get(key)
        ok = value in got if key == "vlan" and isinstance(got, list) else got == value
        if not ok:
            out.append(key)
    return out


def is_ipv4(items: Mapping[str, str]) -> bool:
    """Whether the spec describes an IPv4 packet (not ARP, not another EtherType)."""
    if any(key.startswith("arp_") for key in items):
        return False
    eth_type = items.get("eth_type", "ipv4").lower()
    return eth_type in ("ipv4", "0x800", "0x0800", "2048")


def needs_next_hop(items: Mapping[str, str]) -> bool:
    """Whether the sender's stack must find `eth_dst` (an IPv4 packet that names none and is not DHCP)."""
    return "eth_dst" not in items and "dhcp" not in items and is_ipv4(items)


def packet_from(items: Mapping[str, str], *, mac: str | None, ip: str | None,
                eth_dst: str | None = None) -> Packet:
    """The complete packet a VM with `mac` and `ip` sends for `items`, `eth_dst` being its next hop's MAC."""
    given = dict(items)
    if mac is not None:
        given.setdefault("eth_src", mac)
    if ip is not None:
        if any(key.startswith("arp_") for key in given):
            given.setdefault("arp_spa", ip)
        elif "dhcp" not in given and is_ipv4(given):
            given.setdefault("ip_src", ip)
    if eth_dst is not None:
        given.setdefault("eth_dst", eth_dst)
    return parse_items(given)


def frame_from(items: Mapping[str, str], *, mac: str | None, ip: str | None, eth_dst: str | None = None) -> bytes:
    return build_frame(packet_from(items, mac=mac, ip=ip, eth_dst=eth_dst))


def check_send(items: Mapping[str, str], *, mac: str | None, ip: str | None) -> None:
    """Raise SpecError if `items` cannot make a packet for this VM (before anything runs)."""
    packet_from(items, mac=mac or PLACEHOLDER_MAC, ip=ip, eth_dst=PLACEHOLDER_MAC)


__all__ = ["EXPECT_KEYS", "check_send", "expected", "frame_from", "mismatches", "needs_next_hop", "packet_from"]
