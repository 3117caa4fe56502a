"""DHCP: the virtual network answers a VM's DHCP requests itself (spec 3.11; `DhcpImpl.scala`, `DhcpConfigFromZoom`).

Role: `intercept(ctx, port, config)` runs before the packet enters the network (the original's
`PacketWorkflow.handleDHCP`, ahead of the simulation). It answers when all of these hold, and otherwise returns
None, so the request is simulated like any other frame (a DISCOVER floods the bridge as a broadcast):

* the frame is IPv4 UDP from port 68 to port 67 and parses as a BOOTREQUEST;
* it came in on an exterior port of a bridge (not a VXLAN port, not a router port);
* one of the bridge's enabled DHCP subnets (`BridgeDevice.dhcp_subnets`, in order) has a host entry with an
  address for the frame's *source MAC* (Neutron creates one per port address);
* the client hardware address is 6 bytes long.

The answer (`reply`): DISCOVER -> OFFER; REQUEST -> ACK, or NAK when its requested-address option (50) is not the
host's address (a missing option 50, or a server id naming another server, still gets the ACK, as the original).
A request without a message type, with an empty parameter request list, or of another type (DECLINE, RELEASE,
INFORM) is an error: temporary drop (the original throws and the workflow drops). Every reply carries, from the
host and its subnet:

    yiaddr = host address, siaddr = server address; options (message type first, then by code):
    1 mask, 3 router (the default gateway, if any), 6 DNS servers (if any), 26 interface MTU, 28 broadcast,
    51 lease time (one day), 54 server id, 121 classless routes (if the subnet has any: its routes, then the default
    route via the gateway appended), then the host's extra options, replacing any of the above they name.

Interface MTU = min(the subnet's MTU or `config.dhcp_mtu`, `config.underlay_mtu` - 50). The server address is the
subnet's, else its default gateway, else the subnet broadcast address minus one. The reply goes from the server MAC
02:a8:9c:de:39:27 and the server address to the client's MAC and 255.255.255.255, UDP 67 -> 68, as a packet
generated out of the ingress port; the request is `Consumed` (no flow). As the original, the reply is a new
message (flags, ciaddr and giaddr zero) whose chaddr is the frame's source MAC.

Flow: the fields read here are part of the flow's wildcard, as in the original (whose check reads them through the
match): a flow installed for some other UDP broadcast must not swallow a later DHCP request. Two reads are skipped
safely: a packet entering by a port that is not a bridge's exterior port, or a bridge with no DHCP subnet, is not
examined (the flow is tagged with the port and the bridge, whose changes invalidate it). A request that is not
answered is tagged with the bridge (a DHCP configuration change builds a new bridge snapshot, invalidating it).

Snapshots: `DhcpSubnetDevice` / `DhcpHostDevice`, built by `DhcpMapper` from `topology.services.DhcpSubnet`; extra
options are parsed once, there (`packets.dhcp_extra`), and invalid ones left out.

May import: `midonet.packets`, `midonet.topology`, `simulation.context`, `simulation.topology`,
`simulation.results`, `simulation.pipeline`, `simulation.config`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field

from midonet.packets import dhcp, ethernet, frame, ipv4, udp
from midonet.packets.dhcp import ClasslessRoute, DhcpMessage
from midonet.packets.dhcp_extra import encode_extra
from midonet.packets.errors import MalformedPacket
from midonet.packets.flowmatch import FlowMatch
from midonet.packets.ipv4 import ip_to_bytes
from midonet.simulation.config import SimulationConfig
from midonet.simulation.context import PacketContext
from midonet.simulation.pipeline import Stage
from midonet.simulation.results import Consumed, TemporaryDrop, Verdict
from midonet.simulation.topology import BridgeDevice, BridgePortDevice, PortDevice
from midonet.topology.services import DhcpSubnet

SERVER_MAC = "02:a8:9c:de:39:27"
LEASE_TIME = 24 * 3600
_BROADCAST_IP = "255.255.255.255"
_TYPE_NAMES = {dhcp.DISCOVER: "DISCOVER", dhcp.OFFER: "OFFER", dhcp.REQUEST: "REQUEST", dhcp.DECLINE: "DECLINE",
               dhcp.ACK: "ACK", dhcp.NAK: "NAK", dhcp.RELEASE: "RELEASE", dhcp.INFORM: "INFORM"}


@dataclass(frozen=True, slots=True, kw_only=True)
class DhcpHostDevice:
    """A static assignment: the address `ip` for `mac`; `extra_options` (code, data) already encoded."""

    mac: str
    ip: str | None
    name: str | None = None
    extra_options: tuple[tuple[int, bytes], ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class DhcpSubnetDevice:
    """A DHCP subnet a bridge serves, with its hosts by MAC."""

    id: str
    network: ipaddress.IPv4Network
    server_address: str
    default_gateway: str | None = None
    dns_servers: tuple[str, ...] = ()
    interface_mtu: int | None = None
    routes: tuple[ClasslessRoute, ...] = ()
    hosts: Mapping[str, DhcpHostDevice] = field(default_factory=dict)


class DhcpMapper:
    """DhcpSubnet record -> `DhcpSubnetDevice` (None for an IPv6 subnet: DHCPv4 only)."""

    @staticmethod
    def map(subnet: DhcpSubnet) -> DhcpSubnetDevice | None:
        network = ipaddress.ip_network(subnet.subnet_address, strict=False)
        if not isinstance(network, ipaddress.IPv4Network):
            return None
        server = subnet.server_address or subnet.default_gateway or str(network.broadcast_address - 1)
        routes = []
        for route in subnet.opt121_routes:
            dst = ipaddress.ip_network(route.dst_subnet, strict=False)
            if isinstance(dst, ipaddress.IPv4Network):
                routes.append(ClasslessRoute(str(dst.network_address), dst.prefixlen, route.gateway))
        hosts = {}
        for host in subnet.hosts:
            extras = tuple(e for e in (encode_extra(o.name, o.value) for o in host.extra_dhcp_opts) if e is not None)
            hosts[host.mac] = DhcpHostDevice(mac=host.mac, ip=host.ip_address, name=host.name, extra_options=extras)
        return DhcpSubnetDevice(
            id=subnet.id, network=network, server_address=server, default_gateway=subnet.default_gateway,
            dns_servers=subnet.dns_server_addresses, interface_mtu=subnet.interface_mtu, routes=tuple(routes),
            hosts=hosts)


def intercept(ctx: PacketContext, port: PortDevice, config: SimulationConfig) -> Verdict | None:
    """Answer the packet if it is a DHCP request we serve (Consumed or TemporaryDrop); None to simulate it."""
    if not isinstance(port, BridgePortDevice) or not port.exterior or port.vtep_id is not None:
        return None
    bridge = ctx.topology.get_bridge(port.bridge_id)
    if not bridge.dhcp_subnets:
        return None
    ctx.tags.add(bridge.id)
    m = ctx.match
    if m.eth_type != ethernet.ETH_TYPE_IPV4 or m.ip_proto != ipv4.PROTO_UDP:
        return None
    if m.tp_src != dhcp.CLIENT_PORT or m.tp_dst != dhcp.SERVER_PORT:
        return None
    request = _request(ctx.frame)
    if request is None or request.op != dhcp.OP_REQUEST:
        return None
    client = str(m.eth_src)
    found = _assignment(bridge, client)
    if found is None:
        if ctx.trace is not None:
            ctx.note(Stage.DHCP, bridge.id, f"DHCP request from {client}: no static assignment, simulate it")
        return None
    subnet, host = found
    if len(request.chaddr.split(":")) != 6:
        return None
    try:
        answer = reply(request, client, subnet, host, config)
    except Unanswerable as error:
        return TemporaryDrop(f"DHCP request from {client}: {error}")
    kind = answer.message_type or 0
    data = dhcp.build(answer)
    ctx.generate(port.id, _frame(client, subnet.server_address, data), f"DHCP {_TYPE_NAMES.get(kind)} to {client}")
    asked = request.message_type or 0
    if ctx.trace is not None:
        ctx.note(Stage.DHCP, bridge.id, f"DHCP {_TYPE_NAMES.get(asked)} from {client}: "
                                        f"{_TYPE_NAMES.get(kind)} {host.ip} (subnet {subnet.network})")
    return Consumed(f"DHCP {_TYPE_NAMES.get(asked)} answered with {_TYPE_NAMES.get(kind)} of {host.ip}")


class Unanswerable(Exception):
    """The request is malformed or of a type the server does not answer."""


def reply(request: DhcpMessage, client: str, subnet: DhcpSubnetDevice, host: DhcpHostDevice,
          config: SimulationConfig) -> DhcpMessage:
    """The OFFER, ACK or NAK for `request` from `client`, assigned `host` in `subnet` (raises `Unanswerable`)."""
    assert host.ip is not None
    options = dict(request.options)
    raw_type = options.get(dhcp.OPT_MESSAGE_TYPE)
    if raw_type is None or len(raw_type) != 1:
        raise Unanswerable("no DHCP message type, or a malformed one")
    if dhcp.OPT_PARAMETER_REQUEST in options and not options[dhcp.OPT_PARAMETER_REQUEST]:
        raise Unanswerable("empty parameter request list")
    if raw_type[0] == dhcp.DISCOVER:
        kind = dhcp.OFFER
    elif raw_type[0] == dhcp.REQUEST:
        kind = dhcp.ACK
        requested = options.get(dhcp.OPT_REQUESTED_IP)
        if requested is not None and requested != ip_to_bytes(host.ip):
            kind = dhcp.NAK
    else:
        raise Unanswerable(f"message type {_TYPE_NAMES.get(raw_type[0], raw_type[0])} is not served")
    return DhcpMessage(op=dhcp.OP_REPLY, xid=request.xid, chaddr=client, yiaddr=host.ip,
                       siaddr=subnet.server_address, options=_options(kind, subnet, host, config))


def _options(kind: int, subnet: DhcpSubnetDevice, host: DhcpHostDevice,
             config: SimulationConfig) -> tuple[tuple[int, bytes], ...]:
    assert host.ip is not None
    prefix = subnet.network.prefixlen
    mask = ipaddress.IPv4Network(f"0.0.0.0/{prefix}").netmask
    broadcast = int(ipaddress.IPv4Address(host.ip)) | (0xFFFFFFFF >> prefix)
    mtu = min(subnet.interface_mtu or config.dhcp_mtu, config.overlay_mtu)
    out: dict[int, bytes] = {
        dhcp.OPT_SUBNET_MASK: mask.packed,
        dhcp.OPT_BROADCAST: broadcast.to_bytes(4, "big"),
        dhcp.OPT_LEASE_TIME: LEASE_TIME.to_bytes(4, "big"),
        dhcp.OPT_MTU: mtu.to_bytes(2, "big"),
        dhcp.OPT_SERVER_ID: ip_to_bytes(subnet.server_address),
    }
    gateway = subnet.default_gateway
    if gateway is not None:
        out[dhcp.OPT_ROUTER] = ip_to_bytes(gateway)
    if subnet.dns_servers:
        out[dhcp.OPT_DNS] = b"".join(ip_to_bytes(ip) for ip in subnet.dns_servers)
    if subnet.routes:
        routes = subnet.routes + ((ClasslessRoute("0.0.0.0", 0, gateway),) if gateway is not None else ())
        out[dhcp.OPT_CLASSLESS_ROUTES] = dhcp.encode_options(dhcp.DhcpOptions(classless_routes=routes))[0][1]
    out.update(host.extra_options)
    out.pop(dhcp.OPT_MESSAGE_TYPE, None)
    return ((dhcp.OPT_MESSAGE_TYPE, bytes((kind,))), *sorted(out.items()))


def _assignment(bridge: BridgeDevice, mac: str) -> tuple[DhcpSubnetDevice, DhcpHostDevice] | None:
    """The first subnet with an address for `mac`, and the host entry (the original's `getHostAndAssignedSubnet`)."""
    for subnet in bridge.dhcp_subnets:
        host = subnet.hosts.get(mac)
        if host is not None and host.ip is not None:
            return subnet, host
    return None


def _request(data: bytes) -> DhcpMessage | None:
    """The DHCP message in an Ethernet/IPv4/UDP frame, None if there is none to read (malformed, a fragment)."""
    try:
        _, datagram = ethernet.parse(data)
        header, segment = ipv4.parse(datagram)
        if header.is_fragment:
            return None
        _, payload = udp.parse(segment)
        return dhcp.parse(payload)
    except (MalformedPacket, ValueError):
        return None


def _frame(client: str, server: str, payload: bytes) -> bytes:
    return frame.build(FlowMatch(eth_src=SERVER_MAC, eth_dst=client, ip_src=server, ip_dst=_BROADCAST_IP,
                                 ip_proto=ipv4.PROTO_UDP, tp_src=dhcp.SERVER_PORT, tp_dst=dhcp.CLIENT_PORT), payload)
