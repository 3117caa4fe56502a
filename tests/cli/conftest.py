"""Fixtures of the client and CLI tests: a real API server over the embedded store, and a CLI runner.

Users: admin / admin-pw (admin), alice / alice-pw (tenant_admin of tenant-a). The `cli` fixture runs the
`midonet` command in-process (typer's CliRunner) with a temporary HOME and no MIDONET_* variables of the
caller's environment, pointed at the server unless a test says otherwise.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from midonet.api.auth import Authenticator, Role, User
from midonet.cli.main import app
from midonet.client import Client
from midonet.store.factory import open_store
from midonet.testing.apiserver import ApiServer

USERS = [User("admin", "admin-pw", Role.ADMIN), User("alice", "alice-pw", Role.TENANT_ADMIN, "tenant-a")]
ENV_VARS = ("MIDONET_API_URL", "MIDONET_USERNAME", "MIDONET_PASSWORD", "MIDONET_PROJECT_ID", "MIDONET_DATA_DIR",
            "MIDONET_ADMIN_PASSWORD")


@dataclass
class Server:
    url: str
    auth: Authenticator

    def client(self, user: str = "admin", password: str | None = None) -> Client:
        return Client(self.url, user, password or f"{user}-pw")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    store = open_store("memory", owner="api", data_dir=tmp_path / "store")
    auth = Authenticator(USERS)
    try:
        with ApiServer(store, auth) as api:
            yield Server(api.url, auth)
    finally:
        store.close()


@pytest.fixture
def admin(server: Server) -> Iterator[Client]:
    with server.client() as client:
        yield client


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


Cli = Callable[..., Result]


@pytest.fixture
def cli(server: Server, home: Path) -> Cli:
    """`cli("list", "bridges", env={...})`: run `midonet` against the server as admin (env overrides)."""
    def run(*args: str, env: dict[str, str | None] | None = None) -> Result:
        full: dict[str, str | None] = dict.fromkeys(ENV_VARS)
        full |= {"HOME": str(home), "COLUMNS": "200", "MIDONET_API_URL": server.url,
                 "MIDONET_USERNAME": "admin", "MIDONET_PASSWORD": "admin-pw"}
        full |= env or {}
        return CliRunner().invoke(app, list(args), env=full, catch_exceptions=False)
    return run
