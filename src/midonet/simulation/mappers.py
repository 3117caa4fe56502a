"""Mappers: topology records -> simulation device snapshots; and `InMemoryTopology`, a `VirtualTopology` of records.

Role: the original's `*Mapper` classes, without the store subscriptions. Each mapper is a pure function of the
records it is given (`BridgeMapper.map(bridge, its ports, their peers)` and so on), so the agent's virtual-topology
cache (which watches the store and calls them on every change) and the in-memory topology here build exactly the
same devices.

`InMemoryTopology(records)` indexes a list of records and maps every device at once. Tests, benchmarks and
`midonet trace` use it; the agent will use its store-backed cache. A record it does not hold is "not loaded":
asking for it raises `NotYet`, as the agent's cache does for a device still on its way.

A VXLAN port (a bridge port with a VTEP) counts as exterior: it is in its bridge's flood set and emits. Mirrors,
DHCP subnets and load balancers have their mappers beside their devices (`devices.mirror.MirrorMapper`,
`devices.dhcp.DhcpMapper`, `devices.load_balancer.LoadBalancerMapper`); a bridge carries its enabled DHCP subnets.
A pool member's health comes from `InMemoryTopology(member_status=...)` (what health monitors wrote), else its
record.

Which routes count: a route through an *exterior* router port counts only while the port is active on its host
(spec 10); `InMemoryTopology(inactive_ports=...)` names the ports that are not.

May import: `midonet.topology`, `simulation.topology`, `simulation.conditions`, `simulation.routing`,
`simulation.ipmath`, `simulation.devices.{mirror,dhcp,load_balancer}` (their snapshots and mappers).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from midonet.simulation.conditions import compile_condition
from midonet.simulation.devices.dhcp import DhcpMapper
from midonet.simulation.devices.load_balancer import LoadBalancerDevice, LoadBalancerMapper
from midonet.simulation.devices.mirror import MirrorDevice, MirrorMapper
from midonet.simulation.ipmath import subnet
from midonet.simulation.routing import RouteEntry, RoutingTable
from midonet.simulation.topology import (
    BridgeDevice,
    BridgePortDevice,
    ChainDevice,
    NotYet,
    PortDevice,
    RouterDevice,
    RouterPortDevice,
    RuleDevice,
)
from midonet.topology.chains import Chain, Rule
from midonet.topology.devices import Bridge, Port, Route, Router
from midonet.topology.groups import IPAddrGroup, PortGroup
from midonet.topology.ids import BridgeId, ChainId, PortId, RouterId, RuleId
from midonet.topology.l4lb import LBStatus, LoadBalancer, Pool, PoolMember, Vip
from midonet.topology.record import Record
from midonet.topology.services import DhcpSubnet, Mirror

R = TypeVar("R", bound=Record)


def _chains(*ids: str | None) -> tuple[ChainId, ...]:
    return tuple(ChainId(i) for i in ids if i is not None)


class PortMapper:
    """Port record -> `BridgePortDevice` or `RouterPortDevice`."""

    @staticmethod
    def map(port: Port, extra_groups: Iterable[str] = ()) -> PortDevice:
        common: dict[str, Any] = dict(
            id=PortId(port.id), device_id=port.device_id, admin_state_up=port.admin_state_up,
            inbound_filters=_chains(port.inbound_filter_id), outbound_filters=_chains(port.outbound_filter_id),
            peer_id=PortId(port.peer_id) if port.peer_id else None,
            exterior=port.is_exterior or (port.vtep_id is not None and port.router_id is None),
            host_id=port.host_id, interface_name=port.interface_name, tunnel_key=port.tunnel_key,
            port_groups=frozenset(port.port_group_ids) | frozenset(extra_groups),
            inbound_mirror_ids=port.inbound_mirror_ids, outbound_mirror_ids=port.outbound_mirror_ids,
            post_in_filter_mirror_ids=port.post_in_filter_mirror_ids,
            pre_out_filter_mirror_ids=port.pre_out_filter_mirror_ids,
        )
        if port.router_id is None:
            return BridgePortDevice(**common, vlan_id=port.vlan_id, vtep_id=port.vtep_id)
        address = port.port_address if port.port_address and ":" not in port.port_address else None
        return RouterPortDevice(
            **common, mac=port.port_mac or "00:00:00:00:00:00", address=address,
            subnet=subnet(port.port_subnet) if port.port_subnet and address else None,
            service_container=port.service_container_id is not None, vni=port.vni)


class BridgeMapper:
    """Bridge record + its ports + their peers (+ its DHCP subnets) -> `BridgeDevice`.

    VLANs (the original's `BridgeMapper.deviceUpdated`): an interior port linked to another bridge's port carries
    its own VLAN id when it has one (this bridge is VLAN-aware); else, when the peer has one, it is this bridge's
    way to a VLAN-aware bridge (`vlan_peer_port`). VLAN 0 means none.
    """

    @staticmethod
    def map(bridge: Bridge, ports: Sequence[Port], peers: Mapping[str, Port],
            dhcp_subnets: Sequence[DhcpSubnet] = ()) -> BridgeDevice:
        by_mac: dict[str, PortId] = {}
        by_ip: dict[str, str] = {}
        vlan_ports: dict[int, PortId] = {}
        vlan_peer: PortId | None = None
        for port in ports:
            peer = peers.get(port.peer_id) if port.peer_id else None
            if peer is not None and peer.router_id is not None and peer.port_mac:
                by_mac[peer.port_mac] = PortId(port.id)
                if peer.port_address and ":" not in peer.port_address:
                    by_ip[peer.port_address] = peer.port_mac
            elif peer is not None and peer.network_id is not None:
                if port.vlan_id:
                    vlan_ports[port.vlan_id] = PortId(port.id)
                elif peer.vlan_id:
                    vlan_peer = PortId(port.id)
        subnets = (DhcpMapper.map(s) for s in dhcp_subnets if s.enabled)
        return BridgeDevice(
            id=BridgeId(bridge.id), admin_state_up=bridge.admin_state_up, tunnel_key=bridge.tunnel_key,
            inbound_filters=_chains(bridge.inbound_filter_id), outbound_filters=_chains(bridge.outbound_filter_id),
            exterior_ports=tuple(PortId(p.id) for p in ports if p.is_exterior or p.vtep_id is not None),
            router_ports_by_mac=by_mac, router_macs_by_ip=by_ip, vlan_ports=vlan_ports,
            port_vlans={port: vlan for vlan, port in vlan_ports.items()}, vlan_peer_port=vlan_peer,
            inbound_mirror_ids=bridge.inbound_mirror_ids, outbound_mirror_ids=bridge.outbound_mirror_ids,
            dhcp_subnets=tuple(s for s in subnets if s is not None))


class RouterMapper:
    """Router record + its routes (+ which of its exterior ports are down) -> `RouterDevice`."""

    @staticmethod
    def map(router: Router, routes: Iterable[Route], ports: Mapping[str, Port],
            inactive_ports: Collection[str] = ()) -> RouterDevice:
        entries = []
        for route in routes:
            port = ports.get(route.next_hop_port_id) if route.next_hop_port_id else None
            if port is not None and port.is_exterior and port.id in inactive_ports:
                continue
            entry = RouteEntry.from_record(route)
            if entry is not None:
                entries.append(entry)
        return RouterDevice(
            id=RouterId(router.id), routing_table=RoutingTable(entries), admin_state_up=router.admin_state_up,
            inbound_filters=_chains(router.local_redirect_chain_id, router.inbound_filter_id),
            outbound_filters=_chains(router.forward_chain_id, router.outbound_filter_id),
            load_balancer_id=router.load_balancer_id,
            inbound_mirror_ids=router.inbound_mirror_ids, outbound_mirror_ids=router.outbound_mirror_ids)


class ChainMapper:
    """Chain record + its rules in order + the IP address groups they name -> `ChainDevice`."""

    @staticmethod
    def map(chain: Chain, rules: Sequence[Rule], ip_addr_groups: Mapping[str, IPAddrGroup]) -> ChainDevice:
        groups = {gid: frozenset(g.addresses) for gid, g in ip_addr_groups.items()}
        return ChainDevice(id=ChainId(chain.id), name=chain.name, rules=tuple(
            RuleDevice(id=RuleId(r.id), type=r.type, action=r.action,
                       condition=compile_condition(r.condition, groups),
                       jump_chain_id=ChainId(r.jump_chain_id) if r.jump_chain_id else None,
                       meter_name=r.meter_name, nat_targets=r.nat_targets, dnat=r.dnat, reverse=r.reverse,
                       record=r)
            for r in rules))


class InMemoryTopology:
    """A `VirtualTopology` over a list of records, every device mapped up front."""

    def __init__(self, records: Iterable[Record], *, inactive_ports: Collection[str] = (),
                 member_status: Mapping[str, LBStatus] | None = None) -> None:
        self.records: dict[tuple[type[Record], str], Record] = {(type(r), r.id): r for r in records}
        ports = self._all(Port)
        by_id = {p.id: p for p in ports}
        groups_of: dict[str, set[str]] = {}
        for group in self._all(PortGroup):
            for pid in group.port_ids:
                groups_of.setdefault(pid, set()).add(group.id)
        self._ports: dict[str, PortDevice] = {p.id: PortMapper.map(p, groups_of.get(p.id, ())) for p in ports}
        ports_of: dict[str, list[Port]] = {}
        for port in ports:
            ports_of.setdefault(port.device_id, []).append(port)
        dhcp_of: dict[str, list[DhcpSubnet]] = {}
        for dhcp_subnet in self._all(DhcpSubnet):
            dhcp_of.setdefault(dhcp_subnet.network_id or "", []).append(dhcp_subnet)
        self._bridges: dict[str, BridgeDevice] = {
            b.id: BridgeMapper.map(b, ports_of.get(b.id, []), by_id, _in_order(b.dhcp_ids, dhcp_of.get(b.id, [])))
            for b in self._all(Bridge)}
        routes_of: dict[str, list[Route]] = {}
        for route in self._all(Route):
            routes_of.setdefault(route.router_id or "", []).append(route)
        self._routers: dict[str, RouterDevice] = {
            r.id: RouterMapper.map(r, routes_of.get(r.id, []), by_id, inactive_ports) for r in self._all(Router)}
        rules_of: dict[str, list[Rule]] = {}
        for rule in self._all(Rule):
            rules_of.setdefault(rule.chain_id or "", []).append(rule)
        rules_by_id = {r.id: r for rs in rules_of.values() for r in rs}
        addr_groups = {g.id: g for g in self._all(IPAddrGroup)}
        self._mirrors: dict[str, MirrorDevice] = {m.id: MirrorMapper.map(m, addr_groups) for m in self._all(Mirror)}
        pools, members, vips = self._all(Pool), self._all(PoolMember), self._all(Vip)
        self._load_balancers: dict[str, LoadBalancerDevice] = {
            lb.id: LoadBalancerMapper.map(lb, [p for p in pools if p.load_balancer_id == lb.id], members, vips,
                                          member_status)
            for lb in self._all(LoadBalancer)}
        self._chains: dict[str, ChainDevice] = {}
        for chain in self._all(Chain):
            order = set(chain.rule_ids)
            listed = [rules_by_id[rid] for rid in chain.rule_ids if rid in rules_by_id]
            unlisted = [r for r in rules_of.get(chain.id, []) if r.id not in order]
            self._chains[chain.id] = ChainMapper.map(chain, listed + unlisted, addr_groups)

    def _all(self, cls: type[R]) -> list[R]:
        return [r for r in self.records.values() if isinstance(r, cls)]

    def get_port(self, port_id: PortId) -> PortDevice:
        try:
            return self._ports[port_id]
        except KeyError:
            raise NotYet("port", port_id) from None

    def get_bridge(self, bridge_id: BridgeId) -> BridgeDevice:
        try:
            return self._bridges[bridge_id]
        except KeyError:
            raise NotYet("bridge", bridge_id) from None

    def get_router(self, router_id: RouterId) -> RouterDevice:
        try:
            return self._routers[router_id]
        except KeyError:
            raise NotYet("router", router_id) from None

    def get_chain(self, chain_id: ChainId) -> ChainDevice:
        try:
            return self._chains[chain_id]
        except KeyError:
            raise NotYet("chain", chain_id) from None

    def get_mirror(self, mirror_id: str) -> MirrorDevice:
        try:
            return self._mirrors[mirror_id]
        except KeyError:
            raise NotYet("mirror", mirror_id) from None

    def get_load_balancer(self, lb_id: str) -> LoadBalancerDevice:
        try:
            return self._load_balancers[lb_id]
        except KeyError:
            raise NotYet("load_balancer", lb_id) from None

    def record(self, cls: type[R], record_id: str) -> R:
        """The record `record_id` of class `cls` this topology was built from (KeyError if absent)."""
        found = self.records[(cls, record_id)]
        assert isinstance(found, cls)
        return found


def _in_order(ids: Sequence[str], subnets: list[DhcpSubnet]) -> list[DhcpSubnet]:
    """A bridge's DHCP subnets in the order its `dhcp_ids` lists them, the unlisted ones after."""
    rank = {ident: i for i, ident in enumerate(ids)}
    return sorted(subnets, key=lambda s: rank.get(s.id, len(rank)))
