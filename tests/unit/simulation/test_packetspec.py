"""Packet specs (`midonet trace --step PORT:SPEC`): every key, the defaults, the errors naming their key, and the
round trip spec -> frame -> packet, checked against scapy as an independent parser."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scapy.layers.dhcp import BOOTP, DHCP
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.l2 import ARP, Dot1Q, Ether

from midonet.simulation.packetspec import (
    SPEC_KEYS,
    SpecError,
    build_frame,
    describe_frame,
    parse_spec,
    reply_items,
    split_spec,
    summary,
)


def roundtrip(spec: str) -> dict[str, object]:
    packet = parse_spec(spec)
    assert describe_frame(build_frame(packet)) == packet
    return dict(packet)


# ---- defaults ----

def test_empty_spec_is_a_udp_packet_with_every_default() -> None:
    assert roundtrip("") == {
        "eth_src": "02:00:00:00:00:01", "eth_dst": "02:00:00:00:00:02", "eth_type": "ipv4",
        "ip_src": "10.0.0.1", "ip_dst": "10.0.0.2", "ip_proto": "udp", "ip_ttl": 64, "ip_frag": "none",
        "tp_src": 10000, "tp_dst": 80, "payload_len": 0,
    }


def test_icmp_keys_make_an_echo_request_by_default() -> None:
    packet = roundtrip("icmp_id=7")
    assert (packet["ip_proto"], packet["icmp_type"], packet["icmp_code"], packet["icmp_id"]) == ("icmp", 8, 0, 7)
    assert "tp_src" not in packet
    assert roundtrip("ip_proto=icmp")["icmp_id"] == 1


def test_arp_keys_make_a_broadcast_request() -> None:
    packet = roundtrip("eth_src=02:00:00:00:01:01,arp_spa=10.0.1.1,arp_tpa=10.0.1.254")
    assert packet == {"eth_src": "02:00:00:00:01:01", "eth_dst": "ff:ff:ff:ff:ff:ff", "eth_type": "arp",
                      "arp_op": "request", "arp_sha": "02:00:00:00:01:01", "arp_spa": "10.0.1.1",
                      "arp_tha": "00:00:00:00:00:00", "arp_tpa": "10.0.1.254"}


def test_arp_reply_is_unicast_to_the_target_hardware_address() -> None:
    packet = roundtrip("arp_op=reply,arp_sha=02:00:00:00:02:01,arp_spa=10.0.2.1,arp_tha=02:00:00:00:ff:02,"
                       "arp_tpa=10.0.2.254")
    assert (packet["eth_dst"], packet["arp_op"], packet["arp_sha"]) == ("02:00:00:00:ff:02", "reply",
                                                                        "02:00:00:00:02:01")
    assert roundtrip("arp_op=2,eth_dst=02:00:00:00:ff:02,arp_spa=1.1.1.1,arp_tpa=1.1.1.2")["arp_tha"] == \
        "02:00:00:00:ff:02"


# ---- every key ----

@pytest.mark.parametrize(("spec", "key", "value"), [
    ("eth_src=AA-BB-CC-DD-EE-0F", "eth_src", "aa:bb:cc:dd:ee:0f"),
    ("eth_dst=02:00:00:00:00:99", "eth_dst", "02:00:00:00:00:99"),
    ("vlan=100", "vlan", 100),
    ("eth_type=ipv4", "eth_type", "ipv4"),
    ("eth_type=0x0806,arp_spa=1.1.1.1,arp_tpa=1.1.1.2", "eth_type", "arp"),
    ("eth_type=0x86dd,payload_len=40", "eth_type", 0x86DD),
    ("arp_op=reply,arp_spa=1.1.1.1,arp_tpa=1.1.1.2", "arp_op", "reply"),
    ("arp_op=3,arp_spa=1.1.1.1,arp_tpa=1.1.1.2", "arp_op", 3),
    ("arp_sha=02:00:00:00:00:07,arp_spa=1.1.1.1,arp_tpa=1.1.1.2", "arp_sha", "02:00:00:00:00:07"),
    ("arp_spa=192.168.1.1,arp_tpa=1.1.1.2", "arp_spa", "192.168.1.1"),
    ("arp_tha=02:00:00:00:00:08,arp_spa=1.1.1.1,arp_tpa=1.1.1.2", "arp_tha", "02:00:00:00:00:08"),
    ("arp_spa=1.1.1.1,arp_tpa=172.16.0.1", "arp_tpa", "172.16.0.1"),
    ("ip_src=10.9.8.7", "ip_src", "10.9.8.7"),
    ("ip_dst=8.8.8.8", "ip_dst", "8.8.8.8"),
    ("ip_proto=tcp", "ip_proto", "tcp"),
    ("ip_proto=17", "ip_proto", "udp"),
    ("ip_proto=47", "ip_proto", 47),
    ("ip_ttl=1", "ip_ttl", 1),
    ("ip_frag=first", "ip_frag", "first"),
    ("ip_frag=later", "ip_frag", "later"),
    ("tp_src=53", "tp_src", 53),
    ("tp_dst=0x50", "tp_dst", 80),
    ("icmp_type=0", "icmp_type", 0),
    ("icmp_type=3,icmp_code=13", "icmp_code", 13),
    ("icmp_id=65535", "icmp_id", 65535),
    ("payload_len=100", "payload_len", 100),
    ("dhcp=discover", "dhcp", "discover"),
    ("dhcp=3", "dhcp", "request"),
])
def test_every_key(spec: str, key: str, value: object) -> None:
    assert roundtrip(spec)[key] == value


def test_the_spec_names_every_key() -> None:
    assert set(SPEC_KEYS) == {"eth_src", "eth_dst", "vlan", "eth_type", "arp_op", "arp_sha", "arp_spa", "arp_tha",
                              "arp_tpa", "ip_src", "ip_dst", "ip_proto", "ip_ttl", "ip_frag", "tp_src", "tp_dst",
                              "icmp_type", "icmp_code", "icmp_id", "dhcp", "payload_len"}


def test_keys_spaces_and_case_are_forgiven() -> None:
    assert parse_spec(" IP_DST = 10.0.0.9 , ip_proto=TCP ,")["ip_dst"] == "10.0.0.9"
    assert parse_spec("ip_proto=TCP")["ip_proto"] == "tcp"


def test_a_later_fragment_has_no_l4_keys() -> None:
    packet = roundtrip("ip_proto=tcp,ip_frag=later,payload_len=64")
    assert "tp_src" not in packet and packet["payload_len"] == 64


def test_reply_items_turn_a_packet_around() -> None:
    sent = parse_spec("eth_src=02:00:00:00:00:0a,eth_dst=02:00:00:00:00:0b,vlan=5,ip_src=10.0.1.1,ip_dst=10.0.2.1,"
                      "ip_proto=tcp,ip_ttl=9,tp_src=1234,tp_dst=80,payload_len=40")
    assert reply_items(sent) == {"eth_src": "02:00:00:00:00:0b", "eth_dst": "02:00:00:00:00:0a", "vlan": "5",
                                 "ip_src": "10.0.2.1", "ip_dst": "10.0.1.1", "ip_proto": "tcp", "tp_src": "80",
                                 "tp_dst": "1234"}
    assert reply_items(parse_spec("icmp_id=9")) == {
        "eth_src": "02:00:00:00:00:02", "eth_dst": "02:00:00:00:00:01", "ip_src": "10.0.0.2", "ip_dst": "10.0.0.1",
        "ip_proto": "icmp", "icmp_type": "0", "icmp_code": "0", "icmp_id": "9"}
    with pytest.raises(SpecError, match="reply: only an IPv4 packet"):
        reply_items(parse_spec("arp_spa=1.1.1.1,arp_tpa=1.1.1.2"))


def test_split_spec_takes_extra_keys() -> None:
    assert split_spec("reply=2,ip_ttl=3", extra=("reply",)) == {"reply": "2", "ip_ttl": "3"}
    with pytest.raises(SpecError, match="reply: unknown key"):
        split_spec("reply=2")


def test_dhcp_makes_a_client_message_from_eth_src() -> None:
    packet = roundtrip("eth_src=02:00:00:00:01:01,dhcp=discover")
    assert {k: packet[k] for k in ("eth_dst", "ip_src", "ip_dst", "tp_src", "tp_dst", "payload_len")} == {
        "eth_dst": "ff:ff:ff:ff:ff:ff", "ip_src": "0.0.0.0", "ip_dst": "255.255.255.255", "tp_src": 68,
        "tp_dst": 67, "payload_len": 300}
    frame = Ether(build_frame(packet))
    assert frame[BOOTP].chaddr[:6] == bytes.fromhex("020000000101")
    assert ("message-type", 1) in frame[DHCP].options
    assert "dhcp" not in roundtrip("tp_src=68,tp_dst=67,payload_len=300")     # zeros are not DHCP


# ---- errors name their key ----

@pytest.mark.parametrize(("spec", "key", "words"), [
    ("colour=red", "colour", "unknown key"),
    ("ip_dst=1.1.1.1,ip_dst=1.1.1.2", "ip_dst", "given twice"),
    ("ip_dst=", "ip_dst", "no value"),
    ("eth_src=02:00:00:00:01", "eth_src", "not a MAC address"),
    ("eth_dst=zz:00:00:00:00:01", "eth_dst", "not a MAC address"),
    ("vlan=4096", "vlan", "between 0 and 4095"),
    ("vlan=ten", "vlan", "not a number"),
    ("eth_type=ipx", "eth_type", "ipv4, arp or a number"),
    ("eth_type=0x8100", "eth_type", "vlan=ID"),
    ("arp_op=ask,arp_spa=1.1.1.1,arp_tpa=1.1.1.2", "arp_op", "request, reply or a number"),
    ("arp_sha=nope,arp_spa=1.1.1.1,arp_tpa=1.1.1.2", "arp_sha", "not a MAC address"),
    ("arp_spa=1.1.1.300,arp_tpa=1.1.1.2", "arp_spa", "not an IPv4 address"),
    ("arp_tha=x,arp_spa=1.1.1.1,arp_tpa=1.1.1.2", "arp_tha", "not a MAC address"),
    ("arp_spa=1.1.1.1", "arp_tpa", "required for an ARP packet"),
    ("arp_tpa=1.1.1.1", "arp_spa", "required for an ARP packet"),
    ("arp_spa=1.1.1.1,arp_tpa=1.1.1.2,ip_src=1.1.1.1", "ip_src", "does not apply to an ARP packet"),
    ("arp_spa=1.1.1.1,arp_tpa=1.1.1.2,payload_len=3", "payload_len", "does not apply to an ARP packet"),
    ("eth_type=ipv4,arp_op=request", "arp_op", "not ARP"),
    ("ip_src=10.0.0", "ip_src", "not an IPv4 address"),
    ("ip_dst=::1", "ip_dst", "not an IPv4 address"),
    ("ip_proto=sctp", "ip_proto", "tcp, udp or a number"),
    ("ip_proto=256", "ip_proto", "between 0 and 255"),
    ("ip_ttl=-1", "ip_ttl", "between 0 and 255"),
    ("ip_frag=maybe", "ip_frag", "none, first, later"),
    ("tp_src=65536", "tp_src", "between 0 and 65535"),
    ("tp_dst=http", "tp_dst", "not a number"),
    ("ip_proto=icmp,tp_dst=80", "tp_dst", "use icmp_type"),
    ("ip_proto=tcp,icmp_type=8", "icmp_type", "does not apply to ip_proto=tcp"),
    ("tp_dst=80,icmp_type=8", "tp_dst", "give ip_proto"),
    ("ip_frag=later,tp_dst=80", "tp_dst", "later fragment"),
    ("icmp_type=256", "icmp_type", "between 0 and 255"),
    ("icmp_type=3,icmp_code=x", "icmp_code", "not a number"),
    ("icmp_type=3,icmp_id=4", "icmp_id", "only echo requests and replies"),
    ("icmp_id=70000", "icmp_id", "between 0 and 65535"),
    ("ip_proto=47,tp_src=1", "tp_src", "does not apply to ip_proto=47"),
    ("eth_type=0x86dd,ip_src=10.0.0.1", "ip_src", "does not apply to EtherType 0x86dd"),
    ("payload_len=9001", "payload_len", "between 0 and 9000"),
    ("dhcp=hello", "dhcp", "discover, offer, request"),
    ("dhcp=0", "dhcp", "between 1 and 8"),
    ("dhcp=discover,ip_proto=tcp", "dhcp", "unfragmented UDP"),
    ("dhcp=discover,payload_len=10", "payload_len", "does not apply to a DHCP message"),
    ("dhcp=discover,icmp_type=8", "icmp_type", "does not apply to a DHCP message"),
])
def test_bad_keys_and_values_name_the_key(spec: str, key: str, words: str) -> None:
    with pytest.raises(SpecError) as caught:
        parse_spec(spec)
    assert caught.value.key == key
    assert str(caught.value).startswith(f"{key}: ") and words in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("spec", ["ip_dst", "=10.0.0.1"])
def test_items_without_a_key_or_value(spec: str) -> None:
    with pytest.raises(SpecError, match="expected key=value"):
        parse_spec(spec)


# ---- the frames are what they say (scapy as the independent parser) ----

def test_tcp_frame_per_scapy() -> None:
    frame = Ether(build_frame(parse_spec("vlan=7,ip_proto=tcp,ip_src=10.0.1.1,ip_dst=10.0.2.1,ip_ttl=9,tp_src=1234,"
                                         "tp_dst=22,payload_len=5")))
    assert frame[Dot1Q].vlan == 7
    assert (frame[IP].src, frame[IP].dst, frame[IP].ttl) == ("10.0.1.1", "10.0.2.1", 9)
    assert (frame[TCP].sport, frame[TCP].dport, len(frame[TCP].payload)) == (1234, 22, 5)


def test_udp_icmp_and_arp_frames_per_scapy() -> None:
    assert Ether(build_frame(parse_spec("tp_dst=53")))[UDP].dport == 53
    ping = Ether(build_frame(parse_spec("icmp_id=42")))
    assert (ping[ICMP].type, ping[ICMP].id) == (8, 42)
    arp = Ether(build_frame(parse_spec("arp_spa=10.0.1.1,arp_tpa=10.0.1.254")))
    assert (arp[ARP].op, arp[ARP].psrc, arp[ARP].pdst) == (1, "10.0.1.1", "10.0.1.254")


def test_describe_reads_a_frame_scapy_built() -> None:
    raw = bytes(Ether(src="02:00:00:00:00:0a", dst="02:00:00:00:00:0b") / IP(src="1.2.3.4", dst="5.6.7.8", ttl=3)
                / UDP(sport=1, dport=2) / (b"x" * 11))
    assert describe_frame(raw) == {
        "eth_src": "02:00:00:00:00:0a", "eth_dst": "02:00:00:00:00:0b", "eth_type": "ipv4", "ip_src": "1.2.3.4",
        "ip_dst": "5.6.7.8", "ip_proto": "udp", "ip_ttl": 3, "ip_frag": "none", "tp_src": 1, "tp_dst": 2,
        "payload_len": 11}


@given(proto=st.sampled_from(["tcp", "udp", "icmp", "47"]), ttl=st.integers(0, 255),
       frag=st.sampled_from(["none", "first", "later"]), vlan=st.one_of(st.none(), st.integers(0, 4095)),
       payload=st.integers(0, 300), port=st.integers(0, 65535))
def test_roundtrip_property(proto: str, ttl: int, frag: str, vlan: int | None, payload: int, port: int) -> None:
    items = [f"ip_proto={proto}", f"ip_ttl={ttl}", f"ip_frag={frag}", f"payload_len={payload}"]
    if vlan is not None:
        items.append(f"vlan={vlan}")
    if frag != "later" and proto in ("tcp", "udp"):
        items.append(f"tp_src={port}")
    roundtrip(",".join(items))


def test_summary_lines() -> None:
    assert summary(parse_spec("ip_src=10.0.1.1,ip_dst=10.0.2.1")) == \
        "udp 10.0.1.1:10000 > 10.0.2.1:80 ttl 64, 02:00:00:00:00:01 > 02:00:00:00:00:02"
    assert summary(parse_spec("arp_spa=10.0.1.1,arp_tpa=10.0.1.254")).startswith(
        "ARP request who has 10.0.1.254 tell 10.0.1.1")
    assert "type 3 code 1" in summary(parse_spec("icmp_type=3,icmp_code=1"))
    assert summary(parse_spec("eth_type=0x86dd")).startswith("EtherType 0x86dd")
    assert "later fragment" in summary(parse_spec("ip_frag=later"))
