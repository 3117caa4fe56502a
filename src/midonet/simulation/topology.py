"""The virtual topology as the simulator sees it: immutable device snapshots and where to get them (spec 3.2-3.5).

Role: devices are frozen, slotted records built from topology records by the mappers (`simulation.mappers`),
carrying what the simulation needs precomputed (a bridge's flood set and its peer routers' MACs, a router's
routing table, compiled rule conditions). The simulation asks a `VirtualTopology` for them by id; when the agent
has not loaded a device yet the answer is the `NotYet` exception, the simulation stops, and the packet is
simulated again from scratch once the device arrives (the original's `NotYetException`).

    PortDevice                      a port: filters, peer (interior), binding (exterior), port groups, mirrors
    ├── BridgePortDevice            + VLAN id (interior ports of a VLAN-aware bridge), VTEP (a VXLAN port)
    └── RouterPortDevice            + MAC, address, subnet
    BridgeDevice                    flood set (VXLAN ports included), peer router ports by MAC and by IP, VLAN
                                    ports, filters, mirrors, DHCP subnets (`devices.dhcp.DhcpSubnetDevice`)
    RouterDevice                    routing table, filters (with the redirect and forward chains), mirrors
    ChainDevice, RuleDevice         rules in order, compiled conditions
    MirrorDevice                    to-port and conditions (`devices.mirror`, fetched by id: `get_mirror`)
    LoadBalancerDevice              VIPs, each with its pool and members (`devices.load_balancer`, fetched by id:
                                    `get_load_balancer`)

QoS and trace requests are carried as ids for the engineers who add them.

May import: `midonet.packets`, `midonet.topology`, `simulation.conditions`, `simulation.routing`,
`simulation.ipmath`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from midonet.simulation.conditions import ConditionDevice
from midonet.simulation.ipmath import Subnet
from midonet.simulation.routing import RoutingTable
from midonet.topology.chains import NatTarget, Rule, RuleAction, RuleType
from midonet.topology.ids import BridgeId, ChainId, PortId, RouterId, RuleId

if TYPE_CHECKING:
    from midonet.simulation.devices.dhcp import DhcpSubnetDevice
    from midonet.simulation.devices.load_balancer import LoadBalancerDevice
    from midonet.simulation.devices.mirror import MirrorDevice


class NotYet(Exception):
    """The simulation needs `kind` `id`, which is not available yet: retry the packet when it is."""

    def __init__(self, kind: str, id: str) -> None:
        super().__init__(f"{kind} {id} is not loaded yet")
        self.kind = kind
        self.id = id


@dataclass(frozen=True, slots=True, kw_only=True)
class PortDevice:
    """What every port has. Interior = linked to `peer_id`; exterior = bound to a host interface; else unplugged."""

    id: PortId
    device_id: str
    admin_state_up: bool = True
    inbound_filters: tuple[ChainId, ...] = ()
    outbound_filters: tuple[ChainId, ...] = ()
    peer_id: PortId | None = None
    exterior: bool = False
    host_id: str | None = None
    interface_name: str | None = None
    tunnel_key: int = 0
    port_groups: frozenset[str] = frozenset()
    inbound_mirror_ids: tuple[str, ...] = ()
    outbound_mirror_ids: tuple[str, ...] = ()
    post_in_filter_mirror_ids: tuple[str, ...] = ()
    pre_out_filter_mirror_ids: tuple[str, ...] = ()

    @property
    def interior(self) -> bool:
        return self.peer_id is not None


@dataclass(frozen=True, slots=True, kw_only=True)
class BridgePortDevice(PortDevice):
    """A bridge port. `vlan_id`: the VLAN an interior port of a VLAN-aware bridge carries (None or 0: none).
    `vtep_id`: a VXLAN port, the bridge's way to a hardware VTEP; it counts as exterior (in the flood set, emits)."""

    vlan_id: int | None = None
    vtep_id: str | None = None

    @property
    def bridge_id(self) -> BridgeId:
        return BridgeId(self.device_id)


@dataclass(frozen=True, slots=True, kw_only=True)
class RouterPortDevice(PortDevice):
    """A router port: its MAC, and its IPv4 address inside `subnet` (None for a port without one)."""

    mac: str
    address: str | None = None
    subnet: Subnet | None = None
    service_container: bool = False
    vni: int | None = None

    @property
    def router_id(self) -> RouterId:
        return RouterId(self.device_id)

    def in_subnet(self, ip: str | None) -> bool:
        return self.subnet is not None and self.subnet.contains(ip)

    @property
    def subnet_broadcast(self) -> int | None:
        return None if self.subnet is None or self.subnet.length >= 31 else self.subnet.broadcast


@dataclass(frozen=True, slots=True, kw_only=True)
class BridgeDevice:
    """A bridge (MidoNet's Network) with what forwarding needs precomputed (the original's `BridgeMapper`).

    `router_ports_by_mac`: MAC of a peer router port -> the bridge's interior port linked to it
    (`macToLogicalPortId`); `router_macs_by_ip`: address of a peer router port -> its MAC (`ipToMac`);
    `vlan_ports`: VLAN -> the interior port carrying it (a VLAN-aware bridge has some), `port_vlans` the reverse;
    `vlan_peer_port`: on a VLAN-unaware bridge, its interior port linked to a VLAN-aware bridge's VLAN port (floods
    go there too); `dhcp_subnets`: the enabled DHCP subnets the bridge serves (spec 3.11).
    """

    id: BridgeId
    admin_state_up: bool = True
    tunnel_key: int = 0
    inbound_filters: tuple[ChainId, ...] = ()
    outbound_filters: tuple[ChainId, ...] = ()
    exterior_ports: tuple[PortId, ...] = ()
    router_ports_by_mac: Mapping[str, PortId] = field(default_factory=dict)
    router_macs_by_ip: Mapping[str, str] = field(default_factory=dict)
    vlan_ports: Mapping[int, PortId] = field(default_factory=dict)
    port_vlans: Mapping[PortId, int] = field(default_factory=dict)
    vlan_peer_port: PortId | None = None
    inbound_mirror_ids: tuple[str, ...] = ()
    outbound_mirror_ids: tuple[str, ...] = ()
    dhcp_subnets: tuple[DhcpSubnetDevice, ...] = ()

    @property
    def vlan_aware(self) -> bool:
        return bool(self.vlan_ports)

    def vlan_of(self, port: PortId | None) -> int | None:
        """The VLAN interior port `port` carries, None if it carries none (the original's `VlanPortMap.getVlan`)."""
        return self.port_vlans.get(port) if port is not None else None


@dataclass(frozen=True, slots=True, kw_only=True)
class RouterDevice:
    """A router. Inbound filters are [local redirect chain, inbound filter]; outbound [forward chain, outbound]."""

    id: RouterId
    routing_table: RoutingTable
    admin_state_up: bool = True
    inbound_filters: tuple[ChainId, ...] = ()
    outbound_filters: tuple[ChainId, ...] = ()
    load_balancer_id: str | None = None
    inbound_mirror_ids: tuple[str, ...] = ()
    outbound_mirror_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class RuleDevice:
    """One rule. `record` keeps the whole topology rule for the kinds simulated later (NAT, L2 transform)."""

    id: RuleId
    type: RuleType
    action: RuleAction
    condition: ConditionDevice
    jump_chain_id: ChainId | None = None
    meter_name: str | None = None
    nat_targets: tuple[NatTarget, ...] = ()
    dnat: bool = False
    reverse: bool = False
    record: Rule | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class ChainDevice:
    id: ChainId
    rules: tuple[RuleDevice, ...] = ()
    name: str | None = None


class VirtualTopology(Protocol):
    """Where the simulation gets devices. Each call raises `NotYet(kind, id)` when the device is not loaded."""

    def get_port(self, port_id: PortId) -> PortDevice: ...

    def get_bridge(self, bridge_id: BridgeId) -> BridgeDevice: ...

    def get_router(self, router_id: RouterId) -> RouterDevice: ...

    def get_chain(self, chain_id: ChainId) -> ChainDevice: ...

    def get_mirror(self, mirror_id: str) -> MirrorDevice: ...

    def get_load_balancer(self, lb_id: str) -> LoadBalancerDevice: ...
