"""`midonet agent`: option handling (the running agent is exercised by tests/system/test_testbed_l2.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from midonet.cli import agent as agent_cli
from midonet.cli.agent import AgentOptionError, AgentOptions
from midonet.cli.main import app

HOST = "6f1c2a8e-0d4b-4a57-9c53-1d2e3f405162"
STORE = "zookeeper://10.99.0.254:2181/mn"


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["agent", *args], catch_exceptions=False)
    return result.exit_code, result.output


def test_good_options_are_normalised() -> None:
    options = AgentOptions.parse(STORE, HOST.upper(), None, Path("d"), Path("b"), "10.99.0.1")
    assert options == AgentOptions(STORE, HOST, HOST, Path("d"), Path("b"), "10.99.0.1")


def test_the_host_name_is_kept_when_given() -> None:
    assert AgentOptions.parse(STORE, HOST, "h1").host_name == "h1"


@pytest.mark.parametrize(("args", "word"), [
    (("memory", HOST), "--store"),
    (("zookeeper://", HOST), "--store"),
    ((STORE, "not-a-uuid"), "--host-id"),
    ((STORE, HOST, " "), "--host-name"),
    ((STORE, HOST, None, None, None, "10.99.0"), "--tunnel-ip"),
])
def test_bad_options_are_refused(args: tuple[str, ...], word: str) -> None:
    with pytest.raises(AgentOptionError, match=word):
        AgentOptions.parse(*args)  # type: ignore[arg-type]


@pytest.mark.parametrize("args", [
    ("--host-id", HOST),
    ("--store", STORE),
    ("--store", STORE, "--host-id", "x"),
    ("--store", STORE, "--host-id", HOST, "--tunnel-ip", "nope"),
])
def test_a_bad_command_line_is_one_error_line(args: tuple[str, ...], monkeypatch: pytest.MonkeyPatch) -> None:
    def never(options: AgentOptions) -> int:
        raise AssertionError("the agent must not start")

    monkeypatch.setattr(agent_cli, "run", never)
    code, output = invoke(*args)
    lines = output.strip().splitlines()
    assert code == 1
    assert len(lines) == 1 and lines[0].startswith("error: ")


def test_good_options_reach_run(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[AgentOptions] = []

    def fake(options: AgentOptions) -> int:
        seen.append(options)
        return 0

    monkeypatch.setattr(agent_cli, "run", fake)
    code, _ = invoke("--store", STORE, "--host-id", HOST, "--host-name", "h1", "--bpffs", "/run/mn-x")
    assert code == 0
    assert seen == [AgentOptions(STORE, HOST, "h1", None, Path("/run/mn-x"), None)]
