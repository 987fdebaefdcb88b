"""The service reuses image plans across admissions, and never a plan of a policy it no longer serves."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from tests.support.reviews import review
from webhook.deadline import Deadline
from webhook.decision import ImagePlan
from webhook.facts import ImageFacts
from webhook.policy.model import Policy, Registries, Rule
from webhook.service import AdmissionService
from webhook.settings import Settings

IMAGE = "ghcr.io/acme/app@sha256:" + "a" * 64
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


class _NoFacts:
    def __call__(self, plan: ImagePlan, *, deadline: Deadline, now: datetime) -> ImageFacts:
        raise AssertionError("a pinned image under a rule without signatures needs no facts")


@dataclass
class _Reloading:
    policy: Policy

    def current(self) -> tuple[Policy, _NoFacts]:
        return self.policy, _NoFacts()


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
