"""Run to completion: how frames move between fake interfaces, datapaths and the underlay without recursion.

Role: every hand-off that starts a new chain of work (a fake VM sending a frame, the underlay delivering an
encapsulated frame to a host) is *scheduled* on the calling thread's run loop with `run_soon(item)`. If that thread is
not already running its loop, `run_soon` runs it at once until nothing is pending, so the call returns only when
every consequence has happened (the frame was forwarded, tunnelled, delivered, answered by a fake VM, and so on).
If it is already running, the work is queued and done after the current item, in FIFO order.

Why: tests are deterministic (when `inject` returns, everything it caused is done and captured: no waits, no
threads), yet a fake VM answering from its receive callback, or two datapaths tunnelling to each other, never
nest calls deeper than one item. A forwarding loop (a flood flow pointing back at itself through two hosts) is
cut after `MAX_ITEMS` items per run with a logged warning instead of hanging the caller; `discarded()` counts
those items.

Threads: each thread has its own loop (a `threading.local`); nothing here holds a lock while an item runs.
An item that raises is logged and the loop goes on: an exception never escapes to whoever sent the frame.

May import: nothing of ours.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable

log = logging.getLogger(__name__)

MAX_ITEMS = 100_000   # per outermost run: a bound on forwarding loops, far above any scenario's needs

_Item = Callable[[], None]


class _Loop(threading.local):
    def __init__(self) -> None:
        self.pending: deque[_Item] = deque()
        self.running = False


_LOOP = _Loop()
_discarded = 0
_discarded_lock = threading.Lock()


def run_soon(item: Callable[[], None]) -> None:
    """Run ``item()`` after the current item, or now (with everything it schedules) if nothing is running."""
    loop = _LOOP
    loop.pending.append(item)
    if loop.running:
        return
    loop.running = True
    done = 0
    try:
        while loop.pending:
            if done >= MAX_ITEMS:
                _discard(loop.pending)
                break
            work = loop.pending.popleft()
            done += 1
            try:
                work()
            except Exception:
                log.exception("memory datapath: %r failed", work)
    finally:
        loop.running = False


def running() -> bool:
    """Whether this thread is inside a run (an item scheduled now would wait for the current one)."""
    return _LOOP.running


def discarded() -> int:
    """Items dropped so far (all threads) because a run went past `MAX_ITEMS`: a forwarding loop."""
    with _discarded_lock:
        return _discarded


def _discard(pending: deque[_Item]) -> None:
    global _discarded
    count = len(pending)
    pending.clear()
    with _discarded_lock:
        _discarded += count
    log.warning("memory datapath: forwarding loop? %d items past the %d-item bound discarded", count, MAX_ITEMS)
