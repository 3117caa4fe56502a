"""`midonet testbed run FILE.yaml [--json]`: a scenario file on real namespaces (`midonet.testing.testbed_run`);
`midonet testbed down`: remove what a testbed that died left behind (`midonet.testbed.cleanup`).

`run` takes the same file as `midonet sandbox run` (docs/sandbox.md) and reports the same way (exit 0 only if every
step passed); the hosts' `tunnel_ip` is replaced by their testbed underlay address. Everything goes at the end.

Removes the namespaces `mn-underlay`, `mn-h<N>`, `mn-vm<N>`, the root's link `mn-ul-root` and the mounts and
files under /run/mn-testbed; refuses (one error line, status 1) while a testbed is running.

May import: `midonet.testbed`, `midonet.testing` (the runner and the format), `midonet.cli.output`.
"""

from __future__ import annotations

import logging
import signal
from pathlib import Path
from typing import Annotated

import typer

from midonet.cli.output import fail, print_report

app = typer.Typer(name="testbed", no_args_is_help=True, help="Network-namespace testbeds on this machine.")


@app.command("down")
def down() -> None:
    """Remove a dead testbed's namespaces, links, mounts and files (needs root)."""
    from midonet.testbed import TestbedError, cleanup

    try:
        removed = cleanup()
    except (TestbedError, OSError) as e:
        fail(str(e))
    typer.echo(f"removed: {', '.join(removed)}" if removed else "nothing to remove")


def _interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


FileArg = Annotated[Path, typer.Argument(metavar="FILE.yaml", help="the scenario file (see docs/sandbox.md)",
                                         show_default=False)]
JsonOpt = Annotated[bool, typer.Option("--json", help="print the steps as JSON: a list, one object per step")]
WaitOpt = Annotated[float, typer.Option("--wait", metavar="SECONDS",
                                        help="wait up to SECONDS for another testbed of this machine to finish")]


@app.command("run")
def run(file: FileArg, as_json: JsonOpt = False, wait: WaitOpt = 0.0) -> None:
    """Build the scenario on namespaces with real agents, play its traffic with real packets, tear it down (root)."""
    from midonet.testbed import TestbedError
    from midonet.testing.scenario.model import ScenarioError
    from midonet.testing.scenario.parse import read
    from midonet.testing.testbed_run import run as run_testbed

    logging.getLogger("midonet").setLevel(logging.ERROR)
    signal.signal(signal.SIGTERM, _interrupted)      # SIGTERM tears the testbed down too
    try:
        report = run_testbed(read(file), log=lambda line: typer.echo(f"testbed: {line}", err=True),
                             lock_wait=wait)
    except (ScenarioError, TestbedError, OSError) as e:
        fail(str(e))
    print_report(report, as_json)


@app.command("up")
def up(file: FileArg, wait: WaitOpt = 0.0) -> None:
    """Build the scenario on namespaces (no traffic) and keep it running until Ctrl-C or SIGTERM (root)."""
    import json

    from midonet.testbed import TestbedError
    from midonet.testbed.testbed import STATE_ROOT
    from midonet.testing.scenario.model import ScenarioError
    from midonet.testing.scenario.parse import read
    from midonet.testing.testbed_run import TestbedRun

    logging.getLogger("midonet").setLevel(logging.ERROR)
    signal.signal(signal.SIGTERM, _interrupted)
    runner = TestbedRun(read(file), log=lambda line: typer.echo(f"testbed: {line}", err=True), lock_wait=wait)
    try:
        runner.start()
        (STATE_ROOT / "vms.json").write_text(json.dumps({n: vm.netns for n, vm in runner.vms.items()}))
        typer.echo(f"{file}: {runner.setup_summary()}; the API: {runner.bed.api_url} (admin / {runner.bed.password})")
        for name, vm in runner.vms.items():
            typer.echo(f"  {name:<12} {vm.netns:<8} on {vm.host.netns:<6} {vm.mac}  {vm.address or '-'}"
                       f"{'  gw ' + vm.gateway if vm.gateway else ''}")
        typer.echo("enter one: midonet testbed exec VM -- CMD ...   (e.g. midonet testbed exec "
                   f"{next(iter(runner.vms), 'VM')} -- ip addr); Ctrl-C tears it all down")
        signal.pause()
    except (ScenarioError, TestbedError, OSError) as e:
        fail(str(e))
    except KeyboardInterrupt:
        typer.echo("tearing down", err=True)
    finally:
        runner.close()


@app.command("exec", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def exec_(vm: Annotated[str, typer.Argument(help="a VM of `midonet testbed up` (its name in the file, or mn-vmN)")],
          command: Annotated[list[str], typer.Argument(help="the command and its arguments (after --)")]) -> None:
    """Run a command in a VM's namespace of the running testbed; its exit status is this command's."""
    import json
    import subprocess

    from midonet.testbed.testbed import STATE_ROOT, netns_names

    try:
        names: dict[str, str] = json.loads((STATE_ROOT / "vms.json").read_text())
    except (OSError, ValueError):
        names = {}
    ns = names.get(vm, vm)
    if ns not in netns_names() or not ns.startswith("mn-vm"):
        fail(f"no VM {vm!r} in a running testbed (VMs: {', '.join(names) or 'none'})")
    raise typer.Exit(subprocess.run(["ip", "netns", "exec", ns, *command], check=False).returncode)


def register(parent: typer.Typer) -> None:
    parent.add_typer(app, rich_help_panel="Run")
