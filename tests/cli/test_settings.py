"""Connection settings: option > environment > ~/.midonetrc > default, each setting on its own."""

from __future__ import annotations

from pathlib import Path

import pytest

from midonet.cli.settings import Connection, Settings, SettingsError, resolve
from midonet.client import DEFAULT_API_URL

from .conftest import Cli, Server


def write_rc(home: Path, **values: str) -> None:
    body = "".join(f"{k} = {v}\n" for k, v in values.items())
    (home / ".midonetrc").write_text(f"[cli]\n{body}")


NO_ENV: dict[str, str | None] = {"MIDONET_API_URL": None, "MIDONET_USERNAME": None, "MIDONET_PASSWORD": None}


def test_rc_file_alone_is_enough(cli: Cli, server: Server, home: Path) -> None:
    write_rc(home, api_url=server.url, username="admin", password="admin-pw", project_id="admin")
    result = cli("list", "bridges", env=NO_ENV)
    assert result.exit_code == 0, result.stderr


def test_environment_beats_rc(cli: Cli, server: Server, home: Path) -> None:
    write_rc(home, api_url=server.url, username="admin", password="admin-pw")
    wrong = cli("list", "bridges", env={**NO_ENV, "MIDONET_PASSWORD": "from-env"})
    assert wrong.exit_code == 1 and "refused" in wrong.stderr
    right = cli("list", "bridges", env={**NO_ENV, "MIDONET_USERNAME": "alice", "MIDONET_PASSWORD": "alice-pw"})
    assert right.exit_code == 0, right.stderr


def test_option_beats_environment(cli: Cli, server: Server, home: Path) -> None:
    write_rc(home, api_url="http://127.0.0.1:9/midonet-api", password="from-rc")
    env = {**NO_ENV, "MIDONET_API_URL": "http://127.0.0.1:9/midonet-api", "MIDONET_PASSWORD": "from-env"}
    assert cli("list", "bridges", env=env).exit_code == 1
    after = cli("list", "bridges", "--api", server.url, "--password", "admin-pw", env=env)
    assert after.exit_code == 0, after.stderr
    before = cli("--api", server.url, "--password", "admin-pw", "list", "bridges", env=env)
    assert before.exit_code == 0, before.stderr
    # an option after the command beats the same option before it
    both = cli("--password", "admin-pw", "list", "bridges", "--api", server.url, "--password", "wrong", env=env)
    assert both.exit_code == 1 and "refused" in both.stderr


def test_project_is_sent_at_login(cli: Cli) -> None:
    env = {"MIDONET_USERNAME": "alice", "MIDONET_PASSWORD": "alice-pw"}
    assert cli("list", "bridges", "--project", "tenant-a", env=env).exit_code == 0
    other = cli("list", "bridges", "--project", "tenant-b", env=env)
    assert other.exit_code == 1 and "not a member" in other.stderr


def test_missing_password_is_a_clear_error(cli: Cli) -> None:
    result = cli("list", "bridges", env=NO_ENV)
    assert result.exit_code == 1
    assert result.stderr.startswith("error: no password: give --password, set MIDONET_PASSWORD")


def test_resolve_precedence_per_setting(tmp_path: Path) -> None:
    write_rc(tmp_path, api_url="http://rc/midonet-api", username="rc-user", password="rc-pw", project_id="rc-p")
    env = {"MIDONET_USERNAME": "env-user", "MIDONET_PASSWORD": "env-pw"}
    got = resolve(Connection(password="opt-pw"), env, tmp_path)
    assert got == Settings("http://rc/midonet-api", "env-user", "opt-pw", "rc-p")


def test_resolve_defaults(tmp_path: Path) -> None:
    assert resolve(Connection(password="pw"), {}, tmp_path) == Settings(DEFAULT_API_URL, "admin", "pw", None)


def test_rc_without_cli_section_is_ignored(tmp_path: Path) -> None:
    (tmp_path / ".midonetrc").write_text("[other]\npassword = x\n")
    with pytest.raises(SettingsError, match="no password"):
        resolve(Connection(), {}, tmp_path)


def test_malformed_rc_is_reported(cli: Cli, home: Path) -> None:
    (home / ".midonetrc").write_text("this is not ini\n")
    result = cli("list", "bridges")
    assert result.exit_code == 1 and ".midonetrc: cannot read it" in result.stderr
