"""NAT rules and state operations, one behaviour each (spec 3.7; `NatState.scala`, `*NatRule.java`): which packets
dynamic NAT translates, how keys are built (sticky, ICMP echo, ICMP errors by their quote), static rules and the
quoted datagram, the transaction seen by later lookups, draws, "not yet" and exhaustion, reverse rules."""

from __future__ import annotations

import random

import pytest

from midonet.packets import ethernet, icmp
from midonet.packets import frame as packet_frames
from midonet.packets.flowmatch import FlowMatch, parse_frame
from midonet.simulation.context import PacketContext
from midonet.simulation.devices import nat
from midonet.simulation.devices.chain import process_chain
from midonet.simulation.pipeline import Stage
from midonet.simulation.topology import NotYet
from midonet.state.nat import NatBinding, NatBound, NatDeleted, NatKey, NatKeyType
from midonet.state.tables import InMemoryTables, in_memory
from midonet.testing import frames
from midonet.testing.clock import FakeClock
from midonet.testing.topologies import TopologyBuilder
from midonet.topology.chains import Chain, NatTarget, RuleAction
from midonet.topology.ids import ChainId, PortId

DEV = "00000000-0000-4000-8000-0000000000d1"
MAC_A, MAC_B = "02:00:00:00:00:01", "02:00:00:00:00:02"
STAGE = Stage.ROUTER_IN_FILTER


def ctx_for(data: bytes, b: TopologyBuilder | None = None, tables: InMemoryTables | None = None) -> PacketContext:
    ctx = PacketContext(data, parse_frame(data), in_port=PortId("00000099-0000-4000-8000-000000000000"),
                        tracing=True)
    ctx.topology = (b or TopologyBuilder()).topology()
    ctx.tables = tables or in_memory(FakeClock(), random.Random(1))
    ctx.current_device = DEV
    return ctx


def udp(src: str = "10.0.1.1", dst: str = "10.0.2.1", sport: int = 1000, dport: int = 53) -> bytes:
    return frames.udp(MAC_A, MAC_B, src, dst, sport=sport, dport=dport)


def error_about(datagram_frame: bytes, src: str, dst: str) -> bytes:
    _, datagram = ethernet.parse(datagram_frame)
    return frames.icmp_error(MAC_B, MAC_A, src, dst, icmp.embedded_bytes(datagram), code=3)


def run_chain(ctx: PacketContext, b: TopologyBuilder, chain: Chain) -> RuleAction:
    ctx.topology = b.topology()
    return process_chain(ctx, ctx.topology.get_chain(ChainId(chain.id)), STAGE)


# ---- what dynamic NAT translates, and its keys ----

@pytest.mark.parametrize(("data", "ok"), [
    (udp(), True),
    (frames.tcp(MAC_A, MAC_B, "10.0.1.1", "10.0.2.1"), True),
    (frames.ping(MAC_A, MAC_B, "10.0.1.1", "10.0.2.1"), True),
    (error_about(udp(), "10.0.2.1", "10.0.1.1"), True),
    (packet_frames.build(FlowMatch(eth_src=MAC_A, eth_dst=MAC_B, ip_src="10.0.1.1", ip_dst="10.0.2.1", ip_proto=1,
                                  tp_src=13, tp_dst=0)), False),                   # ICMP timestamp
    (frames.arp_request(MAC_A, "10.0.1.1", "10.0.1.2"), False),
])
def test_dynamic_nat_translates_tcp_udp_icmp_echo_and_errors_only(data: bytes, ok: bool) -> None:
    assert nat.supported(parse_frame(data)) is ok


def test_keys_of_tcp_udp_and_sticky_keys() -> None:
    m = parse_frame(udp())
    assert nat.key_of(m, DEV, NatKeyType.FWD_DNAT) == NatKey(NatKeyType.FWD_DNAT, "10.0.1.1", 1000, "10.0.2.1", 53,
                                                             17, DEV)
    assert nat.key_of(m, DEV, NatKeyType.FWD_STICKY_DNAT).tp_src == 0         # type: ignore[union-attr]
    assert nat.key_of(m, DEV, NatKeyType.REV_STICKY_DNAT).tp_dst == 0         # type: ignore[union-attr]


def test_an_echo_is_keyed_by_its_identifier_which_makes_the_flow_userspace_only() -> None:
    m = parse_frame(frames.ping(MAC_A, MAC_B, "10.0.1.1", "10.0.2.1", ident=77))
    assert nat.key_of(m, DEV, NatKeyType.FWD_SNAT) == NatKey(NatKeyType.FWD_SNAT, "10.0.1.1", 77, "10.0.2.1", 77, 1,
                                                             DEV)
    assert m.userspace_only


def test_an_icmp_error_is_keyed_by_the_connection_it_quotes_turned_around() -> None:
    m = parse_frame(error_about(udp(), "10.0.2.1", "10.0.1.1"))
    assert nat.key_of(m, DEV, NatKeyType.REV_DNAT) == NatKey(NatKeyType.REV_DNAT, "10.0.2.1", 53, "10.0.1.1", 1000,
                                                             17, DEV)
    quoting_a_ping = parse_frame(error_about(frames.ping(MAC_A, MAC_B, "10.0.1.1", "10.0.2.1", ident=9),
                                             "10.0.2.1", "10.0.1.1"))
    assert nat.key_of(quoting_a_ping, DEV, NatKeyType.REV_SNAT) == NatKey(
        NatKeyType.REV_SNAT, "10.0.2.1", 9, "10.0.1.1", 9, 1, DEV)


# ---- forward dynamic NAT ----

def test_dnat_draws_a_target_address_and_port_from_the_injected_random() -> None:
    targets = (NatTarget(nw_start="10.0.2.10", nw_end="10.0.2.19", tp_start=8000, tp_end=8099),
               NatTarget(nw_start="10.0.3.1", nw_end="10.0.3.1", tp_start=9000, tp_end=9000))
    picks = []
    for _ in range(2):
        ctx = ctx_for(udp(), tables=in_memory(FakeClock(), random.Random(4)))
        assert nat.forward(ctx, NatKeyType.FWD_DNAT, targets)
        picks.append((ctx.match.peek("ip_dst"), ctx.match.peek("tp_dst")))
        assert ctx.nw_dst_rewritten and ctx.stateful
    assert picks[0] == picks[1]
    ip, port = picks[0]
    assert isinstance(port, int)
    assert (str(ip).startswith("10.0.2.1") and 8000 <= port <= 8099) or (ip, port) == ("10.0.3.1", 9000)


def test_a_forward_translation_requests_both_keys_with_a_reference_each() -> None:
    ctx = ctx_for(udp())
    nat.forward(ctx, NatKeyType.FWD_DNAT, (NatTarget(nw_start="10.0.2.9", nw_end="10.0.2.9", tp_start=80,
                                                     tp_end=80),))
    fwd = NatKey(NatKeyType.FWD_DNAT, "10.0.1.1", 1000, "10.0.2.1", 53, 17, DEV)
    rev = NatKey(NatKeyType.REV_DNAT, "10.0.2.9", 80, "10.0.1.1", 1000, 17, DEV)
    assert ctx.state_writes == [NatBound(fwd, NatBinding("10.0.2.9", 80)), NatBound(rev, NatBinding("10.0.2.1", 53))]
    assert {("nat", fwd), ("nat", rev)} <= ctx.tags


def test_icmp_keeps_its_identifier_and_only_the_address_changes() -> None:
    ctx = ctx_for(frames.ping(MAC_A, MAC_B, "10.0.1.1", "10.0.2.1", ident=12))
    nat.forward(ctx, NatKeyType.FWD_SNAT, (NatTarget(nw_start="192.0.2.1", nw_end="192.0.2.1", tp_start=1024,
                                                     tp_end=2047),))
    assert ctx.match.diff(ctx.orig_match) == {"ip_src": "192.0.2.1"}
    [bound, _] = ctx.state_writes
    assert isinstance(bound, NatBound) and bound.binding == NatBinding("192.0.2.1", 12)


def test_a_key_written_earlier_in_the_simulation_is_reused_and_a_deleted_one_is_not() -> None:
    ctx = ctx_for(udp())
    key = NatKey(NatKeyType.FWD_DNAT, "10.0.1.1", 1000, "10.0.2.1", 53, 17, DEV)
    ctx.tables.nat.bind(key, NatBinding("10.0.2.7", 7))
    assert nat.lookup(ctx, key) == NatBinding("10.0.2.7", 7)
    ctx.request(NatDeleted(key))
    assert nat.lookup(ctx, key) is None
    ctx.request(NatBound(key, NatBinding("10.0.2.8", 8)))
    assert nat.lookup(ctx, key) == NatBinding("10.0.2.8", 8)


def test_snat_waits_when_a_port_block_must_be_leased() -> None:
    ctx = ctx_for(udp(), tables=in_memory(FakeClock(), async_nat_leases=True))
    with pytest.raises(NotYet) as waiting:
        nat.forward(ctx, NatKeyType.FWD_SNAT, (NatTarget(nw_start="192.0.2.1", nw_end="192.0.2.1", tp_start=1024,
                                                         tp_end=2047),))
    assert (waiting.value.kind, waiting.value.id) == ("nat_block", f"{DEV}/192.0.2.1")


# ---- rules in chains ----

def test_a_rule_that_does_not_apply_lets_the_chain_go_on() -> None:
    b = TopologyBuilder()
    c = b.chain("c")
    b.nat(c, "snat", ("192.0.2.1", "192.0.2.1", 1024, 2047))
    b.rule(c, "drop")
    ctx = ctx_for(frames.arp_request(MAC_A, "10.0.1.1", "10.0.1.2"))
    assert run_chain(ctx, b, c) is RuleAction.DROP
    assert ctx.state_writes == []


def test_a_static_rule_needs_exactly_one_target() -> None:
    b = TopologyBuilder()
    c = b.chain("c")
    b.nat(c, "dnat", "10.0.2.8", "10.0.2.9")
    ctx = ctx_for(udp())
    assert run_chain(ctx, b, c) is RuleAction.ACCEPT              # fell off the end: not applied
    assert ctx.match.peek("ip_dst") == "10.0.2.1"


def test_return_after_nat_resumes_the_calling_chain() -> None:
    b = TopologyBuilder()
    top, sub = b.chain("top"), b.chain("sub")
    b.jump(top, sub)
    b.nat(sub, "snat", "192.0.2.1", action="return")
    b.rule(sub, "drop")
    b.rule(top, "reject", nw_src_ip="192.0.2.1/32")
    ctx = ctx_for(udp())
    assert run_chain(ctx, b, top) is RuleAction.REJECT              # translated, then seen by the caller


def test_static_snat_of_an_icmp_error_rewrites_the_quoted_destination() -> None:
    b = TopologyBuilder()
    c = b.chain("c")
    b.nat(c, "snat", "192.0.2.10", nw_src_ip="10.0.1.1/32")
    error = error_about(udp(src="10.0.2.1", dst="10.0.1.1", sport=53, dport=1000), "10.0.1.1", "10.0.2.1")
    ctx = ctx_for(error)
    run_chain(ctx, b, c)
    quoted = icmp.parse_embedded(ctx.match.peek("icmp_data"))  # type: ignore[arg-type]
    assert (ctx.match.peek("ip_src"), quoted.ip_dst, quoted.tp_dst) == ("192.0.2.10", "192.0.2.10", 1000)


def test_static_dnat_with_a_quoted_destination_condition_rewrites_that_address() -> None:
    b = TopologyBuilder()
    c = b.chain("c")
    b.nat(c, "dnat", "10.0.1.1", icmp_data_dst_ip="192.0.2.10/32")
    error = error_about(udp(src="10.0.2.1", dst="192.0.2.10"), "10.0.2.254", "10.0.2.1")
    ctx = ctx_for(error)
    run_chain(ctx, b, c)
    quoted = icmp.parse_embedded(ctx.match.peek("icmp_data"))  # type: ignore[arg-type]
    assert (ctx.match.peek("ip_dst"), quoted.ip_dst) == ("10.0.1.1", "10.0.1.1")


def test_exhausted_snat_ports_drop() -> None:
    b = TopologyBuilder()
    c = b.chain("c")
    b.nat(c, "snat", ("192.0.2.1", "192.0.2.1", 3000, 3000))
    tables = in_memory(FakeClock())
    first = ctx_for(udp(sport=1), tables=tables)
    assert run_chain(first, b, c) is RuleAction.ACCEPT
    tables.apply(first.state_writes)
    second = ctx_for(udp(sport=2), tables=tables)
    assert run_chain(second, b, c) is RuleAction.DROP


def test_reverse_snat_restores_the_destination_and_marks_it_rewritten() -> None:
    b = TopologyBuilder()
    c = b.chain("c")
    b.nat(c, "rev_snat")
    tables = in_memory(FakeClock())
    rev = NatKey(NatKeyType.REV_SNAT, "10.0.2.1", 53, "192.0.2.1", 1024, 17, DEV)
    tables.nat.bind(rev, NatBinding("10.0.1.1", 1000))
    ctx = ctx_for(udp(src="10.0.2.1", dst="192.0.2.1", sport=53, dport=1024), tables=tables)
    assert run_chain(ctx, b, c) is RuleAction.ACCEPT
    assert ctx.match.diff(ctx.orig_match) == {"ip_dst": "10.0.1.1", "tp_dst": 1000}
    assert ctx.nw_dst_rewritten and ("nat", rev) in ctx.tags
    assert ctx.state_writes == []                                   # a return flow references nothing


def test_apply_if_exists_translates_by_a_forward_key_and_references_it() -> None:
    tables = in_memory(FakeClock())
    fwd = NatKey(NatKeyType.FWD_SNAT, "10.0.1.1", 1000, "10.0.2.1", 53, 17, DEV)
    tables.nat.bind(fwd, NatBinding("192.0.2.1", 1500))
    ctx = ctx_for(udp(), tables=tables)
    assert nat.apply_if_exists(ctx, fwd)
    assert ctx.match.diff(ctx.orig_match) == {"ip_src": "192.0.2.1", "tp_src": 1500}
    assert len(ctx.state_writes) == 2
    missing = NatKey(NatKeyType.FWD_DNAT, "10.0.1.1", 1000, "10.0.2.1", 53, 17, DEV)
    assert not nat.apply_if_exists(ctx, missing) and ("nat", missing) in ctx.tags


def test_delete_binding_removes_both_keys() -> None:
    tables = in_memory(FakeClock())
    fwd = NatKey(NatKeyType.FWD_DNAT, "10.0.1.1", 1000, "10.0.2.100", 80, 6, DEV)
    tables.nat.bind(fwd, NatBinding("10.0.2.1", 8080))
    ctx = ctx_for(udp(), tables=tables)
    nat.delete_binding(ctx, fwd)
    assert ctx.state_writes == [NatDeleted(fwd), NatDeleted(fwd.return_key(NatBinding("10.0.2.1", 8080)))]
