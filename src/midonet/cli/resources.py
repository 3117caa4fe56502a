"""The generic resource commands: `midonet list | show | create | update | delete KIND ...`.

    midonet list bridges                           every bridge you may read (--tenant T filters)
    midonet list ports --bridge ID                 a device's ports (also --router; rules --chain; routes --router)
    midonet show router ID
    midonet create bridge name=front tenantId=acme
    midonet create port --router ID portAddress=10.0.0.1 networkAddress=10.0.0.0 networkLength=24
    midonet create rule --chain ID type=accept nwProto=6 tpDst='{"start": 80, "end": 80}'
    midonet update bridge ID name=back
    midonet delete port ID [ID ...]

KIND is any collection of the API's Application root, singular or plural, in any spelling (`port-group`,
`port_groups`, `portGroups`). `key=value` pairs become the JSON body: a value that parses as JSON is taken
as JSON (numbers, true/false, null, lists, objects), anything else as a string (quote it to force a
string: `name='"42"'`); snake_case keys become camelCase (`tenant_id` -> `tenantId`).

Every command is thin: resolve settings, open a `Client`, one or two calls, print. User errors (bad URL,
connection refused, wrong password, 4xx answers) print one line on stderr and exit 1 (`output.fail`).

May import: `midonet.client`, `cli.settings`, `cli.output`.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from midonet.cli.output import fail, print_done, print_object, print_objects
from midonet.cli.settings import Connection, SettingsError, resolve
from midonet.client import Client, ClientError, Dto, camel_case
from midonet.client.catalog import singular

# Kinds created (and, when not listed at the top level, listed) under a parent: kind -> parent kinds.
CREATED_UNDER: dict[str, tuple[str, ...]] = {
    "ports": ("bridge", "router"),
    "rules": ("chain",),
    "routes": ("router",),
    "bgp_peers": ("router",),
    "bgp_networks": ("router",),
}

# --- options shared by the commands -------------------------------------------------------------------

ApiOpt = Annotated[str | None, typer.Option("--api", help="API base URI [env MIDONET_API_URL]", show_default=False)]
UserOpt = Annotated[str | None, typer.Option("--username", "-u", help="user [env MIDONET_USERNAME]")]
PasswordOpt = Annotated[str | None, typer.Option("--password", "-p", help="password [env MIDONET_PASSWORD]")]
ProjectOpt = Annotated[str | None, typer.Option("--project", help="project (tenant) [env MIDONET_PROJECT_ID]")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print the API's JSON")]
BridgeOpt = Annotated[str | None, typer.Option("--bridge", help="under this bridge (ports)")]
RouterOpt = Annotated[str | None, typer.Option("--router", help="under this router (ports, routes, BGP)")]
ChainOpt = Annotated[str | None, typer.Option("--chain", help="under this chain (rules)")]
ParentOpt = Annotated[str | None, typer.Option("--parent", metavar="KIND:ID",
                                               help="under any other parent, e.g. port-group:ID, pool:ID")]
KindArg = Annotated[str, typer.Argument(help="what: bridge(s), router(s), port(s), chain(s), rule(s) ...",
                                        show_default=False)]
IdArg = Annotated[str, typer.Argument(metavar="ID", show_default=False)]
FieldsArg = Annotated[list[str] | None, typer.Argument(metavar="[KEY=VALUE]...", help="members of the body",
                                                       show_default=False)]


@contextmanager
def session(ctx: typer.Context, options: Connection) -> Iterator[Client]:
    """A client for the resolved settings; every client error becomes one line on stderr and exit 1."""
    earlier = ctx.obj if isinstance(ctx.obj, Connection) else None
    try:
        settings = resolve(options.over(earlier), os.environ, Path.home())
    except SettingsError as e:
        fail(str(e))
    client = Client(settings.api_url, settings.username, settings.password, settings.project)
    try:
        yield client
    except ClientError as e:       # ApiError included: its str() names the fields and the status
        fail(str(e))
    finally:
        client.close()


def parse_fields(pairs: list[str] | None) -> Dto:
    """`["name=front", "adminStateUp=false", "tenant_id=acme"]` -> the JSON body; see the module docstring."""
    body: Dto = {}
    for pair in pairs or []:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            fail(f"expected KEY=VALUE, got {pair!r}")
        body[camel_case(key)] = parse_value(raw)
    return body


def parse_value(raw: str) -> Any:
    try:
        value = json.loads(raw)
    except ValueError:
        return raw
    if isinstance(value, float) and not math.isfinite(value):
        return raw                  # NaN / Infinity are not JSON the API takes
    return value


def parent_of(bridge: str | None, router: str | None, chain: str | None, parent: str | None) -> tuple[str, str] | None:
    """The (parent kind, id) given by --bridge / --router / --chain / --parent; at most one."""
    given = [(k, v) for k, v in (("bridge", bridge), ("router", router), ("chain", chain)) if v]
    if parent:
        kind, sep, obj_id = parent.partition(":")
        if not sep or not kind or not obj_id:
            fail(f"--parent wants KIND:ID, got {parent!r}")
        given.append((kind, obj_id))
    if len(given) > 1:
        fail("give only one parent (--bridge, --router, --chain or --parent)")
    return given[0] if given else None


def parent_hint(kind: str) -> str:
    parents = CREATED_UNDER.get(kind)
    if parents:
        return " or ".join(f"--{p} ID" for p in parents)
    return "--parent KIND:ID"


# --- the commands -------------------------------------------------------------------------------------

def list_objects(ctx: typer.Context, kind: KindArg, bridge: BridgeOpt = None, router: RouterOpt = None,
                 chain: ChainOpt = None, parent: ParentOpt = None,
                 tenant: Annotated[str | None, typer.Option("--tenant", help="only this tenant's")] = None,
                 as_json: JsonOpt = False, api: ApiOpt = None, username: UserOpt = None,
                 password: PasswordOpt = None, project: ProjectOpt = None) -> None:
    """List the objects of a kind (under a parent with --bridge/--router/--chain/--parent)."""
    under = parent_of(bridge, router, chain, parent)
    query = {"tenant_id": tenant} if tenant else {}
    with session(ctx, Connection(api, username, password, project)) as client:
        name = client.kind(kind)
        if under is not None:
            objs = client.list_children(under[0], under[1], name, **query)
        elif name not in client.catalog().listable:
            fail(f"{name} are listed under their parent: give {parent_hint(name)}")
        else:
            objs = client.list(name, **query)
    print_objects(objs, name, as_json)


def show_object(ctx: typer.Context, kind: KindArg, obj_id: IdArg, as_json: JsonOpt = False, api: ApiOpt = None,
                username: UserOpt = None, password: PasswordOpt = None, project: ProjectOpt = None) -> None:
    """Show one object, every member."""
    with session(ctx, Connection(api, username, password, project)) as client:
        name = client.kind(kind)
        obj = client.get(name, obj_id)
    print_object(obj, as_json, title=f"{singular(name)} {obj_id}")


def create_object(ctx: typer.Context, kind: KindArg, fields: FieldsArg = None, bridge: BridgeOpt = None,
                  router: RouterOpt = None, chain: ChainOpt = None, parent: ParentOpt = None,
                  as_json: JsonOpt = False, api: ApiOpt = None, username: UserOpt = None,
                  password: PasswordOpt = None, project: ProjectOpt = None) -> None:
    """Create an object from KEY=VALUE members (ports, rules, routes under their parent) and show it."""
    body = parse_fields(fields)
    under = parent_of(bridge, router, chain, parent)
    with session(ctx, Connection(api, username, password, project)) as client:
        name = client.kind(kind)
        if under is not None:
            obj = client.create_child(under[0], under[1], name, body)
        elif name in CREATED_UNDER or name not in client.catalog().listable:
            fail(f"a {singular(name)} is created under its parent: give {parent_hint(name)}")
        else:
            obj = client.create(name, body)
    print_object(obj, as_json, title=f"created {singular(name)} {obj.get('id', '')}")


def update_object(ctx: typer.Context, kind: KindArg, obj_id: IdArg, fields: FieldsArg = None,
                  as_json: JsonOpt = False, api: ApiOpt = None, username: UserOpt = None,
                  password: PasswordOpt = None, project: ProjectOpt = None) -> None:
    """Change members of an object (members not given keep their value) and show it."""
    body = parse_fields(fields)
    if not body:
        fail("nothing to change: give KEY=VALUE members")
    with session(ctx, Connection(api, username, password, project)) as client:
        name = client.kind(kind)
        obj = client.update(name, obj_id, body)
    print_object(obj, as_json, title=f"updated {singular(name)} {obj_id}")


def delete_objects(ctx: typer.Context, kind: KindArg,
                   obj_ids: Annotated[list[str], typer.Argument(metavar="ID...", show_default=False)],
                   as_json: JsonOpt = False, api: ApiOpt = None, username: UserOpt = None,
                   password: PasswordOpt = None, project: ProjectOpt = None) -> None:
    """Delete objects by id (what depends on them goes too, or the API refuses, as MidoNet does)."""
    with session(ctx, Connection(api, username, password, project)) as client:
        name = client.kind(kind)
        for obj_id in obj_ids:
            client.delete(name, obj_id)
            if not as_json:
                print_done(f"deleted {singular(name)} {obj_id}", as_json)
    if as_json:
        print_done("", as_json, {"deleted": obj_ids})


def register(app: typer.Typer) -> None:
    app.command("list", rich_help_panel="Resources")(list_objects)
    app.command("show", rich_help_panel="Resources")(show_object)
    app.command("create", rich_help_panel="Resources")(create_object)
    app.command("update", rich_help_panel="Resources")(update_object)
    app.command("delete", rich_help_panel="Resources")(delete_objects)
