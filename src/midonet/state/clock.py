"""The clock every expiring table is handed (STYLE habit 5: time is injected).

`now()` is in seconds on a monotonic scale; only differences matter. The agent hands a real monotonic clock, tests
hand `midonet.testing.clock.FakeClock` and move it by hand.

May import: nothing of ours.
"""

from __future__ import annotations

from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds on a monotonic scale."""
        ...
