"""`midonet testbed down`: remove what a testbed that died left behind (`midonet.testbed.cleanup`).

Removes the namespaces `mn-underlay`, `mn-h<N>`, `mn-vm<N>`, the root's link `mn-ul-root` and the mounts and
files under /run/mn-testbed; refuses (one error line, status 1) while a testbed is running.

May import: `midonet.testbed`, `midonet.cli.output`.
"""

from __future__ import annotations

import typer

from midonet.cli.output import fail

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


def register(parent: typer.Typer) -> None:
    parent.add_typer(app, rich_help_panel="Run")
