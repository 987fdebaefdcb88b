"""The decision core's own promise: missing facts never allow.

``webhook.decision.evaluate``: "Missing facts never allow: a governed image whose facts are absent is
denied as if its checks had failed." That holds for a tag (no digest: ``registry-error``) and for
signatures (no result: ``unsigned``), but a pinned image whose only facts are its quarantine markers or
its index listing is admitted when those facts are absent: ``quarantine_finding`` reads "no marker, no
listing, no error" as "not quarantined". The service gathers facts for every plan today, so this is
latent: a caller that misses one (a future fact source, a refactoring of ``_gather``) admits the image
unchecked instead of failing closed.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from webhook.admission.workloads import ImageSlot
from webhook.decision import evaluate, plan_image
from webhook.policy.model import Policy, QuarantineEntry, QuarantineSettings, Registries, Rule

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
LISTED = "sha256:" + "2" * 64
IMAGE = "ghcr.io/acme/app@sha256:" + "1" * 64
BASE = Policy(
    name="missing-facts",
    source="policy.yaml",
    registries=Registries(allow=("ghcr.io",)),
    rules=(Rule(name="acme", images=("ghcr.io/acme/**",)),),
)
POLICIES = {
    "registry-markers": replace(BASE, quarantine=QuarantineSettings(registry_markers=True)),
    "index-listing": replace(
        BASE, quarantined={LISTED: QuarantineEntry(digest=LISTED, reason="CVE-1", source="q.yaml")}
    ),
}


@pytest.mark.parametrize("case", sorted(POLICIES))
def test_a_pinned_image_whose_quarantine_facts_are_missing_is_not_admitted(case: str) -> None:
    policy = POLICIES[case]
    plan = plan_image(IMAGE, policy=policy, namespace="prod", now=NOW, stage="validate")
    assert plan.needs_facts  # the plan asks for facts: markers, or what the index lists

    decision = evaluate(
        [ImageSlot(pointer="/spec/containers/0/image", location="containers", name="app", image=IMAGE)],
        policy=policy,
        namespace="prod",
        facts={},
        now=NOW,
        stage="validate",
    )

    assert not decision.allowed, f"admitted without the facts its plan asked for: {decision.images[0]}"
