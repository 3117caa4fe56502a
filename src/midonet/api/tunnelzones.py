"""Tunnel zones and their members (spec 1.6, 7.3: TunnelZone-v1, TunnelZoneHost-v1 / GreTunnelZoneHost-v1).

    /tunnel_zones                          GET, POST {name, type: gre | vxlan | vtep}
    /tunnel_zones/{id}                     GET, PUT, DELETE
    /tunnel_zones/{id}/hosts               GET, POST {hostId, ipAddress}
    /tunnel_zones/{id}/hosts/{hostId}      GET, DELETE

A zone's members are a list on the record (`TunnelZone.hosts`, each with the host's underlay address); the
store derives `host_ids` from it and keeps `Host.tunnel_zone_ids` equal. Members are added and removed with
`UpdateWith`, so concurrent changes do not lose each other. A host listed twice is a 409, an unknown host a
404. Member media types: `TunnelZoneHost-v1`, and `GreTunnelZoneHost-v1`, which the real client uses for GRE
zones (same shape); both are accepted whatever the zone's type.

Like hosts, tunnel zones are infrastructure: admins only, for reads too (tenants get 403).

May import: `midonet.topology`, `midonet.store`, `api.resource`, `api.errors`, `api.media`, `api.groups`,
`api.hosts`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request, Response

from midonet.api.errors import bad_request, conflict, forbidden, not_found
from midonet.api.hosts import HOSTS
from midonet.api.media import negotiate
from midonet.api.members import body_id, path_id
from midonet.api.resource import (
    Ctx,
    Dto,
    Resource,
    add_crud,
    admin_list,
    context,
    created,
    in_thread,
    json_response,
    no_content,
    read_json,
)
from midonet.store.base import UpdateWith
from midonet.topology.errors import ConflictError, NotFoundError
from midonet.topology.hosts import TunnelZone, TunnelZoneHost, TunnelZoneType
from midonet.topology.record import Record

MEMBER_MEDIA = ("TunnelZoneHost", "GreTunnelZoneHost")
TYPES = tuple(t.value for t in TunnelZoneType)


class TunnelZoneResource(Resource[TunnelZone]):
    cls = TunnelZone
    path = "tunnel_zones"
    media = ("TunnelZone",)
    version = 1
    admin_only = True
    admin_only_read = True
    fields = (("name", "name"), ("type", "type"))

    def dto_extra(self, obj: TunnelZone, ctx: Ctx) -> Dto:
        return {"hosts": f"{self.uri(ctx, obj.id)}/hosts"}

    def dto_in(self, dto: Dto, data: dict[str, Any], old: TunnelZone | None, ctx: Ctx,
               parent_id: str | None) -> None:
        name = data.get("name")
        if name is None:
            raise bad_request("is required", "name")
        if not isinstance(name, str) or not 1 <= len(name) <= 255:
            raise bad_request("must be a string of 1 to 255 characters", "name")
        kind = data.get("type")
        if kind is None:
            raise bad_request(f"is required (one of {', '.join(TYPES)})", "type")
        if not isinstance(kind, str) or kind.lower() not in TYPES:
            raise bad_request(f"must be one of {', '.join(TYPES)}, not {kind!r}", "type")
        data["type"] = kind.lower()


TUNNEL_ZONES = TunnelZoneResource()


def member_dto(ctx: Ctx, zone_id: str, member: TunnelZoneHost) -> Dto:
    zone_uri = TUNNEL_ZONES.uri(ctx, zone_id)
    return {"tunnelZoneId": zone_id, "hostId": member.host_id, "ipAddress": member.ip,
            "uri": f"{zone_uri}/hosts/{member.host_id}", "tunnelZone": zone_uri,
            "host": HOSTS.uri(ctx, member.host_id)}


def member_in(dto: Any) -> TunnelZoneHost:
    """The member a POST body names; a 400 naming the bad property."""
    host_id = body_id(dto, "hostId")
    ip = dto.get("ipAddress")
    if ip is None:
        raise bad_request("is required", "ipAddress")
    try:
        addr = ipaddress.ip_address(str(ip))
    except ValueError:
        raise bad_request(f"is not a valid IP address: {ip!r}", "ipAddress") from None
    return TunnelZoneHost(host_id=host_id, ip=str(addr))


def _add_member(member: TunnelZoneHost) -> Callable[[Record], Record]:
    def add(zone: Record) -> Record:
        assert isinstance(zone, TunnelZone)
        if zone.member(member.host_id) is not None:
            raise ConflictError(f"host {member.host_id} is already a member of tunnel zone {zone.id}")
        return zone.replace(hosts=(*zone.hosts, member))
    return add


def _remove_member(host_id: str) -> Callable[[Record], Record]:
    def remove(zone: Record) -> Record:
        assert isinstance(zone, TunnelZone)
        if zone.member(host_id) is None:
            raise NotFoundError("TunnelZoneHost", host_id,
                                f"host {host_id} is not a member of tunnel zone {zone.id}")
        return zone.replace(hosts=tuple(h for h in zone.hosts if h.host_id != host_id))
    return remove


def _admin(ctx: Ctx) -> None:
    if not ctx.principal.is_admin:
        raise forbidden("only admins may read or change tunnel zones")


def register(router: APIRouter) -> None:
    add_crud(router, TUNNEL_ZONES, list_=False)
    admin_list(router, TUNNEL_ZONES, "hosts and port bindings")
    members = "/tunnel_zones/{zone_id}/hosts"

    @router.get(members)
    async def list_members(request: Request, zone_id: str) -> Response:
        ctx = context(request)
        _admin(ctx)
        media = negotiate(request.headers.get("accept"), MEMBER_MEDIA, 1, collection=True)

        def work() -> list[Dto]:
            zone = TUNNEL_ZONES.load(ctx, zone_id)
            return [member_dto(ctx, zone.id, m) for m in zone.hosts]
        return json_response(await in_thread(work), media)

    @router.post(members)
    async def add_member(request: Request, zone_id: str) -> Response:
        ctx = context(request)
        _admin(ctx)
        dto = await read_json(request, MEMBER_MEDIA)

        def work() -> str:
            zone = TUNNEL_ZONES.load(ctx, zone_id)
            member = member_in(dto)
            if zone.member(member.host_id) is not None:
                raise conflict(f"host {member.host_id} is already a member of tunnel zone {zone.id}")
            HOSTS.load(ctx, member.host_id)
            ctx.store.multi([UpdateWith(TunnelZone, zone.id, _add_member(member))])
            return str(member_dto(ctx, zone.id, member)["uri"])
        return created(await in_thread(work))

    @router.get(members + "/{host_id}")
    async def get_member(request: Request, zone_id: str, host_id: str) -> Response:
        ctx = context(request)
        _admin(ctx)
        media = negotiate(request.headers.get("accept"), MEMBER_MEDIA, 1, collection=False)

        def work() -> Dto:
            zone = TUNNEL_ZONES.load(ctx, zone_id)
            member = zone.member(path_id(host_id, "host"))
            if member is None:
                raise not_found(f"host {host_id} is not a member of tunnel zone {zone.id}")
            return member_dto(ctx, zone.id, member)
        return json_response(await in_thread(work), media)

    @router.delete(members + "/{host_id}")
    async def remove_member(request: Request, zone_id: str, host_id: str) -> Response:
        ctx = context(request)
        _admin(ctx)

        def work() -> None:
            zone = TUNNEL_ZONES.load(ctx, zone_id)
            wanted = path_id(host_id, "host")
            if zone.member(wanted) is None:
                raise not_found(f"host {host_id} is not a member of tunnel zone {zone.id}")
            ctx.store.multi([UpdateWith(TunnelZone, zone.id, _remove_member(wanted))])
        await in_thread(work)
        return no_content()


__all__ = ["TUNNEL_ZONES", "register"]
