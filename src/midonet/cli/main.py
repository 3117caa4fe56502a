"""The `midonet` command: the entry point (`midonet = midonet.cli.main:main`) and its command tree.

    midonet up | api                          run the all-in-one, or the API alone        (cli.serve)
    midonet agent --store URL --host-id UUID  one host's agent on the Linux datapath     (cli.agent)
    midonet list | show | create | update | delete KIND ...   any resource of the API  (cli.resources)
    midonet host register | list                                                        (cli.hosts)
    midonet link | unlink | bind | unbind | tunnel-zone-host   relations between objects  (cli.relations)
    midonet trace --step PORT_ID:SPEC ...     offline what-if simulation of packets      (cli.trace)
    midonet sandbox run FILE.yaml [--json]    a scenario on fake hosts, in one process   (cli.sandbox)
    midonet testbed run | up FILE.yaml        a scenario on namespaces with real agents  (cli.testbed)
    midonet testbed exec VM -- CMD | down     run in a VM / remove a dead testbed         (cli.testbed)
    midonet demo                              router, bridges, floating IP: ping and TCP (cli.demo)

Connection options (`--api`, `--username`, `--password`, `--project`) may come before the command or after
it; the environment and `~/.midonetrc` fill in the rest (cli.settings).

May import: every `cli` module.
"""

from __future__ import annotations

import typer

from midonet import __version__
from midonet.cli import agent, demo, hosts, relations, resources, sandbox, serve, testbed, trace
from midonet.cli.resources import ApiOpt, PasswordOpt, ProjectOpt, UserOpt
from midonet.cli.settings import Connection

app = typer.Typer(name="midonet", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  rich_markup_mode=None,   # help texts are plain: "[env MIDONET_API_URL]", "HOST:PORT[,...][/ROOT]"
                  help="MidoNet: virtual networks (bridges, routers, ports, rules ...) over a REST API.")


def version_callback(value: bool) -> None:
    if value:
        typer.echo(f"midonet {__version__}")
        raise typer.Exit()


@app.callback()
def root(ctx: typer.Context, api: ApiOpt = None, username: UserOpt = None, password: PasswordOpt = None,
         project: ProjectOpt = None,
         version: bool = typer.Option(False, "--version", callback=version_callback, is_eager=True,
                                      help="print the version and exit")) -> None:
    """MidoNet: virtual networks (bridges, routers, ports, rules ...) over a REST API."""
    ctx.obj = Connection(api, username, password, project)


serve.register(app)
agent.register(app)
resources.register(app)
hosts.register(app)
relations.register(app)
trace.register(app)
sandbox.register(app)
testbed.register(app)
demo.register(app)


def main() -> None:
    app()
