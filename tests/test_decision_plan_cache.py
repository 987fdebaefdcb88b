"""PlanCache: plan_image's answers reused across admissions, never past an exemption's expiry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from webhook.decision import PlanCache, Stage, plan_image
from webhook.policy.model import Exemption, Policy, Registries, Rule, Tags
from webhook.reasons import Allowed, Reason

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
DIGEST = "sha256:" + "a" * 64
SOON = NOW + timedelta(hours=1)
LATER = NOW + timedelta(days=1)

POLICY = Policy(
    name="cache",
    source="policy.yaml",
    registries=Registries(allow=("ghcr.io", "docker.io")),
    tags=Tags(resolve=True, deny=("latest",)),
    exemptions=(
        Exemption(images=("ghcr.io/acme/tool",), namespaces=("ops",), expires=SOON, reason="INC-1"),
        Exemption(images=("ghcr.io/acme/**",), namespaces=("ops",), expires=LATER, reason="INC-2"),
    ),
    rules=(
        Rule(name="acme", images=("ghcr.io/acme/**",), namespaces=("prod", "ops")),
        Rule(name="hub", images=("docker.io/library/*",), mode="warn"),
    ),
)

IMAGES = (
    f"ghcr.io/acme/app:1@{DIGEST}",
    "ghcr.io/acme/app:1",
    "ghcr.io/acme/tool:2",
    "nginx:1.27",
    "nginx",
    "quay.io/other/app:1",
    "ghcr.io/other/app:1",
    "Not A Reference",
    "",
)


@pytest.mark.parametrize("image", IMAGES)
@pytest.mark.parametrize("namespace", ["prod", "ops", "dev"])
@pytest.mark.parametrize("stage", ["mutate", "validate"])
@pytest.mark.parametrize("unchanged", [False, True])
def test_a_cached_plan_equals_a_fresh_one(image: str, namespace: str, stage: Stage, unchanged: bool) -> None:
    cache = PlanCache(POLICY)
    for now in (NOW, NOW, SOON, LATER + timedelta(seconds=1), NOW):
        fresh = plan_image(
            image, policy=POLICY, namespace=namespace, now=now, stage=stage, unchanged=unchanged
        )
        assert cache.plan(image, namespace=namespace, now=now, stage=stage, unchanged=unchanged) == fresh


def test_a_repeated_image_is_planned_once() -> None:
    cache = PlanCache(POLICY)
    first = cache.plan("ghcr.io/acme/app:1", namespace="prod", now=NOW, stage="mutate")
    again = cache.plan("ghcr.io/acme/app:1", namespace="prod", now=NOW + timedelta(minutes=5), stage="mutate")
    assert again is first
    assert cache.plan("ghcr.io/acme/app:1", namespace="prod", now=NOW, stage="validate") is not first
    assert len(cache) == 2


def test_an_exemption_stops_applying_at_its_expiry_even_when_cached() -> None:
    cache = PlanCache(POLICY)
    image = "ghcr.io/acme/tool:2"
    before = cache.plan(image, namespace="ops", now=SOON - timedelta(seconds=1), stage="mutate")
    at_expiry = cache.plan(image, namespace="ops", now=SOON, stage="mutate")
    after_both = cache.plan(image, namespace="ops", now=LATER, stage="mutate")
    assert before.exemption is not None and before.exemption.reason == "INC-1"
    assert before.terminal_outcome == Allowed.EXEMPTED
    # The first exemption expired: the broader one, still live, applies.
    assert at_expiry.exemption is not None and at_expiry.exemption.reason == "INC-2"
    assert after_both.exemption is None and after_both.terminal_outcome is None
    assert after_both.resolve and after_both.rules == (POLICY.rules[0],)


def test_a_clock_that_goes_back_sees_the_exemption_again() -> None:
    cache = PlanCache(POLICY)
    image = "ghcr.io/acme/tool:2"
    assert cache.plan(image, namespace="ops", now=LATER, stage="mutate").exemption is None
    back = cache.plan(image, namespace="ops", now=NOW, stage="mutate").exemption
    assert back is not None and back.reason == "INC-1"


def test_the_cache_stays_within_its_bound() -> None:
    cache = PlanCache(POLICY, maxsize=3)
    for n in range(10):
        plan = cache.plan(f"ghcr.io/acme/app-{n}:1", namespace="prod", now=NOW, stage="mutate")
        assert plan.resolve and plan.image == f"ghcr.io/acme/app-{n}:1"
        assert len(cache) <= 3


def test_texts_longer_than_any_reference_are_planned_but_not_kept() -> None:
    cache = PlanCache(POLICY)
    long_image = "ghcr.io/acme/" + "a" * 600 + ":1"
    plan = cache.plan(long_image, namespace="prod", now=NOW, stage="mutate")
    assert plan.terminal is not None and plan.terminal.code == Reason.INVALID_REFERENCE
    cache.plan("ghcr.io/acme/app:1", namespace="n" * 600, now=NOW, stage="mutate")
    assert len(cache) == 0
