"""Port mirroring's REST resource (spec 7.3: Mirror-v1; semantics in 3.9).

    /mirrors            GET POST
    /mirrors/{id}       GET PUT DELETE

A mirror copies the packets matching any of its `conditions` (OR-ed; each a Condition DTO as rules carry
it, see `api.conditions`) to `toPortId`. It is attached by listing its id in a bridge's, router's or port's
`inboundMirrorIds` / `outboundMirrorIds` (or a port's `postInFilterMirrorIds` / `preOutFilterMirrorIds`);
deleting the mirror clears those lists, deleting its to-port deletes the mirror (the store's bindings).

Tenancy: a mirror belongs to its `tenantId` (a tenant admin's mirrors default to its tenant), or, without
one, to the tenant of its to-port's device; a non-admin may only mirror to a port of its own tenant.

`nested_condition_in` turns a Condition DTO nested in another DTO (a mirror's `conditions[i]`, a trace
request's `condition`) into model data, naming violations by their full DTO path.

May import: `midonet.topology`, `midonet.store`, `api.resource`, `api.errors`, `api.conditions`, `api.ports`.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from midonet.api.conditions import RENAME as CONDITION_RENAME
from midonet.api.conditions import condition_in, condition_out
from midonet.api.errors import ApiError, bad_request, forbidden
from midonet.api.ports import port_device_tenant
from midonet.api.resource import Ctx, Dto, Resource, add_crud
from midonet.topology.chains import Condition
from midonet.topology.devices import Port
from midonet.topology.errors import ValidationError
from midonet.topology.record import from_dict, to_dict
from midonet.topology.services import Mirror


def _prefixed(err: ApiError, prefix: str) -> ApiError:
    violations = [{"property": f"{prefix}.{v['property']}", "message": v["message"]}
                  for v in err.violations or []]
    message = "; ".join(f"{v['property']}: {v['message']}" for v in violations) or f"{prefix}: {err.message}"
    return ApiError(err.status, message, violations or [{"property": prefix, "message": err.message}])


def nested_condition_in(raw: Any, old: Condition | None, prop: str) -> dict[str, Any]:
    """Model data of the Condition DTO `raw` found at DTO path `prop` (merged over `old`); a 400 naming
    `prop.<member>` when it is malformed."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise bad_request("must be a condition object", prop)
    try:
        data = condition_in(raw, old)
    except ApiError as e:
        raise _prefixed(e, prop) from None
    try:
        return to_dict(from_dict(Condition, data))
    except ValidationError as e:
        violations = []
        for v in e.violations:
            head, dot, rest = v.field.partition(".")
            base, bracket, index = head.partition("[")
            name = CONDITION_RENAME.get(base, base) + bracket + index + dot + rest
            violations.append({"property": f"{prop}.{name}" if name else prop, "message": v.message})
        message = "; ".join(f"{x['property']}: {x['message']}" for x in violations)
        raise ApiError(400, message, violations) from None


class MirrorResource(Resource[Mirror]):
    cls = Mirror
    path = "mirrors"
    media = ("Mirror",)
    version = 1
    fields = (("toPortId", "to_port_id"), ("tenantId", "tenant_id"))

    def to_dto(self, obj: Mirror, ctx: Ctx) -> Dto:
        dto = super().to_dto(obj, ctx)
        dto["conditions"] = [condition_out(c) for c in obj.conditions]
        dto["toPort"] = f"{ctx.base}/ports/{obj.to_port_id}"
        return dto

    def dto_in(self, dto: Dto, data: dict[str, Any], old: Mirror | None, ctx: Ctx, parent_id: str | None) -> None:
        if old is None and data.get("tenant_id") is None and not ctx.principal.is_admin:
            data["tenant_id"] = ctx.principal.tenant
        if "conditions" in dto:
            raw = dto["conditions"]
            if raw is None:
                raw = []
            if not isinstance(raw, list):
                raise bad_request("must be a list of conditions", "conditions")
            # The list replaces the stored one as a whole (no merging by position).
            data["conditions"] = [nested_condition_in(c, None, f"conditions[{i}]") for i, c in enumerate(raw)]

    def tenant_of(self, obj: Mirror, ctx: Ctx) -> str | None:
        if obj.tenant_id is not None:
            return obj.tenant_id
        port = ctx.store.find(Port, obj.to_port_id or "")
        return port_device_tenant(ctx, port) if port is not None else None

    def check_write(self, obj: Mirror, ctx: Ctx) -> None:
        super().check_write(obj, ctx)
        if ctx.principal.is_admin:
            return
        port = ctx.store.find(Port, obj.to_port_id or "")
        if port is not None and not ctx.principal.can_write(port_device_tenant(ctx, port)):
            raise forbidden(f"not allowed to mirror to port {port.id}")


MIRRORS = MirrorResource()


def register(router: APIRouter) -> None:
    add_crud(router, MIRRORS)


__all__ = ["MIRRORS", "nested_condition_in", "register"]
