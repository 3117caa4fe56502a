"""The reference topology (spec 11): two bridges behind one router, VMs on exterior ports. Packets in, packets out.

    l1 l2 l3 (10.0.1.1-3)            r1 r2 r3 (10.0.2.1-3)
        |                                  |
     [left] --- 10.0.1.254 [router] 10.0.2.254 --- [right]

Each test sends frames in at a VM's port through `SimulatedNetwork`, which applies the state writes and simulates
generated packets the way the agent will, and checks the verdict and the frames that come out.
"""

from __future__ import annotations

import pytest

from midonet.packets import icmp
from midonet.packets.ethernet import BROADCAST
from midonet.packets.flowmatch import parse_frame
from midonet.simulation.results import Consumed, Drop, Forward, Postponed, TemporaryDrop, TemporaryDropKind
from midonet.state.mac_table import MacLearned
from midonet.testing import frames
from midonet.testing.network import SimulatedNetwork
from midonet.testing.topologies import (
    LEFT_ROUTER_MAC,
    RIGHT_ROUTER_MAC,
    TopologyBuilder,
    TwoSubnetRouter,
    two_subnet_router,
)
from midonet.topology.ids import BridgeId, PortId, RouterId


@pytest.fixture
def topo() -> TwoSubnetRouter:
    return two_subnet_router(vms_per_bridge=3)


@pytest.fixture
def net(topo: TwoSubnetRouter) -> SimulatedNetwork:
    return SimulatedNetwork(topo.topology())


def resolved(topo: TwoSubnetRouter, net: SimulatedNetwork) -> SimulatedNetwork:
    """The router knows every VM's MAC and the bridges every VM's port (as if each VM had talked already)."""
    for vm in topo.vms.values():
        net.tables.arp_cache.learn(RouterId(topo.router.id), vm.ip, vm.mac)
        bridge = topo.left if vm.port.network_id == topo.left.id else topo.right
        net.tables.mac_table.learn(BridgeId(bridge.id), 0, vm.mac, PortId(vm.port.id))
    return net


# ---- L2 ----

def test_unknown_destination_floods_then_learned_mac_is_unicast(topo: TwoSubnetRouter,
                                                               net: SimulatedNetwork) -> None:
    l1, l2, l3 = topo.vms["l1"], topo.vms["l2"], topo.vms["l3"]
    first = net.send(frames.udp(l1.mac, l2.mac, l1.ip, l2.ip), l1.port.id)
    assert first.ports() == [l2.port.id, l3.port.id]           # flooded, not back to l1, not across the router
    assert ("flooded", topo.left.id, 0, l2.mac) in first.result.tags
    assert MacLearned(topo.left.id, 0, l1.mac, l1.port.id) in first.result.state_writes

    back = net.send(frames.udp(l2.mac, l1.mac, l2.ip, l1.ip), l2.port.id)
    assert back.ports() == [l1.port.id]                          # l1 was learned from the first frame
    assert ("mac", topo.left.id, l1.mac, 0, l1.port.id) in back.result.tags

    again = net.send(frames.udp(l1.mac, l2.mac, l1.ip, l2.ip), l1.port.id)
    assert again.ports() == [l2.port.id]
    assert again.frames[0][1] == frames.udp(l1.mac, l2.mac, l1.ip, l2.ip)   # bridged frames are not rewritten
    assert again.result.fields_seen == {"eth_src", "eth_dst", "vlan_ids"}


def test_broadcast_floods_every_exterior_port_but_the_ingress(topo: TwoSubnetRouter,
                                                              net: SimulatedNetwork) -> None:
    r2 = topo.vms["r2"]
    out = net.send(frames.udp(r2.mac, BROADCAST, r2.ip, "10.0.2.255"), r2.port.id)
    assert out.ports() == [topo.vms["r1"].port.id, topo.vms["r3"].port.id]
    assert ("broadcast", topo.right.id) in out.result.tags


def test_frame_to_a_mac_learned_on_the_ingress_port_is_dropped_for_a_while(topo: TwoSubnetRouter,
                                                                           net: SimulatedNetwork) -> None:
    l1, l2 = topo.vms["l1"], topo.vms["l2"]
    net.send(frames.udp(l2.mac, l1.mac, l2.ip, l1.ip), l1.port.id)     # l2's MAC seen on l1's port
    out = net.send(frames.udp(l1.mac, l2.mac, l1.ip, l2.ip), l1.port.id)
    assert isinstance(out.result.verdict, TemporaryDrop)
    assert out.result.expiration == 5.0


# ---- ARP suppression ----

def test_arp_for_the_gateway_is_answered_by_the_bridge(topo: TwoSubnetRouter, net: SimulatedNetwork) -> None:
    l1 = topo.vms["l1"]
    out = net.send(frames.arp_request(l1.mac, l1.ip, "10.0.1.254"), l1.port.id)
    assert isinstance(out.result.verdict, Consumed)
    assert not out.result.installs_flow
    [reply] = out.replies_at(l1.port.id)
    assert (reply.arp_op, reply.arp_sha, reply.arp_spa, reply.arp_tha, reply.arp_tpa) == (
        2, LEFT_ROUTER_MAC, "10.0.1.254", l1.mac, l1.ip)
    assert (reply.eth_src, reply.eth_dst) == (LEFT_ROUTER_MAC, l1.mac)


def test_arp_for_a_seeded_address_is_answered_by_the_bridge(topo: TwoSubnetRouter, net: SimulatedNetwork) -> None:
    l1, l3 = topo.vms["l1"], topo.vms["l3"]
    net.tables.ip4_mac.put(topo.left.id, l3.ip, l3.mac)
    out = net.send(frames.arp_request(l1.mac, l1.ip, l3.ip), l1.port.id)
    assert isinstance(out.result.verdict, Consumed)
    [reply] = out.replies_at(l1.port.id)
    assert (reply.arp_sha, reply.arp_spa) == (l3.mac, l3.ip)


def test_arp_for_an_unknown_address_floods(topo: TwoSubnetRouter, net: SimulatedNetwork) -> None:
    l1 = topo.vms["l1"]
    out = net.send(frames.arp_request(l1.mac, l1.ip, topo.vms["l2"].ip), l1.port.id)
    assert out.ports() == [topo.vms["l2"].port.id, topo.vms["l3"].port.id]
    assert ("arp_requests", topo.left.id) in out.result.tags


# ---- routing ----

def test_routing_across_subnets_rewrites_macs_and_decrements_ttl(topo: TwoSubnetRouter,
                                                                 net: SimulatedNetwork) -> None:
    l1, r1 = topo.vms["l1"], topo.vms["r1"]
    resolved(topo, net)
    out = net.send(frames.udp(l1.mac, LEFT_ROUTER_MAC, l1.ip, r1.ip, ttl=64), l1.port.id)
    assert out.ports() == [r1.port.id]
    [(_, sent)] = out.matches()
    assert (sent.eth_src, sent.eth_dst, sent.ip_src, sent.ip_dst, sent.ip_ttl) == (
        RIGHT_ROUTER_MAC, r1.mac, l1.ip, r1.ip, 63)
    assert isinstance(out.result.verdict, Forward)
    assert dict(out.result.verdict.outputs[0].rewrites) == {"eth_src": RIGHT_ROUTER_MAC, "eth_dst": r1.mac,
                                                            "ip_ttl": 63}
    tags = out.result.tags
    assert {topo.left.id, topo.router.id, topo.right.id} <= tags
    assert ("arp", topo.router.id, r1.ip) in tags
    assert ("dst_ip", topo.router.id, r1.ip) in tags
    assert {"ip_dst", "ip_ttl"} <= out.result.fields_seen
    assert "tp_dst" not in out.result.fields_seen          # no rule read the port: the flow wildcards it


def test_reply_comes_back_the_same_way(topo: TwoSubnetRouter, net: SimulatedNetwork) -> None:
    l1, r1 = topo.vms["l1"], topo.vms["r1"]
    resolved(topo, net)
    net.send(frames.udp(l1.mac, LEFT_ROUTER_MAC, l1.ip, r1.ip), l1.port.id)     # left bridge learns l1
    out = net.send(frames.udp(r1.mac, RIGHT_ROUTER_MAC, r1.ip, l1.ip, sport=80, dport=10000), r1.port.id)
    assert out.ports() == [l1.port.id]
    [(_, sent)] = out.matches()
    assert (sent.eth_src, sent.eth_dst, sent.ip_ttl) == (LEFT_ROUTER_MAC, l1.mac, 63)


def test_unresolved_next_hop_sends_arp_and_waits_then_forwards(topo: TwoSubnetRouter,
                                                              net: SimulatedNetwork) -> None:
    l1, r1, r2 = topo.vms["l1"], topo.vms["r1"], topo.vms["r2"]
    packet = frames.udp(l1.mac, LEFT_ROUTER_MAC, l1.ip, r1.ip)
    waiting = net.send(packet, l1.port.id)
    assert waiting.result.verdict == Postponed("arp", f"{topo.router.id}/{r1.ip}")
    assert waiting.ports() == []
    # the router's ARP request went out of its right port and was flooded on the right bridge
    [request] = waiting.result.generated
    assert request.port == topo.right_router_port.id
    assert [p for p, _ in waiting.replies] == [r1.port.id, r2.port.id, topo.vms["r3"].port.id]
    asked = waiting.replies_at(r1.port.id)[0]
    assert (asked.eth_dst, asked.arp_op, asked.arp_spa, asked.arp_tpa) == (BROADCAST, 1, "10.0.2.254", r1.ip)

    # r1 answers; the bridge sends the reply to the router port, the router learns r1's MAC
    answer = net.send(frames.arp_reply(r1.mac, r1.ip, RIGHT_ROUTER_MAC, "10.0.2.254"), r1.port.id)
    assert isinstance(answer.result.verdict, Consumed)
    assert net.tables.arp_cache.entries(topo.router.id) == {r1.ip: r1.mac}

    # simulated again from scratch, the packet now goes through
    out = net.send(packet, l1.port.id)
    assert out.ports() == [r1.port.id]
    assert out.matches()[0][1].eth_dst == r1.mac


def test_arp_request_to_the_router_teaches_it_the_sender(topo: TwoSubnetRouter) -> None:
    """Without the bridge's suppression (a unicast ARP request to the router port MAC), the router answers."""
    net = SimulatedNetwork(topo.topology())
    l1 = topo.vms["l1"]
    out = net.send(frames.arp_request(l1.mac, l1.ip, "10.0.1.254", eth_dst=LEFT_ROUTER_MAC), l1.port.id)
    assert isinstance(out.result.verdict, Consumed)
    assert net.tables.arp_cache.entries(topo.router.id) == {l1.ip: l1.mac}
    [reply] = out.replies_at(l1.port.id)
    assert (reply.arp_op, reply.arp_sha, reply.arp_tpa) == (2, LEFT_ROUTER_MAC, l1.ip)


def test_no_route_answers_net_unreachable(topo: TwoSubnetRouter, net: SimulatedNetwork) -> None:
    l1 = topo.vms["l1"]
    sent = frames.udp(l1.mac, LEFT_ROUTER_MAC, l1.ip, "192.168.7.7")
    out = net.send(sent, l1.port.id)
    assert out.result.verdict == TemporaryDrop("no route to 192.168.7.7", TemporaryDropKind.SHORT)
    [error] = out.replies_at(l1.port.id)
    assert (error.ip_src, error.ip_dst, error.ip_proto, error.tp_src, error.tp_dst) == (
        "10.0.1.254", l1.ip, 1, icmp.TYPE_UNREACHABLE, icmp.CODE_NET_UNREACHABLE)
    assert (error.eth_src, error.eth_dst) == (LEFT_ROUTER_MAC, l1.mac)
    quoted = icmp.parse_embedded(error.icmp_data or b"")
    assert (quoted.ip_src, quoted.ip_dst, quoted.tp_src, quoted.tp_dst) == (l1.ip, "192.168.7.7", 10000, 80)


def test_ttl_1_answers_time_exceeded(topo: TwoSubnetRouter, net: SimulatedNetwork) -> None:
    l1, r1 = topo.vms["l1"], topo.vms["r1"]
    resolved(topo, net)
    out = net.send(frames.udp(l1.mac, LEFT_ROUTER_MAC, l1.ip, r1.ip, ttl=1), l1.port.id)
    assert out.result.verdict == TemporaryDrop("TTL expired")
    assert out.ports() == []
    [error] = out.replies_at(l1.port.id)
    assert (error.ip_src, error.tp_src, error.tp_dst) == ("10.0.1.254", icmp.TYPE_TIME_EXCEEDED, 0)
    assert error.icmp_data is not None and error.icmp_data[8] == 1      # quotes the TTL as it arrived


@pytest.mark.parametrize("target", ["10.0.1.254", "10.0.2.254"])
def test_ping_to_a_router_port_is_answered(topo: TwoSubnetRouter, net: SimulatedNetwork, target: str) -> None:
    l1 = topo.vms["l1"]
    out = net.send(frames.ping(l1.mac, LEFT_ROUTER_MAC, l1.ip, target, ident=99, seq=3), l1.port.id)
    assert isinstance(out.result.verdict, Consumed)
    [reply] = out.replies_at(l1.port.id)
    assert (reply.ip_src, reply.ip_dst, reply.tp_src, reply.icmp_id) == (target, l1.ip, icmp.TYPE_ECHO_REPLY, 99)
    assert (reply.eth_src, reply.eth_dst) == (LEFT_ROUTER_MAC, l1.mac)


# ---- chains on the router ----

def with_router_filter(rules: str) -> tuple[TwoSubnetRouter, SimulatedNetwork]:
    """The topology with an inbound filter on the router built by `rules` (a name of a recipe below)."""
    b = TopologyBuilder()
    topo = two_subnet_router(3, builder=b)
    inbound = b.chain("router-in")
    if rules == "masks":
        # drop traffic from the left subnet unless it goes to port 80; accept the rest
        b.rule(inbound, "drop", nw_src_ip="10.0.1.0/24", tp_dst=(80, 80), tp_dst_inv=True)
        # drop frames from MACs 02:00:00:00:01:0x with x odd (mask on the low bit only: ...:01:01, ...:01:03)
        b.rule(inbound, "drop", dl_src="02:00:00:00:00:01", dl_src_mask=0x000000000001)
    elif rules == "jump":
        web = b.chain("web")
        b.rule(web, "return", nw_proto=17, tp_dst=(80, 80))
        b.rule(web, "drop")
        b.jump(inbound, web, nw_src_ip="10.0.1.0/24")
        b.rule(inbound, "accept")
    b.filters(topo.router, inbound=inbound)
    net = SimulatedNetwork(topo.topology())
    return topo, resolved(topo, net)


def test_router_filter_with_inverted_port_range() -> None:
    topo, net = with_router_filter("masks")
    l2, r1 = topo.vms["l2"], topo.vms["r1"]
    to_80 = net.send(frames.udp(l2.mac, LEFT_ROUTER_MAC, l2.ip, r1.ip, dport=80), l2.port.id)
    assert to_80.ports() == [r1.port.id]
    to_81 = net.send(frames.udp(l2.mac, LEFT_ROUTER_MAC, l2.ip, r1.ip, dport=81), l2.port.id)
    assert to_81.result.verdict == Drop("router inbound filter: drop")
    assert topo.router.inbound_filter_id is None  # the fixture record; the filter is on the builder's copy
    assert {"ip_src", "tp_dst"} <= to_81.result.fields_seen


def test_router_filter_with_a_mac_mask() -> None:
    topo, net = with_router_filter("masks")
    l1, l2, l3, r1 = topo.vms["l1"], topo.vms["l2"], topo.vms["l3"], topo.vms["r1"]
    for vm, passes in ((l1, False), (l2, True), (l3, False)):
        out = net.send(frames.udp(vm.mac, LEFT_ROUTER_MAC, vm.ip, r1.ip, dport=80), vm.port.id)
        assert (out.ports() == [r1.port.id]) is passes, vm.name


def test_router_filter_jump_and_return() -> None:
    topo, net = with_router_filter("jump")
    l1, r1 = topo.vms["l1"], topo.vms["r1"]
    web = net.send(frames.udp(l1.mac, LEFT_ROUTER_MAC, l1.ip, r1.ip, dport=80), l1.port.id)
    assert web.ports() == [r1.port.id]                    # returned from "web", accepted by the next rule
    other = net.send(frames.udp(l1.mac, LEFT_ROUTER_MAC, l1.ip, r1.ip, dport=22), l1.port.id)
    assert other.result.verdict == Drop("router inbound filter: drop")
    chains = {t for t in other.result.tags if isinstance(t, str)} - {p.port.id for p in topo.vms.values()}
    assert topo.builder.names["web"] in chains and topo.builder.names["router-in"] in chains
    back = net.send(frames.udp(r1.mac, RIGHT_ROUTER_MAC, r1.ip, l1.ip, dport=22), r1.port.id)
    assert back.ports() == [l1.port.id]                   # not from the left subnet: no jump, accepted


def test_trace_reads_in_pipeline_order(topo: TwoSubnetRouter, net: SimulatedNetwork) -> None:
    l1, r1 = topo.vms["l1"], topo.vms["r1"]
    resolved(topo, net)
    out = net.simulate(frames.udp(l1.mac, LEFT_ROUTER_MAC, l1.ip, r1.ip), l1.port.id)
    stages = [line.stage.label for line in out.trace]
    assert stages[:3] == ["port ingress", "bridge MAC learning", "bridge forwarding"]
    assert "router routing" in stages and "router next hop" in stages
    assert stages[-1] == "result"
    assert parse_frame(frames.udp(l1.mac, LEFT_ROUTER_MAC, l1.ip, r1.ip)).fields_seen() == frozenset()
