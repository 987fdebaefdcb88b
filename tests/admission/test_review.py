"""parse_review: every fixture and factory review is accepted; malformed reviews are refused precisely."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from typing import Any

import pytest

from tests.support.reviews import fixture, fixture_names, review
from webhook.admission.review import (
    API_VERSION,
    AdmissionContext,
    GroupVersionKind,
    GroupVersionResource,
    parse_review,
)
from webhook.errors import BadRequest

# file -> (kind, resource, sub_resource, operation, namespace, name, user, dry_run, has object, has oldObject)
FIXTURE_CONTEXTS = {
    "review_cronjob_create.json": (
        ("batch", "v1", "CronJob"), ("batch", "v1", "cronjobs"), "", "CREATE", "prod", "nightly",
        "alice@example.com", False, True, False,
    ),
    "review_daemonset_create.json": (
        ("apps", "v1", "DaemonSet"), ("apps", "v1", "daemonsets"), "", "CREATE", "prod", "tpl-daemonset",
        "alice@example.com", False, True, False,
    ),
    "review_deployment_create.json": (
        ("apps", "v1", "Deployment"), ("apps", "v1", "deployments"), "", "CREATE", "prod", "web",
        "alice@example.com", False, True, False,
    ),
    "review_deployment_delete.json": (
        ("apps", "v1", "Deployment"), ("apps", "v1", "deployments"), "", "DELETE", "prod", "web",
        "alice@example.com", False, False, True,
    ),
    "review_deployment_dryrun.json": (
        ("apps", "v1", "Deployment"), ("apps", "v1", "deployments"), "", "CREATE", "prod", "web",
        "alice@example.com", True, True, False,
    ),
    "review_deployment_update.json": (
        ("apps", "v1", "Deployment"), ("apps", "v1", "deployments"), "", "UPDATE", "prod", "web",
        "alice@example.com", False, True, True,
    ),
    "review_job_create.json": (
        ("batch", "v1", "Job"), ("batch", "v1", "jobs"), "", "CREATE", "prod", "migrate",
        "alice@example.com", False, True, False,
    ),
    "review_pod_all_slots.json": (
        ("", "v1", "Pod"), ("", "v1", "pods"), "", "CREATE", "prod", "all-slots",
        "alice@example.com", False, True, False,
    ),
    "review_pod_create.json": (
        ("", "v1", "Pod"), ("", "v1", "pods"), "", "CREATE", "prod", "tpl-pod",
        "alice@example.com", False, True, False,
    ),
    "review_pod_ephemeralcontainers_update.json": (
        ("", "v1", "Pod"), ("", "v1", "pods"), "ephemeralcontainers", "UPDATE", "prod", "debug-me",
        "kubernetes-admin", False, True, True,
    ),
    "review_podtemplate_create.json": (
        ("", "v1", "PodTemplate"), ("", "v1", "podtemplates"), "", "CREATE", "prod", "tpl-podtemplate",
        "alice@example.com", False, True, False,
    ),
    "review_replicaset_create.json": (
        ("apps", "v1", "ReplicaSet"), ("apps", "v1", "replicasets"), "", "CREATE", "prod", "tpl-replicaset",
        "alice@example.com", False, True, False,
    ),
    "review_replicationcontroller_create.json": (
        ("", "v1", "ReplicationController"), ("", "v1", "replicationcontrollers"), "", "CREATE", "prod",
        "tpl-replicationcontroller", "alice@example.com", False, True, False,
    ),
    "review_statefulset_create.json": (
        ("apps", "v1", "StatefulSet"), ("apps", "v1", "statefulsets"), "", "CREATE", "prod",
        "tpl-statefulset", "alice@example.com", False, True, False,
    ),
}  # fmt: skip


def test_every_fixture_has_an_expected_context() -> None:
    assert sorted(FIXTURE_CONTEXTS) == fixture_names()


@pytest.mark.parametrize("name", sorted(FIXTURE_CONTEXTS))
def test_parse_fixture(name: str) -> None:
    body = fixture(name)
    expected = FIXTURE_CONTEXTS[name]
    (kind, resource, sub, operation, namespace, obj_name, user, dry_run, has_obj, has_old) = expected
    context = parse_review(body)
    assert context == AdmissionContext(
        uid=body["request"]["uid"],
        api_version=API_VERSION,
        kind=GroupVersionKind(*kind),
        resource=GroupVersionResource(*resource),
        sub_resource=sub,
        operation=operation,
        namespace=namespace,
        name=obj_name,
        user=user,
        dry_run=dry_run,
        object=body["request"]["object"],
        old_object=body["request"]["oldObject"],
    )
    assert (context.object is not None, context.old_object is not None) == (has_obj, has_old)


def test_context_is_frozen() -> None:
    context = parse_review(review())
    with pytest.raises(dataclasses.FrozenInstanceError):
        context.uid = "other"  # type: ignore[misc]


Edit = Callable[[dict[str, Any]], object]


def _set(path: str, value: object) -> Edit:
    """An edit that sets (or, for value _DELETE, removes) a dotted path of the review."""

    def edit(body: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target = body
        for key in parents:
            target = target[key]
        if value is _DELETE:
            del target[last]
        else:
            target[last] = value

    return edit


_DELETE = object()

# (description, edit of a valid Pod CREATE review, expected context fields)
ACCEPTED: list[tuple[str, Edit, dict[str, object]]] = [
    (
        "generateName when there is no name",
        _set("request.object.metadata", {"generateName": "web-"}),
        {"name": "web-"},
    ),
    ("request.name without metadata.name", _set("request.object.metadata", {}), {"name": "demo"}),
    ("request.name without metadata", _set("request.object.metadata", _DELETE), {"name": "demo"}),
    ("metadata.name wins over request.name", _set("request.name", "other"), {"name": "demo"}),
    (
        "no name anywhere",
        lambda b: (b["request"]["object"].pop("metadata"), b["request"].pop("name")),
        {"name": ""},
    ),
    ("cluster-scoped: no namespace", _set("request.namespace", _DELETE), {"namespace": ""}),
    ("no userInfo", _set("request.userInfo", _DELETE), {"user": ""}),
    ("userInfo without username", _set("request.userInfo", {"groups": []}), {"user": ""}),
    ("no dryRun", _set("request.dryRun", _DELETE), {"dry_run": False}),
    ("dryRun null", _set("request.dryRun", None), {"dry_run": False}),
    ("dryRun true", _set("request.dryRun", True), {"dry_run": True}),
    ("subResource null", _set("request.subResource", None), {"sub_resource": ""}),
    ("subResource status", _set("request.subResource", "status"), {"sub_resource": "status"}),
    (
        "core group left out",
        _set("request.kind", {"version": "v1", "kind": "Pod"}),
        {"kind": GroupVersionKind("", "v1", "Pod")},
    ),
    (
        "DELETE without object",
        lambda b: b["request"].update(operation="DELETE", object=None),
        {"operation": "DELETE", "object": None},
    ),
    (
        "CONNECT without object",
        lambda b: b["request"].update(operation="CONNECT", object=None),
        {"operation": "CONNECT", "object": None},
    ),
    ("unknown extra fields are ignored", _set("request.futureField", {"x": 1}), {"operation": "CREATE"}),
    ("options null", _set("request.options", None), {"operation": "CREATE"}),
]


@pytest.mark.parametrize(
    ("edit", "expected"), [(e, x) for _, e, x in ACCEPTED], ids=[d for d, _, _ in ACCEPTED]
)
def test_parse_accepts(edit: Edit, expected: dict[str, object]) -> None:
    body = review("Pod", ["ghcr.io/acme/app:1.0"], name="demo")
    edit(body)
    context = parse_review(body)
    for field, value in expected.items():
        assert getattr(context, field) == value


# (description, body or edit, fragment of BadRequest.user_message)
REJECTED: list[tuple[str, object, str]] = [
    ("JSON array", [], "must be a JSON object, not an array"),
    ("JSON string", "AdmissionReview", "must be a JSON object, not a string"),
    ("JSON null", None, "must be a JSON object, not null"),
    ("empty object", {}, "expected apiVersion 'admission.k8s.io/v1'"),
    ("v1beta1", _set("apiVersion", "admission.k8s.io/v1beta1"), "got apiVersion 'admission.k8s.io/v1beta1'"),
    ("wrong kind", _set("kind", "AdmissionResponse"), "kind 'AdmissionResponse'"),
    ("no kind", _set("kind", _DELETE), "kind nothing"),
    ("no request", _set("request", _DELETE), "request: missing"),
    ("request null", _set("request", None), "request: missing"),
    ("request array", _set("request", []), "request: must be an object, not an array"),
    ("no uid", _set("request.uid", _DELETE), "request.uid: missing"),
    ("uid number", _set("request.uid", 42), "request.uid: must be a string, not a number"),
    ("uid empty", _set("request.uid", ""), "request.uid: must be 1 to 128 characters"),
    ("uid huge", _set("request.uid", "u" * 129), "request.uid: must be 1 to 128 characters"),
    ("no operation", _set("request.operation", _DELETE), "request.operation: nothing is not one of"),
    (
        "lower-case operation",
        _set("request.operation", "create"),
        "request.operation: 'create' is not one of",
    ),
    (
        "operation list",
        _set("request.operation", ["CREATE"]),
        """request.operation: '["CREATE"]' is not one of""",
    ),
    ("object array", _set("request.object", []), "request.object: must be an object or null, not an array"),
    (
        "object string",
        _set("request.object", "{}"),
        "request.object: must be an object or null, not a string",
    ),
    ("CREATE without object", _set("request.object", _DELETE), "request.object: missing (CREATE requests"),
    (
        "UPDATE with null object",
        lambda b: b["request"].update(operation="UPDATE", object=None),
        "request.object: missing (UPDATE requests",
    ),
    (
        "oldObject number",
        _set("request.oldObject", 1),
        "request.oldObject: must be an object or null, not a number",
    ),
    ("dryRun string", _set("request.dryRun", "true"), "request.dryRun: must be a boolean, not a string"),
    (
        "userInfo list",
        _set("request.userInfo", ["alice"]),
        "request.userInfo: must be an object, not an array",
    ),
    ("username number", _set("request.userInfo.username", 7), "request.userInfo.username: must be a string"),
    ("no kind object", _set("request.kind", _DELETE), "request.kind: missing"),
    ("kind string", _set("request.kind", "Pod"), "request.kind: must be an object, not a string"),
    (
        "kind without kind",
        _set("request.kind.kind", _DELETE),
        "request.kind.kind: must be a non-empty string",
    ),
    ("kind empty kind", _set("request.kind.kind", ""), "request.kind.kind: must be a non-empty string"),
    (
        "kind without version",
        _set("request.kind.version", _DELETE),
        "request.kind.version: must be a non-empty",
    ),
    (
        "kind group number",
        _set("request.kind.group", 1),
        "request.kind.group: must be a string, not a number",
    ),
    ("no resource", _set("request.resource", _DELETE), "request.resource: missing"),
    (
        "resource without resource",
        _set("request.resource.resource", None),
        "request.resource.resource: must be",
    ),
    ("namespace number", _set("request.namespace", 3), "request.namespace: must be a string, not a number"),
    ("name object", _set("request.name", {}), "request.name: must be a string, not an object"),
    (
        "subResource bool",
        _set("request.subResource", True),
        "request.subResource: must be a string, not a boolean",
    ),
    ("metadata array", _set("request.object.metadata", []), "request.object.metadata: must be an object"),
    (
        "metadata.name number",
        _set("request.object.metadata.name", 5),
        "request.object.metadata.name: must be a",
    ),
    (
        "generateName list",
        lambda b: b["request"]["object"]["metadata"].update(name=None, generateName=["x"]),
        "request.object.metadata.generateName: must be a string",
    ),
]


@pytest.mark.parametrize(
    ("case", "fragment"), [(c, f) for _, c, f in REJECTED], ids=[d for d, _, _ in REJECTED]
)
def test_parse_rejects(case: object, fragment: str) -> None:
    if callable(case):
        body: object = review("Pod", ["ghcr.io/acme/app:1.0"])
        case(body)
    else:
        body = copy.deepcopy(case)
    with pytest.raises(BadRequest) as error:
        parse_review(body)
    assert fragment in error.value.user_message


def test_rejection_messages_stay_short_for_huge_values() -> None:
    body = review()
    body["apiVersion"] = "x" * 100_000
    with pytest.raises(BadRequest) as error:
        parse_review(body)
    assert len(error.value.user_message) < 300
