"""Cross-checks against scapy, both ways: what we build scapy parses to the same fields and rebuilds byte for byte
(so our lengths and checksums equal its recomputation); what scapy builds we parse to the same fields, with valid
checksums."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.dhcp import BOOTP, DHCP
from scapy.layers.inet import ICMP, IP, TCP, UDP, IPOption_Router_Alert, IPOption_Security, fragment
from scapy.layers.l2 import ARP, Dot1AD, Dot1Q, Ether
from scapy.layers.vxlan import VXLAN

from midonet.packets import FlowMatch, dhcp, frame, icmp, ipv4, parse_frame, tcp, udp, vxlan

from .scapy_oracle import fields, rebuilds_identically
from .strategies import frame_specs, ips, macs, payloads, ports

SCAPY = settings(max_examples=60, deadline=None)


# ---- ours -> scapy ----


@SCAPY
@given(frame_specs())
def test_scapy_reads_what_we_build(spec_payload: tuple[FlowMatch, bytes]) -> None:
    spec, payload = spec_payload
    raw = frame.build(spec, payload)
    expected = spec.as_dict()
    del expected["in_port"]
    if expected["eth_type"] is None:
        expected["eth_type"] = 0x0806 if spec.peek("arp_op") is not None else 0x0800
    got = fields(raw)
    if spec.peek("ip_proto") == 1 and spec.peek("tp_src") in (3, 11, 12):  # an error's data: quote + payload
        expected["icmp_data"] = spec.peek("icmp_data") + payload  # type: ignore[operator]
    assert got == expected
    assert rebuilds_identically(raw)
    assert parse_frame(raw).as_dict() == {**expected, "in_port": None}


def test_scapy_reads_our_ipv4_options_tcp_options_and_fragments() -> None:
    options = ipv4.build_options([ipv4.IPv4Option(148, b"\x00\x00"), ipv4.IPv4Option(ipv4.OPTION_NOP)])
    tcp_options = tcp.build_options([(2, b"\x05\xb4"), (1, b""), (3, b"\x07")])
    segment = tcp.build(tcp.TcpHeader(1, 2, seq=5, flags=tcp.SYN, options=tcp_options), b"data", "1.1.1.1", "2.2.2.2")
    datagram = ipv4.build(ipv4.IPv4Header("1.1.1.1", "2.2.2.2", 6, ident=9, options=options), segment)
    pkt: Any = IP(datagram)
    assert [type(o).__name__ for o in pkt.options] == ["IPOption_Router_Alert", "IPOption_NOP"] + ["IPOption_EOL"] * 3
    assert pkt[TCP].options == [("MSS", 1460), ("NOP", None), ("WScale", 7)]
    del pkt.chksum, pkt[TCP].chksum
    assert bytes(pkt) == datagram
    pieces: list[Any] = [IP(p) for p in ipv4.fragment(datagram, 40)]
    # 8 data bytes fit beside the 8 option bytes; later fragments carry only router alert (copied): 16 bytes fit.
    assert [(p.frag, p.flags.MF, len(p.options)) for p in pieces] == [(0, 1, 5), (1, 1, 1), (3, 0, 1)]
    assert type(pieces[2].options[0]).__name__ == "IPOption_Router_Alert"
    assert b"".join(bytes(p.payload) for p in pieces) == segment
    for p in pieces:
        chksum = p.chksum
        del p.chksum
        assert IP(bytes(p)).chksum == chksum


@SCAPY
@given(st.integers(0, 2**32 - 1), macs, ips, st.integers(576, 9000))
def test_scapy_reads_our_dhcp(xid: int, mac: str, ip: str, mtu: int) -> None:
    request = dhcp.DhcpMessage(op=1, xid=xid, chaddr=mac,
                               options=dhcp.encode_options(dhcp.DhcpOptions(message_type=dhcp.REQUEST)))  # fmt: skip
    routes = (dhcp.ClasslessRoute("0.0.0.0", 0, ip), dhcp.ClasslessRoute("10.128.0.0", 9, "10.0.0.1"))
    values = dhcp.DhcpOptions(message_type=dhcp.ACK, subnet_mask="255.255.255.0", routers=(ip,),
                              dns_servers=("8.8.8.8", ip), domain_name="tenant.local", interface_mtu=mtu,
                              lease_time=3600, server_id=ip, classless_routes=routes)  # fmt: skip
    ack: Any = BOOTP(dhcp.build(dhcp.reply(request, values, yiaddr="10.0.0.7")))
    assert (ack.op, ack.xid, ack.chaddr[:6].hex(":"), ack.yiaddr) == (2, xid, mac, "10.0.0.7")
    got = {o[0]: o[1:] for o in ack[DHCP].options if isinstance(o, tuple)}
    assert got == {
        "message-type": (5,), "subnet_mask": ("255.255.255.0",), "router": (ip,), "name_server": ("8.8.8.8", ip),
        "domain": (b"tenant.local",), "interface-mtu": (mtu,), "lease_time": (3600,), "server_id": (ip,),
        "classless_static_routes": ([f"0.0.0.0/0:{ip}", "10.128.0.0/9:10.0.0.1"],),
    }  # fmt: skip


def test_scapy_reads_our_vxlan() -> None:
    inner = frame.build(FlowMatch(eth_src="02:00:00:00:00:01", eth_dst="02:00:00:00:00:02", ip_src="10.0.0.1",
                                  ip_dst="10.0.0.2", ip_proto=17, tp_src=1, tp_dst=2), b"x")  # fmt: skip
    outer = vxlan.encapsulate(inner, vni=0xABCDE, eth_src="02:aa:00:00:00:01", eth_dst="02:aa:00:00:00:02",
                              ip_src="192.168.0.1", ip_dst="192.168.0.2")  # fmt: skip
    pkt: Any = Ether(outer)
    assert (pkt[UDP].dport, pkt[UDP].chksum, pkt[VXLAN].vni, pkt[IP].flags.DF) == (4789, 0, 0xABCDE, 1)
    assert bytes(pkt[VXLAN].payload) == inner and rebuilds_identically(outer)


# ---- scapy -> ours ----


@st.composite
def scapy_frames(draw: st.DrawFn) -> bytes:
    pkt: Any = Ether(src=draw(macs), dst=draw(macs))
    for vid in draw(st.lists(st.integers(0, 4095), max_size=2)):
        pkt = pkt / draw(st.sampled_from([Dot1Q, Dot1AD]))(vlan=vid, prio=draw(st.integers(0, 7)))
    kind = draw(st.sampled_from(["tcp", "udp", "echo", "error", "arp", "frag", "options"]))
    if kind == "arp":
        return bytes(pkt / ARP(op=draw(st.sampled_from([1, 2])), hwsrc=draw(macs), psrc=draw(ips),
                               hwdst=draw(macs), pdst=draw(ips)))  # fmt: skip
    ip: Any = IP(src=draw(ips), dst=draw(ips), ttl=draw(st.integers(0, 255)), tos=draw(st.integers(0, 255)),
                 id=draw(ports))  # fmt: skip
    data = draw(payloads)
    if kind == "tcp":
        return bytes(pkt / ip / TCP(sport=draw(ports), dport=draw(ports), flags=draw(st.integers(0, 255))) / data)
    if kind == "udp":
        return bytes(pkt / ip / UDP(sport=draw(ports), dport=draw(ports)) / data)
    if kind == "echo":
        return bytes(pkt / ip / ICMP(type=draw(st.sampled_from([0, 8])), id=draw(ports), seq=draw(ports)) / data)
    if kind == "error":
        quoted = IP(src=draw(ips), dst=draw(ips)) / UDP(sport=draw(ports), dport=draw(ports))
        return bytes(pkt / ip / ICMP(type=draw(st.sampled_from([3, 11, 12])), code=draw(st.integers(0, 15))) / quoted)
    if kind == "options":
        ip.options = draw(st.sampled_from([[IPOption_Router_Alert()], [IPOption_Security()]]))
        return bytes(pkt / ip / UDP(sport=draw(ports), dport=draw(ports)) / data)
    ip.flags, ip.frag = draw(st.sampled_from([(1, 0), (1, 7), (0, 7)]))
    return bytes(pkt / ip / UDP(sport=draw(ports), dport=draw(ports), len=2000) / data)


@SCAPY
@given(scapy_frames())
def test_we_read_what_scapy_builds(raw: bytes) -> None:
    match = parse_frame(raw, in_port=5)
    assert match.as_dict() == {**fields(raw), "in_port": 5}
    if match.peek("eth_type") != 0x0800:
        return
    l3 = 14 + 4 * len(match.peek("vlan_ids") or ())  # type: ignore[arg-type]
    header, segment = ipv4.parse(raw[l3:], verify=True)
    if header.frag != "none":
        return
    src, dst = header.src, header.dst
    if header.proto == 6:
        assert tcp.is_checksum_valid(segment, src, dst)
    elif header.proto == 17:
        assert udp.is_checksum_valid(segment, src, dst)
        assert segment[6:8] != b"\x00\x00"
    elif header.proto == 1:
        icmp.parse(segment, verify=True)


def test_we_reassemble_what_scapy_fragments() -> None:
    original: Any = IP(src="10.0.0.1", dst="10.0.0.2", id=42) / UDP(sport=1, dport=2) / (b"abcdefgh" * 200)
    pieces = [bytes(p) for p in fragment(original, fragsize=496)]
    assert len(pieces) == 4
    assert [parse_frame(bytes(Ether() / IP(p))).peek("ip_frag") for p in pieces] == ["first", "later", "later", "later"]
    assert ipv4.reassemble(reversed(pieces)) == bytes(original)


def test_we_read_scapy_dhcp_and_vxlan() -> None:
    discover: Any = BOOTP(chaddr=bytes.fromhex("020000000001"), xid=77, flags=0x8000) / DHCP(options=[
        ("message-type", "discover"), ("param_req_list", [1, 3, 6, 121]), ("hostname", b"vm1"),
        ("classless_static_routes", ["169.254.169.254/32:10.0.0.2"]), ("requested_addr", "10.0.0.9"), "end"])
    message = dhcp.parse(bytes(discover))
    assert (message.op, message.xid, message.chaddr, message.flags) == (1, 77, "02:00:00:00:00:01", 0x8000)
    assert message.decoded() == dhcp.DhcpOptions(
        message_type=dhcp.DISCOVER, parameter_request_list=(1, 3, 6, 121), hostname="vm1", requested_ip="10.0.0.9",
        classless_routes=(dhcp.ClasslessRoute("169.254.169.254", 32, "10.0.0.2"),))
    inner = bytes(Ether() / IP() / ICMP())
    outer = bytes(Ether() / IP(src="1.1.1.1", dst="2.2.2.2") / UDP(sport=5555, dport=4789) / VXLAN(vni=99) / inner)
    got = vxlan.decapsulate(outer)
    assert (got.vni, got.inner, got.outer_ip_src) == (99, inner, "1.1.1.1")
