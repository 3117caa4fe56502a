"""Keyed sub-resources: an object's members, each named in the URI by a key, and their generic handlers.

Some things the API serves are not top-level resources but members of another object, named below it by a key
that is not an id of their own: the ports of a port group (`{portId}`), the addresses of an IP address group
(`versions/{4|6}/{addr}`), the port bindings and interfaces of a host, the hosts of a tunnel zone, a VTEP's
bindings (`{portName}/{vlanId}`), a bridge's DHCP subnets (`{prefix}_{length}`) and a subnet's static hosts
(`{mac}`), MAC / ARP / peering table entries (`{mac}_{portId}`, `{ip}_{mac}`). They live in a list on the
parent's record, on other records (back-references), or in a store state table.

A `Members` subclass declares:
    parent       the Resource whose object owns the members (`owner` loads it from `{parent_id}`)
    collection   the collection's route ("/port_groups/{parent_id}/ports"): GET lists, POST adds
    item         one member's route ("/port_groups/{parent_id}/ports/{port_id}"): GET, [PUT,] DELETE
    media        the member's vendor type names, canonical first, and `version`
and implements the hooks it serves:
    key(params)                        the member's key from the path parameters (404 when none can match)
    members(parent, ctx)               the parent's members, in listing order
    dto(parent, member, ctx)           one member's DTO
    find(parent, key, ctx)             the member of that key; None when absent (`missing` says why: 404)
    add(parent, body, ctx)             (ops, Location) of a POST: [] when it changes nothing
    update(parent, member, body, ctx)  ops of a PUT
    remove(parent, member, ctx)        ops of a DELETE
Members kept in a state table write the table themselves and return no ops.

`add_members(router, spec)` registers the routes. Each request goes: authenticate -> admins only, when the
spec says so (before anything is read) -> negotiate the media type / parse the JSON body -> load the parent and
check the caller may read it (GET) or change it (POST, PUT, DELETE) -> parse the key -> find the member
(404; a DELETE of an absent member is a 204 no-op when `quiet_delete`) -> one atomic `store.multi` -> answer
(`201` + Location, `204`, or the DTO). Store work runs in the thread pool, as for `resource.add_crud`.

A member of a member (a DHCP subnet's hosts) overrides `owner` to load its parent with the parent's spec
(`Members.load`).

Also here, the parsing helpers members share: `path_id` (an id in the URI: 404), `body_id` (an id in a
body: 400), `mac_uri` (a MAC as URIs write it).

May import: `midonet.topology`, `midonet.store`, `api.resource`, `api.errors`, `api.media`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Generic, TypeVar

from fastapi import APIRouter, Request, Response

from midonet.api.errors import bad_request, not_found
from midonet.api.media import negotiate
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
    require_admin,
)
from midonet.store.base import Op
from midonet.topology.ids import canonical_id

P = TypeVar("P")   # the parent object
K = TypeVar("K")   # a member's key, parsed from the URI
M = TypeVar("M")   # a member

Params = Mapping[str, str]


# --- keys in URIs and bodies -------------------------------------------------------------------------

def path_id(value: str, kind: str) -> str:
    """A UUID from the URI; a 404 naming `kind` when it is not one (no such object can exist)."""
    try:
        return canonical_id(value)
    except ValueError:
        raise not_found(f"{kind} {value} does not exist") from None


def body_id(dto: Any, prop: str) -> str:
    """The UUID in `dto[prop]`, canonical; a 400 naming `prop` when it is missing or malformed."""
    value = dto.get(prop) if isinstance(dto, dict) else None
    if value is None:
        raise bad_request("is required", prop)
    try:
        return canonical_id(str(value))
    except ValueError:
        raise bad_request(f"is not a valid UUID: {value!r}", prop) from None


def mac_uri(mac: str) -> str:
    """A MAC address as URIs write it: ':' becomes '-'."""
    return mac.replace(":", "-")


# --- the spec ----------------------------------------------------------------------------------------

class Members(Generic[P, K, M]):
    """The members of a `parent` object, served at `collection` and `item`; see the module docstring."""

    parent: Resource[Any]    # whose objects are the parents (P, unless `owner` is overridden)
    collection: str
    item: str
    media: tuple[str, ...]
    version: int = 1
    admin_reads: ClassVar[bool] = False    # GETs: only admins (403 before anything else)
    admin_writes: ClassVar[bool] = False   # POST, PUT, DELETE: only admins (403 before anything else)
    admin_what: ClassVar[str] = ""         # what the 403 says only admins may read or change
    quiet_delete: ClassVar[bool] = False   # DELETE of an absent member: 204, nothing changes

    def guard(self, ctx: Ctx, write: bool) -> None:
        """The admins-only check, done before the request is read any further."""
        if self.admin_writes if write else self.admin_reads:
            require_admin(ctx, self.admin_what)

    def owner(self, ctx: Ctx, params: Params, write: bool) -> P:
        """The parent object named by the URI, once the caller may read it (or change it, when `write`)."""
        obj: P = self.parent.load_checked(ctx, params["parent_id"], write)
        return obj

    def load(self, ctx: Ctx, params: Params, write: bool) -> tuple[P, M]:
        """(parent, member) named by an item URI; 404 when either does not exist."""
        parent = self.owner(ctx, params, write)
        key = self.key(params)
        member = self.find(parent, key, ctx)
        if member is None:
            raise not_found(self.missing(parent, key))
        return parent, member

    # --- hooks -----------------------------------------------------------------------------------

    def key(self, params: Params) -> K:
        raise NotImplementedError

    def members(self, parent: P, ctx: Ctx) -> Sequence[M]:
        raise NotImplementedError

    def dto(self, parent: P, member: M, ctx: Ctx) -> Dto:
        raise NotImplementedError

    def find(self, parent: P, key: K, ctx: Ctx) -> M | None:
        raise NotImplementedError

    def missing(self, parent: P, key: K) -> str:
        """The 404 message for a key `find` does not know."""
        return f"no such member: {key}"

    def add(self, parent: P, body: Any, ctx: Ctx) -> tuple[list[Op], str]:
        raise NotImplementedError

    def update(self, parent: P, member: M, body: Any, ctx: Ctx) -> list[Op]:
        raise NotImplementedError

    def remove(self, parent: P, member: M, ctx: Ctx) -> list[Op]:
        raise NotImplementedError


def _commit(ctx: Ctx, ops: list[Op]) -> None:
    if ops:
        ctx.store.multi(ops)


# --- handlers ----------------------------------------------------------------------------------------

def add_members(router: APIRouter, spec: Members[Any, Any, Any], *, create: bool = True, get: bool = True,
                update: bool = False, delete: bool = True) -> None:
    """Register `spec.collection` (GET list, POST) and `spec.item` (GET, PUT, DELETE) as the flags say.

    The handlers read the path parameters themselves (`request.path_params`), so a spec names them freely.
    """
    async def list_members(request: Request) -> Response:
        ctx = context(request)
        spec.guard(ctx, write=False)
        media = negotiate(request.headers.get("accept"), spec.media, spec.version, collection=True)
        params = request.path_params

        def work() -> list[Dto]:
            parent = spec.owner(ctx, params, write=False)
            return [spec.dto(parent, m, ctx) for m in spec.members(parent, ctx)]
        return json_response(await in_thread(work), media)
    router.add_api_route(spec.collection, list_members, methods=["GET"], name=f"list {spec.collection}")

    if create:
        async def add_member(request: Request) -> Response:
            ctx = context(request)
            spec.guard(ctx, write=True)
            body = await read_json(request, spec.media)
            params = request.path_params

            def work() -> str:
                ops, location = spec.add(spec.owner(ctx, params, write=True), body, ctx)
                _commit(ctx, ops)
                return location
            return created(await in_thread(work))
        router.add_api_route(spec.collection, add_member, methods=["POST"], name=f"create {spec.collection}")

    if get:
        async def get_member(request: Request) -> Response:
            ctx = context(request)
            spec.guard(ctx, write=False)
            media = negotiate(request.headers.get("accept"), spec.media, spec.version, collection=False)
            params = request.path_params

            def work() -> Dto:
                parent, member = spec.load(ctx, params, write=False)
                return spec.dto(parent, member, ctx)
            return json_response(await in_thread(work), media)
        router.add_api_route(spec.item, get_member, methods=["GET"], name=f"get {spec.item}")

    if update:
        async def update_member(request: Request) -> Response:
            ctx = context(request)
            spec.guard(ctx, write=True)
            body = await read_json(request, spec.media)
            params = request.path_params

            def work() -> None:
                parent, member = spec.load(ctx, params, write=True)
                _commit(ctx, spec.update(parent, member, body, ctx))
            await in_thread(work)
            return no_content()
        router.add_api_route(spec.item, update_member, methods=["PUT"], name=f"update {spec.item}")

    if delete:
        async def remove_member(request: Request) -> Response:
            ctx = context(request)
            spec.guard(ctx, write=True)
            params = request.path_params

            def work() -> None:
                parent = spec.owner(ctx, params, write=True)
                key = spec.key(params)
                member = spec.find(parent, key, ctx)
                if member is None:
                    if spec.quiet_delete:
                        return
                    raise not_found(spec.missing(parent, key))
                _commit(ctx, spec.remove(parent, member, ctx))
            await in_thread(work)
            return no_content()
        router.add_api_route(spec.item, remove_member, methods=["DELETE"], name=f"delete {spec.item}")


__all__ = ["Members", "add_members", "body_id", "mac_uri", "path_id"]
