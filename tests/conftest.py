"""Fixtures shared by every test directory.

`zookeeper`: one real ZooKeeper server for the whole run (started on first use, stopped by PID at the end);
yields its connection string. Tests skip only when Java or Debian's zookeeper jar is absent.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from midonet.testing.zookeeper import ZooKeeperServer, unavailable_reason


@pytest.fixture(scope="session")
def zookeeper() -> Iterator[str]:
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(f"no ZooKeeper: {reason}")
    with ZooKeeperServer() as server:
        yield server.hosts
