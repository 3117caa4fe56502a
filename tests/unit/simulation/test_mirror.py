"""Port mirroring (spec 3.9): conditions OR-ed, copies first and last mirror first, the tag and the loop guard, each
hook position (the four of a port, a bridge's and a router's in and out) seeing the packet as it is there."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from midonet.packets.flowmatch import parse_frame
from midonet.simulation.devices.mirror import MirrorMapper
from midonet.simulation.pipeline import MAX_DEVICES_TRAVERSED, Stage
from midonet.simulation.results import Drop, Forward, Postponed, TemporaryDrop
from midonet.testing import frames
from midonet.testing.network import SimulatedNetwork
from midonet.testing.topologies import TopologyBuilder
from midonet.topology.chains import Condition
from midonet.topology.devices import Bridge, Port
from midonet.topology.ids import BridgeId, PortId
from midonet.topology.services import Mirror

MACS = ["02:00:00:00:00:01", "02:00:00:00:00:02"]
IPS = ["10.0.0.1", "10.0.0.2"]
ICMP, TCP, UDP = 1, 6, 17


@dataclass
class Tapped:
    """A bridge with VMs vm0 and vm1 (vm1's MAC learned) and a tap bridge with analyser ports a1, a2."""

    b: TopologyBuilder
    bridge: Bridge
    vm0: Port
    vm1: Port
    a1: Port
    a2: Port

    def net(self) -> SimulatedNetwork:
        net = SimulatedNetwork(self.b.topology())
        net.tables.mac_table.learn(BridgeId(self.bridge.id), 0, MACS[1], PortId(self.vm1.id))
        return net


@pytest.fixture
def t() -> Tapped:
    b = TopologyBuilder()
    br, tap = b.bridge("br"), b.bridge("tap")
    return Tapped(b, br, b.exterior_port(br, "vm0"), b.exterior_port(br, "vm1"), b.exterior_port(tap, "a1"),
                  b.exterior_port(tap, "a2"))


def ping() -> bytes:
    return frames.ping(MACS[0], MACS[1], IPS[0], IPS[1])


def tcp() -> bytes:
    return frames.tcp(MACS[0], MACS[1], IPS[0], IPS[1])


def outputs(out: object) -> list[str]:
    assert isinstance(out, Forward), out
    return [o.port for o in out.outputs]


def drop_all(b: TopologyBuilder, name: str) -> object:
    chain = b.chain(name)
    b.rule(chain, "drop")
    return chain


def test_a_matching_mirror_copies_first_and_tags_the_flow(t: Tapped) -> None:
    mirror = t.b.mirror(t.a1, nw_proto=ICMP)
    t.b.mirror_on(t.vm0, mirror, "inbound")
    out = t.net().simulate(ping(), t.vm0.id)
    assert outputs(out.verdict) == [t.a1.id, t.vm1.id]
    assert mirror.id in out.tags
    assert "ip_proto" in out.fields_seen                      # what the condition read is in the wildcard


def test_a_packet_no_condition_matches_is_not_copied(t: Tapped) -> None:
    t.b.mirror_on(t.vm0, t.b.mirror(t.a1, nw_proto=ICMP), "inbound")
    out = t.net().simulate(tcp(), t.vm0.id)
    assert outputs(out.verdict) == [t.vm1.id]


def test_conditions_are_ored(t: Tapped) -> None:
    mirror = t.b.mirror(t.a1, Condition(nw_proto=TCP), Condition(nw_proto=UDP))
    t.b.mirror_on(t.vm0, mirror, "inbound")
    net = t.net()
    assert outputs(net.simulate(tcp(), t.vm0.id).verdict) == [t.a1.id, t.vm1.id]
    assert outputs(net.simulate(frames.udp(MACS[0], MACS[1], IPS[0], IPS[1]), t.vm0.id).verdict) == [t.a1.id,
                                                                                                     t.vm1.id]
    assert outputs(net.simulate(ping(), t.vm0.id).verdict) == [t.vm1.id]


def test_a_mirror_without_conditions_copies_nothing(t: Tapped) -> None:
    mirror = t.b.add(Mirror(id=t.b.new_id(), to_port_id=t.a1.id))
    t.b.mirror_on(t.vm0, mirror, "inbound")
    assert outputs(t.net().simulate(ping(), t.vm0.id).verdict) == [t.vm1.id]


def test_several_mirrors_copy_last_matching_first(t: Tapped) -> None:
    first, second = t.b.mirror(t.a1), t.b.mirror(t.a2)
    t.b.mirror_on(t.vm0, first, "inbound")
    t.b.mirror_on(t.vm0, second, "inbound")
    assert outputs(t.net().simulate(ping(), t.vm0.id).verdict) == [t.a2.id, t.a1.id, t.vm1.id]


@pytest.mark.parametrize(("mirrors", "delivered"), [(MAX_DEVICES_TRAVERSED - 2, True),
                                                    (MAX_DEVICES_TRAVERSED - 1, False)])
def test_each_mirror_evaluation_counts_as_a_traversed_device(t: Tapped, mirrors: int, delivered: bool) -> None:
    for _ in range(mirrors):
        t.b.mirror_on(t.vm0, t.b.mirror(t.a1, nw_proto=TCP), "inbound")
    out = t.net().simulate(ping(), t.vm0.id)             # 1 port + the mirrors, then the egress port's guard
    if delivered:
        assert outputs(out.verdict) == [t.vm1.id]
    else:
        assert isinstance(out.verdict, TemporaryDrop) and "devices traversed" in out.verdict.reason


def test_a_mirror_not_loaded_yet_postpones(t: Tapped) -> None:
    t.b.update(t.vm0, inbound_mirror_ids=("00000000-0000-4000-8000-0000000000ff",))
    out = t.net().simulate(ping(), t.vm0.id)
    assert out.verdict == Postponed("mirror", "00000000-0000-4000-8000-0000000000ff")


def test_the_mapper_compiles_every_condition(t: Tapped) -> None:
    mirror = Mirror(id=t.b.new_id(), to_port_id=t.a1.id, conditions=(Condition(nw_proto=TCP), Condition()))
    device = MirrorMapper.map(mirror, {})
    assert device.to_port == t.a1.id and len(device.conditions) == 2
    assert str(device.conditions[0]) == "nw_proto=6"


# ---- the four port positions ----

def test_pre_in_filter_mirrors_see_what_the_inbound_filter_drops(t: Tapped) -> None:
    t.b.filters(t.vm0, inbound=drop_all(t.b, "in"))
    t.b.mirror_on(t.vm0, t.b.mirror(t.a1), "inbound")
    out = t.net().simulate(ping(), t.vm0.id)
    assert outputs(out.verdict) == [t.a1.id]                 # the copy's flow; the packet itself is dropped
    assert [line.stage for line in out.trace][:2] == [Stage.PORT_INGRESS, Stage.PORT_PRE_IN_MIRRORS]


def test_post_in_filter_mirrors_do_not_see_what_the_inbound_filter_drops(t: Tapped) -> None:
    t.b.filters(t.vm0, inbound=drop_all(t.b, "in"))
    t.b.mirror_on(t.vm0, t.b.mirror(t.a1), "post_in_filter")
    assert t.net().simulate(ping(), t.vm0.id).verdict == Drop("port inbound filter dropped the packet")


def test_post_in_filter_mirrors_see_what_the_filter_accepts(t: Tapped) -> None:
    t.b.mirror_on(t.vm0, t.b.mirror(t.a1), "post_in_filter")
    assert outputs(t.net().simulate(ping(), t.vm0.id).verdict) == [t.a1.id, t.vm1.id]


def test_pre_out_filter_mirrors_see_the_out_port_and_what_the_outbound_filter_drops(t: Tapped) -> None:
    t.b.filters(t.vm1, outbound=drop_all(t.b, "out"))
    t.b.mirror_on(t.vm1, t.b.mirror(t.a1, out_port_ids=(t.vm1.id,)), "pre_out_filter")
    assert outputs(t.net().simulate(ping(), t.vm0.id).verdict) == [t.a1.id]


def test_post_out_filter_mirrors_copy_only_what_leaves(t: Tapped) -> None:
    t.b.mirror_on(t.vm1, t.b.mirror(t.a1), "outbound")
    net = t.net()
    assert outputs(net.simulate(ping(), t.vm0.id).verdict) == [t.a1.id, t.vm1.id]
    t.b.filters(t.vm1, outbound=drop_all(t.b, "out"))
    assert t.net().simulate(ping(), t.vm0.id).verdict == Drop("port outbound filter dropped the packet")


# ---- bridges ----

def test_bridge_inbound_mirrors_run_before_the_inbound_filter(t: Tapped) -> None:
    t.b.filters(t.bridge, inbound=drop_all(t.b, "in"))
    t.b.mirror_on(t.bridge, t.b.mirror(t.a1), "inbound")
    out = t.net().simulate(ping(), t.vm0.id)
    assert outputs(out.verdict) == [t.a1.id]
    assert Stage.BRIDGE_PRE_IN_MIRRORS in [line.stage for line in out.trace]


def test_bridge_inbound_mirrors_see_a_multicast_source_before_it_drops(t: Tapped) -> None:
    t.b.mirror_on(t.bridge, t.b.mirror(t.a1), "inbound")
    out = t.net().simulate(frames.ping("03:00:00:00:00:01", MACS[1], IPS[0], IPS[1]), t.vm0.id)
    assert outputs(out.verdict) == [t.a1.id]


def test_bridge_outbound_mirrors_run_after_the_outbound_filter(t: Tapped) -> None:
    t.b.mirror_on(t.bridge, t.b.mirror(t.a1), "outbound")
    assert outputs(t.net().simulate(ping(), t.vm0.id).verdict) == [t.a1.id, t.vm1.id]
    t.b.filters(t.bridge, outbound=drop_all(t.b, "out"))
    assert t.net().simulate(ping(), t.vm0.id).verdict == Drop("bridge outbound filter: drop")


def test_bridge_outbound_mirrors_copy_a_flood_once(t: Tapped) -> None:
    t.b.mirror_on(t.bridge, t.b.mirror(t.a1), "outbound")
    out = t.net().simulate(frames.ping(MACS[0], "02:00:00:00:00:99", IPS[0], IPS[1]), t.vm0.id)
    assert outputs(out.verdict) == [t.a1.id, t.vm1.id]


# ---- what a copy looks like ----

def test_the_copy_is_the_packet_as_it_is_at_the_mirror(t: Tapped) -> None:
    t.b.mirror_on(t.vm0, t.b.mirror(t.a1), "inbound")
    net = t.net()
    out = net.send(ping(), t.vm0.id)
    (a1, copy), (vm1, delivered) = out.frames
    assert (a1, vm1) == (t.a1.id, t.vm1.id)
    assert copy == delivered == ping()
    assert parse_frame(copy).peek("ip_proto") == ICMP
