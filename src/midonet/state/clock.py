"""The clock every expiring table is handed (STYLE habit 5: time is injected).

`now()` is in seconds on a monotonic scale; only differences matter. The agent hands a real monotonic clock;
`ManualClock` is moved by hand: tests use it (as `midonet.testing.clock.FakeClock`), and so does `midonet trace`,
whose steps run in a virtual time that does not advance.

May import: nothing of ours.
"""

from __future__ import annotations

from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds on a monotonic scale."""
        ...


class ManualClock:
    """A clock that moves only when told to (`advance`)."""

    def __init__(self, start: float = 1000.0) -> None:
        self._now = start

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> float:
        """Move the time forward by `seconds`; returns the new time."""
        if seconds < 0:
            raise ValueError("a clock does not go back")
        self._now += seconds
        return self._now
