"""A clock tests move by hand (STYLE habit 5): hand it to every table and component that ages things.

    clock = FakeClock()
    tables = state.tables.in_memory(clock)
    clock.advance(61)          # ARP entries learned before are now stale

May import: nothing of ours (it satisfies `midonet.state.clock.Clock` structurally).
"""

from __future__ import annotations


class FakeClock:
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
