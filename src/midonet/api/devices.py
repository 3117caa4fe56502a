"""Bridges, routers and routes (spec 7.3: Bridge-v4, Router-v3, Route-v1).

Creating a bridge allocates its tunnel key. A router's routes live under `/routers/{id}/routes` and at
`/routes/{id}` (GET, DELETE; routes are not updated in place). Route `type` is the REST spelling of the
model's `NextHop` (Normal = port, BlackHole, Reject, Local, Fip64); a Normal route's next-hop port must be
a port of the same router.

May import: `midonet.topology`, `midonet.store`, `api.resource`, `api.errors`.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from fastapi import APIRouter

from midonet.api.errors import bad_request
from midonet.api.resource import Ctx, Dto, Resource, add_children, add_crud
from midonet.store.base import Create, Op
from midonet.topology.devices import Bridge, NextHop, Port, Route, Router
from midonet.topology.ids import cluster_tunnel_key


def split_cidr(cidr: str | None) -> tuple[str | None, int | None]:
    if cidr is None:
        return None, None
    net = ipaddress.ip_interface(cidr)
    return str(net.ip), net.network.prefixlen


def join_cidr(dto: Dto, addr_key: str, len_key: str, default: str | None) -> str | None:
    """'addr/len' from two DTO members; a 400 naming the member if they are malformed."""
    addr, length = dto.get(addr_key), dto.get(len_key)
    if addr is None and length is None:
        return default
    if not isinstance(addr, str):
        raise bad_request(f"must be an IP address, not {addr!r}", addr_key)
    if length is None:
        length = 32 if ":" not in addr else 128
    if not isinstance(length, int) or isinstance(length, bool):
        raise bad_request(f"must be an integer, not {length!r}", len_key)
    try:
        iface = ipaddress.ip_interface(f"{addr}/{length}")
    except ValueError:
        raise bad_request(f"{addr}/{length} is not a valid address and prefix length", addr_key) from None
    return f"{iface.ip}/{iface.network.prefixlen}"


class BridgeResource(Resource[Bridge]):
    cls = Bridge
    path = "bridges"
    media = ("Bridge",)
    version = 4
    fields = (("name", "name"), ("tenantId", "tenant_id"), ("adminStateUp", "admin_state_up"),
              ("inboundFilterId", "inbound_filter_id"), ("outboundFilterId", "outbound_filter_id"),
              ("inboundMirrorIds", "inbound_mirror_ids"), ("outboundMirrorIds", "outbound_mirror_ids"),
              ("qosPolicyId", "qos_policy_id"))
    read_only = (("vxLanPortIds", "vxlan_port_ids"), ("tunnelKey", "tunnel_key"))

    def dto_extra(self, obj: Bridge, ctx: Ctx) -> Dto:
        u = self.uri(ctx, obj.id)
        return {"ports": f"{u}/ports", "peerPorts": f"{u}/peer_ports", "vxlanPorts": f"{u}/vxlan_ports",
                "dhcpSubnets": f"{u}/dhcp", "dhcpSubnetTemplate": f"{u}/dhcp/{{subnetAddress}}",
                "dhcpSubnetV6s": f"{u}/dhcpV6", "macTable": f"{u}/mac_table", "arpTable": f"{u}/arp_table",
                "vlanMacTableTemplate": f"{u}/vlans/{{vlanId}}/mac_table",
                "macPortTemplate": f"{u}/mac_table/{{macAddress}}_{{portId}}",
                "vlanMacPortTemplate": f"{u}/vlans/{{vlanId}}/mac_table/{{macAddress}}_{{portId}}",
                "ip4MacTemplate": f"{u}/arp_table/{{ip}}_{{mac}}"}

    def create_ops(self, obj: Bridge, ctx: Ctx) -> list[Op]:
        key = cluster_tunnel_key(ctx.store.next_sequence("tunnel_key"))
        return [Create(obj.replace(tunnel_key=key))]


class RouterResource(Resource[Router]):
    cls = Router
    path = "routers"
    media = ("Router",)
    version = 3
    fields = (("name", "name"), ("tenantId", "tenant_id"), ("adminStateUp", "admin_state_up"),
              ("inboundFilterId", "inbound_filter_id"), ("outboundFilterId", "outbound_filter_id"),
              ("localRedirectChainId", "local_redirect_chain_id"), ("forwardChainId", "forward_chain_id"),
              ("loadBalancerId", "load_balancer_id"), ("asNumber", "as_number"),
              ("inboundMirrorIds", "inbound_mirror_ids"), ("outboundMirrorIds", "outbound_mirror_ids"))

    def dto_extra(self, obj: Router, ctx: Ctx) -> Dto:
        u = self.uri(ctx, obj.id)
        return {"ports": f"{u}/ports", "peerPorts": f"{u}/peer_ports", "routes": f"{u}/routes",
                "bgpNetworks": f"{u}/bgp_networks", "bgpPeers": f"{u}/bgp_peers"}

    def dto_in(self, dto: Dto, data: dict[str, Any], old: Router | None, ctx: Ctx, parent_id: str | None) -> None:
        if data.get("as_number") is None:
            data["as_number"] = 0


ROUTE_TYPES = {"Normal": NextHop.PORT, "BlackHole": NextHop.BLACKHOLE, "Reject": NextHop.REJECT,
               "Local": NextHop.LOCAL, "Fip64": NextHop.FIP64}
ROUTE_TYPE_NAMES = {v: k for k, v in ROUTE_TYPES.items()}


class RouteResource(Resource[Route]):
    cls = Route
    path = "routes"
    media = ("Route",)
    version = 1
    fields = (("nextHopPort", "next_hop_port_id"), ("nextHopGateway", "next_hop_gateway"),
              ("weight", "weight"), ("attributes", "attributes"))
    read_only = (("routerId", "router_id"), ("learned", "learned"))

    def tenant_of(self, obj: Route, ctx: Ctx) -> str | None:
        router = ctx.store.find(Router, obj.router_id) if obj.router_id else None
        return router.tenant_id if router else None

    def to_dto(self, obj: Route, ctx: Ctx) -> Dto:
        dto = super().to_dto(obj, ctx)
        dto["srcNetworkAddr"], dto["srcNetworkLength"] = split_cidr(obj.src_subnet)
        dto["dstNetworkAddr"], dto["dstNetworkLength"] = split_cidr(obj.dst_subnet)
        dto["type"] = ROUTE_TYPE_NAMES[obj.next_hop]
        return dto

    def rename(self) -> dict[str, str]:
        return super().rename() | {"src_subnet": "srcNetworkAddr", "dst_subnet": "dstNetworkAddr",
                                   "next_hop": "type", "router_id": "routerId"}

    def dto_in(self, dto: Dto, data: dict[str, Any], old: Route | None, ctx: Ctx, parent_id: str | None) -> None:
        data["router_id"] = parent_id or (old.router_id if old else None)
        data["src_subnet"] = join_cidr(dto, "srcNetworkAddr", "srcNetworkLength", "0.0.0.0/0")
        data["dst_subnet"] = join_cidr(dto, "dstNetworkAddr", "dstNetworkLength", None)
        if data["dst_subnet"] is None:
            raise bad_request("a route needs a destination", "dstNetworkAddr")
        kind = dto.get("type", "Normal")
        if kind not in ROUTE_TYPES:
            raise bad_request(f"must be one of {', '.join(ROUTE_TYPES)}, not {kind!r}", "type")
        data["next_hop"] = ROUTE_TYPES[kind].value
        if data.get("weight") is None:
            data["weight"] = 100
        port_id = dto.get("nextHopPort")
        if ROUTE_TYPES[kind] is NextHop.PORT and port_id is not None and parent_id is not None:
            port = ctx.store.find(Port, str(port_id)) if isinstance(port_id, str) else None
            if port is not None and port.router_id != parent_id:
                raise bad_request("the next hop port is not a port of this router", "nextHopPort")


BRIDGES = BridgeResource()
ROUTERS = RouterResource()
ROUTES = RouteResource()


def register(router: APIRouter) -> None:
    add_crud(router, BRIDGES)
    add_crud(router, ROUTERS)
    add_crud(router, ROUTES, list_=False, create=False, update=False)
    add_children(router, ROUTERS, "routes", ROUTES,
                 lambda r, ctx: ctx.store.list(Route, r.route_ids))
