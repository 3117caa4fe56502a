"""The bridge (spec 3.3): sanity drops, MAC learning as requested writes, flooding, unicast by the MAC table,
ARP handling, filters, and the flow tags."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from midonet.packets.ethernet import BROADCAST
from midonet.simulation.results import Consumed, Drop, Forward, TemporaryDrop
from midonet.state.mac_table import Ip4MacLearned, MacLearned
from midonet.testing import frames
from midonet.testing.network import SimulatedNetwork
from midonet.testing.topologies import TopologyBuilder
from midonet.topology.devices import Bridge, Port
from midonet.topology.ids import BridgeId, PortId

MACS = ["02:00:00:00:00:01", "02:00:00:00:00:02", "02:00:00:00:00:03"]
IPS = ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
ROUTER_MAC = "02:00:00:00:ff:01"


@dataclass
class OneBridge:
    b: TopologyBuilder
    bridge: Bridge
    ports: list[Port]
    link: Port

    def net(self) -> SimulatedNetwork:
        return SimulatedNetwork(self.b.topology())

    @property
    def id(self) -> BridgeId:
        return BridgeId(self.bridge.id)


def one_bridge(**bridge: object) -> OneBridge:
    """A bridge with three VM ports and an interior port linked to a router port 10.0.0.254."""
    b = TopologyBuilder()
    br = b.bridge("br", **bridge)
    ports = [b.exterior_port(br, f"vm{i}") for i in range(3)]
    router = b.router("r")
    link = b.interior_port(br, "link")
    b.link(b.router_port(router, "10.0.0.254/24", ROUTER_MAC), link)
    return OneBridge(b, br, ports, link)


@pytest.fixture
def topo() -> OneBridge:
    return one_bridge()


def udp(src: int, dst_mac: str, dst_ip: str = "10.0.0.9") -> bytes:
    return frames.udp(MACS[src], dst_mac, IPS[src], dst_ip)


def test_a_multicast_source_mac_drops(topo: OneBridge) -> None:
    out = topo.net().simulate(frames.udp("03:00:00:00:00:01", MACS[1], IPS[0], IPS[1]), topo.ports[0].id)
    assert out.verdict == Drop("multicast or broadcast source MAC")


def test_a_bridge_down_drops() -> None:
    topo = one_bridge(admin_state_up=False)
    assert topo.net().simulate(udp(0, MACS[1]), topo.ports[0].id).verdict == Drop("bridge is administratively down")


def test_the_source_mac_is_learned_as_a_requested_write(topo: OneBridge) -> None:
    out = topo.net().simulate(udp(0, MACS[1]), topo.ports[0].id)
    assert out.state_writes == (MacLearned(topo.id, 0, MACS[0], PortId(topo.ports[0].id)),)


def test_frames_from_the_router_do_not_teach_its_mac(topo: OneBridge) -> None:
    net = topo.net()
    net.tables.mac_table.learn(topo.id, 0, MACS[1], PortId(topo.ports[1].id))
    out = net.simulate(frames.udp(ROUTER_MAC, MACS[1], "10.0.0.254", IPS[1]), topo.link.id)
    assert out.state_writes == ()
    assert isinstance(out.verdict, Forward) and [o.port for o in out.verdict.outputs] == [topo.ports[1].id]


def test_unknown_destination_floods_to_every_other_exterior_port(topo: OneBridge) -> None:
    out = topo.net().simulate(udp(1, MACS[2]), topo.ports[1].id)
    assert isinstance(out.verdict, Forward)
    assert [o.port for o in out.verdict.outputs] == [topo.ports[0].id, topo.ports[2].id]
    assert ("flooded", topo.id, 0, MACS[2]) in out.tags and ("broadcast", topo.id) in out.tags


def test_flooding_with_nowhere_to_go_drops() -> None:
    b = TopologyBuilder()
    br = b.bridge("lonely")
    port = b.exterior_port(br, "only")
    out = SimulatedNetwork(b.topology()).simulate(udp(0, BROADCAST), port.id)
    assert out.verdict == Drop("no exterior port to flood to")


def test_learned_destination_is_unicast_and_tagged(topo: OneBridge) -> None:
    net = topo.net()
    net.tables.mac_table.learn(topo.id, 0, MACS[2], PortId(topo.ports[2].id))
    out = net.simulate(udp(0, MACS[2]), topo.ports[0].id)
    assert isinstance(out.verdict, Forward) and [o.port for o in out.verdict.outputs] == [topo.ports[2].id]
    assert {topo.bridge.id, topo.ports[0].id, topo.ports[2].id} <= out.tags
    assert ("mac", topo.id, MACS[0], 0, topo.ports[0].id) in out.tags
    assert ("mac", topo.id, MACS[2], 0, topo.ports[2].id) in out.tags
    assert out.fields_seen == {"eth_src", "eth_dst", "vlan_ids"}
    assert out.expiration == 60.0


@pytest.mark.parametrize("case", ["learned there", "to itself"])
def test_a_destination_on_the_ingress_port_is_a_temporary_drop(topo: OneBridge, case: str) -> None:
    net = topo.net()
    dst = MACS[1] if case == "learned there" else MACS[0]
    net.tables.mac_table.learn(topo.id, 0, MACS[1], PortId(topo.ports[0].id))
    out = net.simulate(udp(0, dst), topo.ports[0].id)
    assert isinstance(out.verdict, TemporaryDrop)
    assert out.tags == frozenset()                  # temporary drops keep no tags but flow-state ones


def test_frames_to_a_router_port_mac_go_to_its_interior_port(topo: OneBridge) -> None:
    out = topo.net().simulate(frames.ping(MACS[0], ROUTER_MAC, IPS[0], "10.0.0.254"), topo.ports[0].id)
    assert ("bridge_port", topo.id, topo.link.id) in out.tags
    assert out.verdict == Consumed("ICMP echo request to 10.0.0.254 answered by the router")


def test_arp_request_for_the_router_port_address_is_answered_by_the_bridge(topo: OneBridge) -> None:
    net = topo.net()
    out = net.send(frames.arp_request(MACS[0], IPS[0], "10.0.0.254"), topo.ports[0].id)
    assert out.result.verdict == Consumed("ARP request for 10.0.0.254 answered by the bridge")
    [reply] = out.replies_at(topo.ports[0].id)
    assert (reply.arp_sha, reply.arp_spa, reply.arp_tpa) == (ROUTER_MAC, "10.0.0.254", IPS[0])


def test_a_tagged_arp_request_is_not_answered_by_the_bridge(topo: OneBridge) -> None:
    out = topo.net().simulate(frames.arp_request(MACS[0], IPS[0], "10.0.0.254", vlans=(5,)), topo.ports[0].id)
    assert not isinstance(out.verdict, Consumed)
    assert ("bridge_port", topo.id, topo.link.id) in out.tags       # sent on to the router port instead


def test_gratuitous_arp_is_learned_flooded_and_userspace_only(topo: OneBridge) -> None:
    out = topo.net().simulate(frames.garp(MACS[1], IPS[1]), topo.ports[1].id)
    assert Ip4MacLearned(topo.id, IPS[1], MACS[1]) in out.state_writes
    assert isinstance(out.verdict, Forward) and len(out.verdict.outputs) == 2
    assert out.userspace_only and not out.installs_flow
    assert ("arp_requests", topo.id) in out.tags


def test_arp_for_an_unknown_address_floods_and_learns_nothing_else(topo: OneBridge) -> None:
    out = topo.net().simulate(frames.arp_request(MACS[0], IPS[0], IPS[2]), topo.ports[0].id)
    assert isinstance(out.verdict, Forward) and len(out.verdict.outputs) == 2
    assert [w for w in out.state_writes if not isinstance(w, MacLearned)] == []
    assert not out.userspace_only


def test_inbound_filter_drop_still_learns_the_source() -> None:
    topo = one_bridge()
    chain = topo.b.chain("in")
    topo.b.rule(chain, "drop", nw_dst_ip="10.0.0.9/32")
    topo.b.filters(topo.bridge, inbound=chain)
    out = topo.net().simulate(udp(0, MACS[1]), topo.ports[0].id)
    assert out.verdict == Drop("bridge inbound filter: drop")
    assert out.state_writes == (MacLearned(topo.id, 0, MACS[0], PortId(topo.ports[0].id)),)
    assert chain.id in out.tags


def test_outbound_filter_sees_the_out_port_of_unicast_frames() -> None:
    topo = one_bridge()
    chain = topo.b.chain("out")
    topo.b.rule(chain, "drop", out_port_ids=(topo.ports[2].id,))
    topo.b.filters(topo.bridge, outbound=chain)
    net = topo.net()
    for i in (1, 2):
        net.tables.mac_table.learn(topo.id, 0, MACS[i], PortId(topo.ports[i].id))
    assert net.simulate(udp(0, MACS[2]), topo.ports[0].id).verdict == Drop("bridge outbound filter: drop")
    assert isinstance(net.simulate(udp(0, MACS[1]), topo.ports[0].id).verdict, Forward)
    flooded = net.simulate(udp(0, BROADCAST), topo.ports[0].id)      # no out port when flooding
    assert isinstance(flooded.verdict, Forward) and len(flooded.verdict.outputs) == 2


def test_vlan_tagged_frames_skip_the_bridge_filters() -> None:
    topo = one_bridge()
    chain = topo.b.chain("in")
    topo.b.rule(chain, "drop")
    topo.b.filters(topo.bridge, inbound=chain, outbound=chain)
    net = topo.net()
    assert net.simulate(udp(0, MACS[1]), topo.ports[0].id).verdict == Drop("bridge inbound filter: drop")
    tagged = net.simulate(frames.udp(MACS[0], MACS[1], IPS[0], IPS[1], vlans=(7,)), topo.ports[0].id)
    assert isinstance(tagged.verdict, Forward)
    assert chain.id not in tagged.tags
