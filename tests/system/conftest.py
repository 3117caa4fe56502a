"""System tests: real kernel traffic between network namespaces through the Linux datapath (root).

Every test gets a fresh `LinuxRig` (namespaces prefixed ``mn-``, bpffs under /run/mn-...) torn down by its
fixture's finalizer, even on failure; tests/conftest.py lists (and removes) any ``mn-`` namespace left at the end
of the session. The whole directory skips, saying why, when the Linux datapath cannot run here.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from midonet.datapath.linux import LinuxDatapath, unavailable
from midonet.testing.linux_rig import LinuxRig


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    missing = unavailable()
    if missing is None:
        return
    skip = pytest.mark.skip(reason=f"Linux datapath: {missing}")
    for item in items:
        if "tests/system/" in str(item.fspath):
            item.add_marker(skip)


@pytest.fixture
def rig() -> Iterator[LinuxRig]:
    made = LinuxRig()
    try:
        yield made
    finally:
        made.close()


@pytest.fixture
def dp(rig: LinuxRig) -> LinuxDatapath:
    """One host's datapath with ports on its interfaces a, b and c (numbered in that order)."""
    made = rig.add_linux_host("h1", "10.99.0.1", ["a", "b", "c"])
    for name in "abc":
        made.add_port(name)
    return made
