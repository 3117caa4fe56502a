"""FlowMatch: what parse_frame decodes, and the seen / modified / diff / userspace-only record (spec 3.1, 1.7)."""

from __future__ import annotations

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.l2 import ARP, Dot1AD, Dot1Q, Ether

from midonet.packets import FIELDS, FlowMatch, MalformedPacket, parse_frame

MAC1, MAC2 = "02:00:00:00:00:01", "02:00:00:00:00:02"


def frame(*layers: object) -> bytes:
    pkt = Ether(src=MAC1, dst=MAC2)
    for layer in layers:
        pkt = pkt / layer
    return bytes(pkt)


def udp_frame() -> bytes:
    return frame(IP(src="10.0.0.1", dst="10.0.0.2", ttl=9, tos=0x10), UDP(sport=1234, dport=53), b"q")


# ---- decoding ----


def test_udp_frame_fields() -> None:
    m = parse_frame(udp_frame(), in_port=7)
    assert m.as_dict() == {
        "in_port": 7, "eth_src": MAC1, "eth_dst": MAC2, "eth_type": 0x0800, "vlan_ids": (),
        "arp_op": None, "arp_sha": None, "arp_spa": None, "arp_tha": None, "arp_tpa": None,
        "ip_src": "10.0.0.1", "ip_dst": "10.0.0.2", "ip_proto": 17, "ip_tos": 0x10, "ip_ttl": 9, "ip_frag": "none",
        "tp_src": 1234, "tp_dst": 53, "icmp_id": None, "icmp_data": None,
    }  # fmt: skip


def test_tcp_behind_stacked_vlans() -> None:
    m = parse_frame(frame(Dot1AD(vlan=100), Dot1Q(vlan=7), IP(src="1.2.3.4", dst="5.6.7.8"), TCP(sport=80, dport=9)))
    assert (m.peek("vlan_ids"), m.peek("eth_type")) == ((100, 7), 0x0800)
    assert (m.peek("ip_proto"), m.peek("tp_src"), m.peek("tp_dst")) == (6, 80, 9)


def test_icmp_echo_puts_type_code_and_id() -> None:
    m = parse_frame(frame(IP(src="1.1.1.1", dst="2.2.2.2"), ICMP(type=8, code=0, id=0x4242, seq=3)))
    assert m.key(("tp_src", "tp_dst", "icmp_id", "icmp_data")) == (8, 0, 0x4242, None)


def test_icmp_error_keeps_quoted_datagram() -> None:
    quoted = bytes(IP(src="10.0.0.1", dst="8.8.8.8") / UDP(sport=5, dport=53))
    m = parse_frame(frame(IP(src="9.9.9.9", dst="10.0.0.1"), ICMP(type=3, code=3), quoted))
    assert m.key(("tp_src", "tp_dst", "icmp_id", "icmp_data")) == (3, 3, None, quoted)


def test_arp_fields() -> None:
    m = parse_frame(frame(ARP(op=2, hwsrc=MAC1, psrc="10.0.0.1", hwdst=MAC2, pdst="10.0.0.2")))
    assert m.key(("eth_type", "arp_op", "arp_sha", "arp_spa", "arp_tha", "arp_tpa", "ip_src")) == (
        0x0806, 2, MAC1, "10.0.0.1", MAC2, "10.0.0.2", None,
    )


@pytest.mark.parametrize(("flags", "offset", "kind", "ports"), [
    ("MF", 0, "first", (1, 2)), (0, 185, "later", (None, None)), ("MF", 185, "later", (None, None)),
])  # fmt: skip
def test_fragments(flags: str | int, offset: int, kind: str, ports: tuple[int | None, int | None]) -> None:
    m = parse_frame(frame(IP(flags=flags, frag=offset, proto=17), UDP(sport=1, dport=2, len=3000) / bytes(64)))
    assert (m.peek("ip_frag"), m.peek("tp_src"), m.peek("tp_dst")) == (kind, *ports)


def test_unknown_ethertype_and_protocol_are_not_errors() -> None:
    m = parse_frame(bytes(Ether(type=0x88CC) / b"lldp-ish"))
    assert m.peek("eth_type") == 0x88CC and m.peek("ip_src") is None
    m = parse_frame(frame(IP(proto=47) / b"gre"))
    assert (m.peek("ip_proto"), m.peek("tp_src")) == (47, None)


def test_trailing_padding_is_ignored() -> None:
    assert parse_frame(udp_frame() + bytes(20)) == parse_frame(udp_frame())


@pytest.mark.parametrize(("raw", "layer"), [
    (b"\x00" * 13, "ethernet"),
    (bytes(Ether(type=0x8100)) + b"\x00\x0a", "vlan"),
    (bytes(Ether(type=0x0800)) + b"\x45" + bytes(10), "ipv4"),
    (bytes(Ether() / IP())[:-1], "ipv4"),
    (bytes(Ether() / IP(version=6)), "ipv4"),
    (bytes(Ether() / IP(ihl=4)), "ipv4"),
    (bytes(Ether() / IP(len=100)), "ipv4"),
    (bytes(Ether() / IP(proto=6) / b"short"), "tcp"),
    (bytes(Ether() / IP() / TCP(dataofs=4)), "tcp"),
    (bytes(Ether() / IP() / TCP(dataofs=15)), "tcp"),
    (bytes(Ether() / IP(proto=17) / b"1234567"), "udp"),
    (bytes(Ether() / IP() / UDP(len=7)), "udp"),
    (bytes(Ether() / IP() / UDP(len=9)), "udp"),
    (bytes(Ether() / IP(proto=1) / b"1234"), "icmp"),
    (bytes(Ether() / ARP())[:-1], "arp"),
    (bytes(Ether() / ARP(hwlen=8)), "arp"),
])  # fmt: skip
def test_malformed_frames(raw: bytes, layer: str) -> None:
    with pytest.raises(MalformedPacket) as err:
        parse_frame(raw)
    assert err.value.layer == layer


# ---- the seen record ----


def test_parse_records_nothing_and_reads_record() -> None:
    m = parse_frame(udp_frame(), in_port=1)
    assert m.fields_seen() == frozenset() and m.fields_modified() == frozenset()
    assert m.ip_dst == "10.0.0.2" and m.eth_src == MAC1
    assert m.fields_seen() == {"ip_dst", "eth_src"}


def test_every_field_records_its_own_name() -> None:
    m = parse_frame(udp_frame())
    for name in FIELDS:
        getattr(m, name)
        assert name in m.fields_seen()
    assert m.fields_seen() == frozenset(FIELDS)


def test_reading_without_recording() -> None:
    m = parse_frame(udp_frame())
    other = m.copy()
    m.peek("ip_src")
    m.key(("ip_src", "tp_dst"))
    m.key()
    m.as_dict()
    repr(m)
    m.diff(other)
    assert m == other
    assert m.fields_seen() == frozenset()


def test_unknown_field_names_are_refused() -> None:
    m = FlowMatch()
    with pytest.raises(ValueError):
        m.peek("nw_src")
    with pytest.raises(ValueError):
        m.mark_seen("nw_src")
    with pytest.raises(ValueError):
        m.key(("ip_src", "nw_src"))


@pytest.mark.parametrize("fields", [tuple(FIELDS), ("tp_dst", "ip_src"), ("eth_type",), ()])
def test_key_gives_each_fields_value_in_order(fields: tuple[str, ...]) -> None:
    m = parse_frame(udp_frame())
    assert m.key(fields) == tuple(m.peek(field) for field in fields)
    assert m.key(list(fields)) == m.key(fields)


def test_mark_seen() -> None:
    m = FlowMatch(ip_dst="1.2.3.4")
    m.mark_seen("ip_dst", "tp_dst")
    assert m.fields_seen() == {"ip_dst", "tp_dst"}


def test_mask_fields_add_in_port_and_prerequisites() -> None:
    m = parse_frame(udp_frame())
    assert m.mask_fields() == {"in_port"}
    _ = m.eth_dst
    assert m.mask_fields() == {"in_port", "eth_dst"}
    _ = m.tp_dst
    assert m.mask_fields() == {"in_port", "eth_dst", "tp_dst", "ip_proto", "ip_frag", "eth_type"}
    assert m.fields_seen() == {"eth_dst", "tp_dst"}
    icmp = FlowMatch()
    _ = icmp.icmp_id
    assert icmp.mask_fields() == {"in_port", "icmp_id", "tp_src", "ip_proto", "ip_frag", "eth_type"}


# ---- modified, copy, diff, restore ----


def test_setters_mark_modified_not_seen() -> None:
    m = parse_frame(udp_frame())
    m.ip_ttl = 8
    m.eth_dst = "02:00:00:00:00:09"
    assert m.fields_modified() == {"ip_ttl", "eth_dst"}
    assert m.fields_seen() == frozenset()
    assert m.peek("ip_ttl") == 8


def test_diff_gives_the_new_values() -> None:
    original = parse_frame(udp_frame(), in_port=1)
    final = original.copy()
    final.ip_src = "192.0.2.1"
    final.tp_src = 40000
    final.ip_ttl = 8
    final.vlan_ids = (5,)
    final.in_port = 2
    assert final.diff(original) == {"vlan_ids": (5,), "ip_src": "192.0.2.1", "ip_ttl": 8, "tp_src": 40000}
    assert original.diff(final) == {"vlan_ids": (), "ip_src": "10.0.0.1", "ip_ttl": 9, "tp_src": 1234}


def test_diff_compares_values_not_writes() -> None:
    original = parse_frame(udp_frame())
    final = original.copy()
    final.ip_dst = "10.9.9.9"
    final.ip_dst = "10.0.0.2"
    assert final.diff(original) == {}
    assert final.fields_modified() == {"ip_dst"}


def test_copy_is_independent_and_keeps_the_record() -> None:
    m = parse_frame(udp_frame())
    _ = m.ip_src
    m.tp_dst = 54
    clone = m.copy()
    assert clone == m and clone is not m
    assert clone.fields_seen() == {"ip_src"} and clone.fields_modified() == {"tp_dst"}
    clone.tp_dst = 99
    _ = clone.eth_src
    assert m.peek("tp_dst") == 54 and m.fields_seen() == {"ip_src"}


def test_restore_puts_values_back_and_accumulates_seen() -> None:
    m = parse_frame(udp_frame())
    saved = m.copy()
    _ = m.eth_dst
    m.ip_dst = "10.1.1.1"
    m.restore(saved)
    assert m == saved and m.fields_modified() == frozenset()
    assert m.fields_seen() == {"eth_dst"}


def test_clear_tracking() -> None:
    m = parse_frame(udp_frame())
    _ = m.icmp_id
    m.ip_ttl = 1
    m.clear_tracking()
    assert (m.fields_seen(), m.fields_modified(), m.userspace_only) == (frozenset(), frozenset(), False)


def test_equality_ignores_the_record_and_matches_are_unhashable() -> None:
    a, b = parse_frame(udp_frame()), parse_frame(udp_frame())
    _ = a.ip_src
    assert a == b and a != parse_frame(udp_frame(), in_port=3)
    assert a.__eq__(object()) is NotImplemented
    with pytest.raises(TypeError):
        hash(a)


def test_keyword_construction() -> None:
    m = FlowMatch(eth_type=0x0800, ip_src="10.0.0.1", ip_frag="none", tp_src=1)
    assert m.key(("eth_type", "ip_src", "ip_frag", "tp_src", "tp_dst")) == (0x0800, "10.0.0.1", "none", 1, None)
    assert "ip_src='10.0.0.1'" in repr(m) and "tp_dst" not in repr(m)


# ---- userspace-only ----


@pytest.mark.parametrize("field", ["icmp_id", "icmp_data"])
def test_reading_icmp_id_or_data_is_userspace_only(field: str) -> None:
    m = parse_frame(frame(IP(), ICMP(type=8, id=1)))
    _ = m.tp_src, m.ip_dst
    assert not m.userspace_only
    getattr(m, field)
    assert m.userspace_only


def test_mark_userspace_only_for_garp() -> None:
    m = parse_frame(frame(ARP(psrc="10.0.0.1", pdst="10.0.0.1")))
    assert not m.userspace_only
    m.mark_userspace_only()
    assert m.userspace_only and m.copy().userspace_only


def test_the_address_text_cache_stays_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    from midonet.packets import flowmatch

    monkeypatch.setattr(flowmatch, "_IP_TEXT_MAX", 4)
    monkeypatch.setattr(flowmatch, "_IP_TEXT", {})
    for i in range(10):
        m = parse_frame(frame(IP(src=f"10.0.0.{i}", dst="10.0.1.1"), UDP()))
        assert m.peek("ip_src") == f"10.0.0.{i}"
        assert len(flowmatch._IP_TEXT) <= 4
