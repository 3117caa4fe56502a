"""`midonet demo` end to end: it builds its cloud on namespaces, shows ping and a TCP transfer working through a
router, two bridges and a floating IP, tears it all down and exits 0.

Runs the command as a process, waiting for another testbed of this machine to finish (`--wait`); if it overruns
it is sent SIGTERM (it tears down then), then SIGKILL, and `midonet.testbed.cleanup()` removes what it left.
"""

from __future__ import annotations

import pytest

from midonet.testbed import unavailable

from .testbed_support import run_midonet

pytestmark = pytest.mark.skipif(unavailable() is not None, reason=f"testbed: {unavailable()}")


def test_demo_pings_and_transfers() -> None:
    result = run_midonet("demo")
    out = result.stdout
    assert result.returncode == 0, f"{out}\n{result.stderr}"
    for line in ("ping vm1 -> vm2", "ping vm1 -> vm4", "ping outside -> 100.100.100.100", "tcp vm1 -> vm4",
                 "tcp outside -> 100.100.100.100"):
        assert any(row.startswith(line) and ": ok" in row for row in out.splitlines()), f"{line}\n{out}"
    assert "bytes" in out and "Mbit/s" in out, out
    assert "demo: all worked" in out, out
