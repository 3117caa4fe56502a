"""Ports (spec 7.3: Port-v3), their links, and the devices' port collections.

Ports are created under their device (`POST /bridges/{id}/ports`, `POST /routers/{id}/ports`) and read,
updated and deleted at `/ports/{id}`. Every port gets a tunnel key. A router port needs `portAddress` and
`networkAddress`/`networkLength` (its subnet); its MAC is generated when not given, and creating it also
creates its LOCAL /32 route (deleted with the port).

`POST /ports/{id}/link {"peerId"}` links two interior ports (both `peerId`s set); a port that is already
linked, or bound to a host interface, cannot be linked (409); two bridge ports cannot be linked (400).
`DELETE /ports/{id}/link` unlinks. `active` is read from the port's `active` state key (set by the agent
that binds it).

May import: `midonet.topology`, `midonet.store`, `api.resource`, `api.errors`, `api.devices`.
"""

from __future__ import annotations

import ipaddress
import secrets
from typing import Any

from fastapi import APIRouter, Request, Response

from midonet.api.devices import BRIDGES, ROUTERS, join_cidr, split_cidr
from midonet.api.errors import bad_request, conflict
from midonet.api.media import negotiate
from midonet.api.resource import (
    Ctx,
    Dto,
    Resource,
    add_children,
    add_crud,
    context,
    in_thread,
    json_response,
    merge_update,
    no_content,
    read_json,
)
from midonet.store.base import Create, Op
from midonet.topology.devices import Bridge, NextHop, Port, Route, Router
from midonet.topology.ids import cluster_tunnel_key, new_id


def random_mac() -> str:
    """A locally administered unicast MAC in MidoNet's ac:ca:ba prefix."""
    return "ac:ca:ba:" + ":".join(f"{b:02x}" for b in secrets.token_bytes(3))


def port_active(ctx: Ctx, port_id: str) -> bool:
    return ctx.store.get_state(Port, port_id, "active") is not None


def port_device_tenant(ctx: Ctx, port: Port) -> str | None:
    device: Bridge | Router | None
    if port.network_id is not None:
        device = ctx.store.find(Bridge, port.network_id)
    else:
        device = ctx.store.find(Router, port.router_id or "")
    return device.tenant_id if device is not None else None


class PortResource(Resource[Port]):
    cls = Port
    path = "ports"
    media = ("Port",)
    version = 3
    fields = (("adminStateUp", "admin_state_up"), ("inboundFilterId", "inbound_filter_id"),
              ("outboundFilterId", "outbound_filter_id"), ("vifId", "vif_id"),
              ("inboundMirrorIds", "inbound_mirror_ids"), ("outboundMirrorIds", "outbound_mirror_ids"),
              ("postInFilterMirrorIds", "post_in_filter_mirror_ids"),
              ("preOutFilterMirrorIds", "pre_out_filter_mirror_ids"),
              ("serviceContainerId", "service_container_id"), ("qosPolicyId", "qos_policy_id"))
    read_only = (("peerId", "peer_id"), ("hostId", "host_id"), ("interfaceName", "interface_name"),
                 ("portGroupIds", "port_group_ids"), ("tunnelKey", "tunnel_key"),
                 ("previousHostId", "previous_host_id"))

    def tenant_of(self, obj: Port, ctx: Ctx) -> str | None:
        return port_device_tenant(ctx, obj)

    def to_dto(self, obj: Port, ctx: Ctx) -> Dto:
        dto = super().to_dto(obj, ctx)
        u = self.uri(ctx, obj.id)
        dto["deviceId"] = obj.device_id
        dto["active"] = port_active(ctx, obj.id)
        dto["link"] = f"{u}/link"
        dto["portGroups"] = f"{u}/port_groups"
        if obj.peer_id:
            dto["peer"] = self.uri(ctx, obj.peer_id)
        if obj.host_id:
            dto["host"] = f"{ctx.base}/hosts/{obj.host_id}"
            dto["hostInterfacePort"] = f"{ctx.base}/hosts/{obj.host_id}/ports/{obj.id}"
        if obj.router_id is not None:
            dto["type"] = "Router"
            dto["device"] = f"{ctx.base}/routers/{obj.router_id}"
            dto["networkAddress"], dto["networkLength"] = split_cidr(obj.port_subnet)
            dto["portAddress"] = obj.port_address
            dto["portMac"] = obj.port_mac
            dto["portSubnet"] = [obj.port_subnet] if obj.port_subnet else []
            dto["rtrPortVni"] = obj.vni
            dto["offRampVxlan"] = obj.off_ramp_vxlan
            dto["tunnelIp"] = obj.tunnel_ip
            dto["peeringTable"] = f"{u}/peering_table"
            dto["bgpStatus"] = None
        else:
            dto["type"] = "Vxlan" if obj.vtep_id else "Bridge"
            dto["device"] = f"{ctx.base}/bridges/{obj.network_id}"
            dto["vlanId"] = obj.vlan_id
            dto["vtepId"] = obj.vtep_id
            dto["vni"] = obj.vni
            dto["vtepBindings"] = f"{u}/vtep_bindings"
        return dto

    def rename(self) -> dict[str, str]:
        return super().rename() | {"port_subnet": "networkAddress", "port_address": "portAddress",
                                   "port_mac": "portMac", "vlan_id": "vlanId", "vni": "rtrPortVni",
                                   "tunnel_ip": "tunnelIp", "off_ramp_vxlan": "offRampVxlan"}

    def dto_in(self, dto: Dto, data: dict[str, Any], old: Port | None, ctx: Ctx, parent_id: str | None) -> None:
        if old is not None:
            return  # the device, addresses and VLAN of a port are fixed at creation
        kind = parent_kind(ctx, parent_id)
        if kind == "bridge":
            data["network_id"] = parent_id
            if "vlanId" in dto:
                data["vlan_id"] = dto["vlanId"]
            return
        data["router_id"] = parent_id
        subnet = join_cidr(dto, "networkAddress", "networkLength", None)
        if subnet is None and dto.get("portSubnet"):
            subnets = dto["portSubnet"]
            subnet = subnets[0] if isinstance(subnets, list) and subnets else None
        address = dto.get("portAddress")
        if subnet is None:
            raise bad_request("a router port needs its network (networkAddress/networkLength)",
                              "networkAddress")
        if address is None:
            raise bad_request("a router port needs an address", "portAddress")
        data["port_subnet"] = subnet
        data["port_address"] = address
        data["port_mac"] = dto.get("portMac") or random_mac()
        for name, attr in (("rtrPortVni", "vni"), ("tunnelIp", "tunnel_ip"), ("offRampVxlan", "off_ramp_vxlan")):
            if dto.get(name) is not None:
                data[attr] = dto[name]

    def create_ops(self, obj: Port, ctx: Ctx) -> list[Op]:
        key = cluster_tunnel_key(ctx.store.next_sequence("tunnel_key"))
        port = obj.replace(tunnel_key=key)
        ops: list[Op] = [Create(port)]
        if port.router_id is not None and port.port_address is not None:
            if port.port_subnet and ipaddress.ip_address(port.port_address) not in ipaddress.ip_network(
                    port.port_subnet):
                raise bad_request(f"{port.port_address} is not inside {port.port_subnet}", "portAddress")
            bits = 32 if ipaddress.ip_address(port.port_address).version == 4 else 128
            ops.append(Create(Route(id=new_id(), router_id=port.router_id, dst_subnet=f"{port.port_address}/{bits}",
                                    next_hop=NextHop.LOCAL, next_hop_port_id=port.id, weight=0)))
        return ops


def parent_kind(ctx: Ctx, parent_id: str | None) -> str:
    if parent_id is not None and ctx.store.exists(Bridge, parent_id):
        return "bridge"
    return "router"


PORTS = PortResource()


def peer_ports(ctx: Ctx, port_ids: tuple[str, ...]) -> list[Port]:
    """The ports linked to any of `port_ids`."""
    mine = ctx.store.list(Port, port_ids)
    return ctx.store.list(Port, [p.peer_id for p in mine if p.peer_id])


def register(router: APIRouter) -> None:
    add_crud(router, PORTS, create=False)
    add_children(router, BRIDGES, "ports", PORTS, lambda b, ctx: ctx.store.list(Port, b.port_ids))
    add_children(router, ROUTERS, "ports", PORTS, lambda r, ctx: ctx.store.list(Port, r.port_ids))
    add_children(router, BRIDGES, "peer_ports", PORTS, lambda b, ctx: peer_ports(ctx, b.port_ids), create=False)
    add_children(router, ROUTERS, "peer_ports", PORTS, lambda r, ctx: peer_ports(ctx, r.port_ids), create=False)

    @router.post("/ports/{port_id}/link")
    async def link(request: Request, port_id: str) -> Response:
        ctx = context(request)
        dto = await read_json(request, ("PortLink", "Port"))
        peer_id = dto.get("peerId") if isinstance(dto, dict) else None
        if not isinstance(peer_id, str):
            raise bad_request("the port to link to is required", "peerId")

        def work() -> None:
            port = PORTS.load(ctx, port_id)
            peer = PORTS.load(ctx, peer_id)
            PORTS.check_write(port, ctx)
            PORTS.check_write(peer, ctx)
            if port.id == peer.id:
                raise bad_request("a port cannot be linked to itself", "peerId")
            if port.network_id is not None and peer.network_id is not None:
                raise bad_request("two bridge ports cannot be linked", "peerId")
            for p in (port, peer):
                if p.peer_id is not None:
                    raise conflict(f"port {p.id} is already linked to port {p.peer_id}")
                if p.host_id is not None or p.interface_name is not None:
                    raise conflict(f"port {p.id} is bound to a host interface and cannot be linked")
            ctx.store.multi([merge_update(port, port.replace(peer_id=peer.id))])
        await in_thread(work)
        return Response(status_code=201, headers={"Location": f"{ctx.base}/ports/{port_id}/link"})

    @router.get("/ports/{port_id}/link")
    async def get_link(request: Request, port_id: str) -> Response:
        ctx = context(request)
        media = negotiate(request.headers.get("accept"), ("PortLink",), 1, collection=False)

        def work() -> Dto:
            port = PORTS.load(ctx, port_id)
            PORTS.check_read(port, ctx)
            if port.peer_id is None:
                raise bad_request("the port is not linked")
            return {"portId": port.id, "peerId": port.peer_id, "uri": f"{ctx.base}/ports/{port.id}/link",
                    "port": PORTS.uri(ctx, port.id), "peer": PORTS.uri(ctx, port.peer_id)}
        return json_response(await in_thread(work), media)

    @router.delete("/ports/{port_id}/link")
    async def unlink(request: Request, port_id: str) -> Response:
        ctx = context(request)

        def work() -> None:
            port = PORTS.load(ctx, port_id)
            PORTS.check_write(port, ctx)
            if port.peer_id is not None:
                ctx.store.multi([merge_update(port, port.replace(peer_id=None))])
        await in_thread(work)
        return no_content()


__all__ = ["PORTS", "register"]
