"""`create_app(store, auth)`: the FastAPI application serving MidoNet's v5 API under `/midonet-api`.

Every error, including FastAPI's own (unknown path 404, wrong verb 405), leaves in MidoNet's error body.

May import: everything in `api`.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from midonet.api import (
    bgp,
    bridgetables,
    chains,
    devices,
    dhcp,
    groups,
    hosts,
    l4lb,
    mirrors,
    ports,
    qos,
    root,
    snapshot,
    traces,
    tunnelzones,
    unsupported,
    vteps,
)
from midonet.api.auth import Authenticator
from midonet.api.errors import ApiError, error_response, from_topology_error
from midonet.store.base import Store
from midonet.topology.errors import TopologyError

log = logging.getLogger(__name__)

PREFIX = "/midonet-api"

# Resource families register their routes here, in this order.
FAMILIES = [
    root, devices, ports, chains, l4lb, groups, mirrors, bgp, hosts, tunnelzones, traces, dhcp, bridgetables, qos,
    vteps, snapshot, unsupported,
]


def create_app(store: Store, auth: Authenticator) -> FastAPI:
    app = FastAPI(title="MidoNet API", version="5", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.store = store
    app.state.auth = auth
    router = APIRouter(prefix=PREFIX)
    for family in FAMILIES:
        family.register(router)
    app.include_router(router)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.message, exc.violations, exc.headers)

    @app.exception_handler(TopologyError)
    async def topology_error(request: Request, exc: TopologyError) -> JSONResponse:
        err = from_topology_error(exc)
        return error_response(err.status, err.message, err.violations)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = {404: "no such resource", 405: "method not allowed"}.get(exc.status_code, str(exc.detail))
        return error_response(exc.status_code, f"{message}: {request.method} {request.url.path}")

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(400, f"bad request: {exc.errors()}")

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error serving %s %s", request.method, request.url.path)
        return error_response(500, f"internal error: {type(exc).__name__}")

    return app
