"""VLAN-aware bridges and VXLAN ports (spec 3.3.5, 3.2, `docs/l2-gateway.md`): push and pop at the VLAN ports, the
per-VLAN flood, unicast only to the matching VLAN, chains skipped for tagged frames, learning per VLAN, the link of
a VLAN-unaware bridge to a VLAN-aware one, and VXLAN ports in the flood set. One device at a time."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from midonet.packets.ethernet import BROADCAST
from midonet.simulation.results import Drop, Forward, SimulationResult
from midonet.simulation.topology import BridgePortDevice
from midonet.state.mac_table import MacLearned
from midonet.testing import frames
from midonet.testing.network import SimulatedNetwork
from midonet.testing.topologies import TopologyBuilder
from midonet.topology.devices import Bridge, Port
from midonet.topology.ids import BridgeId, PortId

X, Y = "02:00:00:00:00:0a", "02:00:00:00:00:0b"


@dataclass
class Vab:
    """A VLAN-aware bridge: trunks t1, t2; VLAN ports p10, p20 linked to VLAN-unaware bridges n10, n20."""

    b: TopologyBuilder
    vab: Bridge
    t1: Port
    t2: Port
    p10: Port
    p20: Port
    n10: Bridge
    link10: Port

    def net(self) -> SimulatedNetwork:
        return SimulatedNetwork(self.b.topology())

    @property
    def id(self) -> BridgeId:
        return BridgeId(self.vab.id)


@pytest.fixture
def v() -> Vab:
    b = TopologyBuilder()
    vab, n10, n20 = b.bridge("vab"), b.bridge("n10"), b.bridge("n20")
    t1, t2 = b.exterior_port(vab, "t1"), b.exterior_port(vab, "t2")
    p10, p20 = b.interior_port(vab, "p10", vlan_id=10), b.interior_port(vab, "p20", vlan_id=20)
    link10, link20 = b.interior_port(n10, "link10"), b.interior_port(n20, "link20")
    b.link(p10, link10)
    b.link(p20, link20)
    return Vab(b, vab, t1, t2, p10, p20, n10, link10)


def udp(src: str, dst: str, vlans: tuple[int, ...] = ()) -> bytes:
    return frames.udp(src, dst, "10.0.0.1", "10.0.0.2", vlans=vlans)


def outputs(out: SimulationResult) -> list[str]:
    assert isinstance(out.verdict, Forward), out.verdict
    return [o.port for o in out.verdict.outputs]


def rewrites(out: SimulationResult) -> list[dict[str, object]]:
    assert isinstance(out.verdict, Forward)
    return [dict(o.rewrites) for o in out.verdict.outputs]


# ---- the mapper ----

def test_the_mapper_finds_vlan_ports_and_the_link_to_a_vlan_aware_bridge(v: Vab) -> None:
    topology = v.b.topology()
    vab = topology.get_bridge(v.id)
    assert dict(vab.vlan_ports) == {10: v.p10.id, 20: v.p20.id}
    assert vab.vlan_of(PortId(v.p20.id)) == 20 and vab.vlan_of(PortId(v.t1.id)) is None
    assert vab.vlan_aware and vab.vlan_peer_port is None
    n10 = topology.get_bridge(BridgeId(v.n10.id))
    assert not n10.vlan_aware and n10.vlan_peer_port == v.link10.id


def test_a_vxlan_port_is_exterior_and_in_the_flood_set() -> None:
    b = TopologyBuilder()
    br = b.bridge("br")
    vm, vx = b.exterior_port(br, "vm"), b.vxlan_port(br, "vx")
    topology = b.topology()
    port = topology.get_port(PortId(vx.id))
    assert isinstance(port, BridgePortDevice) and port.exterior and port.vtep_id is not None
    assert topology.get_bridge(BridgeId(br.id)).exterior_ports == (vm.id, vx.id)
    net = SimulatedNetwork(topology)
    assert outputs(net.simulate(udp(X, BROADCAST), vm.id)) == [vx.id]
    assert outputs(net.simulate(udp(Y, BROADCAST), vx.id)) == [vm.id]     # from the VTEP, not back to it


# ---- flooding ----

def test_a_tagged_flood_from_a_trunk_goes_to_the_trunks_and_its_vlan_port(v: Vab) -> None:
    out = v.net().simulate(udp(X, BROADCAST, vlans=(10,)), v.t1.id)
    # the frame goes on through n10, which has no exterior port: only the trunk's copy leaves
    assert outputs(out) == [v.t2.id]
    assert rewrites(out) == [{}]                                   # still tagged on the trunk
    assert [line.text for line in out.trace if "VLAN port" in line.text]


def test_an_untagged_flood_from_a_trunk_stays_on_the_trunks(v: Vab) -> None:
    out = v.net().simulate(udp(X, BROADCAST), v.t1.id)
    assert outputs(out) == [v.t2.id]
    assert v.p10.id not in out.tags and v.p20.id not in out.tags


def test_a_flood_on_a_vlan_without_a_port_stays_on_the_trunks(v: Vab) -> None:
    out = v.net().simulate(udp(X, BROADCAST, vlans=(30,)), v.t1.id)
    assert outputs(out) == [v.t2.id] and v.p10.id not in out.tags


def test_a_flood_from_a_vlan_port_is_pushed_onto_the_trunks(v: Vab) -> None:
    out = v.net().simulate(udp(X, BROADCAST), v.p10.id)
    assert outputs(out) == [v.t1.id, v.t2.id]
    assert rewrites(out) == [{"vlan_ids": (10,)}, {"vlan_ids": (10,)}]


def test_a_vlan_unaware_bridge_floods_to_its_vlan_aware_peer_too(v: Vab) -> None:
    vm = v.b.exterior_port(v.n10, "vm")
    out = v.net().simulate(udp(X, BROADCAST), vm.id)
    assert outputs(out) == [v.t1.id, v.t2.id]                      # through the link, pushed to VLAN 10
    assert rewrites(out) == [{"vlan_ids": (10,)}, {"vlan_ids": (10,)}]


def test_a_vlan_unaware_bridge_does_not_flood_back_to_the_link_it_came_by(v: Vab) -> None:
    vm = v.b.exterior_port(v.n10, "vm")
    out = v.net().simulate(udp(X, BROADCAST), v.link10.id)
    assert outputs(out) == [vm.id]


# ---- unicast ----

def test_unicast_from_a_trunk_to_a_vlan_port_needs_the_ports_vlan_and_pops_it(v: Vab) -> None:
    vm = v.b.exterior_port(v.n10, "vm")
    net = v.net()
    net.tables.mac_table.learn(v.id, 10, Y, PortId(v.p10.id))
    net.tables.mac_table.learn(BridgeId(v.n10.id), 0, Y, PortId(vm.id))
    out = net.simulate(udp(X, Y, vlans=(10,)), v.t1.id)
    assert outputs(out) == [vm.id] and rewrites(out) == [{"vlan_ids": ()}]


@pytest.mark.parametrize(("vlans", "reason"), [
    ((), "carries VLAN 10; the frame is untagged"),
    ((20,), "carries VLAN 10; the frame is on VLAN 20"),
])
def test_unicast_to_a_vlan_port_on_another_vlan_drops(v: Vab, vlans: tuple[int, ...], reason: str) -> None:
    net = v.net()
    vlan = vlans[0] if vlans else 0
    net.tables.mac_table.learn(v.id, vlan, Y, PortId(v.p10.id))
    out = net.simulate(udp(X, Y, vlans=vlans), v.t1.id)
    assert isinstance(out.verdict, Drop) and out.verdict.reason.endswith(reason)


def test_unicast_from_a_vlan_port_is_pushed(v: Vab) -> None:
    net = v.net()
    net.tables.mac_table.learn(v.id, 10, Y, PortId(v.t2.id))
    out = net.simulate(udp(X, Y), v.p10.id)
    assert outputs(out) == [v.t2.id] and rewrites(out) == [{"vlan_ids": (10,)}]


def test_unicast_between_trunks_keeps_the_tag(v: Vab) -> None:
    net = v.net()
    net.tables.mac_table.learn(v.id, 20, Y, PortId(v.t2.id))
    out = net.simulate(udp(X, Y, vlans=(20,)), v.t1.id)
    assert outputs(out) == [v.t2.id] and rewrites(out) == [{}]


def test_a_bridge_port_with_a_vlan_pops_it_on_the_way_out(v: Vab) -> None:
    """The VLAN port itself takes its tag off (`AbstractBridgePort.egressCommon`), as on a flood."""
    vm = v.b.exterior_port(v.n10, "vm")
    out = v.net().simulate(udp(X, BROADCAST, vlans=(10,)), v.t1.id)
    assert outputs(out) == [v.t2.id, vm.id] and rewrites(out) == [{}, {"vlan_ids": ()}]


# ---- learning and chains ----

def test_learning_is_per_vlan(v: Vab) -> None:
    net = v.net()
    assert net.simulate(udp(X, BROADCAST, vlans=(10,)), v.t1.id).state_writes[0] == MacLearned(
        v.id, 10, X, PortId(v.t1.id))
    assert net.simulate(udp(X, BROADCAST), v.p20.id).state_writes[0] == MacLearned(v.id, 20, X, PortId(v.p20.id))
    assert net.simulate(udp(X, BROADCAST), v.t1.id).state_writes[0] == MacLearned(v.id, 0, X, PortId(v.t1.id))


def test_chains_are_skipped_for_tagged_frames(v: Vab) -> None:
    chain = v.b.chain("drop-all")
    v.b.rule(chain, "drop")
    v.b.filters(v.vab, inbound=chain, outbound=chain)
    net = v.net()
    assert outputs(net.simulate(udp(X, BROADCAST, vlans=(10,)), v.t1.id)) == [v.t2.id]
    assert net.simulate(udp(X, BROADCAST), v.t1.id).verdict == Drop("bridge inbound filter: drop")


def test_the_outbound_filter_sees_the_frame_as_it_leaves_the_bridge(v: Vab) -> None:
    """Popped on the way to a VLAN port, the frame is untagged again: the outbound filter applies."""
    chain = v.b.chain("drop-all")
    v.b.rule(chain, "drop")
    v.b.filters(v.vab, outbound=chain)
    net = v.net()
    net.tables.mac_table.learn(v.id, 10, Y, PortId(v.p10.id))
    assert net.simulate(udp(X, Y, vlans=(10,)), v.t1.id).verdict == Drop("bridge outbound filter: drop")
