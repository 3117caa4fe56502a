"""The agent's one lock, and how store events and upcalls go through it (the original's single-threaded workers).

Role: an agent is driven from several threads: upcalls arrive on whatever thread delivered the packet (the memory
datapath's run loop; a Linux upcall reader), store watches on the store session's delivery thread, timers on the
caller of `Agent.tick`. They all change the same tables (the topology cache, the flow table, the bindings, the
waiting room), so they all take one `EventGate`:

    gate.run(fn)          a store watch callback: `fn()` under the lock, then `after()` outside it
    with gate.lock: ...   the packet workflow: simulate + install under the lock, execute outside it

Invariants:
* The lock is never held while a packet is *executed* on the datapath (`Datapath.execute`, `remove_port` is
  fine). Executing may hand frames to other agents in the same process (the memory underlay runs them on this
  thread), and two agents each holding their own lock while entering the other's would deadlock.
* Simulation, flow installation and flow invalidation all happen under the lock, so an invalidation either
  comes before a simulation (which then sees the new topology) or after the flow it must remove was installed:
  no stale flow survives an invalidation.
* `after` runs outside the lock once the event was applied: the agent retries there the packets the event
  unblocked (`waiting_room`).

`events` counts what went through the gate: `FakeCloud.settle` (midonet.testing.fakehosts) flushes every store
session until a round in which no agent saw an event.

May import: nothing of ours.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class EventGate:
    """One agent's lock and its after-event hook; see the module docstring."""

    __slots__ = ("_after", "_count_lock", "_events", "lock")

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self._after: Callable[[], None] | None = None
        self._events = 0
        self._count_lock = threading.Lock()

    def set_after(self, after: Callable[[], None] | None) -> None:
        """What to run, outside the lock, after every event (the agent retries unblocked packets there)."""
        self._after = after

    def run(self, fn: Callable[[], object]) -> None:
        """Apply one event: `fn()` under the lock, then the after hook. Never raises (a store thread calls it)."""
        self.count()
        try:
            with self.lock:
                fn()
        except Exception:
            log.exception("agent: event handler failed")
        self.after()

    def after(self) -> None:
        after = self._after
        if after is None:
            return
        try:
            after()
        except Exception:
            log.exception("agent: after-event hook failed")

    def count(self) -> None:
        with self._count_lock:
            self._events += 1

    @property
    def events(self) -> int:
        """Events and upcalls that went through the gate so far."""
        with self._count_lock:
            return self._events
