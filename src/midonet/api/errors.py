"""Errors as MidoNet's REST API reports them (spec 7.1).

Every failure becomes `{"message": str, "code": int}` with media type
`application/vnd.org.midonet.Error-v1+json`; validation failures (400) add
`"violations": [{"property": ..., "message": ...}]`. Topology errors map by their `status`.

May import: `midonet.topology`.
"""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

from midonet.topology.errors import TopologyError, ValidationError

ERROR_MEDIA_TYPE = "application/vnd.org.midonet.Error-v1+json"


class ApiError(Exception):
    """An HTTP error with MidoNet's body. Raise it anywhere in a request handler."""

    def __init__(self, status: int, message: str, violations: list[dict[str, str]] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.violations = violations
        self.headers = headers or {}


def bad_request(message: str, prop: str | None = None) -> ApiError:
    violations = [{"property": prop, "message": message}] if prop else None
    return ApiError(400, f"{prop}: {message}" if prop else message, violations)


def not_found(message: str) -> ApiError:
    return ApiError(404, message)


def forbidden(message: str = "Authorization denied") -> ApiError:
    return ApiError(403, message)


def conflict(message: str) -> ApiError:
    return ApiError(409, message)


def error_response(status: int, message: str, violations: list[dict[str, str]] | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"message": message, "code": status}
    if violations is not None:
        body["violations"] = violations
    return JSONResponse(body, status_code=status, media_type=ERROR_MEDIA_TYPE, headers=headers)


def dto_property(field: str, rename: dict[str, str]) -> str:
    """The DTO property for a model field path: the longest renamed prefix, the rest kept.

    `condition.tp_dst.start` with {"condition.tp_dst": "tpDst"} -> `tpDst.start`;
    `nat_targets[0].nw_start` with {"nat_targets": "natTargets"} -> `natTargets[0].nw_start`.
    """
    parts = field.split(".")
    for cut in range(len(parts), 0, -1):
        head = ".".join(parts[:cut])
        base, bracket, index = head.partition("[")
        if base in rename:
            rest = ".".join(parts[cut:])
            return rename[base] + (bracket + index if bracket else "") + ("." + rest if rest else "")
    return field


def from_topology_error(err: TopologyError, rename: dict[str, str] | None = None) -> ApiError:
    """The ApiError for a topology/store error; `rename` maps model field names to DTO property names."""
    if isinstance(err, ValidationError):
        violations = [{"property": dto_property(v.field, rename or {}), "message": v.message}
                      for v in err.violations]
        message = "; ".join(f"{x['property']}: {x['message']}" if x["property"] else x["message"]
                            for x in violations)
        return ApiError(400, message, violations)
    return ApiError(err.status, err.message)
