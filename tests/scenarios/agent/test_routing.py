"""Routing between subnets on different hosts: ARP resolution across hosts, MAC rewrite, TTL - 1, VXLAN delivery.

`routed` (conftest): router 10.0.1.254 (left) / 10.0.2.254 (right); l1 (h1) and l2 (h3) on `left`, r1 (h2) on
`right`. Each VM is a `FakeVm` that answers ARP for its address, as a VM's kernel would.
"""

from __future__ import annotations

from midonet.agent.metrics import AgentDrop
from midonet.datapath.base import OVERLAY_UDP_PORT
from midonet.packets.flowmatch import parse_frame
from midonet.packets.vxlan import decapsulate
from midonet.testing import frames
from midonet.testing.topologies import LEFT_ROUTER_MAC, RIGHT_ROUTER_MAC
from midonet.topology.devices import Router

from .conftest import RoutedCloud


def test_routed_packet_is_rewritten_and_tunnelled_to_the_host_of_the_destination(routed: RoutedCloud) -> None:
    cloud, l1, r1 = routed.cloud, routed.vms["l1"], routed.vms["r1"]
    h1 = l1.host
    underlay: list[bytes] = []
    cloud.underlay.observe(underlay.append)
    sent = frames.udp(l1.mac, LEFT_ROUTER_MAC, l1.ip, r1.ip, ttl=64)
    l1.send(sent)
    cloud.settle()     # h1 loads the devices, ARPs for 10.0.2.1 (r1 on h2 answers), then forwards

    assert r1.arp_answered == 1
    [got] = r1.take()
    m = parse_frame(got)
    assert (m.eth_src, m.eth_dst) == (RIGHT_ROUTER_MAC, r1.mac)      # rewritten by the router
    assert (m.ip_src, m.ip_dst, m.ip_ttl) == (l1.ip, r1.ip, 63)       # TTL - 1, addresses kept
    assert cloud.operator.state_table(Router, routed.router.id, "arp_table").get(r1.ip) == r1.mac

    to_h2 = [d for d in (decapsulate(f, port=OVERLAY_UDP_PORT) for f in underlay) if d.inner == got]
    assert [(d.outer_ip_src, d.outer_ip_dst, d.vni) for d in to_h2] == [
        ("10.0.0.1", "10.0.0.2", routed.ports["r1"].tunnel_key)]

    before = h1.agent.statistics()
    l1.send(sent)                          # the flow is installed: h1's datapath forwards it alone
    assert r1.take() == [got]
    after = h1.agent.statistics()
    assert after.upcalls == before.upcalls and after.datapath.hits == before.datapath.hits + 1


def test_the_reply_is_routed_back_by_the_other_host(routed: RoutedCloud) -> None:
    cloud, l1, r1 = routed.cloud, routed.vms["l1"], routed.vms["r1"]
    l1.send(frames.udp(l1.mac, LEFT_ROUTER_MAC, l1.ip, r1.ip))
    cloud.settle()
    r1.take()
    reply = frames.udp(r1.mac, RIGHT_ROUTER_MAC, r1.ip, l1.ip, sport=80, dport=10000)
    r1.send(reply)
    cloud.settle()
    [got] = l1.take()
    m = parse_frame(got)
    assert (m.eth_src, m.eth_dst, m.ip_src, m.ip_ttl) == (LEFT_ROUTER_MAC, l1.mac, r1.ip, 63)
    assert l1.arp_answered == 1            # h2's router asked for 10.0.1.1 (h2 had not learned it)


def test_the_router_answers_arp_for_its_port_on_the_senders_host(routed: RoutedCloud) -> None:
    cloud, l1 = routed.cloud, routed.vms["l1"]
    delivered = cloud.underlay.statistics().delivered
    l1.send(frames.arp_request(l1.mac, l1.ip, "10.0.1.254"))
    cloud.settle()
    [reply] = l1.take()
    m = parse_frame(reply)
    assert (m.arp_op, m.arp_sha, m.arp_spa, m.arp_tpa) == (2, LEFT_ROUTER_MAC, "10.0.1.254", l1.ip)
    assert cloud.underlay.statistics().delivered == delivered       # answered on h1, nothing crossed
    assert l1.host.agent.statistics().generated == 1


def test_ping_to_the_router_is_answered_locally(routed: RoutedCloud) -> None:
    cloud, l1 = routed.cloud, routed.vms["l1"]
    l1.send(frames.ping(l1.mac, LEFT_ROUTER_MAC, l1.ip, "10.0.1.254"))
    cloud.settle()
    [echo] = [parse_frame(f) for f in l1.take()]
    assert (echo.ip_src, echo.ip_dst, echo.tp_src) == ("10.0.1.254", l1.ip, 0)   # echo reply
    assert l1.host.agent.statistics().flows.flows == 0                             # consumed: no flow


def test_no_route_drops_for_a_while_and_a_new_route_needs_the_drop_to_expire(routed: RoutedCloud) -> None:
    cloud, l1 = routed.cloud, routed.vms["l1"]
    l1.send(frames.udp(l1.mac, LEFT_ROUTER_MAC, l1.ip, "192.168.7.7"))
    cloud.settle()
    stats = l1.host.agent.statistics()
    assert stats.dropped(AgentDrop.TEMPORARY_DROP) == 1
    [unreachable] = [parse_frame(f) for f in l1.take()]     # ICMP net unreachable, generated on h1
    assert (unreachable.ip_src, unreachable.tp_src, unreachable.tp_dst) == ("10.0.1.254", 3, 0)


def test_a_packet_waiting_for_arp_gives_up_after_three_seconds(routed: RoutedCloud) -> None:
    cloud, l1 = routed.cloud, routed.vms["l1"]
    silent = "10.0.2.99"                   # nobody answers for it
    l1.send(frames.udp(l1.mac, LEFT_ROUTER_MAC, l1.ip, silent))
    cloud.settle()
    agent = l1.host.agent
    assert len(agent.waiting) == 1
    cloud.tick(3.0)
    stats = agent.statistics()
    assert stats.waiting == 0 and stats.dropped(AgentDrop.GAVE_UP) == 1
    [error_flow] = [e for e in agent.flows.entries() if e.expiry.value == 5.0]
    assert error_flow.actions == ()
    l1.send(frames.udp(l1.mac, LEFT_ROUTER_MAC, l1.ip, silent))
    assert agent.statistics().upcalls == stats.upcalls      # dropped by the 5 s error flow in the datapath
