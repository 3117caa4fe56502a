"""`midonet demo` end to end: it builds its cloud on namespaces, shows ping and a TCP transfer working through a
router, two bridges and a floating IP, tears it all down and exits 0.

Runs the command as a process, waiting for another testbed of this machine to finish (`--wait`); if it overruns
it is sent SIGTERM (it tears down then), then SIGKILL, and `midonet.testbed.cleanup()` removes what it left.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess

import pytest

from midonet.testbed import TestbedError, cleanup, unavailable
from midonet.testbed.testbed import midonet_command

pytestmark = pytest.mark.skipif(unavailable() is not None, reason=f"testbed: {unavailable()}")

LOCK_WAIT = 600
RUN_TIMEOUT = 300


def test_demo_pings_and_transfers() -> None:
    process = subprocess.Popen([*midonet_command(), "demo", "--wait", str(LOCK_WAIT)], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        out, _ = process.communicate(timeout=LOCK_WAIT + RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.kill(process.pid, signal.SIGTERM)
        try:
            out, _ = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            out, _ = process.communicate()
            with contextlib.suppress(TestbedError):
                cleanup()
        pytest.fail(f"midonet demo did not finish\n{out}")
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
    assert process.returncode == 0, out
    for line in ("ping vm1 -> vm2", "ping vm1 -> vm4", "ping outside -> 100.100.100.100", "tcp vm1 -> vm4",
                 "tcp outside -> 100.100.100.100"):
        assert any(row.startswith(line) and ": ok" in row for row in out.splitlines()), f"{line}\n{out}"
    assert "bytes" in out and "Mbit/s" in out, out
    assert "demo: all worked" in out, out
