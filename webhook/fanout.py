"""Independent lookups of one admission, run at the same time on a thread pool the worker shares.

Registry round trips dominate a first-seen image: the quarantine reads, the referrers listing, each
referrer's manifest and bundle, the legacy tags. Those that do not depend on each other run here
concurrently, so an admission waits for the longest chain of round trips instead of their sum.

The calling thread always takes part: it runs whatever no pool thread has started yet. A fan-out
therefore makes progress while the pool is busy with other admissions, fan-outs nest (a task may fan
out in turn) without deadlock, and one fan-out never queues more than ``helpers`` tasks on the pool.
Everything ends with the caller's :class:`~webhook.deadline.Deadline`: a task not finished by then
counts as late (:class:`TimeoutError`), and its result, should it still arrive, is dropped. One
task's failure is its own outcome: it never cancels or fails the others.
"""

from __future__ import annotations

__all__ = ["FanOut", "Outcome", "Pending"]

import threading
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass
from typing import Generic, TypeVar, cast

from webhook.deadline import Deadline

T = TypeVar("T")
Item = TypeVar("Item")

_LATE = "no answer within the admission deadline"


@dataclass(frozen=True, slots=True)
class Outcome(Generic[T]):
    """What one task gave: its value, or the exception it raised (:class:`TimeoutError`: it was late)."""

    value: T | None = None
    error: Exception | None = None

    def get(self) -> T:
        """The value; raises the task's exception instead when it failed."""
        if self.error is not None:
            raise self.error
        return cast(T, self.value)


class Pending(Generic[T]):
    """One task handed to the pool: whoever claims it first (a pool thread or the caller) runs it."""

    def __init__(self, fn: Callable[[], T]) -> None:
        self._fn = fn
        self._lock = threading.Lock()
        self._claimed = False
        self._done = threading.Event()
        self._outcome: Outcome[T] = Outcome(error=TimeoutError(_LATE))

    def _claim(self) -> bool:
        with self._lock:
            if self._claimed:
                return False
            self._claimed = True
            return True

    def _run(self) -> None:
        if self._claim():
            self._execute()

    def _execute(self) -> None:
        try:
            self._outcome = Outcome(value=self._fn())
        except Exception as error:
            self._outcome = Outcome(error=error)
        finally:
            self._done.set()

    def result(self, *, deadline: Deadline) -> T:
        """The task's value, running it on this thread when no pool thread has started it.

        Raises:
            TimeoutError: a pool thread runs it and it was not done within ``deadline``.
            Exception: whatever the task raised.
        """
        if self._claim():
            self._execute()
        elif not self._done.wait(deadline.remaining()):
            raise TimeoutError(_LATE)
        return self._outcome.get()

    def cancel(self) -> bool:
        """Make sure the task never starts; False when it has started (it then runs to its end)."""
        return self._claim()


class FanOut:
    """Runs independent tasks of one caller concurrently on ``pool``, the caller taking part.

    Without a pool, the caller runs every task itself, one after the other.
    """

    def __init__(self, pool: Executor | None, *, helpers: int = 4) -> None:
        self._pool = pool
        self._helpers = max(0, helpers)

    @property
    def helpers(self) -> int:
        """The most pool threads one :meth:`map` asks for (the caller works besides them)."""
        return self._helpers

    def start(self, fn: Callable[[], T]) -> Pending[T]:
        """Hand ``fn`` to the pool; :meth:`Pending.result` collects it (or runs it, if still waiting)."""
        pending = Pending(fn)
        self._submit(pending._run)
        return pending

    def map(self, fn: Callable[[Item], T], items: Sequence[Item], *, deadline: Deadline) -> list[Outcome[T]]:
        """``fn(item)`` for every item, concurrently; the outcomes in the order of ``items``.

        This thread works through the items and up to ``helpers`` pool threads help. Items nobody
        started before the deadline, and items still running at the deadline, are late.
        """
        todo = deque(enumerate(items))
        results: dict[int, Outcome[T]] = {}

        def work() -> None:
            while not deadline.expired():
                try:
                    index, item = todo.popleft()
                except IndexError:
                    return
                try:
                    results[index] = Outcome(value=fn(item))
                except Exception as error:
                    results[index] = Outcome(error=error)

        helpers = [
            future
            for future in (self._submit(work) for _ in range(min(self._helpers, len(items) - 1)))
            if future is not None
        ]
        work()
        # Nothing is left to take: helpers that have not started are not needed; wait for the others.
        running = [helper for helper in helpers if not helper.cancel()]
        if running:
            wait_futures(running, timeout=deadline.remaining())
        # A copy: a helper still waiting for the registry may write into ``results`` after this returns.
        return [results.get(index, Outcome(error=TimeoutError(_LATE))) for index in range(len(items))]

    def _submit(self, work: Callable[[], None]) -> Future[None] | None:
        if self._pool is None:
            return None
        try:
            return self._pool.submit(work)
        except RuntimeError:  # a pool shut down (a policy reload replaced it): the caller does the work
            return None
