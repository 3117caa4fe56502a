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

May import: `midonet.topology`, `midonet.store`, `api.resource`, `api.members`, `api.errors`, `api.ports`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter

from midonet.api.errors import bad_request, conflict, not_found
from midonet.api.members import Members, Params, add_members, body_id, path_id
from midonet.api.ports import PORTS
from midonet.api.resource import Ctx, Dto, Resource, add_crud
from midonet.store.base import Op, UpdateWith
from midonet.topology.devices import Port
from midonet.topology.errors import ConflictError
from midonet.topology.groups import IPAddrGroup, PortGroup
from midonet.topology.record import Record

PG_PORT_MEDIA = ("PortGroupPort",)
ADDR_MEDIA = ("IpAddrGroupAddr",)


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


class PortGroupPorts(Members[PortGroup, str, str]):
    """The ports of a port group, by port id."""

    parent = PORT_GROUPS
    collection = "/port_groups/{parent_id}/ports"
    item = "/port_groups/{parent_id}/ports/{port_id}"
    media = PG_PORT_MEDIA

    def key(self, params: Params) -> str:
        return path_id(params["port_id"], "port")

    def members(self, parent: PortGroup, ctx: Ctx) -> Sequence[str]:
        return parent.port_ids

    def dto(self, parent: PortGroup, member: str, ctx: Ctx) -> Dto:
        return pg_port_dto(ctx, parent.id, member)

    def find(self, parent: PortGroup, key: str, ctx: Ctx) -> str | None:
        return key if key in parent.port_ids else None

    def missing(self, parent: PortGroup, key: str) -> str:
        return f"port {key} is not a member of port group {parent.id}"

    def add(self, parent: PortGroup, body: Any, ctx: Ctx) -> tuple[list[Op], str]:
        port = PORTS.load(ctx, body_id(body, "portId"))
        PORTS.check_write(port, ctx)
        if parent.id in port.port_group_ids:
            raise conflict(f"port {port.id} is already a member of port group {parent.id}")
        return [UpdateWith(Port, port.id, _join_group(parent.id))], str(pg_port_dto(ctx, parent.id, port.id)["uri"])

    def remove(self, parent: PortGroup, member: str, ctx: Ctx) -> list[Op]:
        return [UpdateWith(Port, member, _leave_group(parent.id))]


class PortMemberships(Members[Port, str, str]):
    """A port's port groups, as PortGroupPort (listed only)."""

    parent = PORTS
    collection = "/ports/{parent_id}/port_groups"
    media = PG_PORT_MEDIA

    def members(self, parent: Port, ctx: Ctx) -> Sequence[str]:
        return parent.port_group_ids

    def dto(self, parent: Port, member: str, ctx: Ctx) -> Dto:
        return pg_port_dto(ctx, member, parent.id)


def register_port_groups(router: APIRouter) -> None:
    add_crud(router, PORT_GROUPS)
    add_members(router, PortGroupPorts())
    add_members(router, PortMemberships(), create=False, get=False, delete=False)


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


class IpAddrGroupAddrs(Members[IPAddrGroup, str, str]):
    """The addresses of an IP address group, by version and address."""

    parent = IP_ADDR_GROUPS
    collection = "/ip_addr_groups/{parent_id}/ip_addrs"
    item = "/ip_addr_groups/{parent_id}/versions/{version}/ip_addrs/{addr}"
    media = ADDR_MEDIA

    def key(self, params: Params) -> str:
        return path_addr(params["version"], params["addr"])

    def members(self, parent: IPAddrGroup, ctx: Ctx) -> Sequence[str]:
        return parent.addresses

    def dto(self, parent: IPAddrGroup, member: str, ctx: Ctx) -> Dto:
        return addr_dto(ctx, parent.id, member)

    def find(self, parent: IPAddrGroup, key: str, ctx: Ctx) -> str | None:
        return key if key in parent.addresses else None

    def missing(self, parent: IPAddrGroup, key: str) -> str:
        return f"{key} is not in IP address group {parent.id}"

    def add(self, parent: IPAddrGroup, body: Any, ctx: Ctx) -> tuple[list[Op], str]:
        addr = addr_in(body)
        if addr in parent.addresses:
            raise conflict(f"{addr} is already in IP address group {parent.id}")
        return [UpdateWith(IPAddrGroup, parent.id, _add_addr(addr))], str(addr_dto(ctx, parent.id, addr)["uri"])

    def remove(self, parent: IPAddrGroup, member: str, ctx: Ctx) -> list[Op]:
        return [UpdateWith(IPAddrGroup, parent.id, _remove_addr(member))]


def register_ip_addr_groups(router: APIRouter) -> None:
    add_crud(router, IP_ADDR_GROUPS)
    add_members(router, IpAddrGroupAddrs())


def register(router: APIRouter) -> None:
    register_port_groups(router)
    register_ip_addr_groups(router)


__all__ = ["IP_ADDR_GROUPS", "PORT_GROUPS", "register"]
