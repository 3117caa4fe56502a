"""The pieces of `midonet up` / `midonet api` that need no process: options, the admin password, users."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from midonet.api.auth import Role
from midonet.cli.serve import ServeError, admin_password, authenticator, default_data_dir, extra_users, parse_listen


@pytest.mark.parametrize(("text", "expected"), [
    ("127.0.0.1:8181", ("127.0.0.1", 8181)), ("0.0.0.0:80", ("0.0.0.0", 80)), ("[::1]:8181", ("::1", 8181)),
    ("localhost:0", ("localhost", 0)),
])
def test_parse_listen(text: str, expected: tuple[str, int]) -> None:
    assert parse_listen(text) == expected


@pytest.mark.parametrize("text", ["8181", "host:", ":8181", "host:port", "host:70000"])
def test_parse_listen_rejects(text: str) -> None:
    with pytest.raises(ServeError, match="HOST:PORT"):
        parse_listen(text)


def test_default_data_dir() -> None:
    assert default_data_dir({}) == Path("data")
    assert default_data_dir({"MIDONET_DATA_DIR": "/srv/midonet"}) == Path("/srv/midonet")


def test_admin_password_generated_once(tmp_path: Path) -> None:
    first = admin_password(tmp_path, {})
    assert first.origin == "generated" and len(first.password) >= 20
    path = tmp_path / "admin-password"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = admin_password(tmp_path, {})
    assert (again.origin, again.password) == ("file", first.password)


def test_admin_password_from_env_writes_nothing(tmp_path: Path) -> None:
    got = admin_password(tmp_path, {"MIDONET_ADMIN_PASSWORD": "s3cret"})
    assert (got.origin, got.password) == ("env", "s3cret")
    assert not (tmp_path / "admin-password").exists()


def test_users_file(tmp_path: Path) -> None:
    path = tmp_path / "users.json"
    assert extra_users(path) == ([], 3600.0)
    path.write_text(json.dumps({"token_ttl_seconds": 60, "users": [
        {"name": "alice", "password": "pw", "role": "tenant_admin", "tenant": "t"},
        {"name": "admin", "password": "other"}]}))
    users, ttl = extra_users(path)
    assert ttl == 60.0
    assert [(u.name, u.role, u.tenant) for u in users] == [("alice", Role.TENANT_ADMIN, "t")]


def test_users_file_malformed(tmp_path: Path) -> None:
    (tmp_path / "users.json").write_text('{"users": [{"name": "x"}]}')
    with pytest.raises(ServeError, match="not a valid users file"):
        authenticator(tmp_path, {"MIDONET_ADMIN_PASSWORD": "pw"})
