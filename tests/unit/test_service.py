"""The imperative shell with fake adapters: deadlines, failures and the no-500 guarantee."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
from flask.testing import FlaskClient

from tests.support.reviews import review
from webhook.app import create_app
from webhook.deadline import Deadline
from webhook.decision import ImagePlan
from webhook.errors import RegistryError
from webhook.facts import ImageFacts
from webhook.metrics import Metrics
from webhook.policy.model import Policy, Registries, Rule, Tags
from webhook.service import AdmissionService
from webhook.settings import Settings

DIGEST = "sha256:" + "c" * 64
POLICY = Policy(
    name="svc",
    source="p.yaml",
    registries=Registries(allow=("ghcr.io",)),
    tags=Tags(resolve=True, deny=("latest",)),
    rules=(Rule(name="all", images=("ghcr.io/**",)),),
    fingerprint="f" * 64,
)


@dataclass
class FakeGatherer:
    """Answers from a table; ``block`` makes it hang (a registry that never answers)."""

    digests: dict[str, str] = field(default_factory=dict)
    error: Exception | None = None
    block: threading.Event | None = None
    calls: list[str] = field(default_factory=list)

    def __call__(self, plan: ImagePlan, *, deadline: Deadline, now: datetime) -> ImageFacts:
        self.calls.append(plan.image)
        if self.block is not None:
            self.block.wait(10)
        if self.error is not None:
            raise self.error
        return ImageFacts(digest=self.digests.get(plan.image))


@dataclass
class FakeRuntime:
    gatherer: FakeGatherer
    policy: Policy | None = POLICY

    def current(self) -> tuple[Policy, FakeGatherer] | None:
        return None if self.policy is None else (self.policy, self.gatherer)


def service(
    gatherer: FakeGatherer, *, deadline: float = 8.0, policy: Policy | None = POLICY
) -> AdmissionService:
    settings = Settings(deadline_seconds=deadline, audit_log=False)
    return AdmissionService(
        settings=settings,
        runtime=FakeRuntime(gatherer, policy),
        clock=lambda: datetime(2026, 11, 26, tzinfo=UTC),
    )


def test_distinct_images_are_gathered_once_each() -> None:
    gatherer = FakeGatherer(digests={"ghcr.io/a/b:1": DIGEST})
    outcome = service(gatherer).admit(
        review("Deployment", ["ghcr.io/a/b:1", "ghcr.io/a/b:1"], init_images=["ghcr.io/a/b:1"]),
        stage="mutate",
    )
    assert gatherer.calls == ["ghcr.io/a/b:1"]
    response = outcome.review["response"]
    assert response["allowed"] is True and response["patchType"] == "JSONPatch"


def test_registry_error_from_gatherer_is_a_denial() -> None:
    gatherer = FakeGatherer(error=RegistryError("registry ghcr.io: connection refused"))
    response = service(gatherer).admit(review("Pod", ["ghcr.io/a/b:1"]), stage="mutate").review["response"]
    assert response["allowed"] is False
    assert "[registry-error] registry ghcr.io: connection refused" in response["status"]["message"]


def test_a_hanging_registry_is_denied_at_the_deadline() -> None:
    release = threading.Event()
    gatherer = FakeGatherer(block=release)
    try:
        response = (
            service(gatherer, deadline=0.3)
            .admit(review("Pod", ["ghcr.io/a/b:1"]), stage="mutate")
            .review["response"]
        )
    finally:
        release.set()
    assert response["allowed"] is False
    assert "within the admission deadline" in response["status"]["message"]


def test_unexpected_error_in_an_adapter_denies() -> None:
    gatherer = FakeGatherer(error=ZeroDivisionError("boom"))
    response = service(gatherer).admit(review("Pod", ["ghcr.io/a/b:1"]), stage="mutate").review["response"]
    assert response["allowed"] is False and "ZeroDivisionError" in response["status"]["message"]


def test_no_policy_loaded_denies() -> None:
    response = (
        service(FakeGatherer(), policy=None)
        .admit(review("Pod", ["ghcr.io/a/b:1"]), stage="validate")
        .review["response"]
    )
    assert (
        response["allowed"] is False
        and "[internal-error] no valid policy is loaded" in response["status"]["message"]
    )


class ExplodingService(AdmissionService):
    def admit(self, body: object, *, stage: str):  # type: ignore[no-untyped-def, override]
        raise RuntimeError("unexpected")


@pytest.fixture
def exploding_client() -> FlaskClient:
    settings = Settings(audit_log=False)
    svc = ExplodingService(settings=settings, runtime=FakeRuntime(FakeGatherer()))
    app = create_app(settings=settings, service=svc, metrics=Metrics(), ready=lambda: True)
    return app.test_client()


def test_unexpected_exception_answers_allowed_false_never_500(exploding_client: FlaskClient) -> None:
    body = review("Pod", ["ghcr.io/a/b:1"], uid="u-1")
    for path in ("/mutate", "/validate"):
        answer = exploding_client.post(path, json=body)
        assert answer.status_code == 200
        payload = answer.get_json()
        assert payload["response"]["uid"] == "u-1"
        assert payload["response"]["allowed"] is False
        assert "[internal-error]" in payload["response"]["status"]["message"]
