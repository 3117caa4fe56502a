"""A bridge's MAC and ARP tables and a router port's peering table (spec 3.3, 5.3, 7.3: MacPort-v2, IP4Mac-v1,
MacIp-v1).

    /bridges/{id}/mac_table                          GET (every VLAN), POST {macAddr, portId, vlanId}
    /bridges/{id}/vlans/{vlan}/mac_table             GET, POST {macAddr, portId}
    /bridges/{id}[/vlans/{vlan}]/mac_table/{mac}_{portId}     GET, DELETE
    /bridges/{id}/arp_table                          GET, POST {ip, mac}
    /bridges/{id}/arp_table/{ip}_{mac}               GET, DELETE
    /ports/{id}/peering_table                        GET, POST {ip, mac}
    /ports/{id}/peering_table/{ip}_{mac}             GET, DELETE
    (':' in a MAC is written '-' in URIs; a MAC entry without /vlans/{vlan} is on VLAN 0, untagged)

These are store state tables, not records; agents write learned entries into the same tables (owned by their
session, so they vanish with it), the API writes `persistent=True` entries (they stay until deleted):

    (Bridge, id, "mac_table:<vlan>")   key: MAC ("aa:bb:cc:dd:ee:ff")   value: port id
    (Bridge, id, "ip4_mac_table")      key: IPv4 address              value: MAC
    (Port, id, "peering_table")        key: IPv4 address              value: MAC

One value per key: a POST for a key that has another value replaces it (a static entry overrides a learned
one), a POST of an existing entry changes nothing. A MAC entry's port must be a port of that bridge and, if
the port is on a VLAN, on the entry's VLAN (400). A bridge's VLANs are 0 and those of its ports: the list of
every VLAN reads those tables, and an entry for another VLAN is a 400 (the store cannot enumerate tables).
Only router ports have a peering table. Tables follow the tenant of their bridge or port.

May import: `midonet.topology`, `midonet.store`, `api.resource`, `api.errors`, `api.media`, `api.devices`,
`api.ports`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request, Response

from midonet.api.devices import BRIDGES
from midonet.api.errors import bad_request, not_found
from midonet.api.media import negotiate
from midonet.api.ports import PORTS
from midonet.api.resource import (
    Ctx,
    Dto,
    Resource,
    context,
    created,
    in_thread,
    json_response,
    no_content,
    read_json,
)
from midonet.store.base import StateTable
from midonet.topology import validate as v
from midonet.topology.devices import Bridge, Port
from midonet.topology.errors import TopologyError
from midonet.topology.ids import canonical_id
from midonet.topology.record import Record

MAC_MEDIA = ("MacPort",)


def mac_uri(mac: str) -> str:
    return mac.replace(":", "-")


def mac_in(value: Any, prop: str) -> str:
    if value is None:
        raise bad_request("is required", prop)
    try:
        mac = v.mac(prop, value)
    except TopologyError:
        raise bad_request(f"is not a valid MAC address: {value!r}", prop) from None
    assert mac is not None
    return mac


def ip4_in(value: Any, prop: str) -> str:
    if value is None:
        raise bad_request("is required", prop)
    try:
        return str(ipaddress.IPv4Address(str(value)))
    except ValueError:
        raise bad_request(f"is not a valid IPv4 address: {value!r}", prop) from None


def split_pair(raw: str, parse_key: Callable[[str], str], parse_value: Callable[[str], str]) -> tuple[str, str]:
    """(key, value) from a `{key}_{value}` path segment; 404 when it cannot name an entry."""
    key, sep, value = raw.partition("_")
    try:
        if not sep:
            raise ValueError(raw)
        return parse_key(key), parse_value(value)
    except (ValueError, TopologyError):
        raise not_found(f"no such entry: {raw}") from None


def _mac(raw: str) -> str:
    mac = v.mac("mac", raw)
    assert mac is not None
    return mac


def _ip4(raw: str) -> str:
    return str(ipaddress.IPv4Address(raw))


def owner(ctx: Ctx, res: Resource[Any], owner_id: str, write: bool) -> Any:
    obj = res.load(ctx, owner_id)
    (res.check_write if write else res.check_read)(obj, ctx)
    return obj


# --- the MAC table -------------------------------------------------------------------------------------

def bridge_vlans(ctx: Ctx, bridge: Bridge) -> list[int]:
    return sorted({0} | {p.vlan_id for p in ctx.store.list(Port, bridge.port_ids) if p.vlan_id})


def mac_table(ctx: Ctx, bridge_id: str, vlan: int) -> StateTable:
    return ctx.store.state_table(Bridge, bridge_id, f"mac_table:{vlan}")


def mac_port_dto(ctx: Ctx, bridge_id: str, vlan: int, mac: str, port_id: str) -> Dto:
    prefix = f"{BRIDGES.uri(ctx, bridge_id)}" + (f"/vlans/{vlan}" if vlan else "")
    return {"macAddr": mac, "portId": port_id, "vlanId": vlan,
            "uri": f"{prefix}/mac_table/{mac_uri(mac)}_{port_id}"}


def path_vlan(ctx: Ctx, bridge: Bridge, raw: str | None) -> int:
    """The VLAN a URI names (None: untagged); 404 when the bridge has no such VLAN."""
    if raw is None:
        return 0
    if not raw.isdigit() or int(raw) not in bridge_vlans(ctx, bridge):
        raise not_found(f"bridge {bridge.id} has no VLAN {raw}")
    return int(raw)


def mac_entry_in(ctx: Ctx, bridge: Bridge, dto: Any, url_vlan: int | None) -> tuple[int, str, str]:
    """(vlan, mac, port id) of a MacPort body; 400 naming the bad member, 404 for an unknown port."""
    if not isinstance(dto, dict):
        raise bad_request("the request body must be a JSON object")
    mac = mac_in(dto.get("macAddr"), "macAddr")
    raw_port = dto.get("portId")
    if raw_port is None:
        raise bad_request("is required", "portId")
    try:
        port_id = canonical_id(str(raw_port))
    except ValueError:
        raise bad_request(f"is not a valid UUID: {raw_port!r}", "portId") from None
    vlan = url_vlan
    if vlan is None:
        raw_vlan = dto.get("vlanId")
        vlan = 0 if raw_vlan is None else raw_vlan
        if not isinstance(vlan, int) or isinstance(vlan, bool) or not 0 <= vlan <= 4095:
            raise bad_request(f"must be a VLAN id between 0 and 4095, not {raw_vlan!r}", "vlanId")
        if vlan not in bridge_vlans(ctx, bridge):
            raise bad_request(f"bridge {bridge.id} has no port on VLAN {vlan}", "vlanId")
    port = PORTS.load(ctx, port_id)
    if port.network_id != bridge.id:
        raise bad_request(f"port {port.id} is not a port of bridge {bridge.id}", "portId")
    if port.vlan_id and port.vlan_id != vlan:
        raise bad_request(f"port {port.id} is on VLAN {port.vlan_id}, not {vlan}", "vlanId")
    return vlan, mac, port.id


def register_mac_table(router: APIRouter) -> None:
    for prefix in ("/bridges/{bridge_id}", "/bridges/{bridge_id}/vlans/{vlan}"):
        _mac_routes(router, prefix)


def _mac_routes(router: APIRouter, prefix: str) -> None:
    collection = f"{prefix}/mac_table"
    item = f"{collection}/{{mac_port}}"

    # The handlers read the path parameters themselves: `vlan` is absent from half of the routes, and a
    # parameter FastAPI cannot find in the path would be taken from the query string.
    async def list_entries(request: Request) -> Response:
        ctx = context(request)
        bridge_id, vlan = request.path_params["bridge_id"], request.path_params.get("vlan")
        media = negotiate(request.headers.get("accept"), MAC_MEDIA, 2, collection=True)

        def work() -> list[Dto]:
            bridge = owner(ctx, BRIDGES, bridge_id, False)
            vlans = bridge_vlans(ctx, bridge) if vlan is None else [path_vlan(ctx, bridge, vlan)]
            return [mac_port_dto(ctx, bridge.id, n, mac, port)
                    for n in vlans for mac, port in sorted(mac_table(ctx, bridge.id, n).snapshot().items())]
        return json_response(await in_thread(work), media)

    async def add_entry(request: Request) -> Response:
        ctx = context(request)
        bridge_id, vlan = request.path_params["bridge_id"], request.path_params.get("vlan")
        dto = await read_json(request, MAC_MEDIA)

        def work() -> str:
            bridge = owner(ctx, BRIDGES, bridge_id, True)
            url_vlan = None if vlan is None else path_vlan(ctx, bridge, vlan)
            n, mac, port_id = mac_entry_in(ctx, bridge, dto, url_vlan)
            mac_table(ctx, bridge.id, n).put(mac, port_id, persistent=True)
            return str(mac_port_dto(ctx, bridge.id, n, mac, port_id)["uri"])
        return created(await in_thread(work))

    def find(ctx: Ctx, bridge_id: str, vlan: str | None, mac_port: str, write: bool) -> tuple[StateTable, str, str]:
        bridge = owner(ctx, BRIDGES, bridge_id, write)
        n = path_vlan(ctx, bridge, vlan)
        mac, port_id = split_pair(mac_port, _mac, canonical_id)
        table = mac_table(ctx, bridge.id, n)
        if table.get(mac) != port_id:
            raise not_found(f"bridge {bridge.id} has no entry {mac} -> {port_id} on VLAN {n}")
        return table, mac, port_id

    async def get_entry(request: Request) -> Response:
        ctx = context(request)
        bridge_id, vlan = request.path_params["bridge_id"], request.path_params.get("vlan")
        mac_port = request.path_params["mac_port"]
        media = negotiate(request.headers.get("accept"), MAC_MEDIA, 2, collection=False)

        def work() -> Dto:
            _, mac, port_id = find(ctx, bridge_id, vlan, mac_port, False)
            return mac_port_dto(ctx, canonical_id(bridge_id), int(vlan or 0), mac, port_id)
        return json_response(await in_thread(work), media)

    async def delete_entry(request: Request) -> Response:
        ctx = context(request)
        bridge_id, vlan = request.path_params["bridge_id"], request.path_params.get("vlan")
        mac_port = request.path_params["mac_port"]

        def work() -> None:
            table, mac, port_id = find(ctx, bridge_id, vlan, mac_port, True)
            table.remove(mac, port_id)
        await in_thread(work)
        return no_content()

    router.add_api_route(collection, list_entries, methods=["GET"], name=f"list {collection}")
    router.add_api_route(collection, add_entry, methods=["POST"], name=f"create {collection}")
    router.add_api_route(item, get_entry, methods=["GET"], name=f"get {item}")
    router.add_api_route(item, delete_entry, methods=["DELETE"], name=f"delete {item}")


# --- IP -> MAC tables: a bridge's ARP table, a router port's peering table ------------------------------

@dataclass(frozen=True)
class IpMacTable:
    """An IPv4 -> MAC state table of an object served at `/<owner.path>/{id}/<segment>`."""

    owner: Resource[Any]
    cls: type[Record]
    name: str          # the state table's name
    segment: str       # the URI segment
    media: tuple[str, ...]
    version: int

    def check_owner(self, obj: Any) -> None:
        if isinstance(obj, Port) and obj.router_id is None:
            raise not_found(f"port {obj.id} is not a router port: it has no peering table")

    def table(self, ctx: Ctx, owner_id: str) -> StateTable:
        return ctx.store.state_table(self.cls, owner_id, self.name)

    def dto(self, ctx: Ctx, owner_id: str, ip: str, mac: str) -> Dto:
        return {"ip": ip, "mac": mac,
                "uri": f"{self.owner.uri(ctx, owner_id)}/{self.segment}/{ip}_{mac_uri(mac)}"}


ARP_TABLE = IpMacTable(BRIDGES, Bridge, "ip4_mac_table", "arp_table", ("IP4Mac",), 1)
PEERING_TABLE = IpMacTable(PORTS, Port, "peering_table", "peering_table", ("MacIp",), 1)


def register_ip_mac_table(router: APIRouter, t: IpMacTable) -> None:
    collection = f"/{t.owner.path}/{{owner_id}}/{t.segment}"
    item = f"{collection}/{{pair}}"

    def load(ctx: Ctx, owner_id: str, write: bool) -> Any:
        obj = owner(ctx, t.owner, owner_id, write)
        t.check_owner(obj)
        return obj

    async def list_entries(request: Request, owner_id: str) -> Response:
        ctx = context(request)
        media = negotiate(request.headers.get("accept"), t.media, t.version, collection=True)

        def work() -> list[Dto]:
            obj = load(ctx, owner_id, False)
            return [t.dto(ctx, obj.id, ip, mac) for ip, mac in sorted(t.table(ctx, obj.id).snapshot().items())]
        return json_response(await in_thread(work), media)

    async def add_entry(request: Request, owner_id: str) -> Response:
        ctx = context(request)
        dto = await read_json(request, t.media)

        def work() -> str:
            obj = load(ctx, owner_id, True)
            if not isinstance(dto, dict):
                raise bad_request("the request body must be a JSON object")
            ip, mac = ip4_in(dto.get("ip"), "ip"), mac_in(dto.get("mac"), "mac")
            t.table(ctx, obj.id).put(ip, mac, persistent=True)
            return str(t.dto(ctx, obj.id, ip, mac)["uri"])
        return created(await in_thread(work))

    def find(ctx: Ctx, owner_id: str, pair: str, write: bool) -> tuple[Any, StateTable, str, str]:
        obj = load(ctx, owner_id, write)
        ip, mac = split_pair(pair, _ip4, _mac)
        table = t.table(ctx, obj.id)
        if table.get(ip) != mac:
            raise not_found(f"{t.segment} of {obj.id} has no entry {ip} -> {mac}")
        return obj, table, ip, mac

    async def get_entry(request: Request, owner_id: str, pair: str) -> Response:
        ctx = context(request)
        media = negotiate(request.headers.get("accept"), t.media, t.version, collection=False)

        def work() -> Dto:
            obj, _, ip, mac = find(ctx, owner_id, pair, False)
            return t.dto(ctx, obj.id, ip, mac)
        return json_response(await in_thread(work), media)

    async def delete_entry(request: Request, owner_id: str, pair: str) -> Response:
        ctx = context(request)

        def work() -> None:
            _, table, ip, mac = find(ctx, owner_id, pair, True)
            table.remove(ip, mac)
        await in_thread(work)
        return no_content()

    router.add_api_route(collection, list_entries, methods=["GET"], name=f"list {collection}")
    router.add_api_route(collection, add_entry, methods=["POST"], name=f"create {collection}")
    router.add_api_route(item, get_entry, methods=["GET"], name=f"get {item}")
    router.add_api_route(item, delete_entry, methods=["DELETE"], name=f"delete {item}")


def register(router: APIRouter) -> None:
    register_mac_table(router)
    register_ip_mac_table(router, ARP_TABLE)
    register_ip_mac_table(router, PEERING_TABLE)


__all__ = ["ARP_TABLE", "PEERING_TABLE", "bridge_vlans", "mac_table", "register"]
