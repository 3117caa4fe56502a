"""The testbed leaves nothing behind: not after an exception inside it, and `cleanup()` removes what a killed
testbed left (namespaces, the root's underlay link, bpffs mounts)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator

import pytest

from midonet.testbed import Testbed, cleanup, testbed, unavailable

pytestmark = pytest.mark.skipif(unavailable() is not None, reason=f"testbed: {unavailable()}")


def ours() -> list[str]:
    return [ns for ns in testbed.netns_names() if testbed.OURS.match(ns)]


def mounts_under_state_root() -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if line.split()[4].startswith(str(testbed.STATE_ROOT))]


def test_an_exception_inside_leaves_nothing(testbed_guard: None) -> None:
    pids: list[int] = []
    with pytest.raises(RuntimeError, match="boom"), Testbed() as bed:
        host = bed.add_host()
        bed.add_vm(host, "10.0.0.1/24")
        assert bed.zookeeper is not None and bed.api_process is not None and host.process is not None
        pids += [p for p in (bed.zookeeper.pid, bed.api_process.pid, host.process.pid) if p is not None]
        raise RuntimeError("boom")
    assert ours() == []
    assert mounts_under_state_root() == []
    assert not testbed.STATE_ROOT.exists()
    assert subprocess.run(["ip", "link", "show", testbed.ROOT_LINK], capture_output=True).returncode != 0
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_cleanup_removes_a_dead_testbeds_leftovers(testbed_guard: None) -> None:
    subprocess.run(["ip", "netns", "add", "mn-h1"], check=True)
    subprocess.run(["ip", "netns", "add", "mn-underlay"], check=True)
    subprocess.run(["ip", "link", "add", testbed.ROOT_LINK, "type", "veth", "peer", "name", "root", "netns",
                    "mn-underlay"], check=True)
    bpffs = testbed.STATE_ROOT / "h1" / "bpffs"
    bpffs.mkdir(parents=True)
    subprocess.run(["mount", "-t", "bpf", "bpf", str(bpffs)], check=True)
    removed = cleanup()
    assert sorted(removed) == sorted(["mn-h1", "mn-underlay", testbed.ROOT_LINK])
    assert ours() == [] and mounts_under_state_root() == [] and not testbed.STATE_ROOT.exists()


@pytest.fixture
def testbed_guard() -> Iterator[None]:
    cleanup()
    try:
        yield None
    finally:
        cleanup()
