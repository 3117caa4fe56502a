"""Hardware VTEPs and their port/VLAN bindings to bridges (spec 7.3: VTEP-v2, VTEPBinding-v2, VTEPPort-v1;
semantics in 5.2).

    /vteps                                   GET POST
    /vteps/{id}                              GET DELETE
    /vteps/{id}/bindings                     GET POST {portName, vlanId, networkId}
    /vteps/{id}/bindings/{portName}/{vlanId} GET DELETE
    /vteps/{id}/ports                        GET (the switch's physical ports: read over OVSDB)

A VTEP is managed over OVSDB at `managementIp:managementPort` and sits in a tunnel zone of type `vtep`
(required: a missing, unknown or non-VTEP zone is a 400, as in the original); two VTEPs cannot share a
management address (409). We do not speak OVSDB yet, so `connectionState` is always `disconnected` (the
original's lower-case spelling), `tunnelIpAddrs` is empty and `/ports` lists nothing, and bindings are not
checked against the switch's physical ports.

Binding (portName, vlanId) of a VTEP to a bridge is stored in the VTEP. The first binding between a VTEP
and a bridge gives the bridge a VNI (if it has none yet; from 10000 up, as the original's sequence) and
creates the bridge's VXLAN port for that VTEP (`vtepId` set, its id the XOR of the two ids, listed in the
bridge's `vxLanPortIds`); removing the last one deletes the port. Binding the same pair to the same bridge
again is a no-op; to another bridge, a 409. Deleting a binding that does not exist is a no-op (204), as in
the original; deleting a VTEP that still has bindings is refused (400, as in the original).

Only admins write; everyone may read.

May import: `midonet.topology`, `midonet.store`, `api.resource`, `api.members`, `api.errors`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter

from midonet.api.errors import ApiError, bad_request, conflict, not_found
from midonet.api.members import Members, Params, add_members
from midonet.api.resource import Ctx, Dto, Resource, add_crud
from midonet.store.base import Create, Delete, Op, Update, UpdateWith
from midonet.topology.devices import Bridge, Port
from midonet.topology.errors import ValidationError
from midonet.topology.hosts import TunnelZone, TunnelZoneType
from midonet.topology.ids import canonical_id, cluster_tunnel_key
from midonet.topology.record import Record, from_dict
from midonet.topology.services import Vtep, VtepBinding

CONNECTION_STATE = "disconnected"
FIRST_VNI = 10000
BINDING_MEDIA = ("VTEPBinding",)


class VtepResource(Resource[Vtep]):
    cls = Vtep
    path = "vteps"
    media = ("VTEP", "Vtep")
    version = 2
    fields = (("managementIp", "management_ip"), ("managementPort", "management_port"),
              ("tunnelZoneId", "tunnel_zone_id"), ("name", "name"), ("description", "description"))
    read_only = (("tunnelIpAddrs", "tunnel_ips"),)
    admin_only = True

    def check_read(self, obj: Vtep, ctx: Ctx) -> None:
        return   # no tenant: everyone may read

    def visible(self, objs: Iterable[Vtep], ctx: Ctx) -> list[Vtep]:
        return list(objs)

    def dto_extra(self, obj: Vtep, ctx: Ctx) -> Dto:
        u = self.uri(ctx, obj.id)
        return {"connectionState": CONNECTION_STATE, "bindings": f"{u}/bindings", "ports": f"{u}/ports",
                "vtepBindingTemplate": f"{u}/bindings/{{portName}}/{{vlanId}}"}

    def dto_in(self, dto: Dto, data: dict[str, Any], old: Vtep | None, ctx: Ctx, parent_id: str | None) -> None:
        if data.get("management_ip") is None:
            raise bad_request("is required", "managementIp")
        if data.get("management_port") is None:
            data["management_port"] = 6632
        zone_id = data.get("tunnel_zone_id")
        if zone_id is None:
            raise bad_request("a VTEP needs a tunnel zone (of type vtep)", "tunnelZoneId")
        try:
            zone = ctx.store.find(TunnelZone, canonical_id(zone_id)) if isinstance(zone_id, str) else None
        except ValueError:
            return   # malformed: the record's validation names it
        if isinstance(zone_id, str) and zone is None:
            raise bad_request(f"tunnel zone {zone_id} does not exist", "tunnelZoneId")
        if zone is not None and zone.type is not TunnelZoneType.VTEP:
            raise bad_request(f"tunnel zone {zone.id} is of type {zone.type.value}, not vtep", "tunnelZoneId")

    def create_ops(self, obj: Vtep, ctx: Ctx) -> list[Op]:
        for other in ctx.store.list(Vtep):
            if other.management_ip == obj.management_ip:
                raise conflict(f"VTEP {other.id} already has management address {obj.management_ip}")
        return [Create(obj)]

    def delete_ops(self, obj: Vtep, ctx: Ctx) -> list[Op]:
        if obj.bindings:
            raise bad_request(f"VTEP {obj.management_ip} still has {len(obj.bindings)} binding(s): delete them "
                              "first")
        return super().delete_ops(obj, ctx)


VTEPS = VtepResource()


def binding_dto(ctx: Ctx, vtep: Vtep, b: VtepBinding) -> Dto:
    return {"uri": f"{VTEPS.uri(ctx, vtep.id)}/bindings/{quote(b.port_name, safe='')}/{b.vlan_id}",
            "vtepId": vtep.id, "mgmtIp": vtep.management_ip, "portName": b.port_name, "vlanId": b.vlan_id,
            "networkId": b.network_id, "network": f"{ctx.base}/bridges/{b.network_id}"}


def vxlan_port_id(vtep_id: str, network_id: str) -> str:
    """The id of the VXLAN port of a (VTEP, bridge) pair: the XOR of their ids, as the original."""
    return str(uuid.UUID(int=uuid.UUID(vtep_id).int ^ uuid.UUID(network_id).int))


def binding_in(dto: Any) -> VtepBinding:
    if not isinstance(dto, dict):
        raise bad_request("the request body must be a JSON object")
    name = dto.get("portName")
    if not isinstance(name, str) or not name.strip():
        raise bad_request("is required (the physical port's name)", "portName")
    if dto.get("networkId") is None:
        raise bad_request("is required", "networkId")
    vlan = dto.get("vlanId")
    data = {"port_name": name, "vlan_id": 0 if vlan is None else vlan, "network_id": dto["networkId"]}
    try:
        return from_dict(VtepBinding, data)
    except ValidationError as e:
        names = {"port_name": "portName", "vlan_id": "vlanId", "network_id": "networkId"}
        violations = [{"property": names.get(v.field, v.field), "message": v.message} for v in e.violations]
        raise ApiError(400, "; ".join(f"{v['property']}: {v['message']}" for v in violations), violations) \
            from None


def bind_ops(ctx: Ctx, vtep: Vtep, b: VtepBinding) -> list[Op]:
    """The writes that add binding `b` to `vtep` (nothing if it is there already); 404/409 when it cannot."""
    bridge = ctx.store.find(Bridge, b.network_id)
    if bridge is None:
        raise not_found(f"bridge {b.network_id} does not exist")
    for old in vtep.bindings:
        if (old.port_name, old.vlan_id) == (b.port_name, b.vlan_id):
            if old.network_id == b.network_id:
                return []
            raise conflict(f"port {b.port_name} VLAN {b.vlan_id} of VTEP {vtep.management_ip} is already bound "
                           f"to bridge {old.network_id}")
    ops: list[Op] = [Update(vtep.replace(bindings=(*vtep.bindings, b)))]
    port_id = vxlan_port_id(vtep.id, bridge.id)
    if port_id not in bridge.vxlan_port_ids:
        key = cluster_tunnel_key(ctx.store.next_sequence("tunnel_key"))
        vni = bridge.vni if bridge.vni is not None else FIRST_VNI - 1 + ctx.store.next_sequence("vxgw_vni")
        ops.append(Create(Port(id=port_id, network_id=bridge.id, vtep_id=vtep.id, tunnel_key=key)))
        ops.append(UpdateWith(Bridge, bridge.id, _add_vxlan_port(port_id, vni)))
    return ops


def unbind_ops(ctx: Ctx, vtep: Vtep, b: VtepBinding) -> list[Op]:
    """The writes that remove binding `b`, and the VXLAN port when it was the bridge's last binding."""
    rest = tuple(x for x in vtep.bindings if x != b)
    ops: list[Op] = [Update(vtep.replace(bindings=rest))]
    if not any(x.network_id == b.network_id for x in rest):
        port_id = vxlan_port_id(vtep.id, b.network_id)
        bridge = ctx.store.find(Bridge, b.network_id)
        if bridge is not None and port_id in bridge.vxlan_port_ids:
            ops.append(UpdateWith(Bridge, bridge.id, _remove_vxlan_port(port_id)))
        ops.append(Delete(Port, port_id, ignore_missing=True))
    return ops


def _add_vxlan_port(port_id: str, vni: int) -> Callable[[Record], Record]:
    def add(bridge: Record) -> Record:
        assert isinstance(bridge, Bridge)
        return bridge.replace(vni=bridge.vni if bridge.vni is not None else vni,
                              vxlan_port_ids=(*bridge.vxlan_port_ids, port_id))
    return add


def _remove_vxlan_port(port_id: str) -> Callable[[Record], Record]:
    def remove(bridge: Record) -> Record:
        assert isinstance(bridge, Bridge)
        return bridge.replace(vxlan_port_ids=tuple(p for p in bridge.vxlan_port_ids if p != port_id))
    return remove


class VtepBindings(Members[Vtep, tuple[str, str], VtepBinding]):
    """A VTEP's bindings, by (port name, VLAN id). Everyone reads; only admins write (the VTEP's rule)."""

    parent = VTEPS
    collection = "/vteps/{parent_id}/bindings"
    item = "/vteps/{parent_id}/bindings/{port_name}/{vlan_id}"
    media = BINDING_MEDIA
    version = 2
    quiet_delete = True

    def key(self, params: Params) -> tuple[str, str]:
        return params["port_name"], params["vlan_id"]

    def members(self, parent: Vtep, ctx: Ctx) -> Sequence[VtepBinding]:
        return parent.bindings

    def dto(self, parent: Vtep, member: VtepBinding, ctx: Ctx) -> Dto:
        return binding_dto(ctx, parent, member)

    def find(self, parent: Vtep, key: tuple[str, str], ctx: Ctx) -> VtepBinding | None:
        port_name, vlan_id = key
        if not vlan_id.isdigit():
            return None
        return next((b for b in parent.bindings if (b.port_name, b.vlan_id) == (port_name, int(vlan_id))), None)

    def missing(self, parent: Vtep, key: tuple[str, str]) -> str:
        return f"VTEP {parent.management_ip} has no binding of port {key[0]} VLAN {key[1]}"

    def add(self, parent: Vtep, body: Any, ctx: Ctx) -> tuple[list[Op], str]:
        b = binding_in(body)
        return bind_ops(ctx, parent, b), str(binding_dto(ctx, parent, b)["uri"])

    def remove(self, parent: Vtep, member: VtepBinding, ctx: Ctx) -> list[Op]:
        return unbind_ops(ctx, parent, member)


class VtepPorts(Members[Vtep, str, Dto]):
    """The switch's physical ports, read over OVSDB: none yet (listed only)."""

    parent = VTEPS
    collection = "/vteps/{parent_id}/ports"
    media = ("VTEPPort",)

    def members(self, parent: Vtep, ctx: Ctx) -> Sequence[Dto]:
        return []


def register(router: APIRouter) -> None:
    add_crud(router, VTEPS, update=False)
    add_members(router, VtepBindings())
    add_members(router, VtepPorts(), create=False, get=False, delete=False)


__all__ = ["VTEPS", "register", "vxlan_port_id"]
