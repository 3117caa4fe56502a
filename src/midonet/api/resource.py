"""One REST resource = a record class + its DTO mapping + its tenant rule; and the generic CRUD handlers.

A `Resource` subclass declares:
    cls        the record class it exposes
    path       the top-level collection segment ("bridges"); an object's URI is `<base>/<path>/<id>`
    media      the vendor type names it answers to, canonical first ("Bridge",), and `version`
    fields     (dto name, model field) pairs copied both ways; `read_only` pairs are only written out
and overrides hooks where the DTO is not a 1:1 copy (`dto_extra`, `dto_in`), where a create implies more
objects (`create_ops`), and where the tenant comes from a parent (`tenant_of`).

Handlers (`add_crud`, `add_children`) do: authenticate -> negotiate media -> parse JSON -> build the record
(validation errors name DTO properties) -> check tenant rights -> one atomic `store.multi` -> respond
(`201 Created` + Location, `204`, or the DTO). Store calls run in the thread pool. `admin_list` serves the
collection of an admin-only resource (403 for anyone else). Members of an object that are not resources of
their own (a port group's ports, a VTEP's bindings, table entries ...) are served by `api.members`.

Updates merge: the DTO's present keys replace the stored fields, absent keys keep them (the real client
sends whole DTOs, so this equals replacement for it); back-reference fields are never taken from a DTO.

May import: `midonet.topology`, `midonet.store`, `api.errors`, `api.media`, `api.auth`.
"""

from __future__ import annotations

import dataclasses
import enum
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from midonet.api.auth import Authenticator, Principal
from midonet.api.errors import bad_request, forbidden, from_topology_error, not_found
from midonet.api.media import check_content_type, negotiate
from midonet.store.base import Create, Delete, Op, Store, UpdateWith
from midonet.topology.errors import NotFoundError, TopologyError
from midonet.topology.ids import canonical_id, new_id
from midonet.topology.record import Record, from_dict, to_dict

R = TypeVar("R", bound=Record)
T = TypeVar("T")

Dto = dict[str, Any]


@dataclass
class Ctx:
    """Everything a request handler needs: the store, the base URI, who asks, and the query."""

    store: Store
    base: str
    principal: Principal
    query: dict[str, str] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)   # per-request scratch (e.g. a rule's position)


def _encode(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_encode(v) for v in value]
    if isinstance(value, enum.Enum):
        return value.value
    return value


class Resource(Generic[R]):
    """Base of every REST resource; see the module docstring."""

    cls: type[R]
    path: str
    media: tuple[str, ...]
    version: int = 1
    fields: ClassVar[tuple[tuple[str, str], ...]] = ()
    read_only: ClassVar[tuple[tuple[str, str], ...]] = ()
    admin_only: ClassVar[bool] = False       # only admins may write (hosts, tunnel zones ...)
    admin_only_read: ClassVar[bool] = False  # only admins may read too

    # --- URIs and DTOs ---------------------------------------------------------------------------

    def uri(self, ctx: Ctx, obj_id: str) -> str:
        return f"{ctx.base}/{self.path}/{obj_id}"

    def to_dto(self, obj: R, ctx: Ctx) -> Dto:
        dto: Dto = {"id": obj.id, "uri": self.uri(ctx, obj.id)}
        for name, attr in self.fields + self.read_only:
            dto[name] = _encode(getattr(obj, attr))
        dto.update(self.dto_extra(obj, ctx))
        return dto

    def dto_extra(self, obj: R, ctx: Ctx) -> Dto:
        """Computed DTO members: links to sub-collections, derived fields."""
        return {}

    def rename(self) -> dict[str, str]:
        """Model field -> DTO property, to name violations the way the client wrote them."""
        return {attr: name for name, attr in self.fields + self.read_only}

    def from_dto(self, dto: Dto, old: R | None, ctx: Ctx, parent_id: str | None = None) -> R:
        """The record a POST (old None) or PUT (old = the stored one) asks for."""
        if not isinstance(dto, dict):
            raise bad_request("the request body must be a JSON object")
        if old is not None:
            data = to_dict(old)
        else:
            given = dto.get("id")
            data = {"id": given if given is not None else new_id()}
        for name, attr in self.fields:
            if name in dto:
                data[attr] = dto[name]
        self.dto_in(dto, data, old, ctx, parent_id)
        try:
            return from_dict(self.cls, data)
        except TopologyError as e:
            raise from_topology_error(e, self.rename()) from None

    def dto_in(self, dto: Dto, data: dict[str, Any], old: R | None, ctx: Ctx, parent_id: str | None) -> None:
        """Hook: translate DTO members that are not 1:1 into `data` (model field names)."""

    # --- tenancy ---------------------------------------------------------------------------------

    def tenant_of(self, obj: R, ctx: Ctx) -> str | None:
        tenant = getattr(obj, "tenant_id", None)
        return tenant if isinstance(tenant, str) else None

    def check_read(self, obj: R, ctx: Ctx) -> None:
        p = ctx.principal
        if p.is_admin:
            return
        if self.admin_only_read or not p.can_read(self.tenant_of(obj, ctx)):
            raise forbidden(f"not allowed to read {self.cls.kind()} {obj.id}")

    def check_write(self, obj: R, ctx: Ctx) -> None:
        p = ctx.principal
        if p.is_admin:
            return
        if self.admin_only or not p.can_write(self.tenant_of(obj, ctx)):
            raise forbidden(f"not allowed to change {self.cls.kind()} {obj.id}")

    def visible(self, objs: Iterable[R], ctx: Ctx) -> list[R]:
        """`objs` this principal may read, filtered by `?tenant_id=` when given."""
        wanted = ctx.query.get("tenant_id")
        out = []
        for obj in objs:
            tenant = self.tenant_of(obj, ctx)
            if wanted is not None and tenant != wanted:
                continue
            if ctx.principal.is_admin or (not self.admin_only_read and ctx.principal.can_read(tenant)):
                out.append(obj)
        return out

    # --- store ops -------------------------------------------------------------------------------

    def load(self, ctx: Ctx, obj_id: str) -> R:
        try:
            key = canonical_id(obj_id)
        except ValueError:
            raise not_found(f"{self.cls.kind()} {obj_id} does not exist") from None
        obj = ctx.store.find(self.cls, key)
        if obj is None:
            raise not_found(f"{self.cls.kind()} {obj_id} does not exist")
        return obj

    def load_checked(self, ctx: Ctx, obj_id: str, write: bool) -> R:
        """`load`, then `check_write` (when `write`) or `check_read`."""
        obj = self.load(ctx, obj_id)
        (self.check_write if write else self.check_read)(obj, ctx)
        return obj

    def list_all(self, ctx: Ctx) -> list[R]:
        return ctx.store.list(self.cls)

    def create_ops(self, obj: R, ctx: Ctx) -> list[Op]:
        return [Create(obj)]

    def update_ops(self, obj: R, old: R, ctx: Ctx) -> list[Op]:
        return [merge_update(old, obj)]

    def delete_ops(self, obj: R, ctx: Ctx) -> list[Op]:
        return [Delete(self.cls, obj.id)]


def merge_update(old: Record, new: Record) -> Op:
    """An op applying to the stored object only the fields that differ between `old` and `new`.

    `old` is what the request read, `new` what it wants; the store applies the difference to the object as it
    is inside the transaction, so references added meanwhile (a port created on the bridge being renamed)
    are kept. Two requests changing the same field: the last one wins.
    """
    changes = {f.name: getattr(new, f.name) for f in dataclasses.fields(new)
               if getattr(new, f.name) != getattr(old, f.name)}
    if not changes:
        return UpdateWith(type(new), new.id, lambda stored: stored)
    return UpdateWith(type(new), new.id, lambda stored: dataclasses.replace(stored, **changes))


# --- request plumbing ------------------------------------------------------------------------------

def base_uri(request: Request) -> str:
    host = request.headers.get("host") or f"{request.url.hostname}:{request.url.port}"
    return f"{request.url.scheme}://{host}/midonet-api"


def context(request: Request) -> Ctx:
    """Authenticate the request (X-Auth-Token header or sessionId cookie) and build its Ctx."""
    auth: Authenticator = request.app.state.auth
    token = request.headers.get("x-auth-token") or request.cookies.get("sessionId")
    principal = auth.principal(token)
    return Ctx(store=request.app.state.store, base=base_uri(request), principal=principal,
               query=dict(request.query_params))


async def read_json(request: Request, media: tuple[str, ...]) -> Any:
    check_content_type(request.headers.get("content-type"), media)
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise bad_request(f"malformed JSON: {e}") from None


async def in_thread(fn: Callable[[], T]) -> T:
    """Run store work off the event loop, turning topology errors into API errors."""
    def guarded() -> T:
        try:
            return fn()
        except NotFoundError as e:
            raise not_found(e.message) from None
        except TopologyError as e:
            raise from_topology_error(e) from None
    return await run_in_threadpool(guarded)


def json_response(body: Any, media_type: str, status: int = 200) -> JSONResponse:
    return JSONResponse(body, status_code=status, media_type=media_type)


def require_admin(ctx: Ctx, what: str) -> None:
    """A 403 unless an admin asks; `what` names the objects ("tunnel zones")."""
    if not ctx.principal.is_admin:
        raise forbidden(f"only admins may read or change {what}")


def created(location: str) -> Response:
    return Response(status_code=201, headers={"Location": location})


def no_content() -> Response:
    return Response(status_code=204)


# --- generic handlers ------------------------------------------------------------------------------

def add_crud(router: APIRouter, res: Resource[Any], *, list_: bool = True, create: bool = True,
             get: bool = True, update: bool = True, delete: bool = True) -> None:
    """Register `/<path>` (GET list, POST) and `/<path>/{id}` (GET, PUT, DELETE) for `res`."""
    collection = f"/{res.path}"
    item = f"/{res.path}/{{obj_id}}"

    if list_:
        async def list_objects(request: Request) -> Response:
            ctx = context(request)
            media = negotiate(request.headers.get("accept"), res.media, res.version, collection=True)
            body = await in_thread(lambda: [res.to_dto(o, ctx) for o in res.visible(res.list_all(ctx), ctx)])
            return json_response(body, media)
        router.add_api_route(collection, list_objects, methods=["GET"], name=f"list {res.path}")

    if create:
        async def create_object(request: Request) -> Response:
            ctx = context(request)
            dto = await read_json(request, res.media)

            def work() -> str:
                obj = res.from_dto(dto, None, ctx)
                res.check_write(obj, ctx)
                ctx.store.multi(res.create_ops(obj, ctx))
                return str(obj.id)
            obj_id = await in_thread(work)
            return created(res.uri(ctx, obj_id))
        router.add_api_route(collection, create_object, methods=["POST"], name=f"create {res.path}")

    if get:
        async def get_object(request: Request, obj_id: str) -> Response:
            ctx = context(request)
            media = negotiate(request.headers.get("accept"), res.media, res.version, collection=False)

            def work() -> Dto:
                obj = res.load(ctx, obj_id)
                res.check_read(obj, ctx)
                return res.to_dto(obj, ctx)
            return json_response(await in_thread(work), media)
        router.add_api_route(item, get_object, methods=["GET"], name=f"get {res.path}")

    if update:
        async def update_object(request: Request, obj_id: str) -> Response:
            ctx = context(request)
            dto = await read_json(request, res.media)

            def work() -> None:
                old = res.load(ctx, obj_id)
                res.check_write(old, ctx)
                obj = res.from_dto(dto, old, ctx)
                if obj.id != old.id:
                    raise bad_request("the id of an object cannot change", "id")
                res.check_write(obj, ctx)
                ctx.store.multi(res.update_ops(obj, old, ctx))
            await in_thread(work)
            return no_content()
        router.add_api_route(item, update_object, methods=["PUT"], name=f"update {res.path}")

    if delete:
        async def delete_object(request: Request, obj_id: str) -> Response:
            ctx = context(request)

            def work() -> None:
                obj = res.load(ctx, obj_id)
                res.check_write(obj, ctx)
                ctx.store.multi(res.delete_ops(obj, ctx))
            await in_thread(work)
            return no_content()
        router.add_api_route(item, delete_object, methods=["DELETE"], name=f"delete {res.path}")


def admin_list(router: APIRouter, res: Resource[Any], what: str) -> None:
    """`GET /<path>` for an admin-only resource: 403 for anyone else (rather than an empty list)."""
    async def list_objects(request: Request) -> Response:
        ctx = context(request)
        require_admin(ctx, what)
        media = negotiate(request.headers.get("accept"), res.media, res.version, collection=True)
        return json_response(await in_thread(lambda: [res.to_dto(o, ctx) for o in res.list_all(ctx)]), media)
    router.add_api_route(f"/{res.path}", list_objects, methods=["GET"], name=f"list {res.path}")


def add_children(router: APIRouter, parent: Resource[Any], segment: str, child: Resource[Any],
                 children_of: Callable[[Any, Ctx], Sequence[Any]], *, create: bool = True) -> None:
    """Register `/<parent.path>/{id}/<segment>`: GET lists the children, POST creates one under the parent.

    `children_of(parent_obj, ctx)` gives the child records. On POST the child's `dto_in` receives the
    parent's id as `parent_id`.
    """
    path = f"/{parent.path}/{{parent_id}}/{segment}"

    async def list_children(request: Request, parent_id: str) -> Response:
        ctx = context(request)
        media = negotiate(request.headers.get("accept"), child.media, child.version, collection=True)

        def work() -> list[Dto]:
            owner = parent.load(ctx, parent_id)
            parent.check_read(owner, ctx)
            return [child.to_dto(c, ctx) for c in child.visible(children_of(owner, ctx), ctx)]
        return json_response(await in_thread(work), media)
    router.add_api_route(path, list_children, methods=["GET"], name=f"list {parent.path} {segment}")

    if create:
        async def create_child(request: Request, parent_id: str) -> Response:
            ctx = context(request)
            dto = await read_json(request, child.media)

            def work() -> str:
                owner = parent.load(ctx, parent_id)
                parent.check_write(owner, ctx)
                obj = child.from_dto(dto, None, ctx, owner.id)
                child.check_write(obj, ctx)
                ctx.store.multi(child.create_ops(obj, ctx))
                return str(obj.id)
            obj_id = await in_thread(work)
            return created(child.uri(ctx, obj_id))
        router.add_api_route(path, create_child, methods=["POST"], name=f"create {parent.path} {segment}")


def ids_list(store: Store, cls: type[R], ids: Iterable[str]) -> list[R]:
    return store.list(cls, ids)
