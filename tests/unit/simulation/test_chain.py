"""Chain evaluation (spec 3.5, `Chain.scala`): first decisive rule wins, jump and return, loops, default accept,
several filter chains, tags, and NAT rules answering their action."""

from __future__ import annotations

import pytest

from midonet.packets.flowmatch import FlowMatch
from midonet.simulation.context import PacketContext
from midonet.simulation.devices.chain import apply_filters, process_chain
from midonet.simulation.pipeline import Stage
from midonet.simulation.topology import NotYet
from midonet.state.tables import in_memory
from midonet.testing.clock import FakeClock
from midonet.testing.topologies import TopologyBuilder
from midonet.topology.chains import Chain, NatTarget, Rule, RuleAction, RuleType
from midonet.topology.ids import ChainId, PortId

ACCEPT, DROP, REJECT = RuleAction.ACCEPT, RuleAction.DROP, RuleAction.REJECT
STAGE = Stage.ROUTER_IN_FILTER


def context(b: TopologyBuilder, dport: int = 80, tracing: bool = True) -> PacketContext:
    match = FlowMatch(eth_src="02:00:00:00:00:01", eth_dst="02:00:00:00:00:02", eth_type=0x0800, vlan_ids=(),
                      ip_src="10.0.1.1", ip_dst="10.0.2.1", ip_proto=6, ip_frag="none", tp_src=1000,
                      tp_dst=dport)
    ctx = PacketContext(b"", match, in_port=PortId("00000099-0000-4000-8000-000000000000"), tracing=tracing)
    ctx.topology = b.topology()
    ctx.tables = in_memory(FakeClock())
    return ctx


def run(b: TopologyBuilder, chain: Chain, dport: int = 80) -> RuleAction:
    ctx = context(b, dport)
    return process_chain(ctx, ctx.topology.get_chain(ChainId(chain.id)), STAGE)


def test_an_empty_chain_accepts() -> None:
    b = TopologyBuilder()
    assert run(b, b.chain("empty")) is ACCEPT


def test_the_first_matching_decisive_rule_wins() -> None:
    b = TopologyBuilder()
    c = b.chain("c")
    b.rule(c, "drop", tp_dst=(22, 22))
    b.rule(c, "reject", tp_dst=(80, 80))
    b.rule(c, "drop")
    assert run(b, c, 22) is DROP
    assert run(b, c, 80) is REJECT
    assert run(b, c, 443) is DROP


def test_continue_goes_on_and_return_at_the_top_accepts() -> None:
    b = TopologyBuilder()
    c = b.chain("c")
    b.rule(c, "continue")
    b.rule(c, "return", tp_dst=(80, 80))
    b.rule(c, "drop")
    assert run(b, c, 80) is ACCEPT
    assert run(b, c, 81) is DROP


def test_jump_evaluates_the_target_inline_and_return_resumes_the_caller() -> None:
    b = TopologyBuilder()
    top, sub = b.chain("top"), b.chain("sub")
    b.rule(sub, "return", tp_dst=(80, 80))
    b.rule(sub, "reject", tp_dst=(81, 81))
    b.jump(top, sub)
    b.rule(top, "drop", tp_dst=(80, 80))
    assert run(b, top, 80) is DROP        # returned from sub, dropped by the rule after the jump
    assert run(b, top, 81) is REJECT      # decided inside sub
    assert run(b, top, 82) is ACCEPT      # fell off both ends


def test_a_jump_loop_is_ignored() -> None:
    b = TopologyBuilder()
    a, c = b.chain("a"), b.chain("c")
    b.jump(a, c)
    b.jump(c, a)                          # c jumps back to a: already on the path
    b.rule(c, "drop", tp_dst=(80, 80))
    assert run(b, a, 80) is DROP
    assert run(b, a, 81) is ACCEPT


def test_a_jump_to_a_chain_not_loaded_is_not_yet() -> None:
    b = TopologyBuilder()
    c = b.chain("c")
    b.append(c, Rule(id=b.new_id(), chain_id=c.id, type=RuleType.JUMP, jump_chain_id=b.new_id()))
    with pytest.raises(NotYet):
        run(b, c)


def test_filters_run_in_order_until_one_does_not_accept() -> None:
    b = TopologyBuilder()
    first, second, third = b.chain("first"), b.chain("second"), b.chain("third")
    b.rule(first, "accept")
    b.rule(second, "drop", tp_dst=(80, 80))
    b.rule(third, "reject")
    ctx = context(b, 80)
    ids = tuple(ChainId(c.id) for c in (first, second, third))
    assert apply_filters(ctx, ids, STAGE) is DROP
    assert {first.id, second.id} <= ctx.tags and third.id not in ctx.tags
    assert apply_filters(context(b, 81), ids, STAGE) is REJECT


def test_every_chain_evaluated_tags_the_flow_and_meters_tag_it_too() -> None:
    b = TopologyBuilder()
    top, sub = b.chain("top"), b.chain("sub")
    b.jump(top, sub)
    rule = b.rule(sub, "accept")
    b.update(rule, meter_name="web")
    ctx = context(b)
    assert process_chain(ctx, ctx.topology.get_chain(ChainId(top.id)), STAGE) is ACCEPT
    assert {top.id, sub.id, ("meter", "web")} <= ctx.tags


def test_a_nat_rule_translates_and_answers_its_action() -> None:
    b = TopologyBuilder()
    c = b.chain("c")
    b.append(c, Rule(id=b.new_id(), chain_id=c.id, type=RuleType.NAT, action=RuleAction.ACCEPT, dnat=True,
                     nat_targets=(NatTarget(nw_start="10.9.9.9", nw_end="10.9.9.9"),)))
    b.rule(c, "drop")
    ctx = context(b)
    assert process_chain(ctx, ctx.topology.get_chain(ChainId(c.id)), STAGE) is ACCEPT
    assert ctx.match.peek("ip_dst") == "10.9.9.9" and ctx.nw_dst_rewritten
    assert any("static DNAT" in line.text for line in ctx.trace or ())


def test_the_trace_names_the_matching_rule() -> None:
    b = TopologyBuilder()
    c = b.chain("c")
    b.rule(c, "drop", tp_dst=(80, 80))
    ctx = context(b)
    process_chain(ctx, ctx.topology.get_chain(ChainId(c.id)), STAGE)
    assert [line.text for line in ctx.trace or ()] == ["rule 0 (tp_dst=80..80) matched: drop", "chain c: drop"]
