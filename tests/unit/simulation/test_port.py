"""Ports (spec 3.2): administrative state, inbound and outbound filters, interior / exterior / unplugged egress,
port groups, and the 12-device loop guard."""

from __future__ import annotations

from midonet.simulation.results import Drop, Forward, TemporaryDrop
from midonet.testing import frames
from midonet.testing.network import SimulatedNetwork
from midonet.testing.topologies import LEFT_ROUTER_MAC, TopologyBuilder, two_subnet_router
from midonet.topology.devices import Bridge, Port
from midonet.topology.ids import BridgeId, PortId, RouterId

A, B = "02:00:00:00:00:0a", "02:00:00:00:00:0b"


def two_ports(**port: object) -> tuple[TopologyBuilder, Port, Port]:
    b = TopologyBuilder()
    br = b.bridge("br")
    return b, b.exterior_port(br, "a", **port), b.exterior_port(br, "b")


def test_a_port_down_drops_both_ways() -> None:
    b, down, up = two_ports(admin_state_up=False)
    net = SimulatedNetwork(b.topology())
    assert net.simulate(frames.udp(A, B, "10.0.0.1", "10.0.0.2"), down.id).verdict == Drop(
        "port is administratively down")
    assert net.simulate(frames.udp(B, A, "10.0.0.2", "10.0.0.1"), up.id).verdict == Drop(
        "port is administratively down")                                   # flooded to it: its egress drops


def test_a_router_port_down_rejects_with_icmp() -> None:
    b = TopologyBuilder()
    t = two_subnet_router(1, builder=b)
    b.update(t.left_router_port, admin_state_up=False)
    l1 = t.vms["l1"]
    out = SimulatedNetwork(b.topology()).send(frames.udp(l1.mac, LEFT_ROUTER_MAC, l1.ip, "10.0.2.1"), l1.port.id)
    assert out.result.verdict == Drop("port is administratively down")
    [error] = out.result.generated
    assert error.port == t.left_router_port.id and error.reason == "ICMP admin prohibited (port filter)"
    # ... which leaves by the same port, down too, so it goes nowhere (as in the original)
    assert [g.verdict for g in out.generated] == [Drop("port is administratively down")]


def test_port_inbound_and_outbound_filters() -> None:
    b, a, c = two_ports()
    inbound, outbound = b.chain("in"), b.chain("out")
    b.rule(inbound, "drop", tp_dst=(22, 22))
    b.rule(outbound, "drop", nw_src_ip="10.0.0.66/32")
    b.filters(a, inbound=inbound)
    b.filters(c, outbound=outbound)
    net = SimulatedNetwork(b.topology())
    assert net.simulate(frames.udp(A, B, "10.0.0.1", "10.0.0.2", dport=22), a.id).verdict == Drop(
        "port inbound filter dropped the packet")
    assert net.simulate(frames.udp(A, B, "10.0.0.66", "10.0.0.2"), a.id).verdict == Drop(
        "port outbound filter dropped the packet")
    passed = net.simulate(frames.udp(A, B, "10.0.0.1", "10.0.0.2"), a.id)
    assert isinstance(passed.verdict, Forward) and {inbound.id, outbound.id} <= passed.tags


def test_a_reject_on_a_bridge_port_just_drops() -> None:
    b, a, _ = two_ports()
    chain = b.chain("in")
    b.rule(chain, "reject")
    b.filters(a, inbound=chain)
    out = SimulatedNetwork(b.topology()).send(frames.udp(A, B, "10.0.0.1", "10.0.0.2"), a.id)
    assert out.result.verdict == Drop("port inbound filter rejected the packet") and out.replies == []


def test_egress_by_an_unplugged_port_is_a_temporary_drop() -> None:
    b, a, _ = two_ports()
    loose = b.interior_port(b.get(Bridge, a.network_id or ""), "loose")          # never linked
    net = SimulatedNetwork(b.topology())
    net.tables.mac_table.learn(BridgeId(b.names["br"]), 0, B, PortId(loose.id))
    out = net.simulate(frames.udp(A, B, "10.0.0.1", "10.0.0.2"), a.id)
    assert out.verdict == TemporaryDrop("egress port is unplugged (neither bound nor linked)")


def test_exterior_ingress_sets_the_port_groups_conditions_see() -> None:
    b, a, c = two_ports()
    group = b.port_group("trusted", a)
    chain = b.chain("out")
    b.rule(chain, "drop", port_group_id=group.id, inv_port_group=True)
    b.filters(c, outbound=chain)
    b.filters(a, outbound=chain)
    net = SimulatedNetwork(b.topology())
    assert isinstance(net.simulate(frames.udp(A, B, "10.0.0.1", "10.0.0.2"), a.id).verdict, Forward)
    assert net.simulate(frames.udp(B, A, "10.0.0.2", "10.0.0.1"), c.id).verdict == Drop(
        "port outbound filter dropped the packet")


def test_a_routing_loop_stops_at_12_devices() -> None:
    b = TopologyBuilder()
    t = two_subnet_router(1, builder=b)
    other = b.router("other")
    here = b.router_port(t.router, "169.254.0.1/30", "02:00:00:00:dd:01")
    there = b.router_port(other, "169.254.0.2/30", "02:00:00:00:dd:02")
    b.link(here, there)
    b.route(t.router, "0.0.0.0/0", here, gateway="169.254.0.2")
    b.route(other, "0.0.0.0/0", there, gateway="169.254.0.1")       # and back: a loop
    net = SimulatedNetwork(b.topology())
    l1 = t.vms["l1"]
    net.tables.arp_cache.learn(RouterId(t.router.id), l1.ip, l1.mac)
    out = net.simulate(frames.udp(l1.mac, LEFT_ROUTER_MAC, l1.ip, "8.8.8.8", ttl=64), l1.port.id)
    assert out.verdict == TemporaryDrop("more than 12 devices traversed: a loop")
    assert sum(1 for line in out.trace if line.stage.label == "port ingress") == 12


def test_a_router_port_sending_to_its_own_mac_takes_the_packet_back_in() -> None:
    b = TopologyBuilder()
    t = two_subnet_router(1, builder=b)
    b.route(t.router, "10.0.9.0/24", t.left_router_port, gateway="10.0.1.254")     # via its own address
    net = SimulatedNetwork(b.topology())
    l1 = t.vms["l1"]
    out = net.simulate(frames.udp(l1.mac, LEFT_ROUTER_MAC, l1.ip, "10.0.9.9"), l1.port.id)
    ingresses = [line.device for line in out.trace if line.stage.label == "port ingress"]
    assert ingresses[1:4] == [t.left_router_port.id] * 3            # hairpin, again and again ...
    assert out.verdict == TemporaryDrop("more than 12 devices traversed: a loop")   # ... until the guard
