"""`midonet sandbox run FILE.yaml [--json]`: a whole deployment in one process, from a scenario file.

    midonet sandbox run examples/two-subnets.yaml
    midonet sandbox run examples/nat.yaml --json

The file (format: `docs/sandbox.md`) names hosts, a topology written as REST API bodies, VMs bound to ports, and
traffic with expectations. The sandbox starts an embedded store, the REST API and one fake host with a real agent
per host (`midonet.testing.sandbox`), creates everything through the API, plays the traffic and checks it.

Output: one line per step, PASS or FAIL, then the checks and what each VM received; with `--json`, a list with
one object per step (`step`, `ok`, `captured`, `checks`, `what`, `line`, and `error` when it failed). Exit status
0 only if every step passed; 1 for a failed step or a bad file (`error: FILE:LINE: WHERE: what` on stderr).

The fake hosts, the store and the API live only as long as the command: nothing is left behind.

May import: `midonet.testing` (the runner and the format), `cli.output`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from midonet.cli.output import fail, print_report

sandbox_app = typer.Typer(name="sandbox", no_args_is_help=True,
                          help="Run scenario files on fake hosts in one process (store, API and agents).")

FileArg = Annotated[Path, typer.Argument(metavar="FILE.yaml", help="the scenario file (see docs/sandbox.md)",
                                         show_default=False)]
JsonOpt = Annotated[bool, typer.Option("--json", help="print the steps as JSON: a list, one object per step")]


@sandbox_app.command("run")
def run(file: FileArg, as_json: JsonOpt = False) -> None:
    """Build the scenario's hosts, topology and VMs, play its traffic and check its expectations."""
    from midonet.testing.sandbox import run as run_sandbox
    from midonet.testing.scenario.model import ScenarioError
    from midonet.testing.scenario.parse import read

    logging.getLogger("midonet").setLevel(logging.ERROR)      # the agents' chatter is not the report
    try:
        report = run_sandbox(read(file))
    except ScenarioError as e:
        fail(str(e))
    print_report(report, as_json)


def register(app: typer.Typer) -> None:
    app.add_typer(sandbox_app, rich_help_panel="Simulation")


__all__ = ["register", "run"]
