"""Shared lookups: every distinct question asked once for a whole audit, at most N at a time, in time.

The gatherer here is a fake that records what it is asked; the real one, against a real registry, is
exercised through ``imagegate audit`` in tests/cli/test_audit.py.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest

from webhook.audit.lookups import LookupProgress, SharedLookups
from webhook.deadline import Deadline
from webhook.decision import ImagePlan
from webhook.errors import RegistryError
from webhook.facts import Finding, ImageFacts
from webhook.images.reference import ImageRef
from webhook.policy.model import Rule
from webhook.reasons import Reason

NOW = datetime(2026, 1, 1, tzinfo=UTC)
DIGEST = "sha256:" + "d" * 64


def plan(image: str, *, verify: tuple[str, ...] = ()) -> ImagePlan:
    rules = tuple(Rule(name=name, images=("**",)) for name in verify)
    return ImagePlan(image, ImageRef.parse(image), resolve=True, pin=True, rules=rules, verify_rules=rules)


class Gatherer:
    """Answers every question with DIGEST; ``gate`` (when set) holds each lookup until it is opened."""

    def __init__(self, *, gate: threading.Event | None = None, fail: str = "") -> None:
        self.asked: list[tuple[str, tuple[str, ...]]] = []
        self.deadlines: list[float] = []
        self.running = self.most = 0
        self._gate = gate
        self._fail = fail
        self._lock = threading.Lock()

    def __call__(self, plan: ImagePlan, *, deadline: Deadline, now: datetime) -> ImageFacts:
        with self._lock:
            self.asked.append((plan.image, tuple(r.name for r in plan.verify_rules)))
            self.deadlines.append(deadline.remaining())
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            if self._gate is not None:
                # As the registry transport does: it gives up this much before the deadline.
                self._gate.wait(max(0.0, deadline.remaining() - 0.05))
            if plan.image == self._fail:
                raise RegistryError("registry down", code=Reason.REGISTRY_ERROR)
            if plan.image.endswith(":missing"):
                return ImageFacts(gathering_error=Finding(Reason.REGISTRY_ERROR, "manifest unknown"))
            return ImageFacts(digest=DIGEST)
        finally:
            with self._lock:
                self.running -= 1


def shared(gatherer: Gatherer, **overrides: object) -> SharedLookups:
    options: dict[str, object] = {
        "budget": Deadline.after(60),
        "per_lookup": 10.0,
        "concurrency": 3,
        "budget_text": "--timeout 60s",
    }
    options.update(overrides)
    return SharedLookups(gatherer, **options)  # type: ignore[arg-type]


def test_each_distinct_question_is_asked_once_however_often_it_comes() -> None:
    gatherer = Gatherer()
    progress: list[LookupProgress] = []
    lookups = shared(gatherer, on_progress=progress.append)
    questions = [plan(f"ghcr.io/acme/app{i % 5}:1") for i in range(200)]
    questions += [
        plan("ghcr.io/acme/app0:1", verify=("signed",)),
        plan("ghcr.io/acme/app0:1", verify=("signed",)),
    ]
    lookups.prefetch(questions, now=NOW)
    assert sorted(gatherer.asked) == sorted(
        [(f"ghcr.io/acme/app{i}:1", ()) for i in range(5)] + [("ghcr.io/acme/app0:1", ("signed",))]
    )
    done = [p.done for p in progress]
    assert done == sorted(done) and done[-1] == 6 and {p.total for p in progress} == {6}
    # The admission path asks again: answered from what was found, no new lookup.
    for question in questions:
        assert lookups(question, deadline=Deadline.after(5), now=NOW).digest == DIGEST
    assert len(gatherer.asked) == 6
    assert (lookups.looked_up, lookups.failed, lookups.not_asked) == (6, 0, 0)
    assert lookups.facts(questions[0]) == ImageFacts(digest=DIGEST)
    assert lookups.facts(plan("ghcr.io/acme/never:1")) is None


def test_no_more_than_concurrency_lookups_run_at_a_time() -> None:
    gate = threading.Event()
    gatherer = Gatherer(gate=gate)
    lookups = shared(gatherer, concurrency=3)
    done = threading.Thread(
        target=lookups.prefetch,
        args=([plan(f"ghcr.io/acme/app{i}:1") for i in range(12)],),
        kwargs={"now": NOW},
    )
    done.start()
    while gatherer.running < 3:
        threading.Event().wait(0.01)
    assert len(gatherer.asked) == 3  # the others wait for a free worker, not in a queue
    gate.set()
    done.join(30)
    assert not done.is_alive()
    assert len(gatherer.asked) == 12
    assert gatherer.most == 3


def test_each_lookup_gets_the_per_lookup_deadline_never_past_the_budget() -> None:
    gatherer = Gatherer()
    lookups = shared(gatherer, per_lookup=2.0, budget=Deadline.after(60))
    lookups.prefetch([plan("ghcr.io/acme/a:1")], now=NOW)
    tight = shared(gatherer, per_lookup=30.0, budget=Deadline.after(1.0))
    tight.prefetch([plan("ghcr.io/acme/b:1")], now=NOW)
    first, second = gatherer.deadlines
    assert 1.5 < first <= 2.0
    assert 0 < second <= 1.0


def test_past_the_budget_nothing_more_is_asked_and_the_rest_fails_closed() -> None:
    gate = threading.Event()  # never opened: each lookup runs to its deadline
    gatherer = Gatherer(gate=gate)
    lookups = shared(gatherer, concurrency=2, per_lookup=0.2, budget=Deadline.after(0.5))
    questions = [plan(f"ghcr.io/acme/app{i}:1") for i in range(20)]
    lookups.prefetch(questions, now=NOW)
    asked = len(gatherer.asked)
    assert 2 <= asked < 20
    answers = [lookups(q, deadline=Deadline.after(5), now=NOW) for q in questions]
    assert len(gatherer.asked) == asked  # nothing asked after the budget
    unasked = [a for a in answers if a.gathering_error and "not looked up" in a.gathering_error.message]
    assert len(unasked) == 20 - asked == lookups.not_asked
    assert unasked[0].gathering_error == Finding(
        Reason.REGISTRY_ERROR, "not looked up: the audit's time budget (--timeout 60s) ran out"
    )


def test_failures_are_counted_and_errors_reach_whoever_asks() -> None:
    gatherer = Gatherer(fail="ghcr.io/acme/down:1")
    lookups = shared(gatherer)
    lookups.prefetch(
        [plan("ghcr.io/acme/down:1"), plan("ghcr.io/acme/app:missing"), plan("ghcr.io/acme/ok:1")], now=NOW
    )
    assert (lookups.looked_up, lookups.failed) == (3, 2)
    with pytest.raises(RegistryError, match="registry down"):
        lookups(plan("ghcr.io/acme/down:1"), deadline=Deadline.after(5), now=NOW)
    assert lookups.facts(plan("ghcr.io/acme/down:1")) is None
    assert len(gatherer.asked) == 3


def test_plans_that_need_no_lookup_are_not_asked() -> None:
    gatherer = Gatherer()
    lookups = shared(gatherer)
    lookups.prefetch([ImagePlan("ghcr.io/acme/app:1", ImageRef.parse("ghcr.io/acme/app:1"))], now=NOW)
    assert gatherer.asked == []
