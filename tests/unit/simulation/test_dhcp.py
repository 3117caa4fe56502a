"""DHCP (spec 3.11): which requests are answered, OFFER / ACK / NAK and what they carry, the MTU rule, option 121,
extra options, the errors, and the mapper that builds the subnets a bridge carries."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from midonet.packets import dhcp, ethernet, ipv4, udp
from midonet.packets.dhcp import ClasslessRoute, DhcpMessage, DhcpOptions
from midonet.packets.flowmatch import parse_frame
from midonet.simulation.config import SimulationConfig
from midonet.simulation.devices.dhcp import SERVER_MAC, DhcpMapper
from midonet.simulation.pipeline import PIPELINE, Stage
from midonet.simulation.results import Consumed, Forward, SimulationResult, TemporaryDrop
from midonet.testing import frames
from midonet.testing.network import SimulatedNetwork
from midonet.testing.topologies import TopologyBuilder
from midonet.topology.devices import Bridge, Port
from midonet.topology.ids import BridgeId
from midonet.topology.services import DhcpHost, DhcpOption, DhcpSubnet

VM = "02:00:00:00:00:01"
OTHER = "02:00:00:00:00:02"


@dataclass
class Served:
    b: TopologyBuilder
    bridge: Bridge
    vm: Port
    other: Port

    def net(self, **config: int) -> SimulatedNetwork:
        return SimulatedNetwork(self.b.topology(), config=SimulationConfig(**config))


def served(**subnet: Any) -> Served:
    """A bridge with two VM ports and one DHCP subnet 10.0.0.0/24 giving VM the address 10.0.0.5."""
    b = TopologyBuilder()
    br = b.bridge("br")
    vm, other = b.exterior_port(br, "vm"), b.exterior_port(br, "other")
    subnet.setdefault("gateway", "10.0.0.1")
    subnet.setdefault("hosts", {VM: "10.0.0.5"})
    b.dhcp_subnet(br, "10.0.0.0/24", **subnet)
    return Served(b, br, vm, other)


def answer(result: SimulationResult) -> DhcpMessage:
    """The DHCP message of the one packet the simulation generated."""
    (packet,) = result.generated
    _, datagram = ethernet.parse(packet.frame)
    _, segment = ipv4.parse(datagram)
    return dhcp.parse(udp.parse(segment)[1])


def options(result: SimulationResult) -> DhcpOptions:
    return answer(result).decoded()


def discover(mac: str = VM, **kw: Any) -> bytes:
    return frames.dhcp(mac, dhcp.DISCOVER, **kw)


def request(requested: str | None = "10.0.0.5", **kw: Any) -> bytes:
    return frames.dhcp(VM, dhcp.REQUEST, requested=requested, **kw)


# ---- when the server answers ----

def test_a_discover_is_answered_with_an_offer_out_of_the_ingress_port() -> None:
    s = served()
    out = s.net().simulate(discover(), s.vm.id)
    assert out.verdict == Consumed("DHCP DISCOVER answered with OFFER of 10.0.0.5")
    assert out.expiration is None and not out.installs_flow
    (packet,) = out.generated
    assert packet.port == s.vm.id
    m = parse_frame(packet.frame)
    assert (m.eth_src, m.eth_dst, m.ip_src, m.ip_dst, m.tp_src, m.tp_dst) == (
        SERVER_MAC, VM, "10.0.0.1", "255.255.255.255", 67, 68)
    reply = answer(out)
    assert (reply.op, reply.xid, reply.chaddr, reply.yiaddr, reply.siaddr) == (2, 0x1234, VM, "10.0.0.5", "10.0.0.1")
    assert reply.message_type == dhcp.OFFER
    assert [line.stage for line in out.trace] == [Stage.DHCP, Stage.RESULT]


def test_the_offer_carries_the_subnets_configuration() -> None:
    s = served(dns_server_addresses=("10.0.0.2", "8.8.8.8"))
    got = options(s.net().simulate(discover(), s.vm.id))
    assert got == DhcpOptions(message_type=dhcp.OFFER, subnet_mask="255.255.255.0", routers=("10.0.0.1",),
                              dns_servers=("10.0.0.2", "8.8.8.8"), interface_mtu=1450,
                              broadcast_address="10.0.0.255", lease_time=86400, server_id="10.0.0.1")


def test_the_message_type_comes_first_then_the_options_by_code() -> None:
    s = served(routes=(("172.16.0.0/12", "10.0.0.254"),))
    codes = [code for code, _ in answer(s.net().simulate(discover(), s.vm.id)).options]
    assert codes == [53, 1, 3, 26, 28, 51, 54, 121]


def test_a_request_for_the_offered_address_is_acked() -> None:
    s = served()
    out = s.net().simulate(request(), s.vm.id)
    assert out.verdict == Consumed("DHCP REQUEST answered with ACK of 10.0.0.5")
    assert answer(out).message_type == dhcp.ACK


def test_a_request_without_a_requested_address_is_acked() -> None:
    s = served()
    assert answer(s.net().simulate(request(None), s.vm.id)).message_type == dhcp.ACK


def test_a_request_naming_another_server_is_still_acked() -> None:
    s = served()
    assert answer(s.net().simulate(request(server="10.9.9.9"), s.vm.id)).message_type == dhcp.ACK


def test_a_request_for_another_address_is_nakked() -> None:
    s = served()
    out = s.net().simulate(request("10.0.0.77"), s.vm.id)
    assert out.verdict == Consumed("DHCP REQUEST answered with NAK of 10.0.0.5")
    assert answer(out).message_type == dhcp.NAK


@pytest.mark.parametrize("kind", [dhcp.DECLINE, dhcp.RELEASE, dhcp.INFORM])
def test_other_message_types_are_errors(kind: int) -> None:
    s = served()
    out = s.net().simulate(frames.dhcp(VM, kind), s.vm.id)
    assert isinstance(out.verdict, TemporaryDrop) and "is not served" in out.verdict.reason
    assert out.generated == ()


def test_a_request_without_a_message_type_is_an_error() -> None:
    s = served()
    frame = frames.dhcp(VM, dhcp.DISCOVER)
    raw = frame.replace(b"\x35\x01\x01", b"\x00\x00\x00")     # PAD over option 53
    out = s.net().simulate(raw, s.vm.id)
    assert isinstance(out.verdict, TemporaryDrop) and "message type" in out.verdict.reason


def test_an_empty_parameter_request_list_is_an_error() -> None:
    s = served()
    frame = frames.dhcp(VM, dhcp.DISCOVER, params=(1,)).replace(b"\x37\x01\x01", b"\x37\x00\x00")
    out = s.net().simulate(frame, s.vm.id)
    assert isinstance(out.verdict, TemporaryDrop) and "parameter request list" in out.verdict.reason


# ---- when it does not ----

def test_an_unknown_mac_is_simulated_like_any_broadcast() -> None:
    s = served()
    out = s.net().simulate(discover(OTHER), s.other.id)
    assert isinstance(out.verdict, Forward) and [o.port for o in out.verdict.outputs] == [s.vm.id]
    assert {"eth_type", "ip_proto", "tp_src", "tp_dst", "eth_src"} <= out.fields_seen
    assert s.bridge.id in out.tags


def test_a_host_entry_without_an_address_is_not_served() -> None:
    b = TopologyBuilder()
    br = b.bridge("br")
    vm, other = b.exterior_port(br, "vm"), b.exterior_port(br, "other")
    b.add(DhcpSubnet(id=b.new_id(), network_id=br.id, subnet_address="10.0.0.0/24", hosts=(DhcpHost(mac=VM),)))
    out = SimulatedNetwork(b.topology()).simulate(discover(), vm.id)
    assert isinstance(out.verdict, Forward) and [o.port for o in out.verdict.outputs] == [other.id]


def test_the_first_subnet_with_an_address_for_the_mac_answers() -> None:
    s = served(hosts={OTHER: "10.0.0.9"})
    s.b.dhcp_subnet(s.bridge, "10.1.0.0/16", gateway="10.1.0.1", hosts={VM: "10.1.0.5"})
    s.b.dhcp_subnet(s.bridge, "10.2.0.0/16", hosts={VM: "10.2.0.5"})
    reply = answer(s.net().simulate(discover(), s.vm.id))
    assert (reply.yiaddr, reply.decoded().subnet_mask) == ("10.1.0.5", "255.255.0.0")


def test_a_disabled_subnet_does_not_answer() -> None:
    s = served(enabled=False)
    assert isinstance(s.net().simulate(discover(), s.vm.id).verdict, Forward)


def test_client_to_server_udp_that_is_not_dhcp_is_simulated() -> None:
    s = served()
    out = s.net().simulate(frames.udp(VM, ethernet.BROADCAST, "0.0.0.0", "255.255.255.255", sport=68, dport=67,
                                      payload=b"not bootp"), s.vm.id)
    assert isinstance(out.verdict, Forward)


def test_a_server_reply_sent_by_a_vm_is_simulated() -> None:
    s = served()
    frame = frames.dhcp(VM, dhcp.DISCOVER)
    raw = bytearray(frame)
    raw[42] = dhcp.OP_REPLY                       # op, the first byte of the BOOTP message after 14 + 20 + 8
    assert isinstance(s.net().simulate(bytes(raw), s.vm.id).verdict, Forward)


def test_a_chaddr_that_is_not_six_bytes_is_not_answered() -> None:
    s = served()
    out = s.net().simulate(frames.dhcp(VM, dhcp.DISCOVER, chaddr="02:00:00:00:00:01:00:00"), s.vm.id)
    assert isinstance(out.verdict, Forward)


def test_a_bridge_without_dhcp_reads_no_udp_field() -> None:
    b = TopologyBuilder()
    br = b.bridge("br")
    vm, _ = b.exterior_port(br, "vm"), b.exterior_port(br, "other")
    out = SimulatedNetwork(b.topology()).simulate(discover(), vm.id)
    assert not {"ip_proto", "tp_src", "tp_dst"} & out.fields_seen


def test_dhcp_comes_before_the_port_in_the_pipeline() -> None:
    assert PIPELINE[0] is Stage.DHCP and PIPELINE[1] is Stage.PORT_INGRESS


# ---- MTU, routes, extra options ----

@pytest.mark.parametrize(("subnet_mtu", "config", "expected"), [
    (None, {}, 1450),                                              # dhcp_mtu 1500, capped at 1500 - 50
    (1400, {}, 1400),                                              # the subnet's MTU when below the cap
    (9000, {}, 1450),
    (None, {"underlay_mtu": 9000}, 1500),                          # dhcp_mtu when the underlay allows it
    (8950, {"underlay_mtu": 9000}, 8950),
    (None, {"underlay_mtu": 9000, "dhcp_mtu": 4000}, 4000),
    (9000, {"underlay_mtu": 9000}, 8950),
])
def test_interface_mtu(subnet_mtu: int | None, config: dict[str, int], expected: int) -> None:
    s = served(interface_mtu=subnet_mtu)
    assert options(s.net(**config).simulate(discover(), s.vm.id)).interface_mtu == expected


def test_option_121_carries_the_routes_then_the_default_route() -> None:
    s = served(routes=(("172.16.0.0/12", "10.0.0.254"), ("192.168.7.0/24", "10.0.0.253")))
    assert options(s.net().simulate(discover(), s.vm.id)).classless_routes == (
        ClasslessRoute("172.16.0.0", 12, "10.0.0.254"), ClasslessRoute("192.168.7.0", 24, "10.0.0.253"),
        ClasslessRoute("0.0.0.0", 0, "10.0.0.1"))


def test_no_option_121_without_routes_and_no_default_route_without_a_gateway() -> None:
    s = served(gateway=None, server_address="10.0.0.3", routes=(("172.16.0.0/12", "10.0.0.254"),))
    got = options(s.net().simulate(discover(), s.vm.id))
    assert got.routers == () and got.server_id == "10.0.0.3"
    assert got.classless_routes == (ClasslessRoute("172.16.0.0", 12, "10.0.0.254"),)
    assert options(served().net().simulate(discover(), served().vm.id)).classless_routes == ()


def test_extra_options_are_added_and_replace_the_servers_own() -> None:
    s = served(extra={VM: (("domain-name", "example.org"), ("interface-mtu", "1300"), ("bogus", "1"),
                           ("ntp-servers", "not an address"))})
    got = options(s.net().simulate(discover(), s.vm.id))
    assert got.domain_name == "example.org" and got.interface_mtu == 1300
    assert 42 not in dict(answer(s.net().simulate(discover(), s.vm.id)).options)


def test_an_extra_message_type_cannot_change_the_answer() -> None:
    s = served(extra={VM: (("dhcp-message-type", "5"),)})
    assert answer(s.net().simulate(discover(), s.vm.id)).message_type == dhcp.OFFER


# ---- the mapper ----

@pytest.mark.parametrize(("fields", "server"), [
    ({"server_address": "10.0.0.3", "default_gateway": "10.0.0.1"}, "10.0.0.3"),
    ({"default_gateway": "10.0.0.1"}, "10.0.0.1"),
    ({}, "10.0.0.254"),                                              # the broadcast address minus one
])
def test_the_server_address_falls_back_to_the_gateway_then_broadcast_minus_one(fields: dict[str, str],
                                                                                server: str) -> None:
    device = DhcpMapper.map(DhcpSubnet(id="00000000-0000-4000-8000-000000000001", subnet_address="10.0.0.0/24",
                                       **fields))
    assert device is not None and device.server_address == server


def test_the_mapper_skips_ipv6_subnets_and_encodes_extra_options_once() -> None:
    assert DhcpMapper.map(DhcpSubnet(id="00000000-0000-4000-8000-000000000001",
                                     subnet_address="2001:db8::/64")) is None
    device = DhcpMapper.map(DhcpSubnet(
        id="00000000-0000-4000-8000-000000000001", subnet_address="10.0.0.0/24",
        hosts=(DhcpHost(mac=VM, ip_address="10.0.0.5", extra_dhcp_opts=(
            DhcpOption(name="26", value="1400"), DhcpOption(name="nonsense", value="x"))),)))
    assert device is not None and device.hosts[VM].extra_options == ((26, b"\x05\x78"),)


def test_a_bridge_carries_its_enabled_subnets_in_order() -> None:
    b = TopologyBuilder()
    br = b.bridge("br")
    first = b.dhcp_subnet(br, "10.0.0.0/24")
    b.dhcp_subnet(br, "10.1.0.0/24", enabled=False)
    third = b.dhcp_subnet(br, "10.2.0.0/24")
    bridge = b.topology().get_bridge(BridgeId(br.id))
    assert [s.id for s in bridge.dhcp_subnets] == [first.id, third.id]


def test_the_config_refuses_an_underlay_smaller_than_a_tunnel() -> None:
    with pytest.raises(ValueError, match="no room"):
        SimulationConfig(underlay_mtu=40)
