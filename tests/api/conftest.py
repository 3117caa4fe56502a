"""Fixtures of the API tests: a real HTTP server over each store backend, users of every role, clients.

`api` is parametrised over the store backends ("memory" and "zookeeper", the latter on the real ZooKeeper
started by the session fixture `zookeeper`, with a fresh root per test). Users:

    admin / admin-pw            admin
    alice / alice-pw            tenant_admin of tenant-a
    bob   / bob-pw              tenant_admin of tenant-b
    carol / carol-pw            tenant_user  of tenant-a
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from midonet.api.auth import Authenticator, Role, User
from midonet.store.base import Store
from midonet.store.factory import open_store
from midonet.testing import midonetclient_shim
from midonet.testing.apiserver import ApiServer

USERS = [
    User("admin", "admin-pw", Role.ADMIN),
    User("alice", "alice-pw", Role.TENANT_ADMIN, "tenant-a"),
    User("bob", "bob-pw", Role.TENANT_ADMIN, "tenant-b"),
    User("carol", "carol-pw", Role.TENANT_USER, "tenant-a"),
]
PASSWORDS = {u.name: u.password for u in USERS}


@dataclass
class Api:
    """A running API server and the store behind it."""

    url: str
    store: Store
    backend: str

    def token(self, user: str = "admin") -> str:
        basic = base64.b64encode(f"{user}:{PASSWORDS[user]}".encode()).decode()
        r = httpx.post(f"{self.url}/login", headers={"Authorization": f"Basic {basic}"})
        assert r.status_code == 200, r.text
        token: str = r.json()["key"]
        return token

    def http(self, user: str = "admin") -> httpx.Client:
        """An httpx client logged in as `user`, with base_url at the API root."""
        return httpx.Client(base_url=self.url, headers={"X-Auth-Token": self.token(user)}, timeout=30)

    def mido(self, user: str = "admin") -> Any:
        """The real midonetclient `MidonetApi`, logged in as `user`."""
        return midonetclient_shim.login(self.url, user, PASSWORDS[user])


@pytest.fixture(params=["memory", "zookeeper"])
def api(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[Api]:
    if request.param == "memory":
        store = open_store("memory", owner="api", data_dir=tmp_path / "data")
    else:
        hosts = request.getfixturevalue("zookeeper")
        store = open_store(f"zookeeper://{hosts}/test-{uuid.uuid4().hex[:12]}", owner="api")
    try:
        with ApiServer(store, Authenticator(USERS)) as server:
            yield Api(server.url, store, request.param)
    finally:
        store.close()


@pytest.fixture
def admin(api: Api) -> Iterator[httpx.Client]:
    with api.http("admin") as client:
        yield client


def second_session(api: Api, owner: str) -> Store:
    """Another session on the store behind `api` (an agent's, a second API server's), on either backend;
    the caller closes it."""
    from midonet.store.memory import MemoryStore
    from midonet.store.zookeeper import ZooKeeperStore

    assert isinstance(api.store, MemoryStore | ZooKeeperStore)
    return api.store.connect(owner)
