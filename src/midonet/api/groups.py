"""Port groups and IP address groups (spec 7.3: PortGroup-v1, PortGroupPort-v1, IpAddrGroup-v1,
IpAddrGroupAddr-v1), the sets rule conditions match on (spec 3.5).

    /port_groups                              GET, POST {name, tenantId, stateful}
    /port_groups/{id}                         GET, PUT, DELETE
    /port_groups/{id}/ports                   GET, POST {portId}
    /port_groups/{id}/ports/{portId}          GET, DELETE
    /ports/{id}/port_groups                   GET (the port's memberships, as PortGroupPort)
    /ip_addr_groups                           GET, POST {name, tenantId}
    /ip_addr_groups/{id}                      GET, PUT (the name only), DELETE
    /ip_addr_groups/{id}/ip_addrs             GET, POST {addr, version}
    /ip_addr_groups/{id}/versions/{4|6}/ip_addrs/{addr}   GET, DELETE

Membership of a port is written on the port (`Port.port_group_ids`); the store's binding keeps
`PortGroup.port_ids` equal. Adding a port needs write rights on the group and on the port's device; a port
already in the group is a 409. An IP address group's addresses are a list on the record, updated with
`UpdateWith` so concurrent additions do not lose each other; an address already present is a 409, an
address whose `version` does not match it is a 400.

May import: `midonet.topology`, `midonet.store`, `api.resource`, `api.errors`, `api.media`, `api.ports`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request, Response

from midonet.api.errors import bad_request, conflict, not_found
from midonet.api.media import negotiate
from midonet.api.ports import PORTS
from midonet.api.resource import (
    Ctx,
    Dto,
    Resource,
    add_crud,
    context,
    created,
    in_thread,
    json_response,
    no_content,
    read_json,
)
from midonet.store.base import UpdateWith
from midonet.topology.devices import Port
from midonet.topology.errors import ConflictError
from midonet.topology.groups import IPAddrGroup, PortGroup
from midonet.topology.ids import canonical_id
from midonet.topology.record import Record

PG_PORT_MEDIA = ("PortGroupPort",)
ADDR_MEDIA = ("IpAddrGroupAddr",)


def body_id(dto: Any, prop: str) -> str:
    """The UUID in `dto[prop]`, canonical; a 400 naming `prop` when it is missing or malformed."""
    value = dto.get(prop) if isinstance(dto, dict) else None
    if value is None:
        raise bad_request("is required", prop)
    try:
        return canonical_id(str(value))
    except ValueError:
        raise bad_request(f"is not a valid UUID: {value!r}", prop) from None


def path_id(value: str, kind: str) -> str:
    """A UUID from the URI; a 404 naming `kind` when it is not one (no such object can exist)."""
    try:
        return canonical_id(value)
    except ValueError:
        raise not_found(f"{kind} {value} does not exist") from None


# --- port groups -------------------------------------------------------------------------------------

class PortGroupResource(Resource[PortGroup]):
    cls = PortGroup
    path = "port_groups"
    media = ("PortGroup",)
    version = 1
    fields = (("name", "name"), ("tenantId", "tenant_id"), ("stateful", "stateful"))

    def dto_extra(self, obj: PortGroup, ctx: Ctx) -> Dto:
        return {"ports": f"{self.uri(ctx, obj.id)}/ports"}

    def dto_in(self, dto: Dto, data: dict[str, Any], old: PortGroup | None, ctx: Ctx,
               parent_id: str | None) -> None:
        if data.get("stateful") is None:
            data["stateful"] = False
        name = data.get("name")
        if isinstance(name, str) and len(name) > 255:
            raise bad_request("must be at most 255 characters long", "name")


PORT_GROUPS = PortGroupResource()


def pg_port_dto(ctx: Ctx, group_id: str, port_id: str) -> Dto:
    group_uri = PORT_GROUPS.uri(ctx, group_id)
    return {"portGroupId": group_id, "portId": port_id, "uri": f"{group_uri}/ports/{port_id}",
            "portGroup": group_uri, "port": PORTS.uri(ctx, port_id)}


def _join_group(group_id: str) -> Callable[[Record], Record]:
    def join(port: Record) -> Record:
        assert isinstance(port, Port)
        if group_id in port.port_group_ids:
            raise ConflictError(f"port {port.id} is already a member of port group {group_id}")
        return port.replace(port_group_ids=(*port.port_group_ids, group_id))
    return join


def _leave_group(group_id: str) -> Callable[[Record], Record]:
    def leave(port: Record) -> Record:
        assert isinstance(port, Port)
        return port.replace(port_group_ids=tuple(g for g in port.port_group_ids if g != group_id))
    return leave


def register_port_groups(router: APIRouter) -> None:
    add_crud(router, PORT_GROUPS)
    members = "/port_groups/{group_id}/ports"

    @router.get(members)
    async def list_members(request: Request, group_id: str) -> Response:
        ctx = context(request)
        media = negotiate(request.headers.get("accept"), PG_PORT_MEDIA, 1, collection=True)

        def work() -> list[Dto]:
            group = PORT_GROUPS.load(ctx, group_id)
            PORT_GROUPS.check_read(group, ctx)
            return [pg_port_dto(ctx, group.id, p) for p in group.port_ids]
        return json_response(await in_thread(work), media)

    @router.post(members)
    async def add_member(request: Request, group_id: str) -> Response:
        ctx = context(request)
        dto = await read_json(request, PG_PORT_MEDIA)

        def work() -> str:
            group = PORT_GROUPS.load(ctx, group_id)
            PORT_GROUPS.check_write(group, ctx)
            port = PORTS.load(ctx, body_id(dto, "portId"))
            PORTS.check_write(port, ctx)
            if group.id in port.port_group_ids:
                raise conflict(f"port {port.id} is already a member of port group {group.id}")
            ctx.store.multi([UpdateWith(Port, port.id, _join_group(group.id))])
            return str(pg_port_dto(ctx, group.id, port.id)["uri"])
        return created(await in_thread(work))

    @router.get(members + "/{port_id}")
    async def get_member(request: Request, group_id: str, port_id: str) -> Response:
        ctx = context(request)
        media = negotiate(request.headers.get("accept"), PG_PORT_MEDIA, 1, collection=False)

        def work() -> Dto:
            group = PORT_GROUPS.load(ctx, group_id)
            PORT_GROUPS.check_read(group, ctx)
            member = path_id(port_id, "port")
            if member not in group.port_ids:
                raise not_found(f"port {port_id} is not a member of port group {group.id}")
            return pg_port_dto(ctx, group.id, member)
        return json_response(await in_thread(work), media)

    @router.delete(members + "/{port_id}")
    async def remove_member(request: Request, group_id: str, port_id: str) -> Response:
        ctx = context(request)

        def work() -> None:
            group = PORT_GROUPS.load(ctx, group_id)
            PORT_GROUPS.check_write(group, ctx)
            member = path_id(port_id, "port")
            if member not in group.port_ids:
                raise not_found(f"port {port_id} is not a member of port group {group.id}")
            ctx.store.multi([UpdateWith(Port, member, _leave_group(group.id))])
        await in_thread(work)
        return no_content()

    @router.get("/ports/{port_id}/port_groups")
    async def port_memberships(request: Request, port_id: str) -> Response:
        ctx = context(request)
        media = negotiate(request.headers.get("accept"), PG_PORT_MEDIA, 1, collection=True)

        def work() -> list[Dto]:
            port = PORTS.load(ctx, port_id)
            PORTS.check_read(port, ctx)
            return [pg_port_dto(ctx, g, port.id) for g in port.port_group_ids]
        return json_response(await in_thread(work), media)


# --- IP address groups -------------------------------------------------------------------------------

class IpAddrGroupResource(Resource[IPAddrGroup]):
    cls = IPAddrGroup
    path = "ip_addr_groups"
    media = ("IpAddrGroup",)
    version = 1
    fields = (("name", "name"), ("tenantId", "tenant_id"))

    def dto_extra(self, obj: IPAddrGroup, ctx: Ctx) -> Dto:
        return {"addrs": f"{self.uri(ctx, obj.id)}/ip_addrs"}

    def dto_in(self, dto: Dto, data: dict[str, Any], old: IPAddrGroup | None, ctx: Ctx,
               parent_id: str | None) -> None:
        if old is not None:
            data["tenant_id"] = old.tenant_id   # a PUT renames the group, nothing else
        name = data.get("name")
        if name is None:
            raise bad_request("is required", "name")
        if not isinstance(name, str) or not 1 <= len(name) <= 255:
            raise bad_request("must be a string of 1 to 255 characters", "name")


IP_ADDR_GROUPS = IpAddrGroupResource()


def addr_dto(ctx: Ctx, group_id: str, addr: str) -> Dto:
    group_uri = IP_ADDR_GROUPS.uri(ctx, group_id)
    version = ipaddress.ip_address(addr).version
    return {"addr": addr, "version": version, "ipAddrGroupId": group_id, "ipAddrGroup": group_uri,
            "uri": f"{group_uri}/versions/{version}/ip_addrs/{quote(addr, safe='')}"}


def addr_in(dto: Any) -> str:
    """The canonical address of an IpAddrGroupAddr body; a 400 naming the bad member."""
    if not isinstance(dto, dict):
        raise bad_request("the request body must be a JSON object")
    raw, version = dto.get("addr"), dto.get("version")
    if raw is None:
        raise bad_request("is required", "addr")
    try:
        addr = ipaddress.ip_address(str(raw))
    except ValueError:
        raise bad_request(f"is not a valid IP address: {raw!r}", "addr") from None
    if version is not None and str(version) not in ("4", "6"):
        raise bad_request(f"must be 4 or 6, not {version!r}", "version")
    if version is not None and int(str(version)) != addr.version:
        raise bad_request(f"{addr} is not an IPv{version} address", "addr")
    return str(addr)


def _add_addr(addr: str) -> Callable[[Record], Record]:
    def add(group: Record) -> Record:
        assert isinstance(group, IPAddrGroup)
        if addr in group.addresses:
            raise ConflictError(f"{addr} is already in IP address group {group.id}")
        return group.replace(addresses=(*group.addresses, addr))
    return add


def _remove_addr(addr: str) -> Callable[[Record], Record]:
    def remove(group: Record) -> Record:
        assert isinstance(group, IPAddrGroup)
        return group.replace(addresses=tuple(a for a in group.addresses if a != addr))
    return remove


def path_addr(version: str, raw: str) -> str:
    """The canonical address named by `/versions/{version}/ip_addrs/{raw}`; 404 if it cannot exist."""
    try:
        addr = ipaddress.ip_address(raw)
    except ValueError:
        raise not_found(f"{raw} is not an IP address") from None
    if version not in ("4", "6") or int(version) != addr.version:
        raise not_found(f"{raw} is not an IPv{version} address")
    return str(addr)


def register_ip_addr_groups(router: APIRouter) -> None:
    add_crud(router, IP_ADDR_GROUPS)
    addrs = "/ip_addr_groups/{group_id}/ip_addrs"
    one = "/ip_addr_groups/{group_id}/versions/{version}/ip_addrs/{addr}"

    @router.get(addrs)
    async def list_addrs(request: Request, group_id: str) -> Response:
        ctx = context(request)
        media = negotiate(request.headers.get("accept"), ADDR_MEDIA, 1, collection=True)

        def work() -> list[Dto]:
            group = IP_ADDR_GROUPS.load(ctx, group_id)
            IP_ADDR_GROUPS.check_read(group, ctx)
            return [addr_dto(ctx, group.id, a) for a in group.addresses]
        return json_response(await in_thread(work), media)

    @router.post(addrs)
    async def add_addr(request: Request, group_id: str) -> Response:
        ctx = context(request)
        dto = await read_json(request, ADDR_MEDIA)

        def work() -> str:
            group = IP_ADDR_GROUPS.load(ctx, group_id)
            IP_ADDR_GROUPS.check_write(group, ctx)
            addr = addr_in(dto)
            if addr in group.addresses:
                raise conflict(f"{addr} is already in IP address group {group.id}")
            ctx.store.multi([UpdateWith(IPAddrGroup, group.id, _add_addr(addr))])
            return str(addr_dto(ctx, group.id, addr)["uri"])
        return created(await in_thread(work))

    @router.get(one)
    async def get_addr(request: Request, group_id: str, version: str, addr: str) -> Response:
        ctx = context(request)
        media = negotiate(request.headers.get("accept"), ADDR_MEDIA, 1, collection=False)

        def work() -> Dto:
            group = IP_ADDR_GROUPS.load(ctx, group_id)
            IP_ADDR_GROUPS.check_read(group, ctx)
            wanted = path_addr(version, addr)
            if wanted not in group.addresses:
                raise not_found(f"{wanted} is not in IP address group {group.id}")
            return addr_dto(ctx, group.id, wanted)
        return json_response(await in_thread(work), media)

    @router.delete(one)
    async def delete_addr(request: Request, group_id: str, version: str, addr: str) -> Response:
        ctx = context(request)

        def work() -> None:
            group = IP_ADDR_GROUPS.load(ctx, group_id)
            IP_ADDR_GROUPS.check_write(group, ctx)
            wanted = path_addr(version, addr)
            if wanted not in group.addresses:
                raise not_found(f"{wanted} is not in IP address group {group.id}")
            ctx.store.multi([UpdateWith(IPAddrGroup, group.id, _remove_addr(wanted))])
        await in_thread(work)
        return no_content()


def register(router: APIRouter) -> None:
    register_port_groups(router)
    register_ip_addr_groups(router)


__all__ = ["IP_ADDR_GROUPS", "PORT_GROUPS", "body_id", "path_id", "register"]
