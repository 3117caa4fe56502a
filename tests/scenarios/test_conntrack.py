"""Connection tracking on the reference topology (spec 3.6; MDTS `test_conn_tracking`): a filter that lets only
return flows in from the right subnet. The left VMs may open connections to the right; the replies come back; a
right VM cannot open one of its own.

A forward flow whose connection was looked up writes, when it leaves by an exterior port, the return key built
from the packet as it leaves and that port's device (`ConnTracked`); the reply entering that device finds it.
"""

from __future__ import annotations

import pytest

from midonet.simulation.results import Drop
from midonet.state.conntrack import ConnTracked, ConnTrackKey
from midonet.testing import frames
from midonet.testing.network import SimulatedNetwork
from midonet.testing.topologies import LEFT_ROUTER_MAC, RIGHT_ROUTER_MAC, TopologyBuilder, TwoSubnetRouter
from midonet.testing.topologies import two_subnet_router as reference
from midonet.topology.ids import BridgeId, PortId, RouterId


@pytest.fixture
def t() -> TwoSubnetRouter:
    b = TopologyBuilder()
    t = reference(2, builder=b)
    inbound = b.chain("only-replies-from-the-right")
    b.rule(inbound, "accept", match_return_flow=True)
    b.rule(inbound, "drop", nw_src_ip="10.0.2.0/24")
    b.filters(t.router, inbound=inbound)
    return t


@pytest.fixture
def net(t: TwoSubnetRouter) -> SimulatedNetwork:
    net = SimulatedNetwork(t.builder.topology())
    for vm in t.vms.values():
        net.tables.arp_cache.learn(RouterId(t.router.id), vm.ip, vm.mac)
        bridge = t.left if vm.port.network_id == t.left.id else t.right
        net.tables.mac_table.learn(BridgeId(bridge.id), 0, vm.mac, PortId(vm.port.id))
    return net


def test_a_connection_from_the_left_writes_its_return_key_at_emission(t: TwoSubnetRouter,
                                                                       net: SimulatedNetwork) -> None:
    l1, r1 = t.vms["l1"], t.vms["r1"]
    out = net.send(frames.udp(l1.mac, LEFT_ROUTER_MAC, l1.ip, r1.ip, sport=4000, dport=53), l1.port.id)
    assert out.ports() == [r1.port.id]
    assert ConnTracked(ConnTrackKey(r1.ip, 53, l1.ip, 4000, 17, t.right.id)) in out.result.state_writes
    assert ("conntrack", ConnTrackKey(l1.ip, 4000, r1.ip, 53, 17, t.left.id)) in out.result.tags
    assert out.result.stateful and out.result.expiration == 30.0


def test_only_the_reply_gets_in(t: TwoSubnetRouter, net: SimulatedNetwork) -> None:
    l1, r1, r2 = t.vms["l1"], t.vms["r1"], t.vms["r2"]
    first = net.send(frames.udp(r1.mac, RIGHT_ROUTER_MAC, r1.ip, l1.ip, sport=53, dport=4000), r1.port.id)
    assert first.result.verdict == Drop("router inbound filter: drop")
    net.send(frames.udp(l1.mac, LEFT_ROUTER_MAC, l1.ip, r1.ip, sport=4000, dport=53), l1.port.id)
    reply = net.send(frames.udp(r1.mac, RIGHT_ROUTER_MAC, r1.ip, l1.ip, sport=53, dport=4000), r1.port.id)
    assert reply.ports() == [l1.port.id]
    assert not any(isinstance(w, ConnTracked) for w in reply.result.state_writes)   # a return flow writes none
    other_port = net.send(frames.udp(r1.mac, RIGHT_ROUTER_MAC, r1.ip, l1.ip, sport=54, dport=4000), r1.port.id)
    assert other_port.result.verdict == Drop("router inbound filter: drop")
    other_vm = net.send(frames.udp(r2.mac, RIGHT_ROUTER_MAC, r2.ip, l1.ip, sport=53, dport=4000), r2.port.id)
    assert other_vm.result.verdict == Drop("router inbound filter: drop")


def test_ping_replies_are_tracked_by_identifier(t: TwoSubnetRouter, net: SimulatedNetwork) -> None:
    l1, r1 = t.vms["l1"], t.vms["r1"]
    net.send(frames.ping(l1.mac, LEFT_ROUTER_MAC, l1.ip, r1.ip, ident=31), l1.port.id)
    back = net.send(frames.pong(r1.mac, RIGHT_ROUTER_MAC, r1.ip, l1.ip, ident=31), r1.port.id)
    assert back.ports() == [l1.port.id]
    stranger = net.send(frames.pong(r1.mac, RIGHT_ROUTER_MAC, r1.ip, l1.ip, ident=32), r1.port.id)
    assert stranger.ports() == []


def test_the_return_key_idles_out_after_the_forward_flow(t: TwoSubnetRouter, net: SimulatedNetwork) -> None:
    l1, r1 = t.vms["l1"], t.vms["r1"]
    net.send(frames.udp(l1.mac, LEFT_ROUTER_MAC, l1.ip, r1.ip, sport=4000, dport=53), l1.port.id)
    net.remove_flows()
    net.clock.advance(60)
    net.expire()
    late = net.send(frames.udp(r1.mac, RIGHT_ROUTER_MAC, r1.ip, l1.ip, sport=53, dport=4000), r1.port.id)
    assert late.result.verdict == Drop("router inbound filter: drop")


def test_untracked_traffic_writes_no_key(t: TwoSubnetRouter, net: SimulatedNetwork) -> None:
    """No rule asked about the connection (the left is not filtered by conntrack): nothing is tracked."""
    l1, l2 = t.vms["l1"], t.vms["l2"]
    out = net.send(frames.udp(l1.mac, l2.mac, l1.ip, l2.ip), l1.port.id)
    assert out.ports() == [l2.port.id]
    assert not any(isinstance(w, ConnTracked) for w in out.result.state_writes)
