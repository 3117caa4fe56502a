"""Hypothesis strategies for packets: addresses, headers, and whole-frame specs (`FlowMatch` + payload)."""

from __future__ import annotations

from hypothesis import strategies as st

from midonet.packets import FlowMatch, ethernet, icmp, ipv4
from midonet.packets.ethernet import VlanTag
from midonet.packets.ipv4 import IPv4Option

macs = st.binary(min_size=6, max_size=6).map(lambda b: b.hex(":"))
ips = st.binary(min_size=4, max_size=4).map(ipv4.ip_from_bytes)
ports = st.integers(0, 0xFFFF)
bytes8 = st.integers(0, 0xFF)
payloads = st.binary(max_size=64)

vlan_tags = st.builds(
    VlanTag, vid=st.integers(0, 0xFFF), pcp=st.integers(0, 7), dei=st.integers(0, 1),
    tpid=st.sampled_from(sorted(ethernet.VLAN_TPIDS)),
)  # fmt: skip
vlan_id_stacks = st.lists(st.integers(0, 0xFFF), max_size=2).map(tuple)

# Record route (7), timestamp (68), security (130, copied), router alert (148, copied), and NOP.
ipv4_options = st.lists(
    st.one_of(
        st.just(IPv4Option(ipv4.OPTION_NOP)),
        st.builds(IPv4Option, st.sampled_from([7, 68, 130, 148]), st.binary(max_size=6)),
    ),
    max_size=4,
)


def quoted_datagram(src: str, dst: str, proto: int, sport: int, dport: int) -> bytes:
    """An IPv4 header + 8 bytes of UDP/TCP, as an ICMP error quotes it."""
    header = ipv4.IPv4Header(src=src, dst=dst, proto=proto, ttl=1)
    return icmp.embedded_bytes(ipv4.build(header, sport.to_bytes(2, "big") + dport.to_bytes(2, "big") + bytes(16)))


@st.composite
def frame_specs(draw: st.DrawFn) -> tuple[FlowMatch, bytes]:
    """A FlowMatch that `frame.build` accepts (every kind it builds), and a payload."""
    l2 = {"eth_src": draw(macs), "eth_dst": draw(macs), "vlan_ids": draw(vlan_id_stacks)}
    payload = draw(payloads)
    kind = draw(st.sampled_from(["udp", "tcp", "echo", "error", "arp", "frag", "other-ip", "other-l2"]))
    if kind == "arp":
        return FlowMatch(**l2, arp_op=draw(st.sampled_from([1, 2])), arp_sha=draw(macs), arp_spa=draw(ips),
                         arp_tha=draw(macs), arp_tpa=draw(ips)), b""  # fmt: skip
    if kind == "other-l2":
        return FlowMatch(**l2, eth_type=draw(st.sampled_from([0x86DD, 0x88CC, 0x0842]))), payload
    l3 = {"ip_src": draw(ips), "ip_dst": draw(ips), "ip_ttl": draw(bytes8), "ip_tos": draw(bytes8), "ip_frag": "none"}
    if kind in ("udp", "tcp"):
        proto = ipv4.PROTO_UDP if kind == "udp" else ipv4.PROTO_TCP
        return FlowMatch(**l2, **l3, ip_proto=proto, tp_src=draw(ports), tp_dst=draw(ports)), payload
    if kind == "echo":
        return FlowMatch(**l2, **l3, ip_proto=1, tp_src=draw(st.sampled_from([0, 8])), tp_dst=0,
                         icmp_id=draw(ports)), payload  # fmt: skip
    if kind == "error":
        quoted = quoted_datagram(draw(ips), draw(ips), draw(st.sampled_from([6, 17])), draw(ports), draw(ports))
        return FlowMatch(**l2, **l3, ip_proto=1, tp_src=draw(st.sampled_from([3, 11, 12])),
                         tp_dst=draw(st.integers(0, 15)), icmp_data=quoted), b""  # fmt: skip
    if kind == "frag":
        return FlowMatch(**l2, **{**l3, "ip_frag": "later"}, ip_proto=draw(st.sampled_from([6, 17]))), payload
    return FlowMatch(**l2, **l3, ip_proto=draw(st.sampled_from([47, 50, 132]))), payload
