"""What the service reports to its observer: every image slot counted once, under its outcome."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.support.reviews import review
from webhook.deadline import Deadline
from webhook.decision import ImagePlan
from webhook.facts import ImageFacts
from webhook.metrics import Metrics
from webhook.policy.model import Policy, Registries, Rule, Tags
from webhook.service import AdmissionService
from webhook.settings import Settings

POLICY = Policy(
    name="metrics",
    source="p.yaml",
    registries=Registries(allow=("ghcr.io",)),
    tags=Tags(resolve=True, deny=("latest",)),
    rules=(Rule(name="acme", images=("ghcr.io/acme/**",)),),
)
PINNED = [f"ghcr.io/acme/app{n}@sha256:{str(n) * 64}" for n in range(3)]


class _NoFacts:
    def __call__(self, plan: ImagePlan, *, deadline: Deadline, now: datetime) -> ImageFacts:
        raise AssertionError("nothing here needs facts")


class _Runtime:
    def current(self) -> tuple[Policy, _NoFacts]:
        return POLICY, _NoFacts()


def _decisions(metrics: Metrics) -> dict[str, float]:
    return {
        sample.labels["outcome"]: sample.value
        for family in metrics.registry.collect()
        if family.name == "imagegate_image_decisions"
        for sample in family.samples
        if sample.name == "imagegate_image_decisions_total"
    }


def test_every_image_slot_is_counted_once_under_its_outcome() -> None:
    metrics = Metrics()
    service = AdmissionService(
        settings=Settings(audit_log=False),
        runtime=_Runtime(),
        observer=metrics,
        clock=lambda: datetime.now(UTC),
    )
    # Five slots, four of them admitted (one image twice), two tag-denied, one unmatched.
    images = [
        *PINNED,
        PINNED[0],
        "ghcr.io/acme/app:latest",
        "ghcr.io/acme/tool:latest",
        "ghcr.io/x/y@" + "sha256:" + "9" * 64,
    ]
    response = service.admit(review("Pod", images), stage="validate").review["response"]
    assert response["allowed"] is False
    assert _decisions(metrics) == {"admitted": 4.0, "tag-denied": 2.0, "unmatched": 1.0}
    service.admit(review("Pod", PINNED[:2]), stage="validate")
    assert _decisions(metrics) == {"admitted": 6.0, "tag-denied": 2.0, "unmatched": 1.0}
