"""Facts the gatherer's caches hold are used in the admission's own thread; anything else goes to the pool."""

from __future__ import annotations

import base64
import json
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime

from tests.support.reviews import review
from webhook.deadline import Deadline
from webhook.decision import ImagePlan
from webhook.facts import ImageFacts
from webhook.policy.model import Policy, Registries, Rule, Tags
from webhook.service import AdmissionService
from webhook.settings import Settings

POLICY = Policy(
    name="svc",
    source="p.yaml",
    registries=Registries(allow=("ghcr.io",)),
    tags=Tags(resolve=True, deny=("latest",)),
    rules=(Rule(name="all", images=("ghcr.io/**",)),),
)
CACHED, FETCHED = "sha256:" + "c" * 64, "sha256:" + "f" * 64


@dataclass
class Gatherer:
    """``cached`` answers the images in ``in_cache`` (or raises ``broken``); a call fetches, on the pool."""

    in_cache: set[str] = field(default_factory=set)
    broken: Exception | None = None
    fetched: list[tuple[str, str]] = field(default_factory=list)
    looked_up: list[tuple[str, str]] = field(default_factory=list)

    def __call__(self, plan: ImagePlan, *, deadline: Deadline, now: datetime) -> ImageFacts:
        self.fetched.append((plan.image, threading.current_thread().name))
        return ImageFacts(digest=FETCHED)

    def cached(self, plan: ImagePlan, *, deadline: Deadline, now: datetime) -> ImageFacts | None:
        self.looked_up.append((plan.image, threading.current_thread().name))
        if self.broken is not None:
            raise self.broken
        return ImageFacts(digest=CACHED) if plan.image in self.in_cache else None


@dataclass
class Runtime:
    gatherer: Gatherer

    def current(self) -> tuple[Policy, Gatherer]:
        return POLICY, self.gatherer


def _admit(gatherer: Gatherer, images: list[str]) -> dict[str, object]:
    service = AdmissionService(
        settings=Settings(audit_log=False), runtime=Runtime(gatherer), clock=lambda: datetime.now(UTC)
    )
    try:
        response: dict[str, object] = service.admit(review("Pod", images), stage="mutate").review["response"]
        return response
    finally:
        service.close()


def test_cached_facts_are_used_without_the_pool() -> None:
    gatherer = Gatherer(in_cache={"ghcr.io/a/b:1"})
    response = _admit(gatherer, ["ghcr.io/a/b:1"])
    assert response["allowed"] is True
    assert gatherer.fetched == []
    assert gatherer.looked_up == [("ghcr.io/a/b:1", threading.current_thread().name)]
    [operation] = json.loads(base64.b64decode(str(response["patch"])))
    assert operation["value"] == f"ghcr.io/a/b:1@{CACHED}"


def test_what_the_caches_miss_is_fetched_on_the_pool() -> None:
    gatherer = Gatherer(in_cache={"ghcr.io/a/b:1"})
    _admit(gatherer, ["ghcr.io/a/b:1", "ghcr.io/a/c:1", "ghcr.io/a/d@" + CACHED])
    assert [image for image, _ in gatherer.fetched] == ["ghcr.io/a/c:1"]
    assert all(thread.startswith("imagegate-fetch") for _, thread in gatherer.fetched)
    # A pinned image under a rule without signatures needs no facts: not even a cache look-up.
    assert [image for image, _ in gatherer.looked_up] == ["ghcr.io/a/b:1", "ghcr.io/a/c:1"]


def test_a_failing_cache_read_falls_back_to_the_full_lookup() -> None:
    gatherer = Gatherer(in_cache={"ghcr.io/a/b:1"}, broken=RuntimeError("defect"))
    response = _admit(gatherer, ["ghcr.io/a/b:1"])
    assert response["allowed"] is True
    assert [image for image, _ in gatherer.fetched] == ["ghcr.io/a/b:1"]
