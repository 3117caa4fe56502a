"""frame.build from a FlowMatch spec; frame.apply: a simulation's rewrites executed on the bytes, checksums fixed."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from midonet.packets import FlowMatch, MalformedPacket, frame, icmp, ipv4, parse_frame

from .scapy_oracle import rebuilds_identically
from .strategies import frame_specs, ips, macs, ports, quoted_datagram, vlan_id_stacks

A, B = "02:00:00:00:00:0a", "02:00:00:00:00:0b"


def udp_spec(**extra: object) -> FlowMatch:
    fields = {"eth_src": A, "eth_dst": B, "ip_src": "10.0.0.1", "ip_dst": "10.0.0.2", "ip_proto": 17,
              "tp_src": 1000, "tp_dst": 53, **extra}  # fmt: skip
    return FlowMatch(**fields)  # type: ignore[arg-type]


# ---- build ----


def test_build_reads_without_recording_and_round_trips() -> None:
    spec = udp_spec(vlan_ids=(3,), ip_ttl=7, ip_tos=4)
    raw = frame.build(spec, b"payload")
    assert spec.fields_seen() == frozenset()
    assert parse_frame(raw) == FlowMatch(**{**spec.as_dict(), "eth_type": 0x0800, "ip_frag": "none"})  # type: ignore[arg-type]
    assert rebuilds_identically(raw)


def test_build_defaults_and_options() -> None:
    m = parse_frame(frame.build(udp_spec(), pad=True, ip_ident=7, dont_fragment=True, udp_checksum=False))
    assert (m.peek("ip_ttl"), m.peek("ip_tos"), m.peek("vlan_ids")) == (64, 0, ())
    raw = frame.build(udp_spec(), udp_checksum=False, pad=True)
    assert len(raw) == 60 and raw[40:42] == b"\x00\x00"
    first = parse_frame(frame.build(udp_spec(ip_frag="first"), bytes(16)))
    assert (first.peek("ip_frag"), first.peek("tp_dst")) == ("first", 53)
    later = frame.build(udp_spec(ip_frag="later"), bytes(16), frag_offset=3)
    assert ipv4.parse(later[14:])[0].frag_offset == 3 and parse_frame(later).peek("tp_src") is None


def test_build_icmp_errors_and_echo() -> None:
    quoted = quoted_datagram("10.0.0.2", "8.8.8.8", 17, 5000, 53)
    spec = FlowMatch(eth_src=A, eth_dst=B, ip_src="10.0.0.1", ip_dst="10.0.0.2", ip_proto=1, tp_src=3, tp_dst=4,
                     icmp_data=quoted)  # fmt: skip
    raw = frame.build(spec, icmp_mtu=1400)
    message = icmp.parse(raw[34:], verify=True)
    assert (message.mtu, message.data) == (1400, quoted) and rebuilds_identically(raw)
    ping = frame.build(FlowMatch(eth_src=A, eth_dst=B, ip_src="1.1.1.1", ip_dst="2.2.2.2", ip_proto=1, tp_src=8,
                                 icmp_id=77), b"abc", icmp_seq=9)  # fmt: skip
    echo = icmp.parse(ping[34:], verify=True)
    assert (echo.ident, echo.seq, echo.data) == (77, 9, b"abc")


@pytest.mark.parametrize("spec", [
    FlowMatch(eth_dst=B, ip_src="1.1.1.1", ip_dst="2.2.2.2", ip_proto=17, tp_src=1, tp_dst=2),
    FlowMatch(eth_src=A, eth_dst=B, ip_src="1.1.1.1", ip_proto=17, tp_src=1, tp_dst=2),
    FlowMatch(eth_src=A, eth_dst=B, ip_src="1.1.1.1", ip_dst="2.2.2.2", tp_src=1, tp_dst=2),
    FlowMatch(eth_src=A, eth_dst=B, ip_src="1.1.1.1", ip_dst="2.2.2.2", ip_proto=6, tp_src=1),
    FlowMatch(eth_src=A, eth_dst=B, arp_op=1, arp_sha=A, arp_spa="1.1.1.1"),
])  # fmt: skip
def test_build_refuses_incomplete_specs(spec: FlowMatch) -> None:
    with pytest.raises(ValueError):
        frame.build(spec)


# ---- apply ----


@st.composite
def specs_and_changes(draw: st.DrawFn) -> tuple[FlowMatch, bytes, dict[str, object]]:
    spec, payload = draw(frame_specs())
    candidates: dict[str, st.SearchStrategy[object]] = {"eth_src": macs, "eth_dst": macs, "vlan_ids": vlan_id_stacks}
    if spec.peek("ip_src") is not None:
        candidates |= {"ip_src": ips, "ip_dst": ips, "ip_ttl": st.integers(0, 255), "ip_tos": st.integers(0, 255)}
        proto, later = spec.peek("ip_proto"), spec.peek("ip_frag") == "later"
        if proto in (6, 17) and not later:
            candidates |= {"tp_src": ports, "tp_dst": ports}
        if proto == 1 and spec.peek("icmp_id") is not None:
            candidates |= {"icmp_id": ports}
        if proto == 1 and spec.peek("icmp_data") is not None:
            candidates |= {"icmp_data": st.builds(quoted_datagram, ips, ips, st.just(6), ports, ports),
                           "tp_dst": st.integers(0, 15)}  # fmt: skip
    chosen = draw(st.lists(st.sampled_from(sorted(candidates)), unique=True, max_size=4))
    return spec, payload, {name: draw(candidates[name]) for name in chosen}


@settings(max_examples=80, deadline=None)
@given(specs_and_changes())
def test_apply_equals_building_the_changed_spec(case: tuple[FlowMatch, bytes, dict[str, object]]) -> None:
    spec, payload, changes = case
    raw = frame.build(spec, payload)
    changed = spec.copy()
    for name, value in changes.items():
        setattr(changed, name, value)
    result = frame.apply(raw, changes)  # type: ignore[arg-type]
    assert parse_frame(result).as_dict() == parse_frame(frame.build(changed, payload)).as_dict()
    assert rebuilds_identically(result)


def test_diff_then_apply_executes_the_simulation() -> None:
    raw = frame.build(udp_spec(vlan_ids=(10,), ip_ttl=9), b"x" * 100)
    original = parse_frame(raw, in_port=1)
    final = original.copy()
    final.ip_ttl = (final.ip_ttl or 0) - 1
    final.ip_src, final.tp_src = "192.0.2.1", 40001  # SNAT
    final.eth_src, final.eth_dst = "02:00:00:00:00:99", "02:00:00:00:00:98"
    final.vlan_ids = ()
    result = frame.apply(raw, final.diff(original))
    assert parse_frame(result, in_port=1) == final and rebuilds_identically(result)


def test_apply_keeps_udp_checksum_zero_and_vlan_priorities() -> None:
    raw = frame.build(udp_spec(vlan_ids=(5, 6)), b"data", udp_checksum=False)
    tagged = bytearray(raw)
    tagged[18] |= 0xA0  # inner tag priority 5
    result = frame.apply(bytes(tagged), {"ip_dst": "10.9.9.9", "tp_dst": 99, "vlan_ids": (7, 8, 9)})
    assert result[14 + 12 + 6 : 14 + 12 + 8] == b"\x00\x00"  # UDP checksum still "none"
    assert parse_frame(result).peek("vlan_ids") == (7, 8, 9) and result[22] >> 5 == 5
    assert rebuilds_identically(result)


def test_apply_nat_of_an_icmp_error_payload() -> None:
    quoted = quoted_datagram("192.0.2.1", "8.8.8.8", 17, 40001, 53)
    error = frame.build(FlowMatch(eth_src=A, eth_dst=B, ip_src="8.8.8.8", ip_dst="192.0.2.1", ip_proto=1, tp_src=3,
                                  tp_dst=3, icmp_data=quoted))  # fmt: skip
    inner = icmp.rewrite_embedded(quoted, ip_src="10.0.0.5", tp_src=5000)
    result = frame.apply(error, {"ip_dst": "10.0.0.5", "icmp_data": inner})
    assert icmp.parse_embedded(parse_frame(result).peek("icmp_data") or b"").tp_src == 5000  # type: ignore[arg-type]
    assert rebuilds_identically(result)


@pytest.mark.parametrize(("spec", "changes"), [
    (udp_spec(), {"ip_proto": 6}),
    (udp_spec(), {"in_port": 3}),
    (udp_spec(), {"icmp_id": 3}),
    (udp_spec(ip_frag="later"), {"tp_src": 3}),
    (udp_spec(), {"tp_src": 70000}),
    (udp_spec(), {"ip_ttl": 256}),
    (udp_spec(), {"vlan_ids": (4096,)}),
    (udp_spec(), {"eth_src": "nope"}),
    (FlowMatch(eth_src=A, eth_dst=B, arp_op=1, arp_sha=A, arp_spa="1.1.1.1", arp_tpa="1.1.1.2"), {"ip_src": "1.2.3.4"}),
    (FlowMatch(eth_src=A, eth_dst=B, ip_src="1.1.1.1", ip_dst="2.2.2.2", ip_proto=1, tp_src=8), {"icmp_data": b"x"}),
    (FlowMatch(eth_src=A, eth_dst=B, ip_src="1.1.1.1", ip_dst="2.2.2.2", ip_proto=1, tp_src=3), {"icmp_id": 1}),
])  # fmt: skip
def test_apply_refuses_what_it_cannot_do(spec: FlowMatch, changes: dict[str, object]) -> None:
    raw = frame.build(spec, b"12345678")
    with pytest.raises(ValueError):
        frame.apply(raw, changes)  # type: ignore[arg-type]


def test_apply_to_a_malformed_frame() -> None:
    with pytest.raises(MalformedPacket):
        frame.apply(frame.build(udp_spec())[:-1], {"eth_src": A})
    assert frame.parse is parse_frame
