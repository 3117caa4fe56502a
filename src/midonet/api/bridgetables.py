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

The entries are `Members` (`api.members`) that write their state table themselves: no store transaction.

May import: `midonet.topology`, `midonet.store`, `api.resource`, `api.members`, `api.errors`, `api.devices`,
`api.ports`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter

from midonet.api.devices import BRIDGES
from midonet.api.errors import bad_request, not_found
from midonet.api.members import Members, Params, add_members, body_id, mac_uri
from midonet.api.ports import PORTS
from midonet.api.resource import Ctx, Dto, Resource
from midonet.store.base import Op, StateTable
from midonet.topology import validate as v
from midonet.topology.devices import Bridge, Port
from midonet.topology.errors import TopologyError
from midonet.topology.ids import canonical_id
from midonet.topology.record import Record

MAC_MEDIA = ("MacPort",)


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


# --- the MAC table -------------------------------------------------------------------------------------

def bridge_vlans(ctx: Ctx, bridge: Bridge) -> list[int]:
    return sorted({0} | {p.vlan_id for p in ctx.store.list(Port, bridge.port_ids) if p.vlan_id})


def mac_table(ctx: Ctx, bridge_id: str, vlan: int) -> StateTable:
    return ctx.store.state_table(Bridge, bridge_id, f"mac_table:{vlan}")


def mac_port_dto(ctx: Ctx, bridge_id: str, vlan: int, mac: str, port_id: str) -> Dto:
    prefix = f"{BRIDGES.uri(ctx, bridge_id)}" + (f"/vlans/{vlan}" if vlan else "")
    return {"macAddr": mac, "portId": port_id, "vlanId": vlan,
            "uri": f"{prefix}/mac_table/{mac_uri(mac)}_{port_id}"}


def path_vlan(ctx: Ctx, bridge: Bridge, raw: str) -> int:
    """The VLAN a URI names; 404 when the bridge has no such VLAN."""
    if not raw.isdigit() or int(raw) not in bridge_vlans(ctx, bridge):
        raise not_found(f"bridge {bridge.id} has no VLAN {raw}")
    return int(raw)


def mac_entry_in(ctx: Ctx, bridge: Bridge, dto: Any, url_vlan: int | None) -> tuple[int, str, str]:
    """(vlan, mac, port id) of a MacPort body; 400 naming the bad member, 404 for an unknown port."""
    if not isinstance(dto, dict):
        raise bad_request("the request body must be a JSON object")
    mac = mac_in(dto.get("macAddr"), "macAddr")
    port_id = body_id(dto, "portId")
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


@dataclass(frozen=True, slots=True)
class BridgeVlan:
    """A bridge and the VLAN its URI names (None: `/bridges/{id}/mac_table`, every VLAN, or VLAN 0)."""

    bridge: Bridge
    vlan: int | None


MacEntry = tuple[int, str, str]   # (vlan, mac, port id)


class MacTable(Members[BridgeVlan, tuple[str, str], MacEntry]):
    """A bridge's MAC table entries, by `{mac}_{portId}`, at `<prefix>/mac_table` (with or without a VLAN)."""

    parent = BRIDGES
    media = MAC_MEDIA
    version = 2

    def __init__(self, prefix: str) -> None:
        self.collection = f"{prefix}/mac_table"
        self.item = f"{self.collection}/{{mac_port}}"

    def owner(self, ctx: Ctx, params: Params, write: bool) -> BridgeVlan:
        bridge = BRIDGES.load_checked(ctx, params["parent_id"], write)
        raw = params.get("vlan")
        return BridgeVlan(bridge, None if raw is None else path_vlan(ctx, bridge, raw))

    def key(self, params: Params) -> tuple[str, str]:
        return split_pair(params["mac_port"], _mac, canonical_id)

    def members(self, parent: BridgeVlan, ctx: Ctx) -> Sequence[MacEntry]:
        bridge = parent.bridge
        vlans = bridge_vlans(ctx, bridge) if parent.vlan is None else [parent.vlan]
        return [(n, mac, port) for n in vlans for mac, port in sorted(mac_table(ctx, bridge.id, n).snapshot().items())]

    def dto(self, parent: BridgeVlan, member: MacEntry, ctx: Ctx) -> Dto:
        return mac_port_dto(ctx, parent.bridge.id, *member)

    def find(self, parent: BridgeVlan, key: tuple[str, str], ctx: Ctx) -> MacEntry | None:
        n, (mac, port_id) = parent.vlan or 0, key
        return (n, mac, port_id) if mac_table(ctx, parent.bridge.id, n).get(mac) == port_id else None

    def missing(self, parent: BridgeVlan, key: tuple[str, str]) -> str:
        return f"bridge {parent.bridge.id} has no entry {key[0]} -> {key[1]} on VLAN {parent.vlan or 0}"

    def add(self, parent: BridgeVlan, body: Any, ctx: Ctx) -> tuple[list[Op], str]:
        n, mac, port_id = mac_entry_in(ctx, parent.bridge, body, parent.vlan)
        mac_table(ctx, parent.bridge.id, n).put(mac, port_id, persistent=True)
        return [], str(mac_port_dto(ctx, parent.bridge.id, n, mac, port_id)["uri"])

    def remove(self, parent: BridgeVlan, member: MacEntry, ctx: Ctx) -> list[Op]:
        n, mac, port_id = member
        mac_table(ctx, parent.bridge.id, n).remove(mac, port_id)
        return []


MAC_TABLES = (MacTable("/bridges/{parent_id}"), MacTable("/bridges/{parent_id}/vlans/{vlan}"))


# --- IP -> MAC tables: a bridge's ARP table, a router port's peering table ------------------------------

class IpMacTable(Members[Record, tuple[str, str], tuple[str, str]]):
    """An IPv4 -> MAC state table `name` of a `parent` object, served at `/<parent.path>/{id}/<segment>`, its
    entries by `{ip}_{mac}`."""

    def __init__(self, parent: Resource[Any], cls: type[Record], name: str, segment: str,
                 media: tuple[str, ...], version: int) -> None:
        self.parent, self.cls, self.name, self.segment = parent, cls, name, segment
        self.media, self.version = media, version
        self.collection = f"/{parent.path}/{{parent_id}}/{segment}"
        self.item = f"{self.collection}/{{pair}}"

    def owner(self, ctx: Ctx, params: Params, write: bool) -> Record:
        obj = super().owner(ctx, params, write)
        if isinstance(obj, Port) and obj.router_id is None:
            raise not_found(f"port {obj.id} is not a router port: it has no peering table")
        return obj

    def table(self, ctx: Ctx, owner_id: str) -> StateTable:
        return ctx.store.state_table(self.cls, owner_id, self.name)

    def key(self, params: Params) -> tuple[str, str]:
        return split_pair(params["pair"], _ip4, _mac)

    def members(self, parent: Record, ctx: Ctx) -> Sequence[tuple[str, str]]:
        return sorted(self.table(ctx, parent.id).snapshot().items())

    def dto(self, parent: Record, member: tuple[str, str], ctx: Ctx) -> Dto:
        ip, mac = member
        return {"ip": ip, "mac": mac, "uri": f"{self.parent.uri(ctx, parent.id)}/{self.segment}/{ip}_{mac_uri(mac)}"}

    def find(self, parent: Record, key: tuple[str, str], ctx: Ctx) -> tuple[str, str] | None:
        ip, mac = key
        return key if self.table(ctx, parent.id).get(ip) == mac else None

    def missing(self, parent: Record, key: tuple[str, str]) -> str:
        return f"{self.segment} of {parent.id} has no entry {key[0]} -> {key[1]}"

    def add(self, parent: Record, body: Any, ctx: Ctx) -> tuple[list[Op], str]:
        if not isinstance(body, dict):
            raise bad_request("the request body must be a JSON object")
        ip, mac = ip4_in(body.get("ip"), "ip"), mac_in(body.get("mac"), "mac")
        self.table(ctx, parent.id).put(ip, mac, persistent=True)
        return [], str(self.dto(parent, (ip, mac), ctx)["uri"])

    def remove(self, parent: Record, member: tuple[str, str], ctx: Ctx) -> list[Op]:
        self.table(ctx, parent.id).remove(*member)
        return []


ARP_TABLE = IpMacTable(BRIDGES, Bridge, "ip4_mac_table", "arp_table", ("IP4Mac",), 1)
PEERING_TABLE = IpMacTable(PORTS, Port, "peering_table", "peering_table", ("MacIp",), 1)


def register(router: APIRouter) -> None:
    for spec in (*MAC_TABLES, ARP_TABLE, PEERING_TABLE):
        add_members(router, spec)


__all__ = ["ARP_TABLE", "MAC_TABLES", "PEERING_TABLE", "bridge_vlans", "mac_table", "register"]
