"""A router's BGP peers and advertised networks (spec 7.3: BgpPeer-v1, BgpNetwork-v1; semantics in 6).

    /routers/{id}/bgp_peers      GET POST        /bgp_peers/{id}      GET PUT DELETE
    /routers/{id}/bgp_networks   GET POST        /bgp_networks/{id}   GET DELETE

The router's own AS number is its `asNumber` (PUT the router). Peers and networks belong to their router
(its tenant, and deleting the router deletes them); their `routerId` is fixed at creation. A router
cannot have two peers with the same address nor advertise the same network twice (409). Timer bounds
are the original's: keepAlive 5-3600 s, holdTime 5-7200 s, connectRetry 5-3600 s; an absent timer stays
null and the agent uses its default (60, 180, 120 s). The duplicate checks read before the transaction, so
two API servers racing may both pass them (the original has the same window).

May import: `midonet.topology`, `midonet.store`, `api.resource`, `api.errors`, `api.devices`.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from midonet.api.devices import ROUTERS, join_cidr, split_cidr
from midonet.api.errors import bad_request, conflict
from midonet.api.resource import Ctx, Dto, Resource, add_children, add_crud
from midonet.store.base import Create, Op, Update
from midonet.topology.devices import Router
from midonet.topology.services import BgpNetwork, BgpPeer

TIMER_BOUNDS = {"keepAlive": 3600, "holdTime": 7200, "connectRetry": 3600}


def router_tenant(ctx: Ctx, router_id: str | None) -> str | None:
    router = ctx.store.find(Router, router_id) if router_id else None
    return router.tenant_id if router is not None else None


class BgpPeerResource(Resource[BgpPeer]):
    cls = BgpPeer
    path = "bgp_peers"
    media = ("BgpPeer",)
    version = 1
    fields = (("asNumber", "as_number"), ("address", "address"), ("keepAlive", "keep_alive"),
              ("holdTime", "hold_time"), ("connectRetry", "connect_retry"), ("password", "password"))
    read_only = (("routerId", "router_id"),)

    def tenant_of(self, obj: BgpPeer, ctx: Ctx) -> str | None:
        return router_tenant(ctx, obj.router_id)

    def dto_extra(self, obj: BgpPeer, ctx: Ctx) -> Dto:
        return {"router": f"{ctx.base}/routers/{obj.router_id}"}

    def dto_in(self, dto: Dto, data: dict[str, Any], old: BgpPeer | None, ctx: Ctx, parent_id: str | None) -> None:
        data["router_id"] = parent_id or (old.router_id if old else None)
        if data.get("as_number") is None:
            raise bad_request("is required", "asNumber")
        if data.get("address") is None:
            raise bad_request("is required", "address")
        for name, high in TIMER_BOUNDS.items():
            value = dto.get(name)
            if isinstance(value, int) and not isinstance(value, bool) and not 5 <= value <= high:
                raise bad_request(f"must be between 5 and {high}, not {value}", name)

    def create_ops(self, obj: BgpPeer, ctx: Ctx) -> list[Op]:
        self._refuse_duplicate(obj, ctx)
        return [Create(obj)]

    def update_ops(self, obj: BgpPeer, old: BgpPeer, ctx: Ctx) -> list[Op]:
        self._refuse_duplicate(obj, ctx)
        return [Update(obj)]

    def _refuse_duplicate(self, obj: BgpPeer, ctx: Ctx) -> None:
        router = ctx.store.get(Router, obj.router_id or "")
        for peer in ctx.store.list(BgpPeer, router.bgp_peer_ids):
            if peer.id != obj.id and peer.address == obj.address:
                raise conflict(f"router {router.id} already has BGP peer {peer.id} at {obj.address}")


class BgpNetworkResource(Resource[BgpNetwork]):
    cls = BgpNetwork
    path = "bgp_networks"
    media = ("BgpNetwork",)
    version = 1
    read_only = (("routerId", "router_id"),)

    def tenant_of(self, obj: BgpNetwork, ctx: Ctx) -> str | None:
        return router_tenant(ctx, obj.router_id)

    def to_dto(self, obj: BgpNetwork, ctx: Ctx) -> Dto:
        dto = super().to_dto(obj, ctx)
        dto["subnetAddress"], dto["subnetLength"] = split_cidr(obj.subnet)
        dto["router"] = f"{ctx.base}/routers/{obj.router_id}"
        return dto

    def rename(self) -> dict[str, str]:
        return super().rename() | {"subnet": "subnetAddress"}

    def dto_in(self, dto: Dto, data: dict[str, Any], old: BgpNetwork | None, ctx: Ctx,
               parent_id: str | None) -> None:
        data["router_id"] = parent_id or (old.router_id if old else None)
        if dto.get("subnetAddress") is None:
            raise bad_request("is required", "subnetAddress")
        if dto.get("subnetLength") is None:
            raise bad_request("is required", "subnetLength")
        data["subnet"] = join_cidr(dto, "subnetAddress", "subnetLength", None)

    def create_ops(self, obj: BgpNetwork, ctx: Ctx) -> list[Op]:
        router = ctx.store.get(Router, obj.router_id or "")
        for net in ctx.store.list(BgpNetwork, router.bgp_network_ids):
            if net.subnet == obj.subnet:
                raise conflict(f"router {router.id} already advertises {obj.subnet} (BGP network {net.id})")
        return [Create(obj)]


BGP_PEERS = BgpPeerResource()
BGP_NETWORKS = BgpNetworkResource()


def register(router: APIRouter) -> None:
    add_crud(router, BGP_PEERS, list_=False, create=False)
    add_crud(router, BGP_NETWORKS, list_=False, create=False, update=False)
    add_children(router, ROUTERS, "bgp_peers", BGP_PEERS, lambda r, ctx: ctx.store.list(BgpPeer, r.bgp_peer_ids))
    add_children(router, ROUTERS, "bgp_networks", BGP_NETWORKS,
                 lambda r, ctx: ctx.store.list(BgpNetwork, r.bgp_network_ids))


__all__ = ["BGP_NETWORKS", "BGP_PEERS", "register"]
