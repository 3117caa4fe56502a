"""`midonet testbed run` end to end: the example scenario files played on real namespaces with real agents, the
same files `midonet sandbox run` plays on fake hosts; exit status 0 only if every step passed.

Runs the command as a process (as a user would). Another testbed of this machine holds the lock: the command
waits for it (`--wait`). The command tears its testbed down itself; if it overruns, it is sent SIGTERM (it tears
down then), then SIGKILL, and `midonet.testbed.cleanup()` removes what it left.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from midonet.testbed import unavailable

from .testbed_support import run_midonet

pytestmark = pytest.mark.skipif(unavailable() is not None, reason=f"testbed: {unavailable()}")

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.parametrize("name", ["l2.yaml", "two-subnets.yaml"])
def test_example_passes_on_the_testbed(name: str) -> None:
    result = run_midonet("testbed", "run", str(EXAMPLES / name))
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    assert "0 failed" in result.stdout
