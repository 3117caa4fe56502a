"""Bridges, routers, their ports and routes (spec 2.2: Network, Router, Port, Route).

A port belongs to exactly one device: `network_id` (a bridge port) or `router_id` (a router port). It is
*interior* when `peer_id` is set (linked to another port), *exterior* when bound (`host_id` and
`interface_name`), and unplugged otherwise. A router port has an address, a MAC and a subnet
(`port_subnet`, CIDR); a bridge port may carry a `vlan_id` (interior VLAN ports of a VLAN-aware bridge).

May import: `topology.record`, `topology.validate`, `topology.errors`.
"""

from __future__ import annotations

import enum
import ipaddress
from typing import ClassVar

from midonet.topology import validate as v
from midonet.topology.record import Record, value


@value
class Bridge(Record):
    """A virtual L2 switch (MidoNet's Network)."""

    tenant_id: str | None = None
    name: str | None = None
    admin_state_up: bool = True
    tunnel_key: int = 0
    inbound_filter_id: str | None = None
    outbound_filter_id: str | None = None
    vni: int | None = None
    inbound_mirror_ids: tuple[str, ...] = ()
    outbound_mirror_ids: tuple[str, ...] = ()
    qos_policy_id: str | None = None
    # back-references
    port_ids: tuple[str, ...] = ()
    vxlan_port_ids: tuple[str, ...] = ()
    dhcp_ids: tuple[str, ...] = ()
    trace_request_ids: tuple[str, ...] = ()

    backrefs: ClassVar[frozenset[str]] = frozenset(
        {"port_ids", "vxlan_port_ids", "dhcp_ids", "trace_request_ids", "tunnel_key"})

    def __post_init__(self) -> None:
        v.set_field(self, "id", v.uuid_field("id", self.id))
        for f in ("inbound_filter_id", "outbound_filter_id", "qos_policy_id"):
            v.set_field(self, f, v.uuid_field(f, getattr(self, f)))
        for f in ("inbound_mirror_ids", "outbound_mirror_ids"):
            v.set_field(self, f, v.uuid_list(f, getattr(self, f)))
        v.int_range("vni", self.vni, 0, (1 << 24) - 1)
        v.int_range("tunnel_key", self.tunnel_key, 0, (1 << 32) - 1)


@value
class Router(Record):
    """A virtual L3 router."""

    tenant_id: str | None = None
    name: str | None = None
    admin_state_up: bool = True
    inbound_filter_id: str | None = None
    outbound_filter_id: str | None = None
    load_balancer_id: str | None = None
    as_number: int = 0
    inbound_mirror_ids: tuple[str, ...] = ()
    outbound_mirror_ids: tuple[str, ...] = ()
    local_redirect_chain_id: str | None = None
    forward_chain_id: str | None = None
    # back-references
    port_ids: tuple[str, ...] = ()
    route_ids: tuple[str, ...] = ()
    bgp_network_ids: tuple[str, ...] = ()
    bgp_peer_ids: tuple[str, ...] = ()
    trace_request_ids: tuple[str, ...] = ()

    backrefs: ClassVar[frozenset[str]] = frozenset(
        {"port_ids", "route_ids", "bgp_network_ids", "bgp_peer_ids", "trace_request_ids"})

    def __post_init__(self) -> None:
        v.set_field(self, "id", v.uuid_field("id", self.id))
        for f in ("inbound_filter_id", "outbound_filter_id", "load_balancer_id",
                  "local_redirect_chain_id", "forward_chain_id"):
            v.set_field(self, f, v.uuid_field(f, getattr(self, f)))
        for f in ("inbound_mirror_ids", "outbound_mirror_ids"):
            v.set_field(self, f, v.uuid_list(f, getattr(self, f)))
        v.int_range("as_number", self.as_number, -1, (1 << 32) - 1)


@value
class Port(Record):
    """A port of a bridge (`network_id`) or of a router (`router_id`)."""

    network_id: str | None = None
    router_id: str | None = None
    admin_state_up: bool = True
    inbound_filter_id: str | None = None
    outbound_filter_id: str | None = None
    tunnel_key: int = 0
    peer_id: str | None = None
    vif_id: str | None = None
    host_id: str | None = None
    previous_host_id: str | None = None
    interface_name: str | None = None
    port_group_ids: tuple[str, ...] = ()
    vlan_id: int | None = None
    # router ports
    port_subnet: str | None = None     # the port's network, CIDR (e.g. 10.0.1.0/24)
    port_address: str | None = None    # the port's IPv4 address
    port_mac: str | None = None
    # VTEP / service ports
    vtep_id: str | None = None
    vni: int | None = None
    tunnel_ip: str | None = None
    off_ramp_vxlan: bool = False
    service_container_id: str | None = None
    qos_policy_id: str | None = None
    inbound_mirror_ids: tuple[str, ...] = ()
    outbound_mirror_ids: tuple[str, ...] = ()
    post_in_filter_mirror_ids: tuple[str, ...] = ()
    pre_out_filter_mirror_ids: tuple[str, ...] = ()
    # back-references
    route_ids: tuple[str, ...] = ()
    vip_ids: tuple[str, ...] = ()
    fip_nat_rule_ids: tuple[str, ...] = ()
    trace_request_ids: tuple[str, ...] = ()
    mirror_ids: tuple[str, ...] = ()

    backrefs: ClassVar[frozenset[str]] = frozenset(
        {"route_ids", "vip_ids", "fip_nat_rule_ids", "trace_request_ids", "mirror_ids", "tunnel_key",
         "previous_host_id"})

    def __post_init__(self) -> None:
        v.set_field(self, "id", v.uuid_field("id", self.id))
        for f in ("network_id", "router_id", "inbound_filter_id", "outbound_filter_id", "peer_id",
                  "host_id", "previous_host_id", "vtep_id", "service_container_id", "qos_policy_id"):
            v.set_field(self, f, v.uuid_field(f, getattr(self, f)))
        for f in ("port_group_ids", "inbound_mirror_ids", "outbound_mirror_ids",
                  "post_in_filter_mirror_ids", "pre_out_filter_mirror_ids"):
            v.set_field(self, f, v.uuid_list(f, getattr(self, f)))
        if (self.network_id is None) == (self.router_id is None):
            raise v.fail("network_id", "a port belongs to exactly one bridge or router")
        if self.peer_id is not None and self.peer_id == self.id:
            raise v.fail("peer_id", "a port cannot be linked to itself")
        v.int_range("vlan_id", self.vlan_id, 0, 4095)
        v.int_range("vni", self.vni, 0, (1 << 24) - 1)
        v.set_field(self, "port_mac", v.mac("port_mac", self.port_mac))
        v.set_field(self, "port_address", v.ip_any("port_address", self.port_address))
        v.set_field(self, "tunnel_ip", v.ipv4("tunnel_ip", self.tunnel_ip))
        subnet = v.cidr("port_subnet", self.port_subnet)
        if subnet is not None:
            subnet = str(ipaddress.ip_interface(subnet).network)
        v.set_field(self, "port_subnet", subnet)
        if self.interface_name is not None and not self.interface_name:
            raise v.fail("interface_name", "must not be empty")

    @property
    def is_interior(self) -> bool:
        return self.peer_id is not None

    @property
    def is_exterior(self) -> bool:
        return self.host_id is not None and self.interface_name is not None

    @property
    def is_router_port(self) -> bool:
        return self.router_id is not None

    @property
    def device_id(self) -> str:
        return self.network_id or self.router_id or ""


class NextHop(enum.StrEnum):
    """What a route does with a matching packet (REST: Normal, BlackHole, Reject, Local, Fip64)."""

    BLACKHOLE = "blackhole"
    REJECT = "reject"
    PORT = "port"
    LOCAL = "local"
    FIP64 = "fip64"


@value
class Route(Record):
    """A route of a router: source and destination subnets, next hop, weight."""

    router_id: str | None = None
    src_subnet: str = "0.0.0.0/0"
    dst_subnet: str = "0.0.0.0/0"
    next_hop: NextHop = NextHop.PORT
    next_hop_port_id: str | None = None
    next_hop_gateway: str | None = None
    weight: int = 100
    attributes: str | None = None
    learned: bool = False

    def __post_init__(self) -> None:
        v.set_field(self, "id", v.uuid_field("id", self.id))
        v.set_field(self, "router_id", v.uuid_field("router_id", self.router_id))
        v.set_field(self, "next_hop_port_id", v.uuid_field("next_hop_port_id", self.next_hop_port_id))
        v.set_field(self, "src_subnet", v.cidr("src_subnet", self.src_subnet))
        v.set_field(self, "dst_subnet", v.cidr("dst_subnet", self.dst_subnet))
        v.set_field(self, "next_hop_gateway", v.ip_any("next_hop_gateway", self.next_hop_gateway))
        v.int_range("weight", self.weight, 0, (1 << 31) - 1)
        if self.next_hop is NextHop.PORT and self.next_hop_port_id is None:
            raise v.fail("next_hop_port_id", "a route of type port needs a next hop port")
