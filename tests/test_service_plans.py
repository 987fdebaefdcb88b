"""The service reuses image plans across admissions, and never a plan of a policy it no longer serves."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime

from tests.support.reviews import review
from webhook.deadline import Deadline
from webhook.decision import ImagePlan
from webhook.facts import ImageFacts, ListedManifest
from webhook.policy.model import Policy, QuarantineEntry, Registries, Rule
from webhook.service import AdmissionService
from webhook.settings import Settings

IMAGE = "ghcr.io/acme/app@sha256:" + "a" * 64
PLATFORM = "sha256:" + "b" * 64
ADMITS = Policy(
    name="admits",
    source="p.yaml",
    registries=Registries(allow=("ghcr.io",)),
    rules=(Rule(name="acme", images=("ghcr.io/acme/**",)),),
)
# The same name, another rule: what a reload of an edited file gives.
DENIES = Policy(
    name="admits",
    source="p.yaml",
    registries=Registries(allow=("ghcr.io",)),
    rules=(Rule(name="other", images=("ghcr.io/other/**",)),),
)


class _Facts:
    """IMAGE is an index listing PLATFORM; a pinned image under ADMITS (no quarantine lists) never asks."""

    def __call__(self, plan: ImagePlan, *, deadline: Deadline, now: datetime) -> ImageFacts:
        assert plan.check_listing, "a pinned image under a rule without signatures needs no facts"
        index = IMAGE.split("@", 1)[1]
        return ImageFacts(digest=plan.digest, listed=(ListedManifest(PLATFORM, "linux/arm64", index),))


@dataclass
class _Reloading:
    policy: Policy

    def current(self) -> tuple[Policy, _Facts]:
        return self.policy, _Facts()


def test_a_reloaded_policy_is_planned_afresh() -> None:
    runtime = _Reloading(ADMITS)
    service = AdmissionService(
        settings=Settings(audit_log=False), runtime=runtime, clock=lambda: datetime.now(UTC)
    )
    for _ in range(2):
        assert service.admit(review("Pod", [IMAGE]), stage="validate").review["response"]["allowed"] is True
    runtime.policy = DENIES
    response = service.admit(review("Pod", [IMAGE]), stage="validate").review["response"]
    assert response["allowed"] is False
    assert "[unmatched] no rule of policy admits governs this image" in response["status"]["message"]
    runtime.policy = ADMITS
    assert service.admit(review("Pod", [IMAGE]), stage="validate").review["response"]["allowed"] is True


def test_a_reloaded_quarantine_list_refuses_an_index_planned_before() -> None:
    # A digest added to the quarantine lists makes every plan read what an index lists: a plan made
    # under the earlier lists (nothing to read) would let the index of a quarantined manifest through.
    runtime = _Reloading(ADMITS)
    service = AdmissionService(
        settings=Settings(audit_log=False), runtime=runtime, clock=lambda: datetime.now(UTC)
    )
    assert service.admit(review("Pod", [IMAGE]), stage="validate").review["response"]["allowed"] is True
    entry = QuarantineEntry(digest=PLATFORM, reason="CVE-2026-1", source="quarantine.yaml")
    runtime.policy = replace(ADMITS, quarantined={PLATFORM: entry})
    response = service.admit(review("Pod", [IMAGE]), stage="validate").review["response"]
    assert response["allowed"] is False
    assert "[quarantined]" in response["status"]["message"]
    assert PLATFORM in response["status"]["message"]
