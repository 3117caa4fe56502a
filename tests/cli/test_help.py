"""`--help` of every `midonet` command: it prints (no crash on a bracket in a help text) and shows the option
hints written in brackets ("[env MIDONET_API_URL]", "HOST:PORT[,...][/ROOT]"), which markup once swallowed."""

from __future__ import annotations

from collections.abc import Iterator

import typer
from typer.testing import CliRunner

from midonet.cli.main import app


def commands(group: object, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every command path under `group` (typer's own click: a group is what has `commands`)."""
    for name, command in getattr(group, "commands", {}).items():
        yield (*path, name)
        yield from commands(command, (*path, name))


def test_every_command_prints_its_help_with_its_bracketed_hints() -> None:
    found = list(commands(typer.main.get_command(app)))
    assert {("up",), ("agent",), ("testbed", "run")} <= set(found)
    for path in found:
        result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
        assert result.exit_code == 0, (path, result.output, result.exception)
        assert "Usage:" in result.output, path
    hints = {("up",): "zookeeper://HOST:PORT[,...][/ROOT]", ("agent",): "zookeeper://HOST:PORT[,...][/ROOT]",
             ("list",): "[env MIDONET_API_URL]"}
    for path, hint in hints.items():
        assert hint in CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "200"}).output, path
