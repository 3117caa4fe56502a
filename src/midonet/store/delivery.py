"""Ordered delivery of watch callbacks on a store-owned thread.

A store posts each notification (a bound callback) to its `Delivery` while it knows the order (under its
lock for the memory backend, on kazoo's event thread for ZooKeeper); one daemon thread runs them in that
order, never under the store's lock, one at a time, so each subscription sees its events one after another.
A callback that raises is logged and delivery goes on. A `Subscription` is a flag checked at delivery time:
after `cancel()` returns, none of its callbacks start.

May import: nothing of ours.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class Subscription:
    """The handle `watch*` calls return; `cancel()` stops delivery (idempotent)."""

    __slots__ = ("_active", "_on_cancel")

    def __init__(self, on_cancel: Callable[[], None] | None = None) -> None:
        self._active = True
        self._on_cancel = on_cancel

    @property
    def active(self) -> bool:
        return self._active

    def cancel(self) -> None:
        if not self._active:
            return
        self._active = False
        if self._on_cancel is not None:
            self._on_cancel()
            self._on_cancel = None


class Delivery:
    """A queue of callbacks and the one thread that runs them in order."""

    def __init__(self, name: str) -> None:
        self._queue: queue.SimpleQueue[tuple[Subscription, Callable[[], None]] | None] = queue.SimpleQueue()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def post(self, sub: Subscription, fn: Callable[[], None]) -> None:
        """Run `fn` on the delivery thread after everything posted before it, if `sub` is still active."""
        if not self._closed:
            self._queue.put((sub, fn))

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything posted so far has run; False on timeout (or if called from a callback)."""
        if threading.current_thread() is self._thread or self._closed:
            return False
        done = threading.Event()
        self._queue.put((Subscription(), done.set))
        return done.wait(timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Stop after the callbacks already posted; waits (up to `timeout`) unless called from a callback."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("%s: a watch callback is still running after %.0f s", self._thread.name, timeout)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            sub, fn = item
            if not sub.active:
                continue
            try:
                fn()
            except Exception:
                log.exception("watch callback failed")
