"""The AdmissionReview fixtures and the review() factory produce objects Kubernetes accepts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest

from tests.support.reviews import FIXTURES, KINDS, fixture, fixture_names, kubectl, review
from webhook.admission.review import parse_review
from webhook.admission.workloads import image_slots

K8S = "1.33.0"
EXPECTED_FIXTURES = {
    "review_cronjob_create.json",
    "review_daemonset_create.json",
    "review_deployment_create.json",
    "review_deployment_delete.json",
    "review_deployment_dryrun.json",
    "review_deployment_update.json",
    "review_job_create.json",
    "review_pod_all_slots.json",
    "review_pod_create.json",
    "review_pod_ephemeralcontainers_update.json",
    "review_podtemplate_create.json",
    "review_replicaset_create.json",
    "review_replicationcontroller_create.json",
    "review_statefulset_create.json",
}


def test_fixture_set() -> None:
    assert set(fixture_names()) == EXPECTED_FIXTURES
    kinds = {fixture(name)["request"]["kind"]["kind"] for name in fixture_names()}
    assert kinds == set(KINDS)


@pytest.mark.parametrize("name", fixture_names())
def test_fixture_objects_validate_strictly(name: str) -> None:
    request = fixture(name)["request"]
    objects = [request[key] for key in ("object", "oldObject") if request[key] is not None]
    assert objects
    for obj in objects:
        assert obj["kind"] == request["kind"]["kind"]
        kubernetes_validate.validate(obj, K8S, strict=True)


def test_strict_validation_catches_a_broken_object() -> None:
    # Guards the test above: the validator really is strict about fields and types.
    obj = fixture("review_pod_all_slots.json")["request"]["object"]
    obj["spec"]["containers"][0]["imagePullPolcy"] = "Always"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(obj, K8S, strict=True)
    obj = fixture("review_pod_all_slots.json")["request"]["object"]
    obj["spec"]["volumes"][2]["image"]["reference"] = 42
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(obj, K8S, strict=True)


def test_fixtures_are_what_the_generator_writes(tmp_path: Path) -> None:
    binary = kubectl()
    result = subprocess.run(
        [sys.executable, str(FIXTURES / "generate.py"), "--out", str(tmp_path), "--kubectl", binary],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    generated = sorted(p.name for p in tmp_path.iterdir())
    assert generated == fixture_names()
    for name in generated:
        assert (tmp_path / name).read_text() == (FIXTURES / name).read_text(), f"{name} differs: regenerate"


@pytest.mark.parametrize("operation", ["CREATE", "UPDATE", "DELETE"])
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_factory_reviews_are_valid(kind: str, operation: str) -> None:
    body = review(
        kind,
        ["ghcr.io/acme/app:1", "nginx"],
        init_images=["ghcr.io/acme/init:1"],
        ephemeral_images=["busybox:1.36"],
        volume_images=["ghcr.io/acme/models:1"],
        operation=operation,
        namespace="team-a",
        name="svc",
        dry_run=operation == "UPDATE",
    )
    context = parse_review(body)
    assert (context.kind.kind, context.operation, context.namespace, context.name) == (
        kind,
        operation,
        "team-a",
        "svc",
    )
    assert context.dry_run is (operation == "UPDATE")
    assert (context.object is None) is (operation == "DELETE")
    assert (context.old_object is None) is (operation == "CREATE")
    for obj in (context.object, context.old_object):
        if obj is not None:
            kubernetes_validate.validate(dict(obj), K8S, strict=True)
            assert len(image_slots(kind, obj)) == 5


def test_factory_ephemeral_subresource_update() -> None:
    body = review(
        "Pod",
        ["ghcr.io/acme/app:1"],
        ephemeral_images=["busybox:1.36"],
        operation="UPDATE",
        sub_resource="ephemeralcontainers",
        uid="7f1c2d3e-0000-4000-8000-000000000001",
    )
    context = parse_review(body)
    assert context.sub_resource == "ephemeralcontainers"
    assert context.uid == "7f1c2d3e-0000-4000-8000-000000000001"
    assert body["request"]["requestSubResource"] == "ephemeralcontainers"
    assert context.object is not None
    assert context.old_object is not None
    assert [s.location for s in image_slots("Pod", context.object)] == ["containers", "ephemeralContainers"]
    assert [s.location for s in image_slots("Pod", context.old_object)] == ["containers"]


def test_factory_uids_are_stable_and_distinct() -> None:
    assert review("Pod")["request"]["uid"] == review("Pod")["request"]["uid"]
    assert review("Pod")["request"]["uid"] != review("Deployment")["request"]["uid"]


def test_factory_refuses_unknown_kinds() -> None:
    with pytest.raises(ValueError, match="unsupported kind 'Service'"):
        review("Service")
