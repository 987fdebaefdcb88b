"""The imperative shell with fake adapters: deadlines, failures and the no-500 guarantee."""

from __future__ import annotations

import base64
import copy
import json
import threading
from dataclasses import dataclass, field, replace
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
from webhook.policy.model import Policy, QuarantineSettings, Registries, Rule, Tags
from webhook.reasons import Reason
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
    gatherer: FakeGatherer, *, deadline: float = 8.0, policy: Policy | None = POLICY, **settings_: object
) -> AdmissionService:
    settings = Settings(deadline_seconds=deadline, audit_log=False, **settings_)  # type: ignore[arg-type]
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
    gatherer = FakeGatherer(
        error=RegistryError("registry ghcr.io: connection refused", code=Reason.REGISTRY_ERROR)
    )
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


@pytest.fixture
def client() -> FlaskClient:
    settings = Settings(audit_log=False, max_images=5000)
    svc = AdmissionService(
        settings=settings,
        runtime=FakeRuntime(FakeGatherer(digests={})),
        clock=lambda: datetime(2026, 11, 26, tzinfo=UTC),
    )
    return create_app(settings=settings, service=svc, metrics=Metrics(), ready=lambda: True).test_client()


@pytest.mark.parametrize(
    ("path", "value", "fragment"),
    [
        (("spec",), [], "/spec: must be an object"),
        (("spec", "containers"), "x", "/spec/containers: must be an array"),
        (("spec", "containers", 0), 7, "/spec/containers/0: must be an object"),
        (("spec", "containers", 0, "image"), 5, "/spec/containers/0/image: must be a string"),
        (("spec", "containers", 0, "name"), ["a"], "/spec/containers/0/name: must be a string"),
    ],
)
def test_malformed_object_is_a_400_naming_the_field(
    client: FlaskClient, path: tuple[str | int, ...], value: object, fragment: str
) -> None:
    body = review("Pod", ["ghcr.io/a/b:1"])
    target = body["request"]["object"]
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    for endpoint in ("/mutate", "/validate"):
        answer = client.post(endpoint, json=body)
        assert answer.status_code == 400
        assert fragment in answer.get_json()["error"]


def test_deeply_nested_body_is_a_400(client: FlaskClient) -> None:
    depth = 100_000
    body = b'{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","x":'
    body += b"[" * depth + b"]" * depth + b"}}"
    answer = client.post("/validate", data=body, content_type="application/json")
    assert answer.status_code == 400
    assert "nested" in answer.get_json()["error"]


def test_thousands_of_denied_images_give_a_bounded_answer(client: FlaskClient) -> None:
    images = [f"ghcr.io/acme/app{i}:latest" for i in range(3000)]
    answer = client.post("/validate", json=review("Pod", images))
    assert answer.status_code == 200
    response = answer.get_json()["response"]
    assert response["allowed"] is False
    lines = response["status"]["message"].splitlines()
    assert len(response["status"]["message"]) <= 40_000
    assert lines[0].startswith('container "app" image "ghcr.io/acme/app0:latest": [tag-denied]')
    assert lines[-1] == f"... and {3000 - len(lines) + 1} more denied images (see the audit log)"
    annotations = response["auditAnnotations"]
    listed = json.loads(annotations["images"])  # still valid JSON
    assert listed and listed[0]["image"] == "ghcr.io/acme/app0:latest"
    assert int(annotations["imagesOmitted"]) == 3000 - len(listed)
    assert all(len(v) <= 8000 for v in annotations.values())


def test_thousands_of_warnings_end_with_a_count(client: FlaskClient) -> None:
    settings = Settings(audit_log=False, max_images=5000)
    warn = replace(POLICY, mode="warn")
    svc = AdmissionService(settings=settings, runtime=FakeRuntime(FakeGatherer(), warn))
    warned = create_app(settings=settings, service=svc, metrics=Metrics(), ready=lambda: True).test_client()
    response = warned.post(
        "/validate", json=review("Pod", [f"ghcr.io/acme/app{i}:latest" for i in range(300)])
    ).get_json()["response"]
    assert response["allowed"] is True
    assert len(response["warnings"]) == 50
    assert "[tag-denied]" in response["warnings"][0]
    assert response["warnings"][-1] == "... and 251 more warnings (see the audit log)"


MARKERS = replace(POLICY, quarantine=QuarantineSettings(registry_markers=True))


def test_pinned_image_whose_markers_time_out_is_denied() -> None:
    # The quarantine markers of a pinned image are facts too: not read in time is not "none found".
    release = threading.Event()
    gatherer = FakeGatherer(block=release)
    try:
        response = (
            service(gatherer, deadline=0.3, policy=MARKERS)
            .admit(review("Pod", [f"ghcr.io/a/b@{DIGEST}"]), stage="validate")
            .review["response"]
        )
    finally:
        release.set()
    assert gatherer.calls == [f"ghcr.io/a/b@{DIGEST}"]
    assert response["allowed"] is False
    message = response["status"]["message"]
    assert "[registry-error] no answer from the registry within the admission deadline" in message


@pytest.mark.parametrize(
    "error", [RegistryError("registry ghcr.io: reset", code=Reason.REGISTRY_ERROR), KeyError("boom")]
)
def test_pinned_image_whose_fact_gathering_fails_is_denied(error: Exception) -> None:
    response = (
        service(FakeGatherer(error=error), policy=MARKERS)
        .admit(review("Pod", [f"ghcr.io/a/b@{DIGEST}"]), stage="mutate")
        .review["response"]
    )
    assert response["allowed"] is False and "[registry-error]" in response["status"]["message"]


def test_update_keeps_unchanged_images_as_they_are_but_checks_them() -> None:
    """Pinning an image an UPDATE did not touch would restart a pod's container or roll out a workload."""
    gatherer = FakeGatherer(digests={"ghcr.io/a/old:1": DIGEST, "ghcr.io/a/new:2": DIGEST})
    body = review("Deployment", ["ghcr.io/a/old:1", "ghcr.io/a/new:2"], operation="UPDATE")
    old = copy.deepcopy(body["request"]["oldObject"])
    old["spec"]["template"]["spec"]["containers"][1]["image"] = "ghcr.io/a/new:1"
    body["request"]["oldObject"] = old
    svc = service(gatherer)
    mutated = svc.admit(body, stage="mutate").review["response"]
    ops = json.loads(base64.b64decode(mutated["patch"]))
    assert ops == [
        {
            "op": "replace",
            "path": "/spec/template/spec/containers/1/image",
            "value": f"ghcr.io/a/new:2@{DIGEST}",
        }
    ]
    assert sorted(gatherer.calls) == ["ghcr.io/a/new:2", "ghcr.io/a/old:1"]  # both are checked
    validated = svc.admit(body, stage="validate").review["response"]
    assert validated["allowed"] is False  # the changed image arrives unpinned here: the patch was not applied
    assert validated["status"]["message"].count("[not-pinned]") == 1
    assert "ghcr.io/a/new:2" in validated["status"]["message"]


def test_update_checks_running_images_but_only_warns_about_them() -> None:
    gatherer = FakeGatherer(
        error=RegistryError("registry ghcr.io: connection refused", code=Reason.REGISTRY_ERROR)
    )
    body = review("Pod", ["ghcr.io/a/old:1"], operation="UPDATE")
    response = service(gatherer).admit(body, stage="validate").review["response"]
    assert gatherer.calls == ["ghcr.io/a/old:1"]  # checked all the same
    assert response["allowed"] is True
    (warning,) = response["warnings"]
    assert "[registry-error] registry ghcr.io: connection refused" in warning
    assert warning.endswith(
        "already running: this update is allowed, but new pods with this image will be refused"
    )
    assert "[not-pinned]" not in warning


def test_update_judges_a_container_new_to_an_image_in_full() -> None:
    # The sidecar is switched to the image the app container runs: a new container of it would start.
    gatherer = FakeGatherer(
        error=RegistryError("registry ghcr.io: connection refused", code=Reason.REGISTRY_ERROR)
    )
    body = review("Pod", ["ghcr.io/a/old:1", "ghcr.io/a/old:1"], operation="UPDATE")
    body["request"]["oldObject"]["spec"]["containers"][1]["image"] = "ghcr.io/a/side:1"
    response = service(gatherer).admit(body, stage="mutate").review["response"]
    assert response["allowed"] is False
    assert response["status"]["message"].startswith(
        'container "app-1" image "ghcr.io/a/old:1": [registry-error]'
    )
    assert "\n" not in response["status"]["message"]
    assert response["warnings"][0].startswith('container "app" image "ghcr.io/a/old:1": [registry-error]')


def test_a_malformed_old_object_grants_nothing() -> None:
    gatherer = FakeGatherer(
        error=RegistryError("registry ghcr.io: connection refused", code=Reason.REGISTRY_ERROR)
    )
    body = review("Pod", ["ghcr.io/a/old:1"], operation="UPDATE")
    body["request"]["oldObject"]["spec"]["containers"] = "not a list"
    response = service(gatherer).admit(body, stage="mutate").review["response"]
    assert response["allowed"] is False and "[registry-error]" in response["status"]["message"]


# --- bounded work -------------------------------------------------------------------------------------


def test_more_distinct_images_than_the_limit_are_denied_without_planning_or_fetching(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    planned: list[str] = []
    monkeypatch.setattr("webhook.decision.plan_image", lambda image, **_: planned.append(image))
    gatherer = FakeGatherer()
    images = [f"ghcr.io/a/app{i}:1" for i in range(4)] * 50  # 4 distinct images, 200 containers
    outcome = service(gatherer, max_images=3).admit(review("Pod", images), stage="mutate")
    response = outcome.review["response"]
    assert response["allowed"] is False
    assert response["status"]["message"] == (
        "[too-many-images] the object has 4 distinct images, more than the 3 imagegate checks per object "
        "(IMAGEGATE_MAX_IMAGES): split it, or raise the limit"
    )
    assert planned == [] and gatherer.calls == []
    assert "patch" not in response


def test_an_object_at_the_image_limit_is_decided_and_duplicates_are_planned_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from webhook import decision

    planned: list[str] = []
    original = decision.plan_image

    def counting(image: str, **kwargs: object) -> ImagePlan:
        planned.append(image)
        return original(image, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr("webhook.decision.plan_image", counting)
    images = [f"ghcr.io/a/app{i}:1" for i in range(3)]
    gatherer = FakeGatherer(digests=dict.fromkeys(images, DIGEST))
    outcome = service(gatherer, max_images=3).admit(review("Pod", images * 1000), stage="mutate")
    response = outcome.review["response"]
    assert response["allowed"] is True
    assert sorted(planned) == sorted(gatherer.calls) == images
    assert len(json.loads(base64.b64decode(response["patch"]))) == 3000


def test_an_update_over_the_image_limit_checks_its_new_images_and_running_ones_within_the_limit() -> None:
    # The limit was lowered to 3 while the Pod ran 5 images; the update adds a sixth.
    running = [f"ghcr.io/a/run{i}:1" for i in range(5)]
    body = review("Pod", [*running, "ghcr.io/a/new:1"], operation="UPDATE")
    body["request"]["oldObject"]["spec"]["containers"] = copy.deepcopy(
        body["request"]["object"]["spec"]["containers"][:5]
    )
    gatherer = FakeGatherer(digests={image: DIGEST for image in [*running, "ghcr.io/a/new:1"]})
    response = service(gatherer, max_images=3).admit(body, stage="mutate").review["response"]
    assert response["allowed"] is True
    # Bounded: the new image and as many running ones as the limit leaves, no more.
    assert sorted(gatherer.calls) == ["ghcr.io/a/new:1", "ghcr.io/a/run0:1", "ghcr.io/a/run1:1"]
    judged = [entry["image"] for entry in json.loads(response["auditAnnotations"]["images"])]
    assert judged == ["ghcr.io/a/run0:1", "ghcr.io/a/run1:1", "ghcr.io/a/new:1"]
    assert response["auditAnnotations"]["notCheckedAgain"] == (
        "3 distinct images this update leaves running were not checked again: the object has more than "
        "IMAGEGATE_MAX_IMAGES"
    )


def test_an_update_adding_more_images_than_the_limit_is_denied_whatever_runs_already() -> None:
    running = ["ghcr.io/a/run:1"]
    added = [f"ghcr.io/a/new{i}:1" for i in range(3)]
    body = review("Pod", [*running, *added], operation="UPDATE")
    body["request"]["oldObject"]["spec"]["containers"] = copy.deepcopy(
        body["request"]["object"]["spec"]["containers"][:1]
    )
    gatherer = FakeGatherer()
    response = service(gatherer, max_images=2).admit(body, stage="mutate").review["response"]
    assert response["allowed"] is False
    assert response["status"]["message"] == (
        "[too-many-images] the object has 4 distinct images, 3 of them not already running, more than the "
        "2 imagegate checks per object (IMAGEGATE_MAX_IMAGES): split it, or raise the limit"
    )
    assert gatherer.calls == []


def test_one_request_holds_at_most_its_share_of_the_fetch_pool() -> None:
    """A 200-image object on a pool of 4 fetch threads: another admission still gets its facts at once."""
    release = threading.Event()
    running: list[int] = []
    lock = threading.Lock()
    active = {"big": 0}

    @dataclass
    class Gatherer(FakeGatherer):
        def __call__(self, plan: ImagePlan, *, deadline: Deadline, now: datetime) -> ImageFacts:
            if "/big/" not in plan.image:
                return ImageFacts(digest=DIGEST)
            with lock:
                active["big"] += 1
                running.append(active["big"])
            release.wait(10)
            with lock:
                active["big"] -= 1
            return ImageFacts(digest=DIGEST)

    svc = service(Gatherer(), max_images=256, fetch_threads=4, fetches_per_request=2)
    big = threading.Thread(
        target=svc.admit,
        args=(review("Pod", [f"ghcr.io/big/app{i}:1" for i in range(200)]),),
        kwargs={"stage": "mutate"},
    )
    big.start()
    try:
        small = svc.admit(review("Pod", ["ghcr.io/small/app:1"]), stage="mutate").review["response"]
    finally:
        release.set()
        big.join(15)
    assert small["allowed"] is True, small.get("status")
    assert running and max(running) <= 2


def test_planning_past_the_deadline_is_a_fail_closed_denial() -> None:
    gatherer = FakeGatherer()
    outcome = service(gatherer, deadline=1e-9).admit(review("Pod", ["ghcr.io/a/b:1"]), stage="mutate")
    response = outcome.review["response"]
    assert response["allowed"] is False
    assert response["status"]["message"].startswith(
        "[internal-error] imagegate could not finish checking this object within the admission deadline"
    )
    assert gatherer.calls == []


def _audit_records(caplog: pytest.LogCaptureFixture) -> list[dict[str, object]]:
    return [json.loads(r.getMessage()) for r in caplog.records if r.name == "imagegate.audit"]


def test_the_audit_line_is_bounded_and_valid_json(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="imagegate.audit")
    huge = "ghcr.io/a/" + "b" * 5_000_000
    images = [huge, *[f"ghcr.io/a/app{i}:latest" for i in range(2)]] * 400
    svc = AdmissionService(
        settings=Settings(audit_log=True),
        runtime=FakeRuntime(FakeGatherer()),
        clock=lambda: datetime.now(UTC),
    )
    body = review("Pod", images, name="n" * 100_000)
    body["request"]["userInfo"]["username"] = "u" * 100_000
    svc.admit(body, stage="validate")
    [line] = [r.getMessage() for r in caplog.records if r.name == "imagegate.audit"]
    assert len(line) < 512 * 1024
    record = json.loads(line)
    assert len(record["images"]) == 256 and record["imagesOmitted"] == 1200 - 256
    assert record["images"][0]["image"].endswith(f"... ({len(huge)} characters)")
    assert len(record["name"]) < 1000 and len(record["user"]) < 1000


def test_the_audit_line_explains_each_image_that_failed_a_check(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="imagegate.audit")
    svc = AdmissionService(
        settings=Settings(audit_log=True),
        runtime=FakeRuntime(FakeGatherer(digests={"ghcr.io/a/b:1": DIGEST})),
        clock=lambda: datetime.now(UTC),
    )
    answer = svc.admit(review("Pod", ["ghcr.io/a/b:latest", "ghcr.io/a/b:1"]), stage="mutate")
    [record] = _audit_records(caplog)
    denied, admitted = record["images"]  # type: ignore[misc]
    assert denied["explanation"] == {
        "checks": [
            {
                "name": "tag",
                "outcome": "failed",
                "summary": "latest is in tags.deny",
                "finding": {
                    "code": "tag-denied",
                    "message": 'tag "latest" is mutable and not allowed (rule all)',
                },
                "mode": "enforce",
            }
        ],
    }
    assert "explanation" not in admitted
    # The same explanation, in full, for whoever holds the answer (evaluate --explain, policy tests).
    full = [[c.name for c in e.checks if c.outcome != "passed"] for e in answer.explanations()]
    assert full == [["tag", "rules"], []]


def test_the_audit_lines_explanations_are_bounded_together(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="imagegate.audit")
    svc = AdmissionService(
        settings=Settings(audit_log=True),
        runtime=FakeRuntime(FakeGatherer()),
        clock=lambda: datetime.now(UTC),
    )
    svc.admit(review("Pod", [f"ghcr.io/a/app{i}:latest" for i in range(200)]), stage="validate")
    [record] = _audit_records(caplog)
    images = record["images"]
    assert isinstance(images, list) and len(images) == 200
    explained = [i for i in images if "checks" in i["explanation"]]
    omitted = [i for i in images if "omitted" in i["explanation"]]
    assert explained and omitted and len(explained) + len(omitted) == 200
    assert sum(len(json.dumps(i["explanation"])) for i in explained) < 40 * 1024


def test_too_many_images_is_audited_without_listing_them(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="imagegate.audit")
    svc = AdmissionService(
        settings=Settings(audit_log=True, max_images=2),
        runtime=FakeRuntime(FakeGatherer()),
        clock=lambda: datetime.now(UTC),
    )
    svc.admit(review("Pod", ["ghcr.io/a/x:1", "ghcr.io/a/y:1", "ghcr.io/a/z:1"], uid="many"), stage="mutate")
    [record] = _audit_records(caplog)
    assert record["uid"] == "many" and record["allowed"] is False
    assert record["error"] == "too-many-images" and record["distinctImages"] == 3
    assert record["images"] == []


@pytest.mark.parametrize(
    ("mode", "said"),
    [
        ("enforce", {"message"}),
        ("warn", {"warnings"}),
        ("audit", {"auditLines"}),
    ],
)
def test_the_audit_line_has_its_time_and_the_lines_the_answer_gave(
    caplog: pytest.LogCaptureFixture, mode: str, said: set[str]
) -> None:
    caplog.set_level("INFO", logger="imagegate.audit")
    when = datetime(2026, 11, 26, 9, 30, 15, 250_000, tzinfo=UTC)
    svc = AdmissionService(
        settings=Settings(audit_log=True),
        runtime=FakeRuntime(FakeGatherer(), replace(POLICY, mode=mode)),  # type: ignore[arg-type]
        clock=lambda: when,
    )
    images = ["ghcr.io/a/b:latest", "quay.io/x/y:1"]
    response = svc.admit(review("Pod", images, uid="said"), stage="validate").review["response"]
    [record] = _audit_records(caplog)
    assert record["time"] == "2026-11-26T09:30:15.250000Z"
    assert said <= set(record) and not ({"message", "warnings", "auditLines"} - said) & set(record)
    lines = [
        'container "app" image "ghcr.io/a/b:latest": [tag-denied] tag "latest" is mutable and not allowed '
        "(rule all)",
        'container "app-1" image "quay.io/x/y:1": [registry-not-allowed] registry "quay.io" is not in '
        "registries.allow (allowed: ghcr.io) (policy svc)",
    ]
    if mode == "enforce":
        # As the API server returns it: kubectl prints this message.
        assert record["message"] == response["status"]["message"] == "\n".join(lines)
    elif mode == "warn":
        assert record["warnings"] == response["warnings"] == lines
    else:
        assert record["auditLines"] == lines
        assert response["auditAnnotations"]["audit"] == "\n".join(lines)


def test_an_object_denied_as_a_whole_is_audited_with_its_message(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="imagegate.audit")
    svc = AdmissionService(
        settings=Settings(audit_log=True, max_images=1),
        runtime=FakeRuntime(FakeGatherer()),
        clock=lambda: datetime(2026, 11, 26, 9, 30, tzinfo=UTC),
    )
    response = svc.admit(review("Pod", ["ghcr.io/a/x:1", "ghcr.io/a/y:1"]), stage="mutate").review["response"]
    [record] = _audit_records(caplog)
    assert record["time"] == "2026-11-26T09:30:00.000000Z"
    assert record["message"] == response["status"]["message"]
    assert record["message"].startswith("[too-many-images] the object has 2 distinct images")


def test_deciding_past_the_deadline_is_a_fail_closed_denial(monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    from webhook import decision

    chunks: list[int] = []

    def slow(slots: list[object], **kwargs: object) -> decision.Decision:
        chunks.append(len(slots))
        time.sleep(0.4)  # longer than the whole deadline: the next chunk must not be decided
        return decision.evaluate(slots, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr("webhook.service.evaluate", slow)
    images = [f"ghcr.io/a/b@{DIGEST}"] * 3000  # three chunks of slots
    outcome = service(FakeGatherer(), deadline=0.3).admit(review("Pod", images), stage="validate")
    response = outcome.review["response"]
    assert response["allowed"] is False
    assert "within the admission deadline (0.3s); nothing was admitted" in response["status"]["message"]
    assert chunks == [1024]


def test_too_many_images_deny_in_warn_mode_too() -> None:
    warn = replace(POLICY, mode="warn")
    images = [f"ghcr.io/a/app{i}:latest" for i in range(3)]
    response = service(FakeGatherer(), policy=warn, max_images=2).admit(review("Pod", images), stage="mutate")
    assert response.review["response"]["allowed"] is False
    assert "[too-many-images]" in response.review["response"]["status"]["message"]
