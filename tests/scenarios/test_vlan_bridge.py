"""An L2 gateway (spec 3.3.5 and 5.4, `docs/l2-gateway.md`, MDTS `test_l2gw`): a VLAN-aware bridge with two trunks
to the physical network and one VLAN port per VLAN-unaware bridge. Frames cross between a trunk (tagged) and the
VMs (untagged), each VLAN staying on its own bridge.

    physical hosts on VLANs 10 and 20
         t1      t2                              (trunks: exterior ports of the VLAN-aware bridge)
        [      vab      ]
        p10 (VLAN 10)  p20 (VLAN 20)             (interior VLAN ports)
         |               |
       [n10] a b       [n20] c                   (VLAN-unaware bridges with VMs)
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from scapy.layers.l2 import Dot1Q, Ether

from midonet.packets.ethernet import BROADCAST
from midonet.packets.flowmatch import parse_frame
from midonet.simulation.results import Forward
from midonet.testing import frames
from midonet.testing.network import Delivery, SimulatedNetwork
from midonet.testing.topologies import TopologyBuilder
from midonet.topology.devices import Port

A, B, C = "02:00:00:00:10:0a", "02:00:00:00:10:0b", "02:00:00:00:20:0c"
H = "02:00:00:00:99:01"                 # a physical host behind trunk t1


@dataclass
class Gateway:
    t1: Port
    t2: Port
    a: Port
    b: Port
    c: Port
    net: SimulatedNetwork

    def names(self, delivery: Delivery) -> list[str]:
        by_id = {p.id: n for n, p in (("t1", self.t1), ("t2", self.t2), ("a", self.a), ("b", self.b),
                                      ("c", self.c))}
        return [by_id[port] for port in delivery.ports()]

    def vlans_at(self, delivery: Delivery) -> dict[str, tuple[int, ...]]:
        """The VLAN tags of each copy, as scapy reads them."""
        out: dict[str, tuple[int, ...]] = {}
        for name, (_, data) in zip(self.names(delivery), delivery.frames, strict=True):
            packet, tags = Ether(data), []
            while Dot1Q in packet:
                tags.append(packet[Dot1Q].vlan)
                packet = packet[Dot1Q].payload
            out[name] = tuple(tags)
            assert parse_frame(data).vlan_ids == out[name]           # our parser agrees
        return out


@pytest.fixture
def gw() -> Gateway:
    b = TopologyBuilder()
    vab, n10, n20 = b.bridge("vab"), b.bridge("n10"), b.bridge("n20")
    t1, t2 = b.exterior_port(vab, "t1"), b.exterior_port(vab, "t2")
    p10, p20 = b.interior_port(vab, "p10", vlan_id=10), b.interior_port(vab, "p20", vlan_id=20)
    b.link(p10, b.interior_port(n10, "link10"))
    b.link(p20, b.interior_port(n20, "link20"))
    a, vm_b, c = b.exterior_port(n10, "a"), b.exterior_port(n10, "b"), b.exterior_port(n20, "c")
    return Gateway(t1, t2, a, vm_b, c, SimulatedNetwork(b.topology()))


def udp(src: str, dst: str, vlans: tuple[int, ...] = ()) -> bytes:
    return frames.udp(src, dst, "10.0.0.1", "10.0.0.2", vlans=vlans)


def test_a_vm_broadcast_reaches_its_bridge_and_the_trunks_tagged(gw: Gateway) -> None:
    out = gw.net.send(frames.arp_request(A, "10.10.0.1", "10.10.0.99"), gw.a.id)
    assert gw.names(out) == ["b", "t1", "t2"]                       # not c: VLAN 20 is another bridge
    assert gw.vlans_at(out) == {"b": (), "t1": (10,), "t2": (10,)}


def test_a_tagged_broadcast_from_a_trunk_reaches_the_vlans_vms_untagged(gw: Gateway) -> None:
    out = gw.net.send(udp(H, BROADCAST, vlans=(20,)), gw.t1.id)
    assert gw.names(out) == ["t2", "c"]
    assert gw.vlans_at(out) == {"t2": (20,), "c": ()}


def test_unicast_both_ways_between_a_trunk_and_a_vm(gw: Gateway) -> None:
    gw.net.send(udp(A, BROADCAST), gw.a.id)                          # teaches A on n10 and on VLAN 10 of vab
    to_vm = gw.net.send(udp(H, A, vlans=(10,)), gw.t1.id)
    assert gw.names(to_vm) == ["a"] and gw.vlans_at(to_vm) == {"a": ()}

    to_host = gw.net.send(udp(A, H), gw.a.id)                        # H was learned on VLAN 10 at t1
    assert gw.names(to_host) == ["t1"] and gw.vlans_at(to_host) == {"t1": (10,)}
    assert to_host.frames[0][1] == udp(A, H, vlans=(10,))             # the same frame, with the tag pushed


def test_a_mac_learned_on_one_vlan_is_unknown_on_another(gw: Gateway) -> None:
    gw.net.send(udp(C, BROADCAST), gw.c.id)                          # C is learned on VLAN 20
    out = gw.net.send(udp(H, C, vlans=(10,)), gw.t1.id)              # asked for on VLAN 10: flooded there
    assert gw.names(out) == ["t2", "a", "b"]
    assert isinstance(out.result.verdict, Forward)


def test_untagged_trunk_traffic_never_reaches_the_vms(gw: Gateway) -> None:
    out = gw.net.send(udp(H, BROADCAST), gw.t1.id)
    assert gw.names(out) == ["t2"]
