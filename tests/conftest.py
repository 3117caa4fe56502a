"""Fixtures shared by every test directory.

`zookeeper`: one real ZooKeeper server for the whole run (started on first use, stopped by PID at the end);
yields its connection string. Tests skip only when Java or Debian's zookeeper jar is absent.

Leftover guard: network namespaces named ``mn-...`` that appeared during the run and are still there at the end
(a fixture that did not clean up) are listed, removed, and fail the session.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from midonet.testing.namespaces import PREFIX, namespaces, sweep
from midonet.testing.zookeeper import ZooKeeperServer, unavailable_reason

_namespaces_before: set[str] = set()


def _namespaces() -> set[str]:
    return set(namespaces(PREFIX)) if shutil.which("ip") else set()


def pytest_sessionstart(session: pytest.Session) -> None:
    _namespaces_before.update(_namespaces())


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    left = sorted(_namespaces() - _namespaces_before)
    if not left:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"leftover network namespaces (removed now): {' '.join(left)}", red=True)
    for name in left:
        sweep(name)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(scope="session")
def zookeeper() -> Iterator[str]:
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(f"no ZooKeeper: {reason}")
    with ZooKeeperServer() as server:
        yield server.hosts
