"""`midonet demo`: a tenant router, two bridges with two VMs each and a floating IP on this machine's namespaces,
then `ping` and a TCP transfer through them; everything torn down at the end (`midonet.testing.demo`). Needs root
(and what the testbed needs: clang, BPF, ZooKeeper); no `midonet up` is needed.

May import: `midonet.testing.demo`, `midonet.testbed`, `cli.output`.
"""

from __future__ import annotations

import logging
import signal
from typing import Annotated

import typer

from midonet.cli.output import fail


def _interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def demo(wait: Annotated[float, typer.Option("--wait", metavar="SECONDS",
                                             help="wait up to SECONDS for another testbed to finish")] = 0.0) -> None:
    """Build a small cloud on namespaces, show ping and TCP through a virtual router and a floating IP (root)."""
    from midonet.testbed import TestbedError, unavailable
    from midonet.testing.demo import run
    from midonet.testing.scenario.model import ScenarioError

    missing = unavailable()
    if missing is not None:
        fail(f"the demo cannot run here: {missing}")
    logging.getLogger("midonet").setLevel(logging.ERROR)
    signal.signal(signal.SIGTERM, _interrupted)
    try:
        ok = run(typer.echo, lock_wait=wait)
    except (ScenarioError, TestbedError, OSError) as e:
        fail(str(e))
    typer.echo("demo: all worked" if ok else "demo: something FAILED")
    if not ok:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("demo", rich_help_panel="Run")(demo)
