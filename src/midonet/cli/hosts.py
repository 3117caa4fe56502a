"""`midonet host ...`: commands about hosts (hypervisors and gateways running an agent).

    midonet host register --id UUID --name NAME     admin only: record a host before its agent runs
    midonet host list                               the hosts, alive or not (same as `midonet list hosts`)

A host is normally registered by its own agent; `register` lets an operator (or a test bed) create the
record ahead of time with the API's admin-only `POST /hosts {id, name}` extension.

May import: `midonet.client`, `cli.resources`, `cli.output`, `cli.settings`.
"""

from __future__ import annotations

from typing import Annotated

import typer

from midonet.cli.output import print_object, print_objects
from midonet.cli.resources import ApiOpt, JsonOpt, PasswordOpt, ProjectOpt, UserOpt, session
from midonet.cli.settings import Connection

host_app = typer.Typer(name="host", help="Hosts: register one, list them.", no_args_is_help=True)


@host_app.command("register")
def register_host(ctx: typer.Context,
                  host_id: Annotated[str, typer.Option("--id", help="the host's UUID", show_default=False)],
                  name: Annotated[str, typer.Option("--name", help="the host's name", show_default=False)],
                  as_json: JsonOpt = False, api: ApiOpt = None, username: UserOpt = None,
                  password: PasswordOpt = None, project: ProjectOpt = None) -> None:
    """Register a host by id and name (admin only)."""
    with session(ctx, Connection(api, username, password, project)) as client:
        host = client.create("hosts", {"id": host_id, "name": name})
    print_object(host, as_json, title=f"registered host {host.get('id', host_id)}")


@host_app.command("list")
def list_hosts(ctx: typer.Context, as_json: JsonOpt = False, api: ApiOpt = None, username: UserOpt = None,
               password: PasswordOpt = None, project: ProjectOpt = None) -> None:
    """List the hosts."""
    with session(ctx, Connection(api, username, password, project)) as client:
        hosts = client.list("hosts")
    print_objects(hosts, "hosts", as_json)


def register(app: typer.Typer) -> None:
    app.add_typer(host_app, rich_help_panel="Resources")
