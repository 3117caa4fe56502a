"""A clock tests move by hand (STYLE habit 5): hand it to every table and component that ages things.

    clock = FakeClock()
    tables = state.tables.in_memory(clock)
    clock.advance(61)          # ARP entries learned before are now stale

May import: `midonet.state.clock`.
"""

from __future__ import annotations

from midonet.state.clock import ManualClock


class FakeClock(ManualClock):
    """The test kit's name for a hand-moved clock."""
