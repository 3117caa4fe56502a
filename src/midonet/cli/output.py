"""How the CLI shows objects and errors: rich tables for people, `--json` for programs, one-line errors.

    objects   a list is a table, one row per object, with the columns that say most (the kind's usual ones
              first, then id, name, type ...) as many as fit the terminal; links and always-empty members
              are left out (`show ID` or `--json` gives every member)
    object    one object is a two-column table, member and value, every member but hypermedia links
    --json    the API's JSON, as it came, indented
    errors    `error: <what>` on stderr, one line; `fail()` exits with status 1

May import: `midonet.client` (for the `Dto` type). Writes to stdout/stderr only.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from typing import Any, NoReturn, Protocol

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from midonet.client import Dto

FIRST_COLUMNS = ("id", "name", "type")
PIPE_WIDTH = 200            # table width when stdout is not a terminal (and COLUMNS is not set)

# The columns that say most about the common kinds, in order; other members follow while the width allows.
KIND_COLUMNS: dict[str, tuple[str, ...]] = {
    "bridges": ("id", "name", "tenantId", "adminStateUp"),
    "routers": ("id", "name", "tenantId", "adminStateUp"),
    "ports": ("id", "type", "deviceId", "portAddress", "portSubnet", "vlanId", "peerId", "hostId",
              "interfaceName", "active"),
    "routes": ("id", "type", "dstNetworkAddr", "dstNetworkLength", "nextHopGateway", "nextHopPort", "weight"),
    "rules": ("id", "position", "type", "flowAction", "nwProto", "nwSrcAddress", "nwDstAddress", "jumpChainId"),
    "chains": ("id", "name", "tenantId"),
    "hosts": ("id", "name", "alive", "addresses"),
}


def console() -> Console:
    # Built per call so that tests redirecting stdout (CliRunner) see the output.
    out = Console(highlight=False, soft_wrap=False)
    if not out.is_terminal and not os.environ.get("COLUMNS"):
        out = Console(highlight=False, soft_wrap=False, width=PIPE_WIDTH)
    return out


def fail(message: str) -> NoReturn:
    """Print `error: message` on stderr, one line, and exit with status 1."""
    typer.echo(f"error: {' '.join(message.split())}", err=True)
    raise typer.Exit(1)


def print_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, sort_keys=False))


class Reported(Protocol):
    """A scenario run's report (`testing.scenario.checks.Report`, which cli may not import at module level)."""

    @property
    def ok(self) -> bool: ...

    def lines(self) -> list[str]: ...

    def to_json(self) -> Any: ...


def print_report(report: Reported, as_json: bool) -> None:
    """A scenario run's report, for people or (`--json`) programs; exit status 1 unless every step passed."""
    if as_json:
        print_json(report.to_json())
    else:
        for line in report.lines():
            typer.echo(line)
    if not report.ok:
        raise typer.Exit(1)


def is_link(key: str, value: Any) -> bool:
    """A hypermedia member (`uri`, `ports: "http://.../ports"`): noise in a table."""
    return key == "uri" or (isinstance(value, str) and value.startswith(("http://", "https://")))


def is_empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def cell(value: Any) -> str:
    """A member's value as table text."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ", ".join(cell(v) if not isinstance(v, (dict, list)) else json.dumps(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value)
    return str(value)


def columns(objs: Sequence[Dto], kind: str, width: int) -> list[str]:
    """The members worth a column, most telling first, as many as fit in `width`.

    Links and members empty in every row are left out; the kind's usual columns (KIND_COLUMNS) come first,
    then id/name/type, then the rest in the API's order. The id column is always shown.
    """
    seen: list[str] = []
    for obj in objs:
        for key, value in obj.items():
            if key not in seen and not is_link(key, value):
                seen.append(key)
    useful = [k for k in seen if any(not is_empty(o.get(k)) for o in objs)]
    order = [*KIND_COLUMNS.get(kind, ()), *FIRST_COLUMNS, *useful]
    chosen: list[str] = []
    used = 1
    for key in dict.fromkeys(order):
        if key not in useful:
            continue
        need = max(len(key), *(len(cell(o.get(key))) for o in objs)) + 3
        if used + need <= width or key == "id":
            chosen.append(key)
            used += need
    return chosen


def print_objects(objs: Sequence[Dto], kind: str, as_json: bool) -> None:
    """A table of `objs` (of `kind`, a path segment such as `port_groups`), or their JSON."""
    if as_json:
        print_json(list(objs))
        return
    out = console()
    if not objs:
        out.print(f"no {kind.replace('_', ' ')}")
        return
    cols = columns(objs, kind, out.width)
    table = Table(box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False, show_edge=False)
    for col in cols:
        table.add_column(col, no_wrap=col == "id", overflow="fold")
    for obj in objs:
        table.add_row(*(cell(obj.get(c)) for c in cols))
    out.print(table)


def print_object(obj: Dto, as_json: bool, title: str | None = None) -> None:
    if as_json:
        print_json(obj)
        return
    table = Table(show_header=False, title=title, title_justify="left", box=None, padding=(0, 2, 0, 0))
    table.add_column("member", style="bold", no_wrap=True)
    table.add_column("value", overflow="fold")
    for key, value in ordered_members(obj):
        table.add_row(key, cell(value))
    console().print(table)


def ordered_members(obj: Dto) -> Iterable[tuple[str, Any]]:
    """id, name, type first, then the rest in the API's order; links left out."""
    firsts = [(k, obj[k]) for k in FIRST_COLUMNS if k in obj]
    rest = [(k, v) for k, v in obj.items() if k not in FIRST_COLUMNS and not is_link(k, v)]
    return firsts + rest


def print_done(message: str, as_json: bool, value: Any = None) -> None:
    """A confirmation (`deleted port ...`); with --json, `value` as JSON instead."""
    if as_json:
        print_json(value)
    else:
        typer.echo(message)
