"""Port mirroring through the reference topology (spec 3.9, MDTS `test_mirroring`): copies go to analyser ports on a
tap bridge, each showing the packet as it was where its mirror sits.

    l1 l2 (10.0.1.x)                      r1 r2 (10.0.2.x)          [tap] a1 a2 a3 a4 (analysers)
        |                                     |
     [left] --- 10.0.1.254 [router] 10.0.2.254 --- [right]
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from midonet.packets.flowmatch import FlowMatch, parse_frame
from midonet.simulation.pipeline import Stage
from midonet.simulation.results import Forward
from midonet.testing import frames
from midonet.testing.network import SimulatedNetwork
from midonet.testing.topologies import LEFT_ROUTER_MAC, RIGHT_ROUTER_MAC, TwoSubnetRouter, two_subnet_router
from midonet.topology.devices import Port
from midonet.topology.ids import BridgeId, PortId, RouterId

ICMP = 1


@dataclass
class Mirrored:
    topo: TwoSubnetRouter
    analysers: list[Port]

    def net(self) -> SimulatedNetwork:
        """The network with every VM's MAC and address known (as if each had talked already)."""
        topo = self.topo
        net = SimulatedNetwork(topo.topology())
        for vm in topo.vms.values():
            net.tables.arp_cache.learn(RouterId(topo.router.id), vm.ip, vm.mac)
            bridge = topo.left if vm.port.network_id == topo.left.id else topo.right
            net.tables.mac_table.learn(BridgeId(bridge.id), 0, vm.mac, PortId(vm.port.id))
        return net

    def copies(self, frames_out: list[tuple[PortId, bytes]]) -> dict[str, FlowMatch]:
        names = {a.id: f"a{i + 1}" for i, a in enumerate(self.analysers)}
        return {names[port]: parse_frame(data) for port, data in frames_out if port in names}


@pytest.fixture
def m() -> Mirrored:
    topo = two_subnet_router()
    tap = topo.builder.bridge("tap")
    return Mirrored(topo, [topo.builder.exterior_port(tap, f"a{i}") for i in range(1, 5)])


def test_a_mirror_copies_icmp_to_its_port_and_not_tcp(m: Mirrored) -> None:
    b, l1, r1 = m.topo.builder, m.topo.vms["l1"], m.topo.vms["r1"]
    b.mirror_on(l1.port, b.mirror(m.analysers[0], nw_proto=ICMP), "inbound")
    net = m.net()

    ping = net.send(frames.ping(l1.mac, LEFT_ROUTER_MAC, l1.ip, r1.ip), l1.port.id)
    assert ping.ports() == [m.analysers[0].id, r1.port.id]
    assert ping.frames[0][1] == frames.ping(l1.mac, LEFT_ROUTER_MAC, l1.ip, r1.ip)   # the packet as sent

    tcp = net.send(frames.tcp(l1.mac, LEFT_ROUTER_MAC, l1.ip, r1.ip), l1.port.id)
    assert tcp.ports() == [r1.port.id]


def test_mirrors_at_each_position_see_the_packet_as_it_is_there(m: Mirrored) -> None:
    b, t, l1, r1 = m.topo.builder, m.topo, m.topo.vms["l1"], m.topo.vms["r1"]
    a1, a2, a3, a4 = m.analysers
    b.mirror_on(l1.port, b.mirror(a1), "inbound")                # before the router: as l1 sent it
    b.mirror_on(t.router, b.mirror(a2), "inbound")                # entering the router: the same
    b.mirror_on(t.router, b.mirror(a3), "outbound")               # routed: new MACs, TTL decremented
    b.mirror_on(r1.port, b.mirror(a4), "outbound")                # leaving by r1: as r1 receives it
    out = m.net().send(frames.ping(l1.mac, LEFT_ROUTER_MAC, l1.ip, r1.ip, ttl=64), l1.port.id)

    assert out.ports() == [a1.id, a2.id, a3.id, a4.id, r1.port.id]
    copies = m.copies(out.frames)
    for name in ("a1", "a2"):
        assert (copies[name].eth_src, copies[name].eth_dst, copies[name].ip_ttl) == (l1.mac, LEFT_ROUTER_MAC, 64)
    for name in ("a3", "a4"):
        assert (copies[name].eth_src, copies[name].eth_dst, copies[name].ip_ttl) == (RIGHT_ROUTER_MAC, r1.mac, 63)
    delivered = parse_frame(out.frames[-1][1])
    assert (delivered.eth_src, delivered.eth_dst, delivered.ip_ttl) == (RIGHT_ROUTER_MAC, r1.mac, 63)


def test_the_copies_flow_carries_each_outputs_rewrites(m: Mirrored) -> None:
    b, t, l1, r1 = m.topo.builder, m.topo, m.topo.vms["l1"], m.topo.vms["r1"]
    b.mirror_on(t.router, b.mirror(m.analysers[0]), "outbound")
    out = m.net().simulate(frames.ping(l1.mac, LEFT_ROUTER_MAC, l1.ip, r1.ip), l1.port.id)
    assert isinstance(out.verdict, Forward)
    copy, delivered = out.verdict.outputs
    assert dict(copy.rewrites) == dict(delivered.rewrites) == {"eth_src": RIGHT_ROUTER_MAC, "eth_dst": r1.mac,
                                                               "ip_ttl": 63}


def test_a_router_inbound_mirror_copies_what_the_router_cannot_route(m: Mirrored) -> None:
    b, t, l1 = m.topo.builder, m.topo, m.topo.vms["l1"]
    b.mirror_on(t.router, b.mirror(m.analysers[0]), "inbound")
    out = m.net().send(frames.ping(l1.mac, LEFT_ROUTER_MAC, l1.ip, "192.0.2.1"), l1.port.id)
    assert out.ports() == [m.analysers[0].id]                   # the copy; the packet itself had no route
    assert out.replies_at(l1.port.id)[0].tp_src == 3            # and the sender still hears net unreachable


def test_bridge_mirrors_on_both_sides_of_the_router(m: Mirrored) -> None:
    b, t, l1, r1 = m.topo.builder, m.topo, m.topo.vms["l1"], m.topo.vms["r1"]
    a1, a2 = m.analysers[:2]
    b.mirror_on(t.left, b.mirror(a1, nw_proto=ICMP), "inbound")
    b.mirror_on(t.right, b.mirror(a2, nw_proto=ICMP), "outbound")
    out = m.net().send(frames.ping(l1.mac, LEFT_ROUTER_MAC, l1.ip, r1.ip), l1.port.id)
    assert out.ports() == [a1.id, a2.id, r1.port.id]
    copies = m.copies(out.frames)
    assert copies["a1"].ip_ttl == 64 and copies["a2"].ip_ttl == 63


def test_the_trace_shows_mirrors_in_pipeline_order(m: Mirrored) -> None:
    b, t, l1, r1 = m.topo.builder, m.topo, m.topo.vms["l1"], m.topo.vms["r1"]
    b.mirror_on(l1.port, b.mirror(m.analysers[0]), "inbound")
    b.mirror_on(t.router, b.mirror(m.analysers[1], nw_proto=6), "outbound")
    out = m.net().simulate(frames.ping(l1.mac, LEFT_ROUTER_MAC, l1.ip, r1.ip), l1.port.id)
    stages = [line.stage for line in out.trace]
    assert Stage.PORT_PRE_IN_MIRRORS in stages and Stage.ROUTER_POST_OUT_MIRRORS in stages
    texts = [line.text for line in out.trace if line.stage is Stage.ROUTER_POST_OUT_MIRRORS]
    assert texts == [f"mirror {t.builder.records[t.router.id].outbound_mirror_ids[0][:8]}: no condition matches"]
