"""Hosts, their interfaces, and port bindings (spec 1.4, 1.5, 7.3: Host-v3, Interface-v1, HostInterfacePort-v1).

    /hosts                          GET; POST {id, name} (admin extension: pre-register a host, 409 if it exists)
    /hosts/{id}                     GET, PUT (the weights only), DELETE (403 while alive or with ports bound)
    /hosts/{id}/interfaces[/{name}] GET, from the host's `interfaces` state key
    /hosts/{id}/ports               GET, POST {portId, interfaceName}: bind an exterior port to an interface
    /hosts/{id}/ports/{portId}      GET, DELETE (unbind)

Hosts are infrastructure: only admins read or write them (tenants get 403, as the original's
`@RolesAllowed(ADMIN)`).

State the agent writes on its Host (store state keys, owned by the agent's session, so they vanish with it):

    alive        any value: present while the agent runs. REST `alive` is whether the key exists.
    interfaces   a JSON list, one object per interface of the host:
                 {"name": "eth0", "mac": "52:54:00:12:34:56", "mtu": 1500,
                  "status": 3,                  bit 0 = up, bit 1 = has link (the original's encoding)
                  "type": "Physical",           Physical | Virtual | Tunnel | Unknown
                  "addresses": ["10.0.0.5", "fe80::5054:ff:fe12:3456"],
                  "endpoint": "PHYSICAL",       DATAPATH | PHYSICAL | VM | GRE | CAPWAP | LOCALHOST | TUNTAP | UNKNOWN
                  "portType": null}             NetDev | Internal | Gre | VXLan | Gre64 | Lisp | null
                 Missing members read as null (empty list for addresses). A malformed value reads as no
                 interfaces. REST `addresses` of the host is the union of its interfaces' addresses.

A binding sets `Port.host_id` and `Port.interface_name`; the store's binding keeps `Host.port_ids`.
Unbinding clears both and records the host in `Port.previous_host_id` (the last host the port was on,
where its flow state lives, spec 1.5 and 4.5); binding again leaves it, so a port that moves from host A to
host B is bound on B with previous host A. Refused: an interior (linked) port (409), a port bound elsewhere
or to another interface (409, unless it is exactly the same binding: then nothing changes), an interface of
this host already bound to another port (409), an unknown host or port (404).

May import: `midonet.topology`, `midonet.store`, `api.resource`, `api.members`, `api.errors`, `api.ports`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from fastapi import APIRouter

from midonet.api.errors import bad_request, conflict, forbidden
from midonet.api.members import Members, Params, add_members, body_id, path_id
from midonet.api.ports import PORTS
from midonet.api.resource import Ctx, Dto, Resource, add_crud, admin_list
from midonet.store.base import Delete, Op, UpdateWith
from midonet.topology.devices import Port
from midonet.topology.errors import ConflictError, NotFoundError
from midonet.topology.hosts import Host
from midonet.topology.record import Record

BINDING_MEDIA = ("HostInterfacePort",)
INTERFACE_MEDIA = ("Interface", "HostInterfacePort")   # the client GETs one interface with the latter
INTERFACE_MEMBERS = ("name", "mac", "mtu", "status", "type", "addresses", "endpoint", "portType")


def host_alive(ctx: Ctx, host_id: str) -> bool:
    return ctx.store.get_state(Host, host_id, "alive") is not None


def host_interfaces(ctx: Ctx, host_id: str) -> list[dict[str, Any]]:
    """The host's interfaces as the agent published them (see the module docstring); [] if none."""
    state = ctx.store.get_state(Host, host_id, "interfaces")
    if state is None:
        return []
    try:
        raw = json.loads(state.value)
    except ValueError:
        return []
    if not isinstance(raw, list):
        return []
    out = []
    for item in raw:
        if isinstance(item, dict) and isinstance(item.get("name"), str):
            iface = {k: item.get(k) for k in INTERFACE_MEMBERS}
            addrs = iface["addresses"]
            iface["addresses"] = [a for a in addrs if isinstance(a, str)] if isinstance(addrs, list) else []
            out.append(iface)
    return out


def interface_dto(ctx: Ctx, host_id: str, iface: dict[str, Any]) -> Dto:
    return {**iface, "hostId": host_id, "uri": f"{ctx.base}/hosts/{host_id}/interfaces/{iface['name']}"}


def _int_in(dto: Dto, prop: str, low: int, high: int) -> int | None:
    value = dto.get(prop)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise bad_request(f"must be an integer, not {value!r}", prop)
    if not low <= value <= high:
        raise bad_request(f"must be between {low} and {high}, not {value}", prop)
    return value


class HostResource(Resource[Host]):
    cls = Host
    path = "hosts"
    media = ("Host",)
    version = 3
    admin_only = True
    admin_only_read = True
    fields = (("name", "name"), ("floodingProxyWeight", "flooding_proxy_weight"),
              ("containerWeight", "container_weight"), ("containerLimit", "container_limit"),
              ("enforceContainerLimit", "enforce_container_limit"))

    def dto_extra(self, obj: Host, ctx: Ctx) -> Dto:
        u = self.uri(ctx, obj.id)
        interfaces = [interface_dto(ctx, obj.id, i) for i in host_interfaces(ctx, obj.id)]
        addresses = list(dict.fromkeys(a for i in interfaces for a in i["addresses"]))
        return {"alive": host_alive(ctx, obj.id), "addresses": addresses, "hostInterfaces": interfaces,
                "interfaces": f"{u}/interfaces", "ports": f"{u}/ports"}

    def dto_in(self, dto: Dto, data: dict[str, Any], old: Host | None, ctx: Ctx, parent_id: str | None) -> None:
        if old is not None:
            # Only the weights change (the original refuses a PUT without the flooding proxy weight).
            data["name"] = old.name
            if dto.get("floodingProxyWeight") is None:
                raise bad_request("is required", "floodingProxyWeight")
        _int_in(dto, "floodingProxyWeight", 0, 65535)
        _int_in(dto, "containerWeight", 0, (1 << 31) - 1)
        _int_in(dto, "containerLimit", -1, (1 << 31) - 1)
        defaults = {"flooding_proxy_weight": 1, "container_weight": 1, "container_limit": -1,
                    "enforce_container_limit": False}
        for attr, default in defaults.items():
            if data.get(attr) is None:
                data[attr] = getattr(old, attr) if old is not None else default

    def delete_ops(self, obj: Host, ctx: Ctx) -> list[Op]:
        if host_alive(ctx, obj.id):
            raise forbidden(f"host {obj.id} is alive: stop its agent before deleting it")
        if obj.port_ids:
            raise forbidden(f"host {obj.id} has {len(obj.port_ids)} port(s) bound: unbind them first")
        return [Delete(Host, obj.id)]


HOSTS = HostResource()


def binding_dto(ctx: Ctx, port: Port) -> Dto:
    host_uri = HOSTS.uri(ctx, port.host_id or "")
    return {"hostId": port.host_id, "portId": port.id, "interfaceName": port.interface_name,
            "uri": f"{host_uri}/ports/{port.id}", "host": host_uri, "port": PORTS.uri(ctx, port.id)}


def _check_bindable(port: Port) -> None:
    if port.peer_id is not None:
        raise ConflictError(f"port {port.id} is an interior port (linked to port {port.peer_id}): "
                            "it cannot be bound")
    if port.host_id is not None or port.interface_name is not None:
        raise ConflictError(f"port {port.id} is already bound to interface {port.interface_name} "
                            f"of host {port.host_id}: unbind it first")


def _bind(host_id: str, interface: str) -> Callable[[Record], Record]:
    def bind(port: Record) -> Record:
        assert isinstance(port, Port)
        if port.host_id == host_id and port.interface_name == interface:
            return port
        _check_bindable(port)
        return port.replace(host_id=host_id, interface_name=interface)
    return bind


def bind_ops(ctx: Ctx, host: Host, port: Port, interface: str) -> list[Op]:
    """The ops binding `port` to `interface` of `host` ([] when that is already the binding)."""
    if port.host_id == host.id and port.interface_name == interface:
        return []
    _check_bindable(port)
    for other in ctx.store.list(Port, host.port_ids):
        if other.id != port.id and other.interface_name == interface:
            raise conflict(f"interface {interface} of host {host.id} is already bound to port {other.id}")
    return [UpdateWith(Port, port.id, _bind(host.id, interface))]


def _unbind(host_id: str) -> Callable[[Record], Record]:
    def unbind(port: Record) -> Record:
        assert isinstance(port, Port)
        if port.host_id != host_id:
            raise NotFoundError("Port", port.id, f"port {port.id} is not bound to host {host_id}")
        return port.replace(host_id=None, interface_name=None, previous_host_id=host_id)
    return unbind


class HostInterfaces(Members[Host, str, dict[str, Any]]):
    """The interfaces a host's agent published, by name (read only)."""

    parent = HOSTS
    collection = "/hosts/{parent_id}/interfaces"
    item = "/hosts/{parent_id}/interfaces/{name}"
    media = INTERFACE_MEDIA

    def key(self, params: Params) -> str:
        return params["name"]

    def members(self, parent: Host, ctx: Ctx) -> Sequence[dict[str, Any]]:
        return host_interfaces(ctx, parent.id)

    def dto(self, parent: Host, member: dict[str, Any], ctx: Ctx) -> Dto:
        return interface_dto(ctx, parent.id, member)

    def find(self, parent: Host, key: str, ctx: Ctx) -> dict[str, Any] | None:
        return next((i for i in host_interfaces(ctx, parent.id) if i["name"] == key), None)

    def missing(self, parent: Host, key: str) -> str:
        return f"host {parent.id} has no interface {key}"


class HostPorts(Members[Host, str, Port]):
    """The ports bound to a host's interfaces, by port id. Admins only write; reads follow the host."""

    parent = HOSTS
    collection = "/hosts/{parent_id}/ports"
    item = "/hosts/{parent_id}/ports/{port_id}"
    media = BINDING_MEDIA
    admin_writes = True
    admin_what = "hosts and port bindings"

    def key(self, params: Params) -> str:
        return path_id(params["port_id"], "port")

    def members(self, parent: Host, ctx: Ctx) -> Sequence[Port]:
        return ctx.store.list(Port, parent.port_ids)

    def dto(self, parent: Host, member: Port, ctx: Ctx) -> Dto:
        return binding_dto(ctx, member)

    def find(self, parent: Host, key: str, ctx: Ctx) -> Port | None:
        return ctx.store.get(Port, key) if key in parent.port_ids else None

    def missing(self, parent: Host, key: str) -> str:
        return f"port {key} is not bound to host {parent.id}"

    def add(self, parent: Host, body: Any, ctx: Ctx) -> tuple[list[Op], str]:
        port_id = body_id(body, "portId")
        interface = body.get("interfaceName")
        if not isinstance(interface, str) or not interface.strip():
            raise bad_request("is required (the name of an interface of the host)", "interfaceName")
        if len(interface) > 255:
            raise bad_request("must be at most 255 characters long", "interfaceName")
        port = PORTS.load(ctx, port_id)
        return bind_ops(ctx, parent, port, interface), f"{HOSTS.uri(ctx, parent.id)}/ports/{port.id}"

    def remove(self, parent: Host, member: Port, ctx: Ctx) -> list[Op]:
        return [UpdateWith(Port, member.id, _unbind(parent.id))]


def register(router: APIRouter) -> None:
    add_crud(router, HOSTS, list_=False)
    admin_list(router, HOSTS, "hosts and port bindings")
    add_members(router, HostInterfaces(), create=False, delete=False)
    add_members(router, HostPorts())


__all__ = ["HOSTS", "host_alive", "host_interfaces", "register"]
