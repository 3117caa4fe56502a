"""Everything else a device can carry: mirrors, BGP, DHCP, VTEPs, trace requests, QoS (spec 2.2).

May import: `topology.record`, `topology.validate`, `topology.chains` (Condition).
"""

from __future__ import annotations

import enum
from typing import ClassVar

from midonet.topology import validate as v
from midonet.topology.chains import Condition
from midonet.topology.record import Record, Value, value


@value
class Mirror(Record):
    """Copies matching packets (conditions are OR-ed) to `to_port_id`. Attached through devices' mirror ids."""

    tenant_id: str | None = None
    to_port_id: str | None = None
    conditions: tuple[Condition, ...] = ()
    # back-references
    network_inbound_ids: tuple[str, ...] = ()
    network_outbound_ids: tuple[str, ...] = ()
    router_inbound_ids: tuple[str, ...] = ()
    router_outbound_ids: tuple[str, ...] = ()
    port_inbound_ids: tuple[str, ...] = ()
    port_outbound_ids: tuple[str, ...] = ()
    port_post_in_filter_ids: tuple[str, ...] = ()
    port_pre_out_filter_ids: tuple[str, ...] = ()

    backrefs: ClassVar[frozenset[str]] = frozenset(
        {"network_inbound_ids", "network_outbound_ids", "router_inbound_ids", "router_outbound_ids",
         "port_inbound_ids", "port_outbound_ids", "port_post_in_filter_ids", "port_pre_out_filter_ids"})

    def __post_init__(self) -> None:
        v.set_field(self, "id", v.uuid_field("id", self.id))
        v.set_field(self, "to_port_id", v.uuid_field("to_port_id", self.to_port_id))
        if self.to_port_id is None:
            raise v.fail("to_port_id", "a mirror needs a port to copy to")


@value
class BgpPeer(Record):
    router_id: str | None = None
    as_number: int = 0
    address: str | None = None
    keep_alive: int | None = None
    hold_time: int | None = None
    connect_retry: int | None = None
    password: str | None = None

    def __post_init__(self) -> None:
        v.set_field(self, "id", v.uuid_field("id", self.id))
        v.set_field(self, "router_id", v.uuid_field("router_id", self.router_id))
        v.set_field(self, "address", v.ip_any("address", self.address))
        if self.address is None:
            raise v.fail("address", "a BGP peer needs an address")
        v.int_range("as_number", self.as_number, 1, (1 << 32) - 1)
        for f in ("keep_alive", "hold_time", "connect_retry"):
            v.int_range(f, getattr(self, f), 0, 65535)


@value
class BgpNetwork(Record):
    router_id: str | None = None
    subnet: str = "0.0.0.0/0"

    def __post_init__(self) -> None:
        v.set_field(self, "id", v.uuid_field("id", self.id))
        v.set_field(self, "router_id", v.uuid_field("router_id", self.router_id))
        v.set_field(self, "subnet", v.cidr("subnet", self.subnet))


@value
class Opt121Route(Value):
    """A classless static route handed out by DHCP (option 121)."""

    dst_subnet: str
    gateway: str

    def __post_init__(self) -> None:
        v.set_field(self, "dst_subnet", v.cidr("dst_subnet", self.dst_subnet))
        v.set_field(self, "gateway", v.ipv4("gateway", self.gateway))


@value
class DhcpOption(Value):
    name: str
    value: str


@value
class DhcpHost(Value):
    mac: str
    ip_address: str | None = None
    name: str | None = None
    extra_dhcp_opts: tuple[DhcpOption, ...] = ()

    def __post_init__(self) -> None:
        v.set_field(self, "mac", v.mac("mac", self.mac))
        v.set_field(self, "ip_address", v.ipv4("ip_address", self.ip_address))


@value
class DhcpSubnet(Record):
    """An IPv4 DHCP subnet served on a bridge (MidoNet's Dhcp)."""

    network_id: str | None = None
    subnet_address: str = "0.0.0.0/0"   # CIDR
    server_address: str | None = None
    dns_server_addresses: tuple[str, ...] = ()
    default_gateway: str | None = None
    interface_mtu: int | None = None
    opt121_routes: tuple[Opt121Route, ...] = ()
    hosts: tuple[DhcpHost, ...] = ()
    enabled: bool = True

    def __post_init__(self) -> None:
        v.set_field(self, "id", v.uuid_field("id", self.id))
        v.set_field(self, "network_id", v.uuid_field("network_id", self.network_id))
        v.set_field(self, "subnet_address", v.cidr("subnet_address", self.subnet_address))
        v.set_field(self, "server_address", v.ipv4("server_address", self.server_address))
        v.set_field(self, "default_gateway", v.ipv4("default_gateway", self.default_gateway))
        v.set_field(self, "dns_server_addresses",
                    tuple(v.ipv4(f"dns_server_addresses[{i}]", a) or ""
                          for i, a in enumerate(self.dns_server_addresses)))
        v.int_range("interface_mtu", self.interface_mtu, 68, 65535)
        macs = [h.mac for h in self.hosts]
        if len(set(macs)) != len(macs):
            raise v.fail("hosts", "lists the same MAC twice")

    def host(self, mac: str) -> DhcpHost | None:
        return next((h for h in self.hosts if h.mac == mac), None)


@value
class VtepBinding(Value):
    port_name: str
    vlan_id: int
    network_id: str

    def __post_init__(self) -> None:
        v.int_range("vlan_id", self.vlan_id, 0, 4095)
        v.set_field(self, "network_id", v.uuid_field("network_id", self.network_id))


@value
class Vtep(Record):
    """A hardware VTEP managed over OVSDB (hardware_vtep schema)."""

    name: str | None = None
    description: str | None = None
    management_ip: str | None = None
    management_port: int = 6632
    tunnel_zone_id: str | None = None
    tunnel_ips: tuple[str, ...] = ()
    bindings: tuple[VtepBinding, ...] = ()

    def __post_init__(self) -> None:
        v.set_field(self, "id", v.uuid_field("id", self.id))
        v.set_field(self, "management_ip", v.ipv4("management_ip", self.management_ip))
        if self.management_ip is None:
            raise v.fail("management_ip", "a VTEP needs a management address")
        v.int_range("management_port", self.management_port, 1, 65535)
        v.set_field(self, "tunnel_zone_id", v.uuid_field("tunnel_zone_id", self.tunnel_zone_id))
        keys = [(b.port_name, b.vlan_id) for b in self.bindings]
        if len(set(keys)) != len(keys):
            raise v.fail("bindings", "binds the same port and VLAN twice")


class TraceDeviceType(enum.StrEnum):
    PORT = "PORT"
    BRIDGE = "BRIDGE"
    ROUTER = "ROUTER"


@value
class TraceRequest(Record):
    """Trace the flows matching `condition` on one device, up to `limit` flows."""

    tenant_id: str | None = None
    name: str | None = None
    enabled: bool = False
    condition: Condition = Condition()
    limit: int = 2 ** 63 - 1
    create_timestamp_ms: int = 0
    port_id: str | None = None
    network_id: str | None = None
    router_id: str | None = None

    def __post_init__(self) -> None:
        v.set_field(self, "id", v.uuid_field("id", self.id))
        for f in ("port_id", "network_id", "router_id"):
            v.set_field(self, f, v.uuid_field(f, getattr(self, f)))
        if sum(x is not None for x in (self.port_id, self.network_id, self.router_id)) != 1:
            raise v.fail("device_id", "a trace request names exactly one port, bridge or router")

    @property
    def device_id(self) -> str:
        return self.port_id or self.network_id or self.router_id or ""


@value
class QosPolicy(Record):
    tenant_id: str | None = None
    name: str | None = None
    description: str | None = None
    shared: bool = False
    bandwidth_limit_rule_ids: tuple[str, ...] = ()
    dscp_marking_rule_ids: tuple[str, ...] = ()
    port_ids: tuple[str, ...] = ()
    network_ids: tuple[str, ...] = ()

    backrefs: ClassVar[frozenset[str]] = frozenset(
        {"bandwidth_limit_rule_ids", "dscp_marking_rule_ids", "port_ids", "network_ids"})

    def __post_init__(self) -> None:
        v.set_field(self, "id", v.uuid_field("id", self.id))


@value
class QosRuleBandwidthLimit(Record):
    policy_id: str | None = None
    max_kbps: int = 0
    max_burst_kb: int | None = None

    def __post_init__(self) -> None:
        v.set_field(self, "id", v.uuid_field("id", self.id))
        v.set_field(self, "policy_id", v.uuid_field("policy_id", self.policy_id))
        v.int_range("max_kbps", self.max_kbps, 0, (1 << 31) - 1)
        v.int_range("max_burst_kb", self.max_burst_kb, 0, (1 << 31) - 1)


@value
class QosRuleDscp(Record):
    policy_id: str | None = None
    dscp_mark: int = 0

    def __post_init__(self) -> None:
        v.set_field(self, "id", v.uuid_field("id", self.id))
        v.set_field(self, "policy_id", v.uuid_field("policy_id", self.policy_id))
        v.int_range("dscp_mark", self.dscp_mark, 0, 63)
