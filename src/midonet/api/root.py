"""The API's entry points: `POST /login`, the Application root, tenants and system state (spec 7.1-7.3).

The Application root lists every collection URI and `{id}` template (HATEOAS): clients start there.
Tenants are not stored: they are the tenant ids in use by bridges, routers, chains and port groups (and, for
a tenant user, its own tenant), read-only (POST/PUT/DELETE get 405).

May import: `midonet.topology`, `api.resource`, `api.auth`, `api.errors`, `api.media`.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from midonet import __version__
from midonet.api.auth import Authenticator
from midonet.api.errors import forbidden, not_found
from midonet.api.media import negotiate, vendor
from midonet.api.resource import Ctx, Dto, base_uri, context, in_thread, json_response
from midonet.topology.chains import Chain
from midonet.topology.devices import Bridge, Router
from midonet.topology.groups import PortGroup

# (collection key or None, template key or None, path), spec 7.2.
ROOT_ENTRIES: tuple[tuple[str | None, str | None, str], ...] = (
    ("bridges", "bridgeTemplate", "bridges"),
    ("routers", "routerTemplate", "routers"),
    ("ports", "portTemplate", "ports"),
    ("chains", "chainTemplate", "chains"),
    (None, "ruleTemplate", "rules"),
    (None, "routeTemplate", "routes"),
    ("portGroups", "portGroupTemplate", "port_groups"),
    ("ipAddrGroups", "ipAddrGroupTemplate", "ip_addr_groups"),
    ("hosts", "hostTemplate", "hosts"),
    ("tunnelZones", "tunnelZoneTemplate", "tunnel_zones"),
    ("tenants", "tenantTemplate", "tenants"),
    ("loadBalancers", "loadBalancerTemplate", "load_balancers"),
    ("pools", "poolTemplate", "pools"),
    ("poolMembers", "poolMemberTemplate", "pool_members"),
    ("vips", "vipTemplate", "vips"),
    ("healthMonitors", "healthMonitorTemplate", "health_monitors"),
    ("mirrors", "mirrorTemplate", "mirrors"),
    ("l2insertions", "l2InsertionTemplate", "l2insertions"),
    ("vteps", "vtepTemplate", "vteps"),
    ("traceRequests", "traceRequestTemplate", "traces"),
    ("qosPolicies", "qosPolicyTemplate", "qos_policies"),
    (None, "qosBwLimitRuleTemplate", "qos_bw_limit_rules"),
    (None, "qosDscpRuleTemplate", "qos_dscp_rules"),
    (None, "bgpNetworkTemplate", "bgp_networks"),
    (None, "bgpPeerTemplate", "bgp_peers"),
    ("serviceContainers", "serviceContainerTemplate", "service_containers"),
    ("serviceContainerGroups", "serviceContainerGroupTemplate", "service_container_groups"),
    ("systemState", None, "system_state"),
    ("neutron", None, "neutron"),
)


def application(base: str) -> Dto:
    body: Dto = {"uri": f"{base}/", "version": "5"}
    for collection, template, path in ROOT_ENTRIES:
        if collection:
            body[collection] = f"{base}/{path}"
        if template:
            body[template] = f"{base}/{path}/{{id}}"
    return body


def tenant_ids(ctx: Ctx) -> list[str]:
    seen: set[str] = set()
    for cls in (Bridge, Router, Chain, PortGroup):
        for obj in ctx.store.list(cls):
            tenant = getattr(obj, "tenant_id", None)
            if tenant:
                seen.add(tenant)
    if ctx.principal.tenant:
        seen.add(ctx.principal.tenant)
    if not ctx.principal.is_admin:
        seen &= {ctx.principal.tenant or ""}
    return sorted(seen)


def tenant_dto(ctx: Ctx, tenant: str) -> Dto:
    u = f"{ctx.base}/tenants/{tenant}"
    return {"id": tenant, "name": tenant, "description": None, "enabled": True, "uri": u,
            "bridges": f"{ctx.base}/bridges?tenant_id={tenant}", "routers": f"{ctx.base}/routers?tenant_id={tenant}",
            "chains": f"{ctx.base}/chains?tenant_id={tenant}",
            "portGroups": f"{ctx.base}/port_groups?tenant_id={tenant}"}


def register(router: APIRouter) -> None:
    @router.post("/login")
    async def login(request: Request) -> Response:
        auth: Authenticator = request.app.state.auth
        token = auth.login(request.headers.get("authorization"), request.headers.get("x-auth-project"))
        body = {"key": token.key, "expires": token.expires_http}
        response = JSONResponse(body, media_type=vendor("Token", 1))
        response.headers["Set-Cookie"] = f"sessionId={token.key}; Expires={token.expires_http}; Path=/"
        return response

    @router.get("/")
    async def root(request: Request) -> Response:
        context(request)
        media = negotiate(request.headers.get("accept"), ("Application",), 5, collection=False)
        return json_response(application(base_uri(request)), media)

    @router.get("/tenants")
    async def list_tenants(request: Request) -> Response:
        ctx = context(request)
        media = negotiate(request.headers.get("accept"), ("Tenant",), 2, collection=True)
        return json_response(await in_thread(lambda: [tenant_dto(ctx, t) for t in tenant_ids(ctx)]), media)

    @router.get("/tenants/{tenant_id}")
    async def get_tenant(request: Request, tenant_id: str) -> Response:
        ctx = context(request)
        media = negotiate(request.headers.get("accept"), ("Tenant",), 2, collection=False)
        if not ctx.principal.is_admin and tenant_id != ctx.principal.tenant:
            raise forbidden(f"not allowed to read tenant {tenant_id}")
        if tenant_id not in await in_thread(lambda: tenant_ids(ctx)):
            raise not_found(f"tenant {tenant_id} does not exist")
        return json_response(tenant_dto(ctx, tenant_id), media)

    @router.get("/system_state")
    async def system_state(request: Request) -> Response:
        ctx = context(request)
        media = negotiate(request.headers.get("accept"), ("SystemState",), 2, collection=False)
        return json_response({"state": "ACTIVE", "availability": "READWRITE", "version": __version__,
                              "information": None, "uri": f"{ctx.base}/system_state"}, media)
