"""FanOut: independent tasks run together, the caller takes part, the deadline ends everything."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from webhook.deadline import Deadline
from webhook.fanout import FanOut


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=4) as executor:
        yield executor


def test_tasks_run_at_the_same_time(pool: ThreadPoolExecutor) -> None:
    # Three tasks that can only finish once all three have started: run one after the other, they
    # would each wait out the barrier's timeout and fail.
    barrier = threading.Barrier(3, timeout=5)
    outcomes = FanOut(pool).map(lambda n: (barrier.wait(), n)[1], [1, 2, 3], deadline=Deadline.after(10))
    assert [outcome.get() for outcome in outcomes] == [1, 2, 3]


def test_one_failure_is_its_own_outcome(pool: ThreadPoolExecutor) -> None:
    def task(n: int) -> int:
        if n == 2:
            raise ValueError("two")
        return n * 10

    outcomes = FanOut(pool).map(task, [1, 2, 3], deadline=Deadline.after(10))
    assert outcomes[0].get() == 10 and outcomes[2].get() == 30
    with pytest.raises(ValueError, match="two"):
        outcomes[1].get()


def test_the_caller_does_the_work_when_the_pool_is_busy() -> None:
    blocker = threading.Event()
    with ThreadPoolExecutor(max_workers=1) as busy:
        busy.submit(blocker.wait, 10)  # another admission holds the only pool thread
        try:
            started = time.monotonic()
            outcomes = FanOut(busy).map(lambda n: n + 1, list(range(5)), deadline=Deadline.after(5))
            pending = FanOut(busy).start(lambda: "done here")
            assert pending.result(deadline=Deadline.after(5)) == "done here"
            assert time.monotonic() - started < 4  # not after the blocker
        finally:
            blocker.set()
    assert [outcome.get() for outcome in outcomes] == [1, 2, 3, 4, 5]


def test_fan_outs_nest_on_a_pool_of_one_thread() -> None:
    with ThreadPoolExecutor(max_workers=1) as small:
        fanout = FanOut(small)

        def inner(n: int) -> int:
            return sum(o.get() for o in fanout.map(lambda m: m * n, [1, 2, 3], deadline=Deadline.after(5)))

        outcomes = fanout.map(inner, [1, 10, 100], deadline=Deadline.after(5))
        assert [outcome.get() for outcome in outcomes] == [6, 60, 600]


def test_a_late_task_is_late_and_the_others_are_not_held_up(pool: ThreadPoolExecutor) -> None:
    release = threading.Event()

    def task(n: int) -> int:
        if n == 0:
            release.wait(10)  # a registry that does not answer
        return n

    started = time.monotonic()
    try:
        outcomes = FanOut(pool).map(task, [0, 1, 2], deadline=Deadline.after(0.5))
    finally:
        release.set()
    assert time.monotonic() - started < 3  # the deadline, not the stalled task, ended the wait
    assert isinstance(outcomes[0].error, TimeoutError)
    assert [outcomes[1].get(), outcomes[2].get()] == [1, 2]


def test_a_pending_task_is_late_when_the_deadline_passes(pool: ThreadPoolExecutor) -> None:
    release, running = threading.Event(), threading.Event()
    pending = FanOut(pool).start(lambda: (running.set(), release.wait(10))[1])
    assert running.wait(5)
    try:
        with pytest.raises(TimeoutError):
            pending.result(deadline=Deadline.after(0.2))
        assert not pending.cancel()  # it has started: it runs to its end
    finally:
        release.set()


def test_a_cancelled_task_never_runs() -> None:
    ran: list[int] = []
    blocker = threading.Event()
    with ThreadPoolExecutor(max_workers=1) as busy:
        busy.submit(blocker.wait, 10)
        pending = FanOut(busy).start(lambda: ran.append(1))
        assert pending.cancel()
        blocker.set()
    assert ran == []


def test_without_a_pool_the_caller_runs_everything_in_order() -> None:
    seen: list[str] = []
    outcomes = FanOut(None).map(
        lambda n: (seen.append(threading.current_thread().name), n)[1], [1, 2], deadline=Deadline.after(5)
    )
    assert [outcome.get() for outcome in outcomes] == [1, 2]
    assert seen == [threading.current_thread().name] * 2
    assert FanOut(None).start(lambda: 7).result(deadline=Deadline.after(5)) == 7


def test_a_fan_out_asks_the_pool_for_at_most_helpers_threads(pool: ThreadPoolExecutor) -> None:
    running, most = 0, 0
    lock = threading.Lock()

    def task(n: int) -> int:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.02)
        with lock:
            running -= 1
        return n

    outcomes = FanOut(pool, helpers=1).map(task, list(range(8)), deadline=Deadline.after(10))
    assert [outcome.get() for outcome in outcomes] == list(range(8))
    assert most == 2  # the caller and one helper, though the pool has four threads
