"""Tracing sessions and their rendering (`midonet trace`'s engine): shared state across steps, outputs after
rewrites, generated packets, devices in order, readable names, the JSON object and the detailed text."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from midonet.simulation.packetspec import SpecError, parse_spec
from midonet.simulation.results import Consumed, Drop, Forward, Postponed, TemporaryDrop, TemporaryDropKind
from midonet.simulation.tracerender import detailed, to_json, trace_lines, verdict_fields
from midonet.simulation.tracing import Names, Reply, TraceSession, parse_step
from midonet.state.tables import in_memory
from midonet.testing.clock import FakeClock
from midonet.testing.topologies import LEFT_ROUTER_MAC, RIGHT_ROUTER_MAC, TwoSubnetRouter, two_subnet_router
from midonet.topology.ids import BridgeId, PortId, RouterId


@pytest.fixture
def topo() -> TwoSubnetRouter:
    return two_subnet_router()


def session(topo: TwoSubnetRouter) -> TraceSession:
    topology = topo.topology()
    return TraceSession(topology, in_memory(FakeClock()), Names(topo.builder.records.values(), topology))


def udp(src: str, dst: str, ip_src: str, ip_dst: str, extra: str = "") -> dict[str, int | str | list[int]]:
    return parse_spec(f"eth_src={src},eth_dst={dst},ip_src={ip_src},ip_dst={ip_dst}{extra}")


def test_l2_flood_then_unicast_reply(topo: TwoSubnetRouter) -> None:
    trace = session(topo)
    l1, l2 = topo.vms["l1"], topo.vms["l2"]
    first = to_json(trace.run(l1.port.id, udp(l1.mac, l2.mac, l1.ip, l2.ip)))
    reply = to_json(trace.run(l2.port.id, udp(l2.mac, l1.mac, l2.ip, l1.ip)))
    assert first["step"] == 1 and first["result"] == "forward" and first["drop_reason"] is None
    assert [o["port_id"] for o in first["outputs"]] == [l2.port.id]       # flooded: the only other VM port
    assert any("not learned" in line and "flood" in line for line in first["steps"])
    assert reply["step"] == 2 and [o["port_id"] for o in reply["outputs"]] == [l1.port.id]
    assert any(f"{l1.mac} is at port" in line for line in reply["steps"])
    assert reply["outputs"][0]["packet"] == reply["packet"] and reply["outputs"][0]["rewritten"] == []
    assert reply["devices"] == [l2.port.id, topo.left.id, l1.port.id]
    json.dumps([first, reply])                                             # JSON-ready


def test_routed_packet_is_rewritten_and_devices_are_in_order(topo: TwoSubnetRouter) -> None:
    trace = session(topo)
    l1, r1 = topo.vms["l1"], topo.vms["r1"]
    trace.tables.arp_cache.learn(RouterId(topo.router.id), r1.ip, r1.mac)
    trace.tables.mac_table.learn(BridgeId(topo.right.id), 0, r1.mac, PortId(r1.port.id))
    out = to_json(trace.run(l1.port.id, udp(l1.mac, LEFT_ROUTER_MAC, l1.ip, r1.ip)))
    assert out["result"] == "forward"
    (emitted,) = out["outputs"]
    assert emitted["port_id"] == r1.port.id
    assert (emitted["packet"]["eth_src"], emitted["packet"]["eth_dst"], emitted["packet"]["ip_ttl"]) == (
        RIGHT_ROUTER_MAC, r1.mac, 63)
    assert emitted["rewritten"] == ["eth_dst", "eth_src", "ip_ttl"]
    assert out["devices"] == [l1.port.id, topo.left.id, topo.left_link.id, topo.left_router_port.id,
                              topo.router.id, topo.right_router_port.id, topo.right_link.id, topo.right.id,
                              r1.port.id]
    assert out["flow"]["installs"] is True and out["flow"]["expiration"] == 60.0
    assert "ip_dst" in out["flow"]["match_fields"]


def test_postponed_then_answered_by_a_later_step(topo: TwoSubnetRouter) -> None:
    trace = session(topo)
    l1, r1, r2 = topo.vms["l1"], topo.vms["r1"], topo.vms["r2"]
    waiting = to_json(trace.run(l1.port.id, udp(l1.mac, LEFT_ROUTER_MAC, l1.ip, r1.ip)))
    assert waiting["result"] == "postponed" and waiting["reason"] == f"waiting for arp {topo.router.id}/{r1.ip}"
    requests = waiting["generated"]
    assert [g["port_id"] for g in requests] == [r1.port.id, r2.port.id]
    assert requests[0]["packet"]["arp_tpa"] == r1.ip and requests[0]["from_port"] == topo.right_router_port.id
    answer = parse_spec(f"arp_op=reply,eth_src={r1.mac},arp_spa={r1.ip},arp_tha={RIGHT_ROUTER_MAC},arp_tpa=10.0.2.254")
    assert to_json(trace.run(r1.port.id, answer))["result"] == "consumed"
    again = to_json(trace.run(l1.port.id, udp(l1.mac, LEFT_ROUTER_MAC, l1.ip, r1.ip)))
    assert again["result"] == "forward" and again["outputs"][0]["port_id"] == r1.port.id


def test_no_route_generates_icmp_net_unreachable(topo: TwoSubnetRouter) -> None:
    trace = session(topo)
    l1 = topo.vms["l1"]
    out = to_json(trace.run(l1.port.id, udp(l1.mac, LEFT_ROUTER_MAC, l1.ip, "192.168.7.7")))
    assert (out["result"], out["drop_kind"]) == ("temporary_drop", "short")
    assert "no route" in out["drop_reason"]
    (error,) = out["generated"]
    assert error["port_id"] == l1.port.id and "net unreachable" in error["reason"]
    assert (error["packet"]["icmp_type"], error["packet"]["icmp_code"], error["packet"]["ip_src"]) == (
        3, 0, "10.0.1.254")
    assert any(line.startswith("generated at port") for line in out["steps"])
    assert any(line.startswith("  port emit") for line in out["steps"])


def test_chain_lines_name_the_chain_and_the_rule(topo: TwoSubnetRouter) -> None:
    b = topo.builder
    chain = b.chain("no-dns")
    b.rule(chain, "accept", nw_proto=6)
    rule = b.rule(chain, "drop", nw_proto=17, tp_dst=(53, 53))
    b.filters(topo.left, inbound=chain)
    trace = session(topo)
    l1, l2 = topo.vms["l1"], topo.vms["l2"]
    out = to_json(trace.run(l1.port.id, udp(l1.mac, l2.mac, l1.ip, l2.ip, ",tp_dst=53")))
    assert out["result"] == "drop" and out["drop_reason"] == "bridge inbound filter: drop"
    matched = [line for line in out["steps"] if "matched" in line]
    assert matched == [f'bridge inbound filter: chain "no-dns": rule 1 (nw_proto=17, tp_dst=53..53) matched: drop '
                       f"[rule {rule.id}]"]
    assert any('chain "no-dns": chain no-dns: drop' in line for line in out["steps"])
    assert chain.id not in out["devices"]


def test_arp_request_for_the_router_port_is_answered(topo: TwoSubnetRouter) -> None:
    trace = session(topo)
    l1 = topo.vms["l1"]
    out = to_json(trace.run(l1.port.id, parse_spec(f"eth_src={l1.mac},arp_spa={l1.ip},arp_tpa=10.0.1.254")))
    assert out["result"] == "consumed" and out["outputs"] == []
    (reply,) = out["generated"]
    assert reply["port_id"] == l1.port.id
    assert (reply["packet"]["arp_op"], reply["packet"]["arp_sha"], reply["packet"]["eth_dst"]) == (
        "reply", LEFT_ROUTER_MAC, l1.mac)


def test_names(topo: TwoSubnetRouter) -> None:
    names = session(topo).names
    assert names.label(topo.left.id) == 'bridge "left"'
    assert names.label(topo.router.id) == 'router "router"'
    assert names.label(topo.vms["l1"].port.id).endswith('of bridge "left" [l1]')
    assert names.label(topo.left_router_port.id).endswith('of router "router" 10.0.1.254/24')
    assert names.label("-") == "" and names.label("nothing-known") == "nothing-known"
    assert names.port_device(topo.vms["l1"].port.id) == topo.left.id
    assert names.is_device(topo.left.id) and not names.is_device("nothing-known")


@dataclass(frozen=True)
class Mirrored:
    """A verdict type the simulator does not have (yet): rendering must not need to know it."""

    reason: str


@pytest.mark.parametrize(("verdict", "fields"), [
    (Forward(()), {"result": "forward", "drop_reason": None, "reason": None}),
    (Drop("x"), {"result": "drop", "drop_reason": "x", "reason": "x"}),
    (TemporaryDrop("y"), {"result": "temporary_drop", "drop_reason": "y", "reason": "y", "drop_kind": "error"}),
    (TemporaryDrop("z", TemporaryDropKind.SHORT), {"result": "temporary_drop", "drop_reason": "z", "reason": "z",
                                                   "drop_kind": "short"}),
    (Consumed("c"), {"result": "consumed", "drop_reason": None, "reason": "c"}),
    (Postponed("arp", "r/1.2.3.4"), {"result": "postponed", "drop_reason": None,
                                     "reason": "waiting for arp r/1.2.3.4"}),
    (Mirrored("m"), {"result": "mirrored", "drop_reason": None, "reason": "m"}),
])
def test_verdict_fields(verdict: object, fields: dict[str, object]) -> None:
    assert verdict_fields(verdict) == fields  # type: ignore[arg-type]


def test_detailed_text(topo: TwoSubnetRouter) -> None:
    trace = session(topo)
    l1 = topo.vms["l1"]
    step = trace.run(l1.port.id, udp(l1.mac, LEFT_ROUTER_MAC, l1.ip, "192.168.7.7"))
    lines = detailed(step)
    texts = [line.text for line in lines]
    assert lines[0].text.startswith("step 1: in port") and lines[0].style == "bold underline"
    assert texts[1].strip().startswith("udp 10.0.1.1:10000 > 192.168.7.7:80 ttl 64")
    headers = [line.text.strip() for line in lines if line.style == "bold"]
    assert headers[:2] == [trace.names.label(l1.port.id), 'bridge "left"']
    assert any("bridge forwarding" in t and "is a router port" in t for t in texts)
    verdict = next(line for line in lines if line.text.strip().startswith("=> temporary_drop"))
    assert verdict.style == "bold red" and "no route to 192.168.7.7" in verdict.text
    assert any("generated at port" in t and "net unreachable" in t for t in texts)
    assert any(t.strip().startswith("out port") and "icmp 10.0.1.254 > 10.0.1.1 type 3 code 0" in t for t in texts)
    assert trace_lines(step) == to_json(step)["steps"]


def test_connection_tracking_is_shared_between_steps(topo: TwoSubnetRouter) -> None:
    b = topo.builder
    only_replies = b.chain("only-replies")
    b.rule(only_replies, "accept", match_return_flow=True)
    b.rule(only_replies, "drop", dl_type=0x0800)
    track = b.chain("track")                     # consults connection tracking: the flow is tracked
    b.rule(track, "accept", match_forward_flow=True)
    l1, l2 = topo.vms["l1"], topo.vms["l2"]
    b.filters(topo.port(l1.port), outbound=only_replies)
    b.filters(topo.port(l2.port), outbound=track)
    trace = session(topo)
    unsolicited = to_json(trace.run(l2.port.id, udp(l2.mac, l1.mac, l2.ip, l1.ip, ",tp_src=80,tp_dst=10000")))
    assert unsolicited["result"] == "drop"
    request = to_json(trace.run(l1.port.id, udp(l1.mac, l2.mac, l1.ip, l2.ip, ",tp_src=10000,tp_dst=80")))
    assert request["result"] == "forward"
    reply = to_json(trace.run(l2.port.id, udp(l2.mac, l1.mac, l2.ip, l1.ip, ",tp_src=80,tp_dst=10000")))
    assert reply["result"] == "forward" and [o["port_id"] for o in reply["outputs"]] == [l1.port.id]
    other = to_json(trace.run(l2.port.id, udp(l2.mac, l1.mac, l2.ip, l1.ip, ",tp_src=81,tp_dst=10000")))
    assert other["result"] == "drop"


def test_parse_step() -> None:
    port = "3a50a4d0-04c2-4cb3-ba58-3866db92c76c"
    assert parse_step(f"{port}:ip_dst=10.0.2.1") == (port, parse_spec("ip_dst=10.0.2.1"))
    assert parse_step(port) == (port, parse_spec(""))
    assert parse_step(f"{port}:reply=2,ip_ttl=3") == (port, Reply(2, {"ip_ttl": "3"}))
    for bad, words in ((":ip_dst=10.0.0.1", "PORT_ID:SPEC"), (f"{port}:reply=0", "reply: must be the number"),
                       (f"{port}:reply=x", "reply: must be the number"), (f"{port}:ttl=1", "ttl: unknown key")):
        with pytest.raises(SpecError, match=words):
            parse_step(bad)


def test_a_reply_step_answers_the_output_at_its_port(topo: TwoSubnetRouter) -> None:
    trace = session(topo)
    l1, l2 = topo.vms["l1"], topo.vms["l2"]
    with pytest.raises(SpecError, match="reply: step 1 has not run yet"):
        trace.reply(l2.port.id, Reply(1, {}))
    trace.run(l1.port.id, udp(l1.mac, l2.mac, l1.ip, l2.ip, ",tp_src=4000,tp_dst=53"))
    packet = trace.reply(l2.port.id, Reply(1, {"payload_len": "12"}))
    assert (packet["eth_src"], packet["eth_dst"], packet["ip_src"], packet["ip_dst"]) == (l2.mac, l1.mac, l2.ip,
                                                                                          l1.ip)
    assert (packet["tp_src"], packet["tp_dst"], packet["payload_len"], packet["ip_ttl"]) == (53, 4000, 12, 64)
    answered = to_json(trace.run(l2.port.id, packet))
    assert [o["port_id"] for o in answered["outputs"]] == [l1.port.id]
    trace.run(l1.port.id, udp(l1.mac, LEFT_ROUTER_MAC, l1.ip, "192.168.7.7"))
    with pytest.raises(SpecError, match="reply: step 3 sent nothing out"):
        trace.reply(l1.port.id, Reply(3, {}))
