"""The auditAnnotations of a decided admission: the images list stays valid JSON within its cap."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from tests.support.reviews import review
from webhook.deadline import Deadline
from webhook.decision import ImagePlan
from webhook.facts import ImageFacts
from webhook.policy.model import Policy, Registries, Rule
from webhook.service import AdmissionService
from webhook.settings import Settings

POLICY = Policy(
    name="annotations",
    source="p.yaml",
    registries=Registries(allow=("ghcr.io",)),
    rules=(Rule(name="all", images=("ghcr.io/**",)),),
)
# The response's cap for one annotation value is 8 KiB; the images list stays under it.
LIMIT = 7000


class _NoFacts:
    def __call__(self, plan: ImagePlan, *, deadline: Deadline, now: datetime) -> ImageFacts:
        raise AssertionError("nothing here needs facts")


class _Runtime:
    def current(self) -> tuple[Policy, _NoFacts]:
        return POLICY, _NoFacts()


def _annotations(images: list[str]) -> dict[str, str]:
    service = AdmissionService(
        settings=Settings(audit_log=False), runtime=_Runtime(), clock=lambda: datetime.now(UTC)
    )
    response = service.admit(review("Pod", images), stage="validate").review["response"]
    annotations: dict[str, str] = response["auditAnnotations"]
    return annotations


def test_a_few_images_are_listed_whole() -> None:
    images = [f"ghcr.io/acme/app{i}@sha256:{str(i) * 64}" for i in range(5)]
    annotations = _annotations(images)
    listed = json.loads(annotations["images"])
    assert [entry["image"] for entry in listed] == images
    assert [entry["outcome"] for entry in listed] == ["admitted"] * 5
    assert "imagesOmitted" not in annotations
    assert annotations["images"] == json.dumps(listed, separators=(",", ":"))


def test_a_few_long_images_over_the_cap_are_cut_to_a_valid_prefix() -> None:
    # 20 references too long to be valid (denied invalid-reference): together far over the cap.
    images = [f"ghcr.io/acme/{'a' * 400}{i:02d}:1" for i in range(20)]
    annotations = _annotations(images)
    text = annotations["images"]
    listed = json.loads(text)
    assert len(text) <= LIMIT
    assert 0 < len(listed) < 20
    assert [entry["image"] for entry in listed] == images[: len(listed)]
    assert int(annotations["imagesOmitted"]) == 20 - len(listed)
    # The longest prefix that fits: one more entry would not have.
    one_more = {"image": images[len(listed)], "outcome": "invalid-reference"}
    assert len(text) + 1 + len(json.dumps(one_more, separators=(",", ":"))) > LIMIT
