"""Per-protocol round trips: parse(build(x)) == x, and each format's own rules (options, fragments, RFC examples)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from midonet.packets import MalformedPacket, arp, checksum, dhcp, ethernet, icmp, ipv4, tcp, udp, vxlan

from .strategies import ips, ipv4_options, macs, payloads, ports, quoted_datagram, vlan_tags

# ---- Ethernet ----


@given(macs, macs, st.integers(0x0600, 0xFFFF).filter(lambda t: t not in ethernet.VLAN_TPIDS),
       st.lists(vlan_tags, max_size=3), payloads)  # fmt: skip
def test_ethernet_round_trip(dst: str, src: str, eth_type: int, tags: list[ethernet.VlanTag], payload: bytes) -> None:
    header = ethernet.EthernetHeader(dst, src, eth_type, tuple(tags))
    raw = ethernet.build(header, payload)
    assert len(raw) == header.length + len(payload)
    assert ethernet.parse(raw) == (header, payload)


def test_vlan_push_pop_and_padding() -> None:
    raw = ethernet.build(ethernet.EthernetHeader("ff:ff:ff:ff:ff:ff", "02:00:00:00:00:01", 0x0800), b"x", pad=True)
    assert len(raw) == ethernet.MIN_FRAME_LENGTH
    tagged = ethernet.push_vlan(ethernet.push_vlan(raw, 10), 20, pcp=5, tpid=ethernet.ETH_TYPE_QINQ)
    header, _ = ethernet.parse(tagged)
    assert header.vlan_ids == (20, 10) and header.vlans[0].pcp == 5 and header.eth_type == 0x0800
    assert ethernet.pop_vlan(ethernet.pop_vlan(tagged)) == raw
    with pytest.raises(ValueError, match="no VLAN tag"):
        ethernet.pop_vlan(raw)


def test_macs() -> None:
    assert ethernet.mac_to_bytes("AA-bb-CC-00-11-22") == bytes.fromhex("aabbcc001122")
    assert ethernet.mac_from_bytes(bytes.fromhex("aabbcc001122")) == "aa:bb:cc:00:11:22"
    assert ethernet.is_multicast("01:00:5e:00:00:01") and ethernet.is_broadcast("FF:FF:FF:FF:FF:FF")
    assert not ethernet.is_multicast("02:00:00:00:00:01")
    for bad in ("aa:bb:cc:dd:ee", "aa:bb:cc:dd:ee:gg", "aabbccddeeff", ""):
        with pytest.raises(ValueError):
            ethernet.mac_to_bytes(bad)
    with pytest.raises(ValueError):
        ethernet.VlanTag(4096)


# ---- ARP ----


@given(st.sampled_from([1, 2]), macs, ips, macs, ips)
def test_arp_round_trip(op: int, sha: str, spa: str, tha: str, tpa: str) -> None:
    packet = arp.ArpPacket(op, sha, spa, tha, tpa)
    raw = arp.build(packet)
    assert len(raw) == arp.LENGTH and arp.parse(raw + bytes(18)) == packet


def test_arp_request_reply_gratuitous() -> None:
    ask = arp.request("02:00:00:00:00:01", "10.0.0.1", "10.0.0.2")
    assert ask.is_request and ask.tha == "00:00:00:00:00:00" and not ask.is_gratuitous
    answer = arp.reply(ask, "02:00:00:00:00:02")
    assert (answer.op, answer.sha, answer.spa, answer.tha, answer.tpa) == (
        arp.OP_REPLY, "02:00:00:00:00:02", "10.0.0.2", "02:00:00:00:00:01", "10.0.0.1")
    with pytest.raises(ValueError):
        arp.reply(answer, "02:00:00:00:00:03")
    garp = arp.gratuitous("02:00:00:00:00:09", "10.0.0.9")
    assert garp.is_gratuitous and garp.is_request


# ---- IPv4 ----


def test_ip_addresses() -> None:
    assert ipv4.ip_to_int("10.0.0.1") == 0x0A000001 and ipv4.ip_from_int(0xC0A80101) == "192.168.1.1"
    for bad in ("10.0.0", "10.0.0.256", "a.b.c.d", "1.2.3.4.5", "١.2.3.4", " 1.2.3.4"):
        with pytest.raises(ValueError):
            ipv4.ip_to_bytes(bad)
    with pytest.raises(ValueError):
        ipv4.ip_from_int(-1)


@given(ips, ips, st.integers(0, 255), st.integers(0, 255), st.integers(0, 255), ports, st.integers(0, 7),
       st.integers(0, 0x1FFF), ipv4_options, payloads)  # fmt: skip
def test_ipv4_round_trip(src: str, dst: str, proto: int, ttl: int, tos: int, ident: int, flags: int, offset: int,
                         options: list[ipv4.IPv4Option], payload: bytes) -> None:  # fmt: skip
    raw_options = ipv4.build_options(options)
    header = ipv4.IPv4Header(src, dst, proto, ttl, tos, ident, flags, offset, raw_options)
    raw = ipv4.build(header, payload)
    parsed, body = ipv4.parse(raw + b"pad", verify=True)
    assert (parsed, body) == (header, payload)
    assert parsed.total_length == len(raw) and checksum.is_valid(raw[: header.header_length])
    assert ipv4.parse_options(raw_options) == tuple(options)


def test_ipv4_frag_kinds() -> None:
    def kind(flags: int, offset: int) -> str:
        return ipv4.IPv4Header("1.1.1.1", "2.2.2.2", 17, flags=flags, frag_offset=offset).frag

    assert (kind(0, 0), kind(ipv4.FLAG_DF, 0), kind(ipv4.FLAG_MF, 0), kind(ipv4.FLAG_MF, 3), kind(0, 3)) == (
        "none", "none", "first", "later", "later")


def test_ipv4_rejects_bad_checksum_and_options() -> None:
    raw = bytearray(ipv4.build(ipv4.IPv4Header("1.1.1.1", "2.2.2.2", 6), b""))
    raw[10] ^= 1
    with pytest.raises(MalformedPacket, match="checksum"):
        ipv4.parse(bytes(raw), verify=True)
    ipv4.parse(bytes(raw))
    bad_options = ipv4.IPv4Header("1.1.1.1", "2.2.2.2", 6, options=bytes([7, 9, 0, 0]))
    with pytest.raises(MalformedPacket, match="option 7"):
        ipv4.parse(ipv4.build(bad_options, b""))
    with pytest.raises(ValueError):
        ipv4.build_options([ipv4.IPv4Option(7, bytes(38)), ipv4.IPv4Option(7, bytes(2))])


@given(ipv4_options, st.integers(1, 1400), st.integers(68, 600), st.randoms(use_true_random=False))
def test_fragment_and_reassemble(options: list[ipv4.IPv4Option], size: int, mtu: int, rnd: random.Random) -> None:
    header = ipv4.IPv4Header("10.0.0.1", "10.0.0.2", 17, ident=77, options=ipv4.build_options(options))
    datagram = ipv4.build(header, bytes(random.Random(size).randbytes(size)))
    pieces = ipv4.fragment(datagram, mtu)
    assert all(len(p) <= mtu for p in pieces)
    parsed = [ipv4.parse(p, verify=True)[0] for p in pieces]
    assert [h.more_fragments for h in parsed] == [True] * (len(pieces) - 1) + [False]
    copied = ipv4.build_options(o for o in options if o.copied)
    assert all(h.options == copied for h in parsed[1:])
    rnd.shuffle(pieces)
    assert ipv4.reassemble(pieces + pieces[:1]) == datagram


def test_fragment_refuses_df_and_tiny_mtu() -> None:
    big = ipv4.build(ipv4.IPv4Header("1.1.1.1", "2.2.2.2", 17, flags=ipv4.FLAG_DF), bytes(100))
    with pytest.raises(ValueError, match="DF"):
        ipv4.fragment(big, 68)
    assert ipv4.fragment(big, 1500) == [big]
    with pytest.raises(ValueError, match="MTU"):
        ipv4.fragment(ipv4.build(ipv4.IPv4Header("1.1.1.1", "2.2.2.2", 17), bytes(100)), 27)


def test_reassemble_refuses_gaps_mixtures_and_conflicts() -> None:
    one = ipv4.fragment(ipv4.build(ipv4.IPv4Header("1.1.1.1", "2.2.2.2", 17, ident=1), bytes(100)), 60)
    two = ipv4.fragment(ipv4.build(ipv4.IPv4Header("1.1.1.1", "2.2.2.2", 17, ident=2), bytes(100)), 60)
    conflicting = ipv4.fragment(ipv4.build(ipv4.IPv4Header("1.1.1.1", "2.2.2.2", 17, ident=1), b"x" * 100), 60)
    for pieces in (one[:1] + one[2:], one[1:], one[:-1], one + two[:1], one + conflicting[1:2], []):
        with pytest.raises(MalformedPacket):
            ipv4.reassemble(pieces)


# ---- ICMP ----


@given(st.integers(0, 255), st.integers(0, 255), st.integers(0, 0xFFFFFFFF), payloads)
def test_icmp_round_trip(kind: int, code: int, rest: int, data: bytes) -> None:
    message = icmp.IcmpMessage(kind, code, rest, data)
    raw = icmp.build(message)
    assert icmp.parse(raw, verify=True) == message and checksum.is_valid(raw)


def test_echo_and_errors() -> None:
    ping = icmp.echo_request(0x1234, 7, b"abc")
    assert (ping.ident, ping.seq) == (0x1234, 7)
    pong = icmp.echo_reply(ping)
    assert (pong.type, pong.rest, pong.data) == (icmp.TYPE_ECHO_REPLY, ping.rest, b"abc")
    with pytest.raises(ValueError):
        icmp.echo_reply(pong)
    options = ipv4.build_options([ipv4.IPv4Option(148, b"\x00\x00")])
    datagram = ipv4.build(ipv4.IPv4Header("10.0.0.1", "8.8.8.8", 17, options=options), bytes(40))
    too_big = icmp.frag_needed(datagram, 1400)
    assert (too_big.type, too_big.code, too_big.mtu, too_big.is_error) == (3, 4, 1400, True)
    assert too_big.data == datagram[:24 + 8]
    assert icmp.time_exceeded(datagram).data == too_big.data
    assert icmp.unreachable(icmp.CODE_PROHIBITED, datagram).code == 13
    with pytest.raises(MalformedPacket):
        icmp.unreachable(1, b"\x60" + bytes(40))


@given(ips, ips, st.sampled_from([6, 17]), ports, ports, ips, ips, ports, ports)
def test_embedded_header_parse_and_rewrite(src: str, dst: str, proto: int, sport: int, dport: int,
                                           new_src: str, new_dst: str, new_sport: int, new_dport: int) -> None:
    segment_header = (tcp.build(tcp.TcpHeader(sport, dport), b"", src, dst) if proto == 6
                      else udp.build(udp.UdpHeader(sport, dport), b"hello", src, dst))  # fmt: skip
    datagram = ipv4.build(ipv4.IPv4Header(src, dst, proto), segment_header)
    quoted = datagram  # quote it whole, so the L4 checksum can be checked after the rewrite
    assert icmp.parse_embedded(quoted) == icmp.EmbeddedHeader(src, dst, proto, sport, dport, None)
    rewritten = icmp.rewrite_embedded(quoted, ip_src=new_src, ip_dst=new_dst, tp_src=new_sport, tp_dst=new_dport)
    assert icmp.parse_embedded(rewritten) == icmp.EmbeddedHeader(new_src, new_dst, proto, new_sport, new_dport, None)
    _, segment = ipv4.parse(rewritten, verify=True)
    valid = tcp.is_checksum_valid if proto == 6 else udp.is_checksum_valid
    assert valid(segment, new_src, new_dst)


def test_embedded_icmp_echo_and_short_quotes() -> None:
    echo = ipv4.build(ipv4.IPv4Header("1.1.1.1", "2.2.2.2", 1), icmp.build(icmp.echo_request(99, 1)))
    assert icmp.parse_embedded(echo) == icmp.EmbeddedHeader("1.1.1.1", "2.2.2.2", 1, 8, 0, 99)
    bare = quoted_datagram("1.1.1.1", "2.2.2.2", 17, 1, 2)[:20]
    assert icmp.parse_embedded(bare).tp_src is None
    with pytest.raises(ValueError, match="no TCP/UDP ports"):
        icmp.rewrite_embedded(bare, tp_src=5)
    with pytest.raises(MalformedPacket):
        icmp.parse_embedded(b"\x45" + bytes(10))


# ---- TCP and UDP ----


@given(ips, ips, ports, ports, st.integers(0, 2**32 - 1), st.integers(0, 255),
       st.lists(st.tuples(st.sampled_from([2, 3, 4, 8]), st.binary(max_size=8)), max_size=3), payloads)  # fmt: skip
def test_tcp_round_trip(src: str, dst: str, sport: int, dport: int, seq: int, flags: int,
                        options: list[tuple[int, bytes]], payload: bytes) -> None:  # fmt: skip
    raw_options = tcp.build_options(options)
    if len(raw_options) > 40:
        return
    header = tcp.TcpHeader(sport, dport, seq=seq, ack=seq ^ 1, flags=flags, window=1000, options=raw_options)
    segment = tcp.build(header, payload, src, dst)
    assert tcp.parse(segment) == (header, payload) and tcp.is_checksum_valid(segment, src, dst)
    assert tcp.parse_options(raw_options) == tuple(options)
    assert tcp.flag_names(tcp.SYN | tcp.ACK) == "SA"


@given(ips, ips, ports, ports, payloads, st.booleans())
def test_udp_round_trip(src: str, dst: str, sport: int, dport: int, payload: bytes, with_checksum: bool) -> None:
    segment = udp.build(udp.UdpHeader(sport, dport), payload, src, dst, with_checksum=with_checksum)
    header, body = udp.parse(segment + b"trailer")
    assert (header, body, header.length) == (udp.UdpHeader(sport, dport), payload, len(segment))
    assert (header.checksum != 0) == with_checksum and udp.is_checksum_valid(segment, src, dst)


# ---- DHCP ----

ROUTES = (dhcp.ClasslessRoute("0.0.0.0", 0, "10.0.0.1"), dhcp.ClasslessRoute("169.254.169.254", 32, "10.0.0.2"),
          dhcp.ClasslessRoute("172.16.0.0", 12, "0.0.0.0"))  # fmt: skip
OFFER = dhcp.DhcpOptions(
    message_type=dhcp.OFFER, subnet_mask="255.255.255.0", routers=("10.0.0.1",), dns_servers=("8.8.8.8", "1.1.1.1"),
    domain_name="example.org", interface_mtu=1450, lease_time=86400, server_id="10.0.0.1", classless_routes=ROUTES,
)  # fmt: skip


def test_dhcp_round_trip_and_reply() -> None:
    discover = dhcp.DhcpMessage(op=1, xid=0xCAFE, chaddr="02:00:00:00:00:01", flags=dhcp.FLAG_BROADCAST,
                                options=dhcp.encode_options(dhcp.DhcpOptions(
                                    message_type=dhcp.DISCOVER, parameter_request_list=(1, 3, 6, 121),
                                    hostname="vm1", client_id=b"\x01\x02")))  # fmt: skip
    raw = dhcp.build(discover)
    assert len(raw) == 300 and dhcp.parse(raw) == discover
    assert discover.message_type == dhcp.DISCOVER and discover.decoded().parameter_request_list == (1, 3, 6, 121)
    offer = dhcp.reply(discover, OFFER, yiaddr="10.0.0.5", siaddr="10.0.0.1")
    assert (offer.op, offer.xid, offer.chaddr, offer.flags, offer.yiaddr) == (
        2, 0xCAFE, "02:00:00:00:00:01", dhcp.FLAG_BROADCAST, "10.0.0.5")
    assert dhcp.parse(dhcp.build(offer)).decoded() == OFFER
    with pytest.raises(ValueError):
        dhcp.reply(offer, OFFER)


def test_classless_routes_wire_format() -> None:
    # RFC 3442 section 5 examples: 0/0 -> 00 + router; /32 -> 4 octets; /12 -> 2 octets.
    options = dict(dhcp.encode_options(dhcp.DhcpOptions(classless_routes=ROUTES)))
    assert options[121] == bytes.fromhex("00 0a000001" "20 a9fea9fe 0a000002" "0c ac10 00000000")


def test_long_options_are_split_and_joined() -> None:
    message = dhcp.DhcpMessage(op=2, xid=1, chaddr="02:00:00:00:00:01", options=((dhcp.OPT_CLIENT_ID, bytes(600)),))
    raw = dhcp.build(message)
    assert [c for c, _ in dhcp.parse(raw).options] == [61, 61, 61]
    assert dhcp.parse(raw).option(61) == bytes(600) and dhcp.parse(raw).decoded().client_id == bytes(600)


@pytest.mark.parametrize("options", [((1, b"\x00" * 3),), ((3, b""),), ((51, b"\x00"),), ((121, b"\x21" + bytes(8)),),
                                     ((121, b"\x18\x0a\x00"),), ((15, b"\xff"),), ((53, b"\x01\x02"),)])  # fmt: skip
def test_dhcp_options_of_the_wrong_size(options: tuple[tuple[int, bytes], ...]) -> None:
    with pytest.raises(MalformedPacket):
        dhcp.decode_options(options)


def test_dhcp_malformed() -> None:
    raw = dhcp.build(dhcp.DhcpMessage(op=1, xid=1, chaddr="02:00:00:00:00:01"))
    with pytest.raises(MalformedPacket, match="magic"):
        dhcp.parse(raw[:236] + b"\x00\x00\x00\x00" + raw[240:])
    with pytest.raises(MalformedPacket, match="runs past"):
        dhcp.parse(raw[:240] + b"\x0c\x09abc")
    with pytest.raises(MalformedPacket):
        dhcp.parse(raw[:100])


# ---- VXLAN ----


@given(st.integers(0, 0xFFFFFF), payloads)
def test_vxlan_round_trip(vni: int, inner: bytes) -> None:
    assert vxlan.parse(vxlan.build(vni, inner)) == (vni, inner)


def test_vxlan_encapsulation() -> None:
    inner = bytes.fromhex("02000000000102000000000208004500")
    outer = vxlan.encapsulate(inner, vni=4242, eth_src="02:aa:00:00:00:01", eth_dst="02:aa:00:00:00:02",
                              ip_src="192.168.0.1", ip_dst="192.168.0.2", tos=0x20)  # fmt: skip
    assert len(outer) == len(inner) + vxlan.OVERHEAD
    got = vxlan.decapsulate(outer)
    assert (got.vni, got.inner, got.outer_ip_src, got.outer_ip_dst, got.outer_tos) == (
        4242, inner, "192.168.0.1", "192.168.0.2", 0x20)
    port = vxlan.source_port(inner)
    assert 49152 <= port <= 65535 and port == vxlan.source_port(inner)
    with pytest.raises(MalformedPacket, match="port"):
        vxlan.decapsulate(outer, port=8472)
    with pytest.raises(MalformedPacket, match="I "):
        vxlan.parse(bytes(8))
    with pytest.raises(ValueError):
        vxlan.build(1 << 24, b"")
