"""Fixtures shared by every test directory.

`zookeeper`: one real ZooKeeper server for the whole run (started on first use, stopped by PID at the end);
yields its connection string. Tests skip only when Java or Debian's zookeeper jar is absent.

Leftover guard: network namespaces made during the run by a `NamespaceWorld` (named ``mn-<hex>-...``), and
datapath state directories (/run/mn-<hex>, bpffs mounts inside), still there at the end (a fixture that did not
clean up) are listed, removed, and fail the session. Only this run's worlds count: another test run on the same
machine keeps its own.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from midonet.testing.linux_rig import leftover_state, remove_state
from midonet.testing.namespaces import leftovers, sweep
from midonet.testing.zookeeper import ZooKeeperServer, unavailable_reason


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    left, state = leftovers(), leftover_state()
    if not left and not state:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        shown = " ".join([*left, *map(str, state)])
        reporter.write_line(f"left behind by tests (removed now): {shown}", red=True)
    for name in left:
        sweep(name)
    for root in state:
        remove_state(root)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(scope="session")
def zookeeper() -> Iterator[str]:
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(f"no ZooKeeper: {reason}")
    with ZooKeeperServer() as server:
        yield server.hosts
