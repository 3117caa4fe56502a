"""Run to completion: scheduled work runs in FIFO order, never nested, and failures stay contained."""

from __future__ import annotations

import logging
import threading

import pytest

from midonet.datapath.memory import runloop


def test_run_soon_runs_everything_before_returning_in_fifo_order() -> None:
    order: list[str] = []

    def first() -> None:
        order.append("first")
        runloop.run_soon(lambda: order.append("scheduled by first"))
        order.append("first ends")

    runloop.run_soon(first)
    assert order == ["first", "first ends", "scheduled by first"]
    assert not runloop.running()


def test_nothing_nests_however_long_the_chain() -> None:
    depth: list[bool] = []

    def hop(n: int) -> None:
        depth.append(runloop.running())
        if n:
            runloop.run_soon(lambda: hop(n - 1))

    runloop.run_soon(lambda: hop(5000))                # would overflow the stack if nested
    assert len(depth) == 5001 and all(depth)


def test_a_failing_item_is_logged_and_the_rest_runs(caplog: pytest.LogCaptureFixture) -> None:
    done: list[int] = []

    def boom() -> None:
        runloop.run_soon(lambda: done.append(2))
        raise RuntimeError("bug")

    runloop.run_soon(boom)
    assert done == [2]
    assert "failed" in caplog.text


def test_each_thread_has_its_own_loop() -> None:
    ran_in_other: list[bool] = []

    def other_thread_work() -> None:
        runloop.run_soon(lambda: ran_in_other.append(True))   # not queued behind this thread's loop

    def item() -> None:
        worker = threading.Thread(target=other_thread_work)
        worker.start()
        worker.join()
        assert ran_in_other == [True]

    runloop.run_soon(item)
    assert ran_in_other == [True]


def test_a_runaway_chain_is_cut(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(runloop, "MAX_ITEMS", 100)
    # Another test's logging configuration may have disabled or detached this logger: the test is about the
    # warning, so make sure it can be seen.
    monkeypatch.setattr(runloop.log, "disabled", False)
    monkeypatch.setattr(runloop.log, "propagate", True)
    caplog.set_level(logging.WARNING, logger=runloop.log.name)
    before = runloop.discarded()
    count: list[int] = []

    def forever() -> None:
        count.append(1)
        runloop.run_soon(forever)
        runloop.run_soon(forever)

    runloop.run_soon(forever)
    assert len(count) == 100
    assert runloop.discarded() - before == 101
    assert "forwarding loop" in caplog.text
    runloop.run_soon(lambda: count.append(1))          # the loop is usable again
    assert len(count) == 101
