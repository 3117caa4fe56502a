"""Trace requests (spec 7.3: TraceRequest-v1; semantics in 3.14).

    /traces        GET POST
    /traces/{id}   GET PUT DELETE

A trace request names one device (`deviceType` PORT, BRIDGE or ROUTER and `deviceId`), a `condition` (a
Condition DTO, nested) and a `limit` on the flows to trace; it traces only while `enabled`. Agents turn it
into a trace rule in front of the device's inbound filters; the API only stores it. `creationTimestampMs`
is stamped at creation. A PUT changes `name`, `enabled` and `limit` only: the device and the condition
are fixed at creation (send others and they are ignored, as the whole DTO the client sends back).
Deleting the device deletes its trace requests (the store's bindings).

Tenancy: a trace request belongs to its device's tenant (for a port, the port's bridge or router), and
`?tenant_id=` filters on it as in the original.

May import: `midonet.topology`, `midonet.store`, `api.resource`, `api.errors`, `api.conditions`,
`api.mirrors` (nested conditions), `api.ports`.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter

from midonet.api.conditions import condition_out
from midonet.api.errors import bad_request, not_found
from midonet.api.mirrors import nested_condition_in
from midonet.api.ports import port_device_tenant
from midonet.api.resource import Ctx, Dto, Resource, add_crud
from midonet.topology.devices import Bridge, Port, Router
from midonet.topology.ids import canonical_id
from midonet.topology.record import Record
from midonet.topology.services import TraceDeviceType, TraceRequest

# deviceType -> (model field, device class)
DEVICES: dict[str, tuple[str, type[Record]]] = {
    TraceDeviceType.PORT.value: ("port_id", Port),
    TraceDeviceType.BRIDGE.value: ("network_id", Bridge),
    TraceDeviceType.ROUTER.value: ("router_id", Router),
}
MAX_LIMIT = 2 ** 63 - 1


def device_tenant(ctx: Ctx, field: str, device_id: str) -> str | None:
    """The tenant of the device a trace request's `field` (port_id, network_id, router_id) names."""
    if field == "port_id":
        port = ctx.store.find(Port, device_id)
        return port_device_tenant(ctx, port) if port is not None else None
    device = ctx.store.find(Bridge, device_id) if field == "network_id" else ctx.store.find(Router, device_id)
    return device.tenant_id if device is not None else None


def device_field(trace: TraceRequest) -> str:
    if trace.port_id is not None:
        return "port_id"
    return "network_id" if trace.network_id is not None else "router_id"


def device_type(trace: TraceRequest) -> str:
    field = device_field(trace)
    return next(kind for kind, (f, _) in DEVICES.items() if f == field)


class TraceRequestResource(Resource[TraceRequest]):
    cls = TraceRequest
    path = "traces"
    media = ("TraceRequest",)
    version = 1
    fields = (("name", "name"), ("enabled", "enabled"), ("limit", "limit"))
    read_only = (("creationTimestampMs", "create_timestamp_ms"),)

    def tenant_of(self, obj: TraceRequest, ctx: Ctx) -> str | None:
        return device_tenant(ctx, device_field(obj), obj.device_id)

    def to_dto(self, obj: TraceRequest, ctx: Ctx) -> Dto:
        dto = super().to_dto(obj, ctx)
        dto["deviceType"] = device_type(obj)
        dto["deviceId"] = obj.device_id
        dto["condition"] = condition_out(obj.condition)
        return dto

    def rename(self) -> dict[str, str]:
        return super().rename() | {"device_id": "deviceId", "port_id": "deviceId", "network_id": "deviceId",
                                   "router_id": "deviceId"}

    def dto_in(self, dto: Dto, data: dict[str, Any], old: TraceRequest | None, ctx: Ctx,
               parent_id: str | None) -> None:
        if data.get("name") is None:
            raise bad_request("is required", "name")
        limit = data.get("limit")
        if limit is None:
            data["limit"] = MAX_LIMIT
        elif isinstance(limit, int) and not isinstance(limit, bool) and not 0 <= limit <= MAX_LIMIT:
            raise bad_request(f"must be between 0 and {MAX_LIMIT}, not {limit}", "limit")
        if data.get("enabled") is None:
            data["enabled"] = False
        if old is not None:
            return  # the device and the condition are fixed at creation
        kind = dto.get("deviceType")
        if kind is None:
            raise bad_request("is required", "deviceType")
        if not isinstance(kind, str) or kind.upper() not in DEVICES:
            raise bad_request(f"must be one of {', '.join(DEVICES)}, not {kind!r}", "deviceType")
        field, device_cls = DEVICES[kind.upper()]
        device_id = dto.get("deviceId")
        if device_id is None:
            raise bad_request("is required", "deviceId")
        try:
            key = canonical_id(str(device_id)) if isinstance(device_id, str) else None
        except ValueError:
            key = None
        if key is None:
            raise bad_request(f"is not a valid UUID: {device_id!r}", "deviceId")
        if not ctx.store.exists(device_cls, key):
            raise not_found(f"{kind.lower()} {key} does not exist")
        data[field] = key
        data["condition"] = nested_condition_in(dto.get("condition"), None, "condition")
        data["create_timestamp_ms"] = int(time.time() * 1000)
        data["tenant_id"] = device_tenant(ctx, field, key)


TRACES = TraceRequestResource()


def register(router: APIRouter) -> None:
    add_crud(router, TRACES)


__all__ = ["TRACES", "register"]
