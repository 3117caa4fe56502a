"""DHCP through the reference topology (spec 3.11, MDTS `test_dhcp`): VMs on the left bridge get their address, mask,
gateway, DNS, MTU and routes from the bridge's DHCP subnet; replies come out of the VM's own port, and are read both
with our DHCP parser and with scapy as the independent oracle.

    l1 l2 (10.0.1.x, DHCP subnet 10.0.1.0/24)       r1 r2 (10.0.2.x, no DHCP)
        |                                              |
     [left] --- 10.0.1.254 [router] 10.0.2.254 --- [right]
"""

from __future__ import annotations

import pytest
from scapy.layers.dhcp import BOOTP, DHCP
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

from midonet.packets import dhcp, ethernet, ipv4, udp
from midonet.packets.dhcp import ClasslessRoute, DhcpMessage
from midonet.simulation.config import SimulationConfig
from midonet.simulation.devices.dhcp import SERVER_MAC
from midonet.simulation.results import Consumed, Forward
from midonet.testing import frames
from midonet.testing.network import Delivery, SimulatedNetwork
from midonet.testing.topologies import TwoSubnetRouter, two_subnet_router

GATEWAY = "10.0.1.254"


@pytest.fixture
def topo() -> TwoSubnetRouter:
    topo = two_subnet_router()
    l1 = topo.vms["l1"]
    topo.builder.dhcp_subnet(topo.left, "10.0.1.0/24", gateway=GATEWAY, hosts={l1.mac: l1.ip},
                             dns_server_addresses=("10.0.1.2", "8.8.8.8"),
                             routes=(("169.254.169.254/32", "10.0.1.10"), ("172.16.0.0/12", "10.0.1.253")),
                             extra={l1.mac: (("domain-name", "openstacklocal"),)})
    return topo


def the_reply(out: Delivery, port: str) -> bytes:
    ((where, data),) = out.replies
    assert where == port
    return data


def parsed(data: bytes) -> DhcpMessage:
    _, datagram = ethernet.parse(data)
    _, segment = ipv4.parse(datagram)
    return dhcp.parse(udp.parse(segment)[1])


def scapy_options(data: bytes) -> dict[str, object]:
    packet = Ether(data)
    return {opt[0]: (opt[1] if len(opt) == 2 else opt[1:]) for opt in packet[DHCP].options
            if isinstance(opt, tuple)}


def test_discover_offer_request_ack(topo: TwoSubnetRouter) -> None:
    l1 = topo.vms["l1"]
    net = SimulatedNetwork(topo.topology())

    offered = net.send(frames.dhcp(l1.mac, dhcp.DISCOVER, xid=0xCAFE), l1.port.id)
    assert offered.result.verdict == Consumed(f"DHCP DISCOVER answered with OFFER of {l1.ip}")
    assert offered.ports() == []                                  # nothing else is flooded
    offer = the_reply(offered, l1.port.id)

    ours = parsed(offer)
    assert (ours.op, ours.xid, ours.chaddr, ours.yiaddr, ours.siaddr) == (2, 0xCAFE, l1.mac, l1.ip, GATEWAY)
    got = ours.decoded()
    assert (got.message_type, got.subnet_mask, got.routers, got.dns_servers) == (
        dhcp.OFFER, "255.255.255.0", (GATEWAY,), ("10.0.1.2", "8.8.8.8"))
    assert (got.interface_mtu, got.broadcast_address, got.lease_time, got.server_id, got.domain_name) == (
        1450, "10.0.1.255", 86400, GATEWAY, "openstacklocal")
    assert got.classless_routes == (ClasslessRoute("169.254.169.254", 32, "10.0.1.10"),
                                    ClasslessRoute("172.16.0.0", 12, "10.0.1.253"),
                                    ClasslessRoute("0.0.0.0", 0, GATEWAY))

    # the independent oracle reads the same frame the same way
    packet = Ether(offer)
    assert (packet.src, packet.dst, packet[IP].src, packet[IP].dst) == (SERVER_MAC, l1.mac, GATEWAY,
                                                                        "255.255.255.255")
    assert (packet[UDP].sport, packet[UDP].dport) == (67, 68)
    assert (packet[BOOTP].op, packet[BOOTP].xid, packet[BOOTP].yiaddr, packet[BOOTP].siaddr) == (2, 0xCAFE, l1.ip,
                                                                                                 GATEWAY)
    theirs = scapy_options(offer)
    assert theirs["message-type"] == 2
    assert theirs["subnet_mask"] == "255.255.255.0"
    assert theirs["router"] == GATEWAY
    assert theirs["name_server"] == ("10.0.1.2", "8.8.8.8")
    assert theirs["interface-mtu"] == 1450
    assert theirs["broadcast_address"] == "10.0.1.255"
    assert theirs["lease_time"] == 86400
    assert theirs["server_id"] == GATEWAY
    assert theirs["domain"] == b"openstacklocal"
    assert theirs["classless_static_routes"] == ["169.254.169.254/32:10.0.1.10", "172.16.0.0/12:10.0.1.253",
                                                 "0.0.0.0/0:10.0.1.254"]
    rebuilt = packet[IP].copy()
    del rebuilt.chksum, rebuilt[UDP].chksum, rebuilt.len, rebuilt[UDP].len
    assert bytes(rebuilt) == bytes(packet[IP])                      # lengths and checksums as scapy computes them

    acked = net.send(frames.dhcp(l1.mac, dhcp.REQUEST, xid=0xCAFE, requested=l1.ip, server=GATEWAY), l1.port.id)
    assert acked.result.verdict == Consumed(f"DHCP REQUEST answered with ACK of {l1.ip}")
    ack = the_reply(acked, l1.port.id)
    assert parsed(ack).message_type == dhcp.ACK and scapy_options(ack)["message-type"] == 5
    assert parsed(ack).decoded().interface_mtu == 1450


def test_a_request_for_another_address_is_nakked(topo: TwoSubnetRouter) -> None:
    l1 = topo.vms["l1"]
    out = SimulatedNetwork(topo.topology()).send(frames.dhcp(l1.mac, dhcp.REQUEST, requested="10.0.1.99"),
                                                 l1.port.id)
    nak = the_reply(out, l1.port.id)
    assert parsed(nak).message_type == dhcp.NAK
    assert scapy_options(nak)["message-type"] == 6


def test_an_unknown_mac_gets_no_answer_and_floods_like_any_broadcast(topo: TwoSubnetRouter) -> None:
    l2 = topo.vms["l2"]                                              # no host entry for l2
    out = SimulatedNetwork(topo.topology()).send(frames.dhcp(l2.mac, dhcp.DISCOVER), l2.port.id)
    assert isinstance(out.result.verdict, Forward)
    assert out.ports() == [topo.vms["l1"].port.id]                  # the left bridge's other port only
    assert out.replies == []
    assert topo.left.id in out.result.tags


def test_a_bridge_without_dhcp_floods_requests(topo: TwoSubnetRouter) -> None:
    r1 = topo.vms["r1"]
    out = SimulatedNetwork(topo.topology()).send(frames.dhcp(r1.mac, dhcp.DISCOVER), r1.port.id)
    assert out.ports() == [topo.vms["r2"].port.id] and out.replies == []


def test_the_offered_mtu_follows_the_underlay(topo: TwoSubnetRouter) -> None:
    l1 = topo.vms["l1"]
    jumbo = SimulatedNetwork(topo.topology(), config=SimulationConfig(underlay_mtu=9000, dhcp_mtu=8950))
    offer = the_reply(jumbo.send(frames.dhcp(l1.mac, dhcp.DISCOVER), l1.port.id), l1.port.id)
    assert scapy_options(offer)["interface-mtu"] == 8950
    small = SimulatedNetwork(topo.topology(), config=SimulationConfig(underlay_mtu=1400))
    offer = the_reply(small.send(frames.dhcp(l1.mac, dhcp.DISCOVER), l1.port.id), l1.port.id)
    assert scapy_options(offer)["interface-mtu"] == 1350


def test_the_reply_passes_the_ports_outbound_filter(topo: TwoSubnetRouter) -> None:
    b, l1 = topo.builder, topo.vms["l1"]
    chain = b.chain("no-dhcp-replies")
    b.rule(chain, "drop", nw_proto=17, tp_src=(67, 67))
    b.filters(topo.port(l1.port), outbound=chain)
    out = SimulatedNetwork(topo.topology()).send(frames.dhcp(l1.mac, dhcp.DISCOVER), l1.port.id)
    assert isinstance(out.result.verdict, Consumed)                  # answered ...
    assert out.replies == []                                          # ... but the reply is filtered on its way out
