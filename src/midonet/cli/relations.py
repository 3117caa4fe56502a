"""Commands for the relations between objects that are not objects of their own.

    midonet link PORT PEER                  link two interior ports (router-bridge, router-router)
    midonet unlink PORT                     undo it (both sides)
    midonet bind HOST PORT INTERFACE        bind a port to an interface of a host (an exterior port)
    midonet unbind HOST PORT
    midonet tunnel-zone-host ZONE HOST IP   make a host a member of a tunnel zone, with its underlay address

Each is one API call of MidoNet's v5 API (spec 7.3: port link, host port bindings, tunnel zone hosts); errors
print one line naming what was wrong, exit 1.

May import: `midonet.client`, `cli.resources`, `cli.output`, `cli.settings`.
"""

from __future__ import annotations

from typing import Annotated

import typer

from midonet.cli.output import print_object
from midonet.cli.resources import ApiOpt, JsonOpt, PasswordOpt, ProjectOpt, UserOpt, session
from midonet.cli.settings import Connection

Port = Annotated[str, typer.Argument(help="a port id", show_default=False)]
Host = Annotated[str, typer.Argument(help="a host id", show_default=False)]


def register(app: typer.Typer) -> None:
    panel = "Relations"

    @app.command("link", rich_help_panel=panel)
    def link(ctx: typer.Context, port: Port, peer: Annotated[str, typer.Argument(help="the port to link to")],
             api: ApiOpt = None, username: UserOpt = None, password: PasswordOpt = None,
             project: ProjectOpt = None) -> None:
        """Link two interior ports."""
        with session(ctx, Connection(api, username, password, project)) as client:
            client.link(port, peer)
        typer.echo(f"linked port {port} to port {peer}")

    @app.command("unlink", rich_help_panel=panel)
    def unlink(ctx: typer.Context, port: Port, api: ApiOpt = None, username: UserOpt = None,
               password: PasswordOpt = None, project: ProjectOpt = None) -> None:
        """Unlink an interior port (and its peer)."""
        with session(ctx, Connection(api, username, password, project)) as client:
            client.unlink(port)
        typer.echo(f"unlinked port {port}")

    @app.command("bind", rich_help_panel=panel)
    def bind(ctx: typer.Context, host: Host, port: Port,
             interface: Annotated[str, typer.Argument(help="the interface's name on that host")],
             as_json: JsonOpt = False, api: ApiOpt = None, username: UserOpt = None,
             password: PasswordOpt = None, project: ProjectOpt = None) -> None:
        """Bind a port to an interface of a host (admin only)."""
        with session(ctx, Connection(api, username, password, project)) as client:
            binding = client.bind(host, port, interface)
        print_object(binding, as_json, title=f"bound port {port} to {interface} on host {host}")

    @app.command("unbind", rich_help_panel=panel)
    def unbind(ctx: typer.Context, host: Host, port: Port, api: ApiOpt = None, username: UserOpt = None,
               password: PasswordOpt = None, project: ProjectOpt = None) -> None:
        """Unbind a port from its host (admin only)."""
        with session(ctx, Connection(api, username, password, project)) as client:
            client.unbind(host, port)
        typer.echo(f"unbound port {port} from host {host}")

    @app.command("tunnel-zone-host", rich_help_panel=panel)
    def tunnel_zone_host(ctx: typer.Context, zone: Annotated[str, typer.Argument(help="a tunnel zone id")],
                         host: Host, ip: Annotated[str, typer.Argument(help="the host's underlay address")],
                         as_json: JsonOpt = False, api: ApiOpt = None, username: UserOpt = None,
                         password: PasswordOpt = None, project: ProjectOpt = None) -> None:
        """Make a host a member of a tunnel zone (admin only)."""
        with session(ctx, Connection(api, username, password, project)) as client:
            member = client.add_tunnel_zone_host(zone, host, ip)
        print_object(member, as_json, title=f"host {host} in tunnel zone {zone} at {ip}")
