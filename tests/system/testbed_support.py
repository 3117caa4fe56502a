"""What the testbed system tests share: a testbed for a module, waiting for the agents, the agents' logs for a
failure message, the tunnel zone, the kernel datapath's counters (did the traffic go through the kernel), and a
`midonet` testbed command run as a process."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from midonet.client import Client
from midonet.datapath.linux import layout
from midonet.datapath.linux.kernel import KernelTables
from midonet.testbed import Host, Testbed, Vm, cleanup
from midonet.testbed.testbed import STATE_ROOT, TestbedError, midonet_command

WAIT = 30.0              # seconds a change may take to show in the traffic
COUNT = 5                # pings of `assert_kernel_forwards`


@contextmanager
def fresh_testbed(lock_wait: float = 120.0) -> Iterator[Testbed]:
    """A testbed up, removed at the end whatever happens. Fresh: what a dead testbed left is removed first; waits up
    to `lock_wait` s for another testbed of this machine (one at a time) to finish."""
    deadline = time.monotonic() + lock_wait
    while True:
        try:
            cleanup()
            break
        except TestbedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)
    bed = Testbed(lock_wait=30)
    bed.up()
    try:
        yield bed
    finally:
        bed.down()


def logs(bed: Testbed) -> str:
    """The tails of the agents' logs and the API's, for an assertion's message."""
    api = STATE_ROOT / "api.log"
    tail = api.read_text(errors="replace")[-3000:] if api.exists() else ""
    return "\n".join([f"--- {h.netns} ---\n{h.log_tail()}" for h in bed.hosts] + [f"--- api ---\n{tail}"])


def wait_alive(bed: Testbed, client: Client) -> None:
    """Wait until the API says every host's agent is alive."""
    deadline = time.monotonic() + WAIT
    wanted = {h.host_id for h in bed.hosts}
    while True:
        alive = {h["id"] for h in client.list("hosts") if h.get("alive")}
        if wanted <= alive:
            return
        dead = [h.netns for h in bed.hosts if not h.alive()]
        assert not dead and time.monotonic() < deadline, f"agents not alive: {dead}\n{logs(bed)}"
        time.sleep(0.2)


def tunnel_zone(bed: Testbed, client: Client) -> str:
    """A VXLAN tunnel zone holding every host at its underlay address; its id."""
    zone = client.create("tunnel_zones", {"name": "tz", "type": "vxlan"})
    for host in bed.hosts:
        client.add_tunnel_zone_host(zone["id"], host.host_id, host.address)
    return str(zone["id"])


def kernel_counters(host: Host) -> tuple[int, int]:
    """(hits, misses) of the host's kernel datapath, read from its pinned maps."""
    tables = KernelTables.open(Path(host.bpffs) / "tc" / "globals")
    try:
        counted = tables.counters()
        return counted[layout.Counter.HITS], counted[layout.Counter.MISSES]
    finally:
        tables.close()


def assert_kernel_forwards(bed: Testbed, vm_from: Vm, ip: str, hosts: tuple[Host, ...]) -> None:
    """`ping -c COUNT` answers, and all but the first request went through the kernel on every host."""
    before = [kernel_counters(h) for h in hosts]
    result = vm_from.ping(ip, count=COUNT)
    assert result.returncode == 0, f"{result.stdout}\n{logs(bed)}"
    after = [kernel_counters(h) for h in hosts]
    # A new `ping` process has a new ICMP echo id, which the ingress host's flow matches on: its first request is
    # one miss there. Every other packet (requests and replies, on both hosts) goes through the kernel.
    misses = [a[1] - b[1] for a, b in zip(after, before, strict=True)]
    hits = [a[0] - b[0] for a, b in zip(after, before, strict=True)]
    assert sum(misses) <= 1, (before, after)
    assert all(h >= 2 * COUNT - 1 for h in hits), (before, after)


LOCK_WAIT = 600          # seconds a `midonet` testbed command waits for another testbed of this machine
RUN_TIMEOUT = 300        # seconds it may then run


def run_midonet(*args: str) -> subprocess.CompletedProcess[str]:
    """`midonet ARGS --wait LOCK_WAIT` as a process, as a user runs it. If it overruns it is sent SIGTERM (it tears
    its testbed down then), then SIGKILL, and `midonet.testbed.cleanup()` removes what it left; the test fails."""
    process = subprocess.Popen([*midonet_command(), *args, "--wait", str(LOCK_WAIT)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = process.communicate(timeout=LOCK_WAIT + RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.kill(process.pid, signal.SIGTERM)
        try:
            out, err = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            out, err = process.communicate()
            with contextlib.suppress(TestbedError):
                cleanup()
        pytest.fail(f"midonet {' '.join(args)} did not finish\n{out}\n{err}")
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)
