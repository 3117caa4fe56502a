"""`midonet testbed run` end to end: the example scenario files played on real namespaces with real agents, the
same files `midonet sandbox run` plays on fake hosts; exit status 0 only if every step passed.

Runs the command as a process (as a user would). Another testbed of this machine holds the lock: the command
waits for it (`--wait`). The command tears its testbed down itself; if it overruns, it is sent SIGTERM (it tears
down then), then SIGKILL, and `midonet.testbed.cleanup()` removes what it left.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from pathlib import Path

import pytest

from midonet.testbed import TestbedError, cleanup, unavailable
from midonet.testbed.testbed import midonet_command

pytestmark = pytest.mark.skipif(unavailable() is not None, reason=f"testbed: {unavailable()}")

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
LOCK_WAIT = 600
RUN_TIMEOUT = 300


def run_testbed(*args: str) -> subprocess.CompletedProcess[str]:
    process = subprocess.Popen([*midonet_command(), "testbed", *args, "--wait", str(LOCK_WAIT)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
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
        pytest.fail(f"midonet testbed {' '.join(args)} did not finish\n{out}\n{err}")
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


@pytest.mark.parametrize("name", ["l2.yaml", "two-subnets.yaml"])
def test_example_passes_on_the_testbed(name: str) -> None:
    result = run_testbed("run", str(EXAMPLES / name))
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    assert "0 failed" in result.stdout
