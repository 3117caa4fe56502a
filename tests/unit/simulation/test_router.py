"""The router (spec 3.4): ingress checks, ARP, routes of every kind, TTL, next-hop resolution, ICMP errors and
when they are not sent, filters with fragments and reject, and the flow tags.

The topology is the two-subnet router (one VM a side) plus an exterior uplink port 192.0.2.1/24 (default route via
192.0.2.254), a peer router behind a /30 link (172.16.0.0/12), and blackhole / reject routes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from midonet.packets import ethernet, icmp
from midonet.simulation.results import Consumed, Drop, Forward, Postponed, TemporaryDrop, TemporaryDropKind
from midonet.state.arp_cache import ARP_STALE, ArpLearned
from midonet.testing import frames
from midonet.testing.network import Delivery, SimulatedNetwork
from midonet.testing.topologies import HOST_ID, LEFT_ROUTER_MAC, TopologyBuilder, TwoSubnetRouter, two_subnet_router
from midonet.topology.chains import FragmentPolicy
from midonet.topology.devices import NextHop, Port
from midonet.topology.ids import PortId, RouterId

UPLINK_MAC = "02:00:00:00:ee:01"
PEER_A, PEER_B = "02:00:00:00:dd:01", "02:00:00:00:dd:02"
GATEWAY_MAC = "02:00:00:00:99:99"


@dataclass
class Routed:
    t: TwoSubnetRouter
    uplink: Port
    peer_link: Port

    @property
    def b(self) -> TopologyBuilder:
        return self.t.builder

    @property
    def router(self) -> RouterId:
        return RouterId(self.t.router.id)

    def net(self, *, resolved: bool = True) -> SimulatedNetwork:
        net = SimulatedNetwork(self.b.topology())
        if resolved:
            for vm in self.t.vms.values():
                net.tables.arp_cache.learn(self.router, vm.ip, vm.mac)
            net.tables.arp_cache.learn(self.router, "192.0.2.254", GATEWAY_MAC)
        return net


def routed(**router: object) -> Routed:
    b = TopologyBuilder()
    t = two_subnet_router(1, builder=b)
    if router:
        b.update(t.router, **router)
    uplink = b.router_port(t.router, "192.0.2.1/24", UPLINK_MAC, "uplink", host_id=HOST_ID,
                           interface_name="uplink0")
    b.route(t.router, "0.0.0.0/0", uplink, gateway="192.0.2.254")
    b.route(t.router, "198.51.100.0/24", uplink, gateway="203.0.113.1")     # gateway off the uplink subnet
    b.route(t.router, "203.0.113.0/24", uplink)                             # direct, off the uplink subnet
    r2 = b.router("r2")
    a = b.router_port(t.router, "169.254.0.1/30", PEER_A, "to-r2")
    back = b.router_port(r2, "169.254.0.2/30", PEER_B, "from-r1")
    b.link(a, back)
    b.route(r2, "10.0.0.0/8", back, gateway="169.254.0.1")      # r2's way back, for the errors it sends
    b.route(t.router, "172.16.0.0/12", a, gateway="169.254.0.2")
    b.route(t.router, "10.66.0.0/16", next_hop=NextHop.BLACKHOLE)
    b.route(t.router, "10.77.0.0/16", next_hop=NextHop.REJECT)
    return Routed(t, uplink, a)


@pytest.fixture
def r() -> Routed:
    return routed()


def from_l1(r: Routed, dst: str, **kw: Any) -> bytes:
    l1 = r.t.vms["l1"]
    return frames.udp(l1.mac, LEFT_ROUTER_MAC, l1.ip, dst, **kw)


def send(r: Routed, data: bytes, net: SimulatedNetwork | None = None) -> Delivery:
    return (net or r.net()).send(data, r.t.vms["l1"].port.id)


# ---- ingress checks ----

def test_vlan_tagged_frames_are_dropped_but_a_priority_tag_is_stripped(r: Routed) -> None:
    tagged = send(r, frames.udp(r.t.vms["l1"].mac, LEFT_ROUTER_MAC, "10.0.1.1", "10.0.2.1", vlans=(5,)))
    assert tagged.result.verdict == Drop("VLAN-tagged frame on a router")      # the bridge let it through
    net = r.net()
    r1 = r.t.vms["r1"]
    net.tables.mac_table.learn(r.t.right.id, 0, r1.mac, r1.port.id)
    l1 = r.t.vms["l1"]
    out = net.simulate(frames.udp(l1.mac, LEFT_ROUTER_MAC, l1.ip, r1.ip, vlans=(0,)), r.uplink.id)
    assert out.verdict == Drop(f"destination MAC {LEFT_ROUTER_MAC} is not the ingress port's {UPLINK_MAC}")
    stripped = net.simulate(frames.udp(l1.mac, UPLINK_MAC, "192.0.2.77", r1.ip, vlans=(0,)), r.uplink.id)
    assert isinstance(stripped.verdict, Forward)
    assert dict(stripped.verdict.outputs[0].rewrites)["vlan_ids"] == ()
    dropped = net.simulate(frames.udp(l1.mac, UPLINK_MAC, "192.0.2.77", r1.ip, vlans=(9,)), r.uplink.id)
    assert dropped.verdict == Drop("VLAN-tagged frame on a router")


def test_other_ethertypes_and_l2_broadcasts_are_dropped(r: Routed) -> None:
    net = r.net()
    bcast = net.simulate(frames.udp("02:00:00:00:00:77", "ff:ff:ff:ff:ff:ff", "192.0.2.77", "192.0.2.255"),
                         r.uplink.id)
    assert bcast.verdict == Drop("L2 broadcast other than ARP")
    lldp = ethernet.build(ethernet.EthernetHeader(dst=UPLINK_MAC, src="02:00:00:00:00:77", eth_type=0x88CC),
                          bytes(46))
    assert net.simulate(lldp, r.uplink.id).verdict == Drop("EtherType 0x88cc is neither IPv4 nor ARP")
    ipv6 = ethernet.build(ethernet.EthernetHeader(dst=UPLINK_MAC, src="02:00:00:00:00:77", eth_type=0x86DD),
                          bytes(46))
    assert net.simulate(ipv6, r.uplink.id).verdict == Drop("IPv6 on a router port")


def test_a_router_down_answers_filter_prohibited() -> None:
    r = routed(admin_state_up=False)
    out = send(r, from_l1(r, "10.0.2.1"))
    assert out.result.verdict == Drop("router is administratively down")
    [error] = out.replies_at(r.t.vms["l1"].port.id)
    assert (error.tp_src, error.tp_dst) == (icmp.TYPE_UNREACHABLE, icmp.CODE_PROHIBITED)


# ---- ARP ----

def test_arp_from_outside_the_port_subnet_is_ignored(r: Routed) -> None:
    net = r.net(resolved=False)
    out = net.simulate(frames.arp_request("02:00:00:00:00:77", "10.9.9.9", "192.0.2.1"), r.uplink.id)
    assert out.verdict == Consumed("ARP from 10.9.9.9, outside the port's subnet: ignored")
    assert out.state_writes == ()


def test_gratuitous_arp_teaches_the_router(r: Routed) -> None:
    out = r.net().simulate(frames.garp("02:00:00:00:00:77", "192.0.2.77"), r.uplink.id)
    assert isinstance(out.verdict, Consumed)
    assert out.state_writes == (ArpLearned(r.router, "192.0.2.77", "02:00:00:00:00:77"),)


def test_arp_reply_for_someone_else_is_ignored(r: Routed) -> None:
    reply = frames.arp_reply("02:00:00:00:00:77", "192.0.2.77", "02:00:00:00:00:78", "192.0.2.1",
                             eth_dst=UPLINK_MAC)
    out = r.net().simulate(reply, r.uplink.id)
    assert out.verdict == Consumed("ARP reply neither for this port nor gratuitous: ignored")
    assert out.state_writes == ()
    mine = frames.arp_reply("02:00:00:00:00:77", "192.0.2.77", UPLINK_MAC, "192.0.2.1")
    assert r.net().simulate(mine, r.uplink.id).state_writes == (
        ArpLearned(r.router, "192.0.2.77", "02:00:00:00:00:77"),)


def test_arp_request_for_another_address_is_ignored(r: Routed) -> None:
    out = r.net().simulate(frames.arp_request("02:00:00:00:00:77", "192.0.2.77", "192.0.2.99"), r.uplink.id)
    assert out.verdict == Consumed("ARP request for 192.0.2.99, not the port's address: ignored")


# ---- routes ----

def test_default_route_via_the_uplink_gateway(r: Routed) -> None:
    out = send(r, from_l1(r, "8.8.8.8"))
    assert isinstance(out.result.verdict, Forward)
    [(port, sent)] = out.matches()
    assert port == r.uplink.id
    assert (sent.eth_src, sent.eth_dst, sent.ip_ttl) == (UPLINK_MAC, GATEWAY_MAC, 63)
    assert ("arp", r.router, "192.0.2.254") in out.result.tags
    assert ("dst_ip", r.router, "8.8.8.8") in out.result.tags


def test_a_peer_router_needs_no_arp_and_its_errors_come_back_through_us(r: Routed) -> None:
    out = send(r, from_l1(r, "172.16.5.5"))
    # r2 has no route to 172.16.5.5: its ICMP error is routed back through our router to l1
    assert out.result.verdict == TemporaryDrop("no route to 172.16.5.5", TemporaryDropKind.SHORT)
    assert f"next hop MAC {PEER_B}: out by port {r.peer_link.id[:8]}" in [line.text for line in out.result.trace]
    [error] = out.replies_at(r.t.vms["l1"].port.id)
    assert (error.ip_src, error.ip_dst, error.tp_src, error.tp_dst) == (
        "169.254.0.2", "10.0.1.1", icmp.TYPE_UNREACHABLE, icmp.CODE_NET_UNREACHABLE)
    assert (error.eth_src, error.ip_ttl) == (LEFT_ROUTER_MAC, 63)


def test_unresolved_gateway_sends_an_arp_request_from_the_out_port(r: Routed) -> None:
    out = r.net(resolved=False).simulate(from_l1(r, "8.8.8.8"), r.t.vms["l1"].port.id)
    assert out.verdict == Postponed("arp", f"{r.router}/192.0.2.254")
    [request] = out.generated
    assert request.port == r.uplink.id and request.reason == "ARP request for 192.0.2.254"


def test_a_stale_entry_is_used_and_refreshed(r: Routed) -> None:
    net = r.net()
    net.clock.advance(ARP_STALE + 1)
    out = net.simulate(from_l1(r, "8.8.8.8"), r.t.vms["l1"].port.id)
    assert isinstance(out.verdict, Forward)
    assert [g.reason for g in out.generated] == ["ARP request for 192.0.2.254"]


@pytest.mark.parametrize(("dst", "code", "reason"), [
    ("203.0.113.5", icmp.CODE_HOST_UNREACHABLE, "203.0.113.5 is not in the subnet of the out port"),
    ("198.51.100.5", icmp.CODE_NET_UNREACHABLE, "gateway 203.0.113.1 is not in the subnet of the out port"),
])
def test_next_hop_off_the_exterior_port_subnet_is_unreachable(r: Routed, dst: str, code: int, reason: str) -> None:
    out = send(r, from_l1(r, dst))
    assert out.result.verdict == TemporaryDrop(reason)
    [error] = out.replies_at(r.t.vms["l1"].port.id)
    assert (error.tp_src, error.tp_dst) == (icmp.TYPE_UNREACHABLE, code)


def test_blackhole_drops_silently_and_reject_answers_prohibited(r: Routed) -> None:
    hole = send(r, from_l1(r, "10.66.0.1"))
    assert hole.result.verdict == TemporaryDrop("blackhole route 10.66.0.0/16")
    assert hole.replies == []
    reject = send(r, from_l1(r, "10.77.0.1"))
    assert reject.result.verdict == TemporaryDrop("reject route 10.77.0.0/16", TemporaryDropKind.SHORT)
    [error] = reject.replies_at(r.t.vms["l1"].port.id)
    assert (error.tp_src, error.tp_dst) == (icmp.TYPE_UNREACHABLE, icmp.CODE_PROHIBITED)


def test_other_traffic_to_a_port_address_is_dropped(r: Routed) -> None:
    out = send(r, from_l1(r, "10.0.1.254"))
    assert out.result.verdict == TemporaryDrop("traffic to the router's own address 10.0.1.254 other than ping")


def test_a_host_route_is_not_tagged_with_a_route() -> None:
    r = routed()
    r.b.route(r.t.router, "8.8.4.4/32", r.uplink, gateway="192.0.2.254")
    out = send(r, from_l1(r, "8.8.4.4"))
    assert isinstance(out.result.verdict, Forward)
    assert not any(isinstance(t, tuple) and t[0] in ("route", "dst_ip") for t in out.result.tags)


# ---- ICMP errors: when not to send them ----

def test_no_error_about_an_icmp_error_a_later_fragment_or_a_subnet_broadcast(r: Routed) -> None:
    l1 = r.t.vms["l1"]
    assert len(send(r, from_l1(r, "8.8.8.8", ttl=1)).replies) == 1              # the reference: one error
    later = send(r, from_l1(r, "8.8.8.8", ttl=1, frag="later"))
    assert later.result.verdict == TemporaryDrop("TTL expired") and later.replies == []
    quoted = bytes([0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0, 8, 8, 8, 8, 10, 0, 1, 1]) + bytes(8)
    error = send(r, frames.icmp_error(l1.mac, LEFT_ROUTER_MAC, l1.ip, "8.8.8.8", quoted, ttl=1))
    assert error.result.verdict == TemporaryDrop("TTL expired") and error.replies == []
    broadcast = send(r, from_l1(r, "10.0.1.255", ttl=1))
    assert broadcast.result.verdict == TemporaryDrop("TTL expired") and broadcast.replies == []
    multicast = send(r, from_l1(r, "239.1.1.1", ttl=1))
    assert multicast.result.verdict == TemporaryDrop("TTL expired") and multicast.replies == []


# ---- filters ----

def test_inbound_drop_of_a_first_fragment_answers_frag_needed() -> None:
    r = routed()
    chain = r.b.chain("in")
    r.b.rule(chain, "drop", nw_dst_ip="8.8.8.8/32", fragment_policy=FragmentPolicy.ANY)
    r.b.filters(r.t.router, inbound=chain)
    first = send(r, from_l1(r, "8.8.8.8", frag="first"))
    assert first.result.verdict == TemporaryDrop("router inbound filter dropped a first fragment")
    [error] = first.replies_at(r.t.vms["l1"].port.id)
    assert (error.tp_src, error.tp_dst) == (icmp.TYPE_UNREACHABLE, icmp.CODE_FRAG_NEEDED)
    whole = send(r, from_l1(r, "8.8.8.8"))
    assert whole.result.verdict == Drop("router inbound filter: drop") and whole.replies == []


def test_reject_answers_admin_prohibited() -> None:
    r = routed()
    chain = r.b.chain("out")
    r.b.rule(chain, "reject", out_port_ids=(r.uplink.id,))
    r.b.filters(r.t.router, outbound=chain)
    out = send(r, from_l1(r, "8.8.8.8"))
    assert out.result.verdict == Drop("router outbound filter: reject")
    [error] = out.replies_at(r.t.vms["l1"].port.id)
    assert (error.ip_src, error.tp_src, error.tp_dst) == ("10.0.1.254", icmp.TYPE_UNREACHABLE,
                                                          icmp.CODE_PROHIBITED)
    inside = send(r, from_l1(r, "10.0.2.1"))
    assert isinstance(inside.result.verdict, Forward)


def test_service_container_ports_keep_the_ttl() -> None:
    r = routed()
    r.b.update(r.uplink, service_container_id="00000099-0000-4000-8000-000000000000")
    out = send(r, from_l1(r, "8.8.8.8", ttl=1))
    assert isinstance(out.result.verdict, Forward)
    assert out.matches()[0][1].ip_ttl == 1


def test_a_route_through_an_inactive_exterior_port_does_not_count(r: Routed) -> None:
    net = SimulatedNetwork(r.b.topology(inactive_ports={r.uplink.id}))
    out = net.simulate(from_l1(r, "8.8.8.8"), r.t.vms["l1"].port.id)
    assert out.verdict == TemporaryDrop("no route to 8.8.8.8", TemporaryDropKind.SHORT)
    assert PortId(r.uplink.id) not in out.tags
