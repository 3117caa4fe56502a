"""Translation of a simulation's outputs into datapath actions: local, tunnelled, unreachable, several outputs."""

from __future__ import annotations

import pytest

from midonet.agent.translate import Destination, translate, vlan_actions
from midonet.datapath.base import Output, PopVlan, PushVlan, SetFields, SetTunnel
from midonet.packets.flowmatch import parse_frame
from midonet.simulation import results
from midonet.simulation.topology import NotYet
from midonet.testing import frames
from midonet.topology.ids import PortId

FRAME = frames.udp("02:00:00:00:00:01", "02:00:00:00:00:02", "10.0.1.1", "10.0.2.1", ttl=64)
ORIGINAL = parse_frame(FRAME, 3)


class Resolver:
    """Ports "local-<n>" are datapath port n; "remote-<key>" tunnel with key; "gone" has no destination."""

    def destination(self, port_id: str) -> Destination:
        kind, _, arg = port_id.partition("-")
        if kind == "local":
            return Destination((Output(int(arg)),), (("dp_port", int(arg)),))
        if kind == "remote":
            return Destination((SetTunnel(int(arg), "10.0.0.1", "10.0.0.2"), Output(99)), (("tunnel", "h2"),))
        if kind == "loading":
            raise NotYet("port_location", port_id)
        return Destination((), (("tunnel", "h9"),))


def out(port: str, **rewrites: object) -> results.Output:
    return results.Output(PortId(port), tuple(rewrites.items()))  # type: ignore[arg-type]


def test_a_local_output_with_rewrites() -> None:
    t = translate([out("local-4", eth_src="02:00:00:00:ff:02", ip_ttl=63)], ORIGINAL, Resolver())
    assert t.actions == (SetFields((("eth_src", "02:00:00:00:ff:02"), ("ip_ttl", 63))), Output(4))
    assert t.tags == {("dp_port", 4)} and t.expressible and t.unreachable == ()


def test_a_remote_output_sets_the_tunnel_before_the_overlay_port() -> None:
    t = translate([out("remote-77")], ORIGINAL, Resolver())
    assert t.actions == (SetTunnel(77, "10.0.0.1", "10.0.0.2"), Output(99))
    assert t.tags == {("tunnel", "h2")}


def test_several_outputs_share_one_list_and_undo_what_an_earlier_copy_rewrote() -> None:
    t = translate([out("local-4", ip_ttl=63), out("local-5"), out("remote-7", ip_ttl=62)], ORIGINAL, Resolver())
    assert t.actions == (SetFields((("ip_ttl", 63),)), Output(4),
                         SetFields((("ip_ttl", 64),)), Output(5),
                         SetFields((("ip_ttl", 62),)), SetTunnel(7, "10.0.0.1", "10.0.0.2"), Output(99))


def test_unreachable_outputs_add_no_action_but_their_tags() -> None:
    t = translate([out("gone"), out("local-4")], ORIGINAL, Resolver())
    assert t.actions == (Output(4),) and t.unreachable == ("gone",)
    assert ("tunnel", "h9") in t.tags
    assert translate([out("gone")], ORIGINAL, Resolver()).actions == ()


def test_a_port_whose_location_is_loading_is_not_yet() -> None:
    with pytest.raises(NotYet):
        translate([out("loading-1")], ORIGINAL, Resolver())


def test_every_output_is_asked_before_not_yet_and_the_last_missing_is_waited_for() -> None:
    asked: list[str] = []

    class Recording(Resolver):
        def destination(self, port_id: str) -> Destination:
            asked.append(port_id)
            return super().destination(port_id)

    with pytest.raises(NotYet) as missing:
        translate([out("local-4"), out("loading-1"), out("remote-7"), out("loading-2")], ORIGINAL, Recording())
    assert missing.value.id == "loading-2"                # the last asked: its answer comes last
    assert asked == ["local-4", "loading-1", "remote-7", "loading-2"]


def test_vlan_changes_become_pops_and_pushes() -> None:
    assert vlan_actions((), (10,)) == [PushVlan(10)]
    assert vlan_actions((10,), ()) == [PopVlan()]
    assert vlan_actions((10, 20), (30, 40)) == [PopVlan(), PopVlan(), PushVlan(40), PushVlan(30)]
    assert vlan_actions((5,), (5,)) == []
    t = translate([out("local-4", vlan_ids=(100,)), out("local-5")], ORIGINAL, Resolver())
    assert t.actions == (PushVlan(100), Output(4), PopVlan(), Output(5))


def test_a_rewrite_the_datapath_cannot_do_is_executed_copy_by_copy() -> None:
    t = translate([out("local-4", icmp_id=9)], ORIGINAL, Resolver())
    assert not t.expressible
    assert [(c.rewrites, c.actions) for c in t.copies] == [((("icmp_id", 9),), (Output(4),))]


class SameResolver(Resolver):
    """Each port's destination made once, as `AgentResolver` does while a binding holds."""

    def __init__(self) -> None:
        self.made: dict[str, Destination] = {}

    def destination(self, port_id: str) -> Destination:
        if port_id not in self.made:
            self.made[port_id] = super().destination(port_id)
        return self.made[port_id]


def test_one_output_through_the_same_destination_is_translated_once_for_equal_packets() -> None:
    resolver = SameResolver()
    hop = out("local-4", eth_src="02:00:00:00:ff:02", ip_ttl=63)
    first = translate([hop], ORIGINAL, resolver)
    other_port = parse_frame(frames.udp("02:00:00:00:00:01", "02:00:00:00:00:02", "10.0.1.1", "10.0.2.1", ttl=64,
                                        dport=9999), 3)
    assert translate([hop], other_port, resolver) is first      # only the ports differ: the same translation
    already = parse_frame(frames.udp("02:00:00:00:ff:02", "02:00:00:00:00:02", "10.0.1.1", "10.0.2.1", ttl=63), 3)
    assert translate([hop], already, resolver).actions == (Output(4),)   # nothing to set on this one
    resolver.made["local-4"] = Destination((Output(6),), (("dp_port", 6),))   # the port moved
    assert translate([hop], ORIGINAL, resolver).actions == (first.actions[0], Output(6))


def test_outputs_to_ports_that_go_nowhere_are_told_apart() -> None:
    resolver = SameResolver()
    nowhere = Destination(())
    resolver.made["gone-1"] = resolver.made["gone-2"] = nowhere   # one object for every port located nowhere
    assert translate([out("gone-1")], ORIGINAL, resolver).unreachable == ("gone-1",)
    assert translate([out("gone-2")], ORIGINAL, resolver).unreachable == ("gone-2",)
