"""The Application root's collections this implementation does not support yet (spec 7.2, 7.3):
L2 insertions (3.10) and service containers / container groups.

They answer like empty collections so that clients walking the root (midonetclient's `get_l2insertions`,
`get_service_containers`, `get_service_container_groups`) work:

    GET    /<collection>                 200 []  (the collection media type)
    GET    /<collection>/{id}            404
    POST   /<collection>                 405, and PUT / DELETE /<collection>/{id}: MidoNet's error body
    GET    /service_container_groups/{id}/service_containers   404 (no group exists)

Every request is authenticated first (401 without a token).

May import: `api.resource`, `api.errors`, `api.media`.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from midonet.api.errors import ApiError, not_found
from midonet.api.media import negotiate
from midonet.api.resource import context, json_response

# (path, media type name, what it is)
COLLECTIONS: tuple[tuple[str, str, str], ...] = (
    ("l2insertions", "L2Insertion", "L2 insertion"),
    ("service_containers", "ServiceContainer", "service container"),
    ("service_container_groups", "ServiceContainerGroup", "service container group"),
)


def _register_one(router: APIRouter, path: str, media: str, what: str) -> None:
    def unsupported(verb: str) -> ApiError:
        return ApiError(405, f"{verb} /{path}: {what}s are not supported by this MidoNet implementation")

    async def list_all(request: Request) -> Response:
        context(request)
        return json_response([], negotiate(request.headers.get("accept"), (media,), 1, collection=True))

    async def get_one(request: Request, obj_id: str) -> Response:
        context(request)
        negotiate(request.headers.get("accept"), (media,), 1, collection=False)
        raise not_found(f"{what} {obj_id} does not exist")

    async def create(request: Request) -> Response:
        context(request)
        raise unsupported("POST")

    async def change(request: Request, obj_id: str) -> Response:
        context(request)
        raise unsupported(request.method)

    router.add_api_route(f"/{path}", list_all, methods=["GET"], name=f"list {path}")
    router.add_api_route(f"/{path}", create, methods=["POST"], name=f"create {path}")
    router.add_api_route(f"/{path}/{{obj_id}}", get_one, methods=["GET"], name=f"get {path}")
    router.add_api_route(f"/{path}/{{obj_id}}", change, methods=["PUT", "DELETE"], name=f"change {path}")


def register(router: APIRouter) -> None:
    for path, media, what in COLLECTIONS:
        _register_one(router, path, media, what)

    @router.get("/service_container_groups/{group_id}/service_containers")
    async def group_containers(request: Request, group_id: str) -> Response:
        context(request)
        raise not_found(f"service container group {group_id} does not exist")
