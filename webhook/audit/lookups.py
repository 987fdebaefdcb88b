"""Registry lookups for a whole audit: each distinct image looked up once, bounded in threads and time.

:class:`SharedLookups` stands in front of the fact gatherer the server uses
(:class:`webhook.wiring.Gatherer`, with its caching registry and verifier) and is itself a
:class:`~webhook.service.FactGatherer`, so the admission path runs unchanged on top of it. A lookup is
identified by what the gatherer is asked: the image as written, whether to resolve its tag, read
quarantine markers and listed manifests, and which rules' signatures and attestations to verify. The
same question asked again, by another object or another pod, gets the first answer. So does the
``/validate`` pass's question about the image ``/mutate`` pinned (``app:1.0@sha256:...``): the gatherer
finds for a pinned digest exactly what it found for the tag that resolved to it, so that answer is
filed under the pinned image too. Below that, the adapters' caches share resolutions, manifests,
markers and verifications per digest between different questions about the same image.

Bounds: :meth:`SharedLookups.prefetch` asks the distinct questions of the whole input at most
``concurrency`` at a time; each lookup ends within ``per_lookup`` seconds; none starts once the audit's
``budget`` has passed, and every one ends by it. A question not asked by then is answered
``registry-error`` (the image is judged as the webhook judges an image it could not look up: fail
closed), and the audit says it is incomplete.
"""

from __future__ import annotations

__all__ = ["LookupProgress", "SharedLookups"]

import threading
import time
from collections.abc import Callable, Hashable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass, replace
from datetime import datetime

from webhook.deadline import Deadline
from webhook.decision import ImagePlan
from webhook.errors import RegistryError
from webhook.facts import Finding, ImageFacts
from webhook.images.reference import pin_image_text
from webhook.reasons import Reason
from webhook.service import FactGatherer

# A lookup is not started with less time than this left: it could only fail at once, and the next
# would follow it at once, until every question left had been "asked".
_MIN_SECONDS = 0.1


@dataclass(frozen=True, slots=True)
class LookupProgress:
    """Lookups answered and to be made (over every prefetch so far), failed, seconds since the first."""

    done: int
    total: int
    failed: int
    seconds: float


class SharedLookups:
    """A :class:`~webhook.service.FactGatherer` that asks ``gather`` each distinct question once."""

    def __init__(
        self,
        gather: FactGatherer,
        *,
        budget: Deadline,
        per_lookup: float,
        concurrency: int,
        budget_text: str,
        on_progress: Callable[[LookupProgress], None] | None = None,
    ) -> None:
        self._gather = gather
        self._budget = budget
        self._per_lookup = per_lookup
        self._concurrency = concurrency
        self._budget_text = budget_text
        self._on_progress = on_progress
        self._answers: dict[Hashable, Future[ImageFacts]] = {}
        self._lock = threading.Lock()
        self.looked_up = 0  # questions the gatherer was asked
        self.failed = 0  # ... whose answer says the image could not be looked up
        self.not_asked = 0  # questions left unasked when the budget ran out
        self._done = self._total = 0
        self._started: float | None = None

    def __call__(self, plan: ImagePlan, *, deadline: Deadline, now: datetime) -> ImageFacts:
        """The facts for ``plan``: the answer already found, else a lookup now (within ``deadline``).

        Raises what the gatherer raised for this question (the admission path turns it into a
        fail-closed ``registry-error``, as for any lookup).
        """
        key = _question(plan)
        with self._lock:
            answer = self._answers.get(key)
            asking = answer is None
            if answer is None:
                answer = self._answers[key] = Future()
        if asking:
            self._ask(plan, answer, deadline=deadline, now=now)
        try:
            return answer.result(timeout=deadline.remaining())
        except TimeoutError:
            return _no_facts("no answer from the registry within the lookup deadline")

    def answer(self, plan: ImagePlan, *, now: datetime) -> ImageFacts:
        """What :meth:`__call__` finds (within a lookup's deadline), an error made a fail-closed fact."""
        try:
            return self(plan, deadline=Deadline.after(self._per_lookup), now=now)
        except RegistryError as error:
            return ImageFacts(gathering_error=Finding(error.code, error.user_message))
        except Exception as error:  # as the admission path does: fail closed, with a reason
            return _no_facts(f"could not check the image: {type(error).__name__}")

    def prefetch(self, plans: Iterable[ImagePlan], *, now: datetime) -> None:
        """Ask every distinct question of ``plans`` that needs the registry, ``concurrency`` at a time,
        reporting progress as answers come in; returns when all are answered or the budget is spent."""
        todo: dict[Hashable, ImagePlan] = {}
        for plan in plans:
            if plan.needs_facts:
                todo.setdefault(_question(plan), plan)
        with self._lock:
            todo = {key: plan for key, plan in todo.items() if key not in self._answers}
        if self._started is None:
            self._started = time.monotonic()
        self._total += len(todo)
        queue = iter(todo.values())
        pool = ThreadPoolExecutor(max_workers=self._concurrency, thread_name_prefix="imagegate-audit")
        running: set[Future[ImageFacts]] = set()

        def submit(count: int) -> None:
            # Submitted as workers free up, so that what is left when the budget runs out was never
            # started (and is answered without a lookup), rather than queued in the pool.
            for plan in [plan for _, plan in zip(range(count), queue, strict=False)]:
                running.add(pool.submit(self, plan, deadline=self._budget, now=now))

        try:
            submit(self._concurrency)
            while running:
                finished, _ = wait_futures(
                    running, timeout=self._budget.remaining(), return_when=FIRST_COMPLETED
                )
                if not finished:
                    break
                running.difference_update(finished)
                self._done += len(finished)
                self._report()
                if self._budget.remaining() >= _MIN_SECONDS:
                    submit(len(finished))
        finally:
            # Lookups still running end by their own deadline, which is never past the budget.
            pool.shutdown(wait=True, cancel_futures=True)
        if self._done < self._total:
            self._report()

    def facts(self, plan: ImagePlan) -> ImageFacts | None:
        """The answer found for ``plan``'s question, if it was asked and answered without an error."""
        answer = self._answers.get(_question(plan))
        if answer is None or not answer.done() or answer.exception() is not None:
            return None
        return answer.result()

    def _ask(self, plan: ImagePlan, answer: Future[ImageFacts], *, deadline: Deadline, now: datetime) -> None:
        if self._budget.remaining() < _MIN_SECONDS:
            with self._lock:
                self.not_asked += 1
            answer.set_result(
                _no_facts(f"not looked up: the audit's time budget ({self._budget_text}) ran out")
            )
            return
        until = min(deadline.expires_at, self._budget.expires_at, time.monotonic() + self._per_lookup)
        try:
            facts = self._gather(plan, deadline=Deadline(until), now=now)
        except Exception as error:  # passed on to whoever asks: the admission path fails it closed
            with self._lock:
                self.looked_up += 1
                self.failed += 1
            answer.set_exception(error)
            return
        with self._lock:
            self.looked_up += 1
            self.failed += facts.gathering_error is not None
            pinned = _pinned_question(plan, facts)
            if pinned is not None and pinned not in self._answers:
                self._answers[pinned] = answer
        answer.set_result(facts)

    def _report(self) -> None:
        if self._on_progress is not None and self._started is not None:
            seconds = time.monotonic() - self._started
            self._on_progress(LookupProgress(self._done, self._total, self.failed, seconds))


def _question(plan: ImagePlan) -> Hashable:
    """What the gatherer is asked about ``plan``: equal questions have equal answers."""
    return (
        plan.image,
        plan.resolve,
        plan.digest,
        plan.check_markers,
        plan.check_listing,
        tuple(rule.name for rule in plan.verify_rules),
    )


def _pinned_question(plan: ImagePlan, facts: ImageFacts) -> Hashable | None:
    """The question ``/validate`` asks about the image ``/mutate`` pins with ``facts`` (module docstring)."""
    if not (plan.resolve and plan.pin) or facts.digest is None or facts.gathering_error is not None:
        return None
    pinned = replace(plan, image=pin_image_text(plan.image, facts.digest), resolve=False, digest=facts.digest)
    return _question(pinned)


def _no_facts(message: str) -> ImageFacts:
    return ImageFacts(gathering_error=Finding(Reason.REGISTRY_ERROR, message))
