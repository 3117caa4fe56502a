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

May import: `midonet.topology`, `midonet.store`, `api.resource`, `api.members`, `api.errors`, `api.hosts`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Sequence
from typing import Any

from fastapi import APIRouter

from midonet.api.errors import bad_request, conflict
from midonet.api.hosts import HOSTS
from midonet.api.members import Members, Params, add_members, body_id, path_id
from midonet.api.resource import Ctx, Dto, Resource, add_crud, admin_list
from midonet.store.base import Op, UpdateWith
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


class TunnelZoneHosts(Members[TunnelZone, str, TunnelZoneHost]):
    """The hosts of a tunnel zone, by host id; admins only."""

    parent = TUNNEL_ZONES
    collection = "/tunnel_zones/{parent_id}/hosts"
    item = "/tunnel_zones/{parent_id}/hosts/{host_id}"
    media = MEMBER_MEDIA
    admin_reads = True
    admin_writes = True
    admin_what = "tunnel zones"

    def key(self, params: Params) -> str:
        return path_id(params["host_id"], "host")

    def members(self, parent: TunnelZone, ctx: Ctx) -> Sequence[TunnelZoneHost]:
        return parent.hosts

    def dto(self, parent: TunnelZone, member: TunnelZoneHost, ctx: Ctx) -> Dto:
        return member_dto(ctx, parent.id, member)

    def find(self, parent: TunnelZone, key: str, ctx: Ctx) -> TunnelZoneHost | None:
        return parent.member(key)

    def missing(self, parent: TunnelZone, key: str) -> str:
        return f"host {key} is not a member of tunnel zone {parent.id}"

    def add(self, parent: TunnelZone, body: Any, ctx: Ctx) -> tuple[list[Op], str]:
        member = member_in(body)
        if parent.member(member.host_id) is not None:
            raise conflict(f"host {member.host_id} is already a member of tunnel zone {parent.id}")
        HOSTS.load(ctx, member.host_id)
        return [UpdateWith(TunnelZone, parent.id, _add_member(member))], str(member_dto(ctx, parent.id, member)["uri"])

    def remove(self, parent: TunnelZone, member: TunnelZoneHost, ctx: Ctx) -> list[Op]:
        return [UpdateWith(TunnelZone, parent.id, _remove_member(member.host_id))]


def register(router: APIRouter) -> None:
    add_crud(router, TUNNEL_ZONES, list_=False)
    admin_list(router, TUNNEL_ZONES, "tunnel zones")
    add_members(router, TunnelZoneHosts())


__all__ = ["TUNNEL_ZONES", "register"]
