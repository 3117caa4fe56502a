"""`midonet testbed down`: what it prints over `midonet.testbed.cleanup` (the cleanup itself runs in the system
tests)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

import midonet.testbed
from midonet.cli.main import app
from midonet.testbed import TestbedError


def invoke(monkeypatch: pytest.MonkeyPatch, cleanup: object) -> tuple[int, str]:
    monkeypatch.setattr(midonet.testbed, "cleanup", cleanup)
    result = CliRunner().invoke(app, ["testbed", "down"], catch_exceptions=False)
    return result.exit_code, result.output


def test_it_lists_what_it_removed(monkeypatch: pytest.MonkeyPatch) -> None:
    assert invoke(monkeypatch, lambda: ["mn-h1", "mn-underlay"]) == (0, "removed: mn-h1, mn-underlay\n")


def test_nothing_left(monkeypatch: pytest.MonkeyPatch) -> None:
    assert invoke(monkeypatch, lambda: []) == (0, "nothing to remove\n")


def test_a_running_testbed_is_one_error_line(monkeypatch: pytest.MonkeyPatch) -> None:
    def busy() -> list[str]:
        raise TestbedError("another testbed is running (process 42 holds /run/mn-testbed.lock)")

    code, output = invoke(monkeypatch, busy)
    assert code == 1
    assert output == "error: another testbed is running (process 42 holds /run/mn-testbed.lock)\n"
