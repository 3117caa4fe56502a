"""The L4 load balancer's REST resources (spec 7.3: LoadBalancer-v1, Pool-v1, PoolMember-v1, VIP-v1,
HealthMonitor-v1; semantics in 3.8).

    /load_balancers[/{id}]            GET POST | GET PUT DELETE     /{id}/pools (GET POST), /{id}/vips (GET POST)
    /pools[/{id}]                     GET POST | GET PUT DELETE     /{id}/pool_members, /{id}/vips (GET POST)
    /pool_members[/{id}]              GET POST | GET PUT DELETE
    /vips[/{id}]                      GET POST | GET PUT DELETE
    /health_monitors[/{id}]           GET POST | GET PUT DELETE     /{id}/pools (GET)

A load balancer is attached to a router by `PUT /routers/{id} {loadBalancerId}`; its `routerId` is the
read-only back-reference (a POST naming one is a 400, as in the original). Deleting a load balancer
cascades to its pools, a pool to its members and VIPs (the store's bindings); a router that still has a
load balancer cannot be deleted (409). A VIP's `loadBalancerId` is derived from its pool. `status` is
written by health monitoring, never by the API.

Tenancy: a load balancer attached to a router belongs to the router's tenant, and its pools, members and
VIPs follow it. A load balancer with no router yet is *unowned*: every user may read it and any
tenant_admin may change it (or its pools) until it is attached, after which only the router's tenant may.
Health monitors carry no tenant: everyone reads them, only admins write them.

May import: `midonet.topology`, `midonet.store`, `api.resource`, `api.errors`, `api.auth`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

from fastapi import APIRouter

from midonet.api.auth import Role
from midonet.api.errors import bad_request, not_found
from midonet.api.resource import Ctx, Dto, Resource, add_children, add_crud
from midonet.topology.devices import Router
from midonet.topology.ids import canonical_id
from midonet.topology.l4lb import HealthMonitor, LoadBalancer, Pool, PoolMember, Vip
from midonet.topology.record import Record

R = TypeVar("R", bound=Record)
T = TypeVar("T", bound=Record)


def lookup(ctx: Ctx, cls: type[T], value: Any) -> T | None:
    """The object `value` names, or None when it is absent or not an id (validation reports that)."""
    if not isinstance(value, str):
        return None
    try:
        return ctx.store.find(cls, canonical_id(value))
    except ValueError:
        return None


def require(ctx: Ctx, cls: type[T], value: Any, prop: str) -> T | None:
    """Like `lookup`, but a well-formed id of a missing object is a 404 and an absent one a 400."""
    if value is None:
        raise bad_request("is required", prop)
    found = lookup(ctx, cls, value)
    if found is None and isinstance(value, str):
        try:
            canonical_id(value)
        except ValueError:
            return None   # malformed: the record's validation names it
        raise not_found(f"{cls.kind()} {value} does not exist")
    return found


class LbOwned(Resource[R]):
    """A resource whose owner is a load balancer's router (see the module docstring)."""

    def lb_id(self, obj: R, ctx: Ctx) -> str | None:
        raise NotImplementedError

    def owner(self, obj: R, ctx: Ctx) -> tuple[bool, str | None]:
        """(attached to a router, that router's tenant)."""
        lb_id = self.lb_id(obj, ctx)
        lb = ctx.store.find(LoadBalancer, lb_id) if lb_id else None
        if lb is None or lb.router_id is None:
            return False, None
        router = ctx.store.find(Router, lb.router_id)
        return True, router.tenant_id if router is not None else None

    def tenant_of(self, obj: R, ctx: Ctx) -> str | None:
        return self.owner(obj, ctx)[1]

    def check_read(self, obj: R, ctx: Ctx) -> None:
        if self.owner(obj, ctx)[0]:
            super().check_read(obj, ctx)

    def check_write(self, obj: R, ctx: Ctx) -> None:
        if not self.owner(obj, ctx)[0] and ctx.principal.role is Role.TENANT_ADMIN:
            return
        super().check_write(obj, ctx)

    def visible(self, objs: Iterable[R], ctx: Ctx) -> list[R]:
        wanted = ctx.query.get("tenant_id")
        out = []
        for obj in objs:
            attached, tenant = self.owner(obj, ctx)
            if wanted is not None and tenant != wanted:
                continue
            if not attached or ctx.principal.can_read(tenant):
                out.append(obj)
        return out


class LoadBalancerResource(LbOwned[LoadBalancer]):
    cls = LoadBalancer
    path = "load_balancers"
    media = ("LoadBalancer",)
    version = 1
    fields = (("adminStateUp", "admin_state_up"),)
    read_only = (("routerId", "router_id"),)

    def lb_id(self, obj: LoadBalancer, ctx: Ctx) -> str | None:
        return obj.id

    def dto_extra(self, obj: LoadBalancer, ctx: Ctx) -> Dto:
        u = self.uri(ctx, obj.id)
        extra: Dto = {"pools": f"{u}/pools", "vips": f"{u}/vips"}
        if obj.router_id:
            extra["router"] = f"{ctx.base}/routers/{obj.router_id}"
        return extra

    def dto_in(self, dto: Dto, data: dict[str, Any], old: LoadBalancer | None, ctx: Ctx,
               parent_id: str | None) -> None:
        if old is None and dto.get("routerId") is not None:
            raise bad_request("is set by attaching the load balancer to a router (PUT the router's "
                              "loadBalancerId), not on creation", "routerId")


class PoolResource(LbOwned[Pool]):
    cls = Pool
    path = "pools"
    media = ("Pool",)
    version = 1
    fields = (("loadBalancerId", "load_balancer_id"), ("healthMonitorId", "health_monitor_id"),
              ("protocol", "protocol"), ("lbMethod", "lb_method"), ("adminStateUp", "admin_state_up"))
    read_only = (("status", "status"),)

    def lb_id(self, obj: Pool, ctx: Ctx) -> str | None:
        return obj.load_balancer_id

    def list_all(self, ctx: Ctx) -> list[Pool]:
        pools = ctx.store.list(Pool)
        hm_id = ctx.query.get("hm_id")
        return [p for p in pools if p.health_monitor_id == hm_id] if hm_id else pools

    def dto_extra(self, obj: Pool, ctx: Ctx) -> Dto:
        u = self.uri(ctx, obj.id)
        extra: Dto = {"poolMembers": f"{u}/pool_members", "vips": f"{u}/vips",
                      "loadBalancer": f"{ctx.base}/load_balancers/{obj.load_balancer_id}"}
        if obj.health_monitor_id:
            extra["healthMonitor"] = f"{ctx.base}/health_monitors/{obj.health_monitor_id}"
        return extra

    def dto_in(self, dto: Dto, data: dict[str, Any], old: Pool | None, ctx: Ctx, parent_id: str | None) -> None:
        if parent_id is not None:
            data["load_balancer_id"] = parent_id
        require(ctx, LoadBalancer, data.get("load_balancer_id"), "loadBalancerId")
        if data.get("health_monitor_id") is not None:
            require(ctx, HealthMonitor, data["health_monitor_id"], "healthMonitorId")


def pool_lb(ctx: Ctx, pool_id: str | None) -> str | None:
    pool = ctx.store.find(Pool, pool_id) if pool_id else None
    return pool.load_balancer_id if pool is not None else None


class PoolMemberResource(LbOwned[PoolMember]):
    cls = PoolMember
    path = "pool_members"
    media = ("PoolMember",)
    version = 1
    fields = (("poolId", "pool_id"), ("address", "address"), ("protocolPort", "protocol_port"),
              ("weight", "weight"), ("adminStateUp", "admin_state_up"))
    read_only = (("status", "status"),)

    def lb_id(self, obj: PoolMember, ctx: Ctx) -> str | None:
        return pool_lb(ctx, obj.pool_id)

    def dto_extra(self, obj: PoolMember, ctx: Ctx) -> Dto:
        return {"pool": f"{ctx.base}/pools/{obj.pool_id}"}

    def dto_in(self, dto: Dto, data: dict[str, Any], old: PoolMember | None, ctx: Ctx,
               parent_id: str | None) -> None:
        if parent_id is not None:
            data["pool_id"] = parent_id
        require(ctx, Pool, data.get("pool_id"), "poolId")
        if data.get("address") is None:
            raise bad_request("is required", "address")
        weight = data.get("weight")
        if weight is None:
            data["weight"] = 1
        elif isinstance(weight, int) and not isinstance(weight, bool) and weight < 1:
            raise bad_request(f"must be at least 1, not {weight}", "weight")


class VipResource(LbOwned[Vip]):
    """VIPs; `parent` says what `/<parent>/{id}/vips` names (a pool, or a load balancer)."""

    cls = Vip
    path = "vips"
    media = ("VIP", "Vip")
    version = 1
    fields = (("poolId", "pool_id"), ("address", "address"), ("protocolPort", "protocol_port"),
              ("sessionPersistence", "session_persistence"), ("adminStateUp", "admin_state_up"))

    def __init__(self, parent: type[Record] = Pool) -> None:
        self.parent = parent

    def lb_id(self, obj: Vip, ctx: Ctx) -> str | None:
        return pool_lb(ctx, obj.pool_id)

    def dto_extra(self, obj: Vip, ctx: Ctx) -> Dto:
        lb_id = pool_lb(ctx, obj.pool_id)
        return {"loadBalancerId": lb_id, "pool": f"{ctx.base}/pools/{obj.pool_id}",
                "loadBalancer": f"{ctx.base}/load_balancers/{lb_id}" if lb_id else None}

    def dto_in(self, dto: Dto, data: dict[str, Any], old: Vip | None, ctx: Ctx, parent_id: str | None) -> None:
        if parent_id is not None and self.parent is Pool:
            data["pool_id"] = parent_id
        pool = require(ctx, Pool, data.get("pool_id"), "poolId")
        if parent_id is not None and self.parent is LoadBalancer and pool is not None \
                and pool.load_balancer_id != parent_id:
            raise bad_request(f"pool {pool.id} belongs to another load balancer", "poolId")
        if data.get("address") is None:
            raise bad_request("is required", "address")


class HealthMonitorResource(Resource[HealthMonitor]):
    cls = HealthMonitor
    path = "health_monitors"
    media = ("HealthMonitor",)
    version = 1
    fields = (("type", "type"), ("delay", "delay"), ("timeout", "timeout"), ("maxRetries", "max_retries"),
              ("adminStateUp", "admin_state_up"))
    read_only = (("status", "status"),)
    admin_only = True

    def dto_extra(self, obj: HealthMonitor, ctx: Ctx) -> Dto:
        return {"pools": f"{self.uri(ctx, obj.id)}/pools"}

    def check_read(self, obj: HealthMonitor, ctx: Ctx) -> None:
        return   # no tenant: everyone may read

    def visible(self, objs: Iterable[HealthMonitor], ctx: Ctx) -> list[HealthMonitor]:
        return list(objs)


LOAD_BALANCERS = LoadBalancerResource()
POOLS = PoolResource()
POOL_MEMBERS = PoolMemberResource()
VIPS = VipResource()
LB_VIPS = VipResource(parent=LoadBalancer)
HEALTH_MONITORS = HealthMonitorResource()


def lb_vips(lb: LoadBalancer, ctx: Ctx) -> list[Vip]:
    pools = ctx.store.list(Pool, lb.pool_ids)
    return ctx.store.list(Vip, [v for p in pools for v in p.vip_ids])


def register(router: APIRouter) -> None:
    add_crud(router, LOAD_BALANCERS)
    add_crud(router, POOLS)
    add_crud(router, POOL_MEMBERS)
    add_crud(router, VIPS)
    add_crud(router, HEALTH_MONITORS)
    add_children(router, LOAD_BALANCERS, "pools", POOLS, lambda lb, ctx: ctx.store.list(Pool, lb.pool_ids))
    add_children(router, LOAD_BALANCERS, "vips", LB_VIPS, lb_vips)
    add_children(router, POOLS, "pool_members", POOL_MEMBERS,
                 lambda p, ctx: ctx.store.list(PoolMember, p.pool_member_ids))
    add_children(router, POOLS, "vips", VIPS, lambda p, ctx: ctx.store.list(Vip, p.vip_ids))
    add_children(router, HEALTH_MONITORS, "pools", POOLS, lambda hm, ctx: ctx.store.list(Pool, hm.pool_ids),
                 create=False)


__all__ = ["HEALTH_MONITORS", "LOAD_BALANCERS", "POOLS", "POOL_MEMBERS", "VIPS", "register"]
