"""Rule conditions (spec 3.5, `rules/Condition.java`): every field, inversions, masks, fragment policy, groups,
connection tracking, and what each check reads (the flow's wildcard)."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from midonet.packets.flowmatch import FlowMatch
from midonet.simulation.conditions import MATCH_ALL, compile_condition, describe
from midonet.simulation.context import PacketContext
from midonet.state.conntrack import ConnTrackKey
from midonet.state.tables import in_memory
from midonet.testing.clock import FakeClock
from midonet.topology.chains import Condition, FragmentPolicy, PortRange
from midonet.topology.ids import PortId

IN = "00000001-0000-4000-8000-000000000000"
OUT = "00000002-0000-4000-8000-000000000000"
GROUP = "00000003-0000-4000-8000-000000000000"
ADDRS = "00000004-0000-4000-8000-000000000000"
DEVICE = "00000005-0000-4000-8000-000000000000"


def packet(**fields: object) -> FlowMatch:
    base: dict[str, object] = dict(eth_src="02:00:00:00:00:01", eth_dst="02:00:00:00:00:02", eth_type=0x0800,
                                   vlan_ids=(), ip_src="10.0.1.1", ip_dst="10.0.2.1", ip_proto=6, ip_tos=0,
                                   ip_ttl=64, ip_frag="none", tp_src=1000, tp_dst=80)
    base.update(fields)
    return FlowMatch(**base)


def context(match: FlowMatch | None = None, **position: object) -> PacketContext:
    ctx = PacketContext(b"", match or packet(), in_port=PortId(IN))
    ctx.tables = in_memory(FakeClock())
    ctx.in_port = PortId(IN)
    for name, value in position.items():
        setattr(ctx, name, value)
    return ctx


def matches(cond: Condition, ctx: PacketContext | None = None, groups: dict[str, frozenset[str]] | None = None,
            ) -> bool:
    return compile_condition(cond, groups or {}).matches(ctx or context())


def test_empty_condition_matches_everything() -> None:
    assert matches(Condition())
    assert MATCH_ALL.matches(context())
    assert not matches(Condition(conjunction_inv=True))


@pytest.mark.parametrize(("cond", "expected"), [
    (Condition(dl_type=0x0800), True),
    (Condition(dl_type=0x0806), False),
    (Condition(dl_type=0x0806, inv_dl_type=True), True),
    (Condition(nw_proto=6), True),
    (Condition(nw_proto=17), False),
    (Condition(nw_proto=6, nw_proto_inv=True), False),
    (Condition(nw_tos=0), True),
    (Condition(nw_tos=4), False),
    (Condition(nw_tos=4, nw_tos_inv=True), True),
    (Condition(dl_src="02:00:00:00:00:01"), True),
    (Condition(dl_dst="02:00:00:00:00:01"), False),
    (Condition(dl_dst="02:00:00:00:00:01", inv_dl_dst=True), True),
    (Condition(nw_src_ip="10.0.1.0/24"), True),
    (Condition(nw_src_ip="10.0.2.0/24"), False),
    (Condition(nw_src_ip="10.0.1.0/24", nw_src_inv=True), False),
    (Condition(nw_dst_ip="10.0.2.1/32"), True),
    (Condition(nw_dst_ip="0.0.0.0/0"), True),
    (Condition(nw_dst_ip="fd00::/8"), False),
    (Condition(nw_dst_ip="fd00::/8", nw_dst_inv=True), True),
    (Condition(tp_src=PortRange(start=1000, end=1000)), True),
    (Condition(tp_dst=PortRange(start=81, end=90)), False),
    (Condition(tp_dst=PortRange(start=81, end=90), tp_dst_inv=True), True),
    (Condition(tp_dst=PortRange(start=None, end=80)), True),
    (Condition(in_port_ids=(IN,)), True),
    (Condition(in_port_ids=(OUT,)), False),
    (Condition(in_port_ids=(IN,), in_port_inv=True), False),
    (Condition(out_port_ids=(OUT,)), False),
    (Condition(out_port_ids=(OUT,), out_port_inv=True), True),
    (Condition(no_vlan=True), True),
    (Condition(vlan=5), False),
])
def test_each_field_and_its_inversion(cond: Condition, expected: bool) -> None:
    assert matches(cond) is expected
    assert matches(cond.replace(conjunction_inv=True)) is not expected


def test_all_fields_must_pass() -> None:
    assert matches(Condition(nw_proto=6, tp_dst=PortRange(start=80, end=80), nw_src_ip="10.0.1.0/24"))
    assert not matches(Condition(nw_proto=6, tp_dst=PortRange(start=80, end=80), nw_src_ip="10.9.0.0/16"))


def test_a_port_range_matches_a_packet_without_ports() -> None:
    arp = FlowMatch(eth_src="02:00:00:00:00:01", eth_dst="ff:ff:ff:ff:ff:ff", eth_type=0x0806, vlan_ids=(),
                    arp_op=1, arp_spa="10.0.0.1", arp_tpa="10.0.0.2")
    assert matches(Condition(tp_dst=PortRange(start=80, end=80)), context(arp))
    assert not matches(Condition(nw_src_ip="10.0.0.0/8"), context(arp))      # but an IP subnet does not


def test_vlan_conditions() -> None:
    tagged = context(packet(vlan_ids=(5, 7)))
    assert matches(Condition(vlan=7), tagged)
    assert not matches(Condition(no_vlan=True), tagged)


@pytest.mark.parametrize(("policy", "frag", "expected"), [
    (FragmentPolicy.ANY, "later", True),
    (FragmentPolicy.HEADER, "none", True),
    (FragmentPolicy.HEADER, "first", True),
    (FragmentPolicy.HEADER, "later", False),
    (FragmentPolicy.NONHEADER, "later", True),
    (FragmentPolicy.NONHEADER, "first", False),
    (FragmentPolicy.UNFRAGMENTED, "none", True),
    (FragmentPolicy.UNFRAGMENTED, "first", False),
])
def test_fragment_policy_is_checked_first_and_not_inverted(policy: FragmentPolicy, frag: str,
                                                           expected: bool) -> None:
    ctx = context(packet(ip_frag=frag))
    assert matches(Condition(fragment_policy=policy), ctx) is expected
    if not expected:
        assert not matches(Condition(fragment_policy=policy, conjunction_inv=True), context(packet(ip_frag=frag)))


def test_non_ip_packets_count_as_unfragmented() -> None:
    arp = FlowMatch(eth_src="02:00:00:00:00:01", eth_dst="02:00:00:00:00:02", eth_type=0x0806, arp_op=1)
    assert matches(Condition(fragment_policy=FragmentPolicy.UNFRAGMENTED), context(arp))


def test_port_groups_of_the_exterior_ingress_port_and_of_the_in_and_out_ports() -> None:
    groups = frozenset({GROUP})
    assert matches(Condition(port_group_id=GROUP), context(port_groups=groups))
    assert not matches(Condition(port_group_id=GROUP), context(in_port_groups=groups))
    assert matches(Condition(port_group_id=GROUP, inv_port_group=True), context())
    assert matches(Condition(in_port_group_id=GROUP), context(in_port_groups=groups))
    assert matches(Condition(out_port_group_id=GROUP), context(out_port_groups=groups))
    assert not matches(Condition(out_port_group_id=GROUP, inv_out_port_group=True),
                       context(out_port_groups=groups))


def test_ip_address_groups() -> None:
    groups = {ADDRS: frozenset({"10.0.1.1", "10.0.9.9"})}
    assert matches(Condition(ip_addr_group_id_src=ADDRS), groups=groups)
    assert not matches(Condition(ip_addr_group_id_dst=ADDRS), groups=groups)
    assert matches(Condition(ip_addr_group_id_dst=ADDRS, inv_ip_addr_group_id_dst=True), groups=groups)
    assert not matches(Condition(ip_addr_group_id_src=ADDRS))             # an unknown group is empty


def test_traversed_device_reads_the_flow_tags() -> None:
    ctx = context()
    assert not matches(Condition(traversed_device=DEVICE), ctx)
    ctx.tags.add(DEVICE)
    assert matches(Condition(traversed_device=DEVICE), ctx)
    assert not matches(Condition(traversed_device=DEVICE, traversed_device_inv=True), ctx)


def test_icmp_data_addresses_read_the_quoted_header() -> None:
    quoted = bytes([0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 1, 1, 192, 168, 0, 9]) + bytes(8)
    error = packet(ip_proto=1, tp_src=3, tp_dst=1, icmp_data=quoted)
    assert matches(Condition(icmp_data_src_ip="10.0.1.0/24"), context(error))
    assert not matches(Condition(icmp_data_dst_ip="10.0.0.0/8"), context(error))
    assert matches(Condition(icmp_data_dst_ip="10.0.0.0/8", icmp_data_dst_ip_inv=True), context(error))
    assert not matches(Condition(icmp_data_src_ip="10.0.1.0/24"))        # no quoted datagram


def test_match_forward_and_return_flow_ask_connection_tracking() -> None:
    ctx = context()
    ctx.ingress_device = DEVICE
    assert matches(Condition(match_forward_flow=True), ctx)
    assert not matches(Condition(match_return_flow=True), ctx)
    assert ctx.stateful
    key = ConnTrackKey("10.0.1.1", 1000, "10.0.2.1", 80, 6, DEVICE)
    assert ("conntrack", key) in ctx.tags

    reply = context()
    reply.ingress_device = DEVICE
    reply.tables.conntrack.track(key)
    assert matches(Condition(match_return_flow=True), reply)


def test_untracked_protocols_are_forward_flows_and_generated_packets_return_flows() -> None:
    arp = FlowMatch(eth_src="02:00:00:00:00:01", eth_dst="02:00:00:00:00:02", eth_type=0x0806, arp_op=1)
    assert matches(Condition(match_forward_flow=True), context(arp))
    generated = PacketContext(b"", packet(), egress_port=PortId(OUT))
    assert matches(Condition(match_return_flow=True), generated)


def test_a_failing_check_stops_the_reads() -> None:
    ctx = context()
    assert not matches(Condition(nw_proto=17, tp_dst=PortRange(start=80, end=80)), ctx)
    assert ctx.match.fields_seen() == {"ip_proto"}
    ctx = context()
    assert matches(Condition(fragment_policy=FragmentPolicy.ANY), ctx)
    assert ctx.match.fields_seen() == frozenset()                        # ANY does not read the fragment kind


def test_describe_names_the_fields_set() -> None:
    cond = Condition(nw_proto=6, tp_dst=PortRange(start=22, end=22), tp_dst_inv=True, in_port_ids=(IN,))
    assert describe(cond) == "in_port_ids=00000001, nw_proto=6, !tp_dst=22..22"
    assert describe(Condition(conjunction_inv=True, nw_src_ip="10.0.0.0/8")) == "not (nw_src_ip=10.0.0.0/8)"
    assert describe(Condition()) == "any packet"


# ---- properties against independent oracles ----

ips = st.integers(0, 2**32 - 1).map(lambda i: str(ipaddress.IPv4Address(i)))


@given(ip=ips, network=ips, length=st.integers(0, 32), inv=st.booleans())
def test_subnet_membership_agrees_with_ipaddress(ip: str, network: str, length: int, inv: bool) -> None:
    cidr = str(ipaddress.ip_network(f"{network}/{length}", strict=False))
    expected = ipaddress.IPv4Address(ip) in ipaddress.ip_network(cidr)
    assert matches(Condition(nw_dst_ip=cidr, nw_dst_inv=inv), context(packet(ip_dst=ip))) is (expected != inv)


@given(port=st.integers(0, 65535), low=st.integers(0, 65535), high=st.integers(0, 65535), inv=st.booleans())
def test_port_ranges_are_inclusive(port: int, low: int, high: int, inv: bool) -> None:
    low, high = min(low, high), max(low, high)
    cond = Condition(tp_src=PortRange(start=low, end=high), tp_src_inv=inv)
    assert matches(cond, context(packet(tp_src=port))) is ((low <= port <= high) != inv)


macs = st.integers(0, 2**48 - 1)


def mac_text(value: int) -> str:
    return value.to_bytes(6, "big").hex(":")


@given(mac=macs, wanted=macs, mask=st.integers(0, 2**48 - 1) | st.just(2**64 - 1))
def test_mac_masks_compare_the_low_48_bits(mac: int, wanted: int, mask: int) -> None:
    cond = Condition(dl_src=mac_text(wanted), dl_src_mask=mask)
    bits = mask & (2**48 - 1)
    assert matches(cond, context(packet(eth_src=mac_text(mac)))) is ((mac & bits) == (wanted & bits))


@given(proto=st.sampled_from([1, 6, 17]), dport=st.integers(0, 65535), inv=st.booleans())
def test_conjunction_inversion_negates_the_whole_condition(proto: int, dport: int, inv: bool) -> None:
    cond = Condition(nw_proto=6, tp_dst=PortRange(start=0, end=1023), tp_dst_inv=inv)
    plain = matches(cond, context(packet(ip_proto=proto, tp_dst=dport)))
    inverted = matches(cond.replace(conjunction_inv=True), context(packet(ip_proto=proto, tp_dst=dport)))
    assert plain is not inverted
