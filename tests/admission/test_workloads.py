"""image_slots: every supported kind and every image location, from fixtures and the factory."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.support.reviews import KINDS, fixture, fixture_names, review
from webhook.admission.review import parse_review
from webhook.admission.workloads import SUPPORTED_KINDS, ImageSlot, image_slots, pod_spec_path
from webhook.errors import BadRequest

API = "registry.example.com:5000/team/api:v2"
SIDECAR = "127.0.0.1:5000/demo/sidecar@sha256:" + "0123456789abcdef" * 4
TPL = [("api", API), ("sidecar", SIDECAR)]

# kind -> pointer prefix of the pod spec
PREFIX = {
    "Pod": "/spec",
    "PodTemplate": "/template/spec",
    "ReplicationController": "/spec/template/spec",
    "Deployment": "/spec/template/spec",
    "ReplicaSet": "/spec/template/spec",
    "StatefulSet": "/spec/template/spec",
    "DaemonSet": "/spec/template/spec",
    "Job": "/spec/template/spec",
    "CronJob": "/spec/jobTemplate/spec/template/spec",
}


def _containers(prefix: str, items: list[tuple[str, str]], location: str = "containers") -> list[ImageSlot]:
    return [
        ImageSlot(f"{prefix}/{location}/{i}/image", location, name, image)  # type: ignore[arg-type]
        for i, (name, image) in enumerate(items)
    ]


# fixture -> slots of request.object (request.oldObject for DELETE)
FIXTURE_SLOTS: dict[str, list[ImageSlot]] = {
    "review_deployment_create.json": _containers(
        "/spec/template/spec", [("app", "ghcr.io/acme/app:1.4.2"), ("nginx", "nginx:1.25")]
    ),
    "review_deployment_update.json": _containers(
        "/spec/template/spec", [("app", "ghcr.io/acme/app:1.5.0"), ("nginx", "nginx:1.25")]
    ),
    "review_deployment_delete.json": _containers(
        "/spec/template/spec", [("app", "ghcr.io/acme/app:1.4.2"), ("nginx", "nginx:1.25")]
    ),
    "review_deployment_dryrun.json": _containers(
        "/spec/template/spec", [("app", "ghcr.io/acme/app:1.4.2"), ("nginx", "nginx:1.25")]
    ),
    "review_job_create.json": _containers("/spec/template/spec", [("migrate", "ghcr.io/acme/migrate:2.0")]),
    "review_cronjob_create.json": _containers(
        "/spec/jobTemplate/spec/template/spec", [("nightly", "ghcr.io/acme/report:3")]
    ),
    "review_pod_create.json": _containers("/spec", TPL),
    "review_replicaset_create.json": _containers("/spec/template/spec", TPL),
    "review_statefulset_create.json": _containers("/spec/template/spec", TPL),
    "review_daemonset_create.json": _containers("/spec/template/spec", TPL),
    "review_replicationcontroller_create.json": _containers("/spec/template/spec", TPL),
    "review_podtemplate_create.json": _containers("/template/spec", TPL),
    "review_pod_all_slots.json": [
        *_containers("/spec", TPL),
        ImageSlot("/spec/initContainers/0/image", "initContainers", "setup", "ghcr.io/acme/setup:1.0"),
        ImageSlot("/spec/ephemeralContainers/0/image", "ephemeralContainers", "debug", "busybox:1.36"),
        ImageSlot("/spec/volumes/2/image/reference", "volumes", "models", "ghcr.io/acme/models:2025.1"),
    ],
    "review_pod_ephemeralcontainers_update.json": [
        *_containers("/spec", TPL),
        ImageSlot(
            "/spec/ephemeralContainers/0/image", "ephemeralContainers", "debugger-x7k2p", "busybox:1.36"
        ),
    ],
}


def test_every_fixture_is_covered() -> None:
    assert sorted(FIXTURE_SLOTS) == fixture_names()


@pytest.mark.parametrize("name", sorted(FIXTURE_SLOTS))
def test_fixture_slots(name: str) -> None:
    context = parse_review(fixture(name))
    obj = context.object if context.object is not None else context.old_object
    assert obj is not None
    assert list(image_slots(context.kind.kind, obj, group=context.kind.group)) == FIXTURE_SLOTS[name]


def test_supported_kinds() -> None:
    assert frozenset(KINDS) == SUPPORTED_KINDS == frozenset(PREFIX)


@pytest.mark.parametrize("kind", sorted(PREFIX))
def test_every_location_of_every_kind(kind: str) -> None:
    body = review(
        kind,
        ["ghcr.io/acme/app:1", ("web", "nginx:1.25")],
        init_images=["ghcr.io/acme/init:1"],
        ephemeral_images=["busybox:1.36", "alpine:3"],
        volume_images=["ghcr.io/acme/models:1", "ghcr.io/acme/data:2"],
    )
    prefix = PREFIX[kind]
    assert image_slots(kind, body["request"]["object"]) == (
        ImageSlot(f"{prefix}/containers/0/image", "containers", "app", "ghcr.io/acme/app:1"),
        ImageSlot(f"{prefix}/containers/1/image", "containers", "web", "nginx:1.25"),
        ImageSlot(f"{prefix}/initContainers/0/image", "initContainers", "init", "ghcr.io/acme/init:1"),
        ImageSlot(f"{prefix}/ephemeralContainers/0/image", "ephemeralContainers", "debug", "busybox:1.36"),
        ImageSlot(f"{prefix}/ephemeralContainers/1/image", "ephemeralContainers", "debug-1", "alpine:3"),
        ImageSlot(f"{prefix}/volumes/0/image/reference", "volumes", "vol", "ghcr.io/acme/models:1"),
        ImageSlot(f"{prefix}/volumes/1/image/reference", "volumes", "vol-1", "ghcr.io/acme/data:2"),
    )
    assert pod_spec_path(kind) == tuple(prefix.strip("/").split("/"))


@pytest.mark.parametrize(
    ("slot", "text"),
    [
        (ImageSlot("/spec/containers/0/image", "containers", "app", "x"), 'container "app"'),
        (ImageSlot("/spec/initContainers/0/image", "initContainers", "setup", "x"), 'init container "setup"'),
        (
            ImageSlot("/spec/ephemeralContainers/0/image", "ephemeralContainers", "debug", "x"),
            'ephemeral container "debug"',
        ),
        (ImageSlot("/spec/volumes/2/image/reference", "volumes", "models", "x"), 'image volume "models"'),
        # Names are quoted as JSON: a crafted name cannot add a line to a denial message.
        (ImageSlot("/spec/containers/0/image", "containers", 'a"\nb', "x"), 'container "a\\"\\nb"'),
        (ImageSlot("/spec/containers/3/image", "containers", "", "x"), "container at /spec/containers/3"),
        (ImageSlot("/spec/volumes/1/image/reference", "volumes", "", "x"), "image volume at /spec/volumes/1"),
    ],
)
def test_describe(slot: ImageSlot, text: str) -> None:
    assert slot.describe() == text
    assert "\n" not in slot.describe()


def _pod(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": spec}


@pytest.mark.parametrize(
    ("kind", "obj"),
    [
        (
            "Pod",
            {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "status": {"phase": "Running"}},
        ),
        ("Pod", {"apiVersion": "v1", "kind": "Pod", "spec": None}),
        ("Pod", _pod()),
        ("Pod", _pod(containers=None, volumes=None)),
        ("Pod", _pod(containers=[], initContainers=[], ephemeralContainers=[], volumes=[])),
        ("Pod", _pod(containers=[], volumes=[{"name": "v", "emptyDir": {}}, {"name": "w", "image": None}])),
        ("Deployment", {"spec": {"replicas": 3}}),
        ("Deployment", {"spec": {"template": {"metadata": {}}}}),
        ("CronJob", {"spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {}}}}),
        ("Service", {"spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}}),
        ("ConfigMap", {"data": {"containers": "x"}}),
        ("pod", _pod(containers=[{"name": "a", "image": "x"}])),
    ],
)
def test_no_slots(kind: str, obj: dict[str, Any]) -> None:
    assert image_slots(kind, obj) == ()


@pytest.mark.parametrize(
    ("kind", "group", "found"),
    [
        ("Deployment", "apps", 1),
        ("Deployment", "example.com", 0),  # a custom resource that shares the kind name
        ("Deployment", None, 1),
        ("Pod", "", 1),
        ("Pod", "acme.io", 0),
        ("CronJob", "batch", 1),
        ("CronJob", "apps", 0),
    ],
)
def test_group_must_match_when_given(kind: str, group: str | None, found: int) -> None:
    obj = review(kind, ["x:1"])["request"]["object"]
    assert len(image_slots(kind, obj, group=group)) == found


# (description, pod spec, fragment naming the pointer)
MALFORMED = [
    ("spec is a list", [], "/spec: must be an object, not an array"),
    (
        "containers is an object",
        {"containers": {"name": "a"}},
        "/spec/containers: must be an array, not an object",
    ),
    (
        "container is a string",
        {"containers": ["nginx"]},
        "/spec/containers/0: must be an object, not a string",
    ),
    ("image missing", {"containers": [{"name": "a"}]}, "/spec/containers/0/image: missing"),
    ("image null", {"containers": [{"name": "a", "image": None}]}, "/spec/containers/0/image: missing"),
    (
        "image a number",
        {"containers": [{"name": "a", "image": 42}]},
        "/spec/containers/0/image: must be a string, not a number",
    ),
    (
        "image a list",
        {"containers": [{"name": "a", "image": ["x"]}]},
        "/spec/containers/0/image: must be a string, not an array",
    ),
    (
        "name a number",
        {"containers": [{"name": 1, "image": "x"}]},
        "/spec/containers/0/name: must be a string, not a number",
    ),
    (
        "second init container",
        {"initContainers": [{"name": "a", "image": "x"}, {"name": "b"}]},
        "/spec/initContainers/1/image: missing",
    ),
    (
        "ephemeral list a string",
        {"ephemeralContainers": "debug"},
        "/spec/ephemeralContainers: must be an array, not a string",
    ),
    ("volumes an object", {"volumes": {}}, "/spec/volumes: must be an array, not an object"),
    ("volume a string", {"volumes": ["v"]}, "/spec/volumes/0: must be an object, not a string"),
    (
        "image volume a string",
        {"volumes": [{"name": "v", "image": "ghcr.io/x"}]},
        "/spec/volumes/0/image: must be an object, not a string",
    ),
    (
        "image volume without reference",
        {"volumes": [{"name": "v", "emptyDir": {}}, {"name": "w", "image": {}}]},
        "/spec/volumes/1/image/reference: missing",
    ),
    (
        "image volume reference a number",
        {"volumes": [{"name": "v", "image": {"reference": 1}}]},
        "/spec/volumes/0/image/reference: must be a string, not a number",
    ),
]


@pytest.mark.parametrize(
    ("spec", "fragment"), [(s, f) for _, s, f in MALFORMED], ids=[d for d, _, _ in MALFORMED]
)
def test_malformed_pod_spec_names_the_pointer(spec: object, fragment: str) -> None:
    with pytest.raises(BadRequest) as error:
        image_slots("Pod", {"apiVersion": "v1", "kind": "Pod", "spec": spec})
    assert fragment in error.value.user_message


@pytest.mark.parametrize(
    ("kind", "edit", "fragment"),
    [
        (
            "Deployment",
            lambda o: o["spec"].update(template="x"),
            "/spec/template: must be an object, not a string",
        ),
        (
            "CronJob",
            lambda o: o["spec"]["jobTemplate"].update(spec=[1]),
            "/spec/jobTemplate/spec: must be an object, not an array",
        ),
        (
            "PodTemplate",
            lambda o: o["template"].update(spec=7),
            "/template/spec: must be an object, not a number",
        ),
        (
            "Job",
            lambda o: o["spec"]["template"]["spec"]["containers"][0].pop("image"),
            "/spec/template/spec/containers/0/image: missing",
        ),
    ],
)
def test_malformed_workloads_name_the_pointer(kind: str, edit: Any, fragment: str) -> None:
    obj = copy.deepcopy(review(kind, ["x:1"])["request"]["object"])
    edit(obj)
    with pytest.raises(BadRequest) as error:
        image_slots(kind, obj)
    assert fragment in error.value.user_message


def test_empty_image_string_is_a_slot_for_the_decision_to_judge() -> None:
    # An empty string is a (bad) value, not a malformed shape: the decision core denies it as invalid.
    assert image_slots("Pod", _pod(containers=[{"name": "a", "image": ""}])) == (
        ImageSlot("/spec/containers/0/image", "containers", "a", ""),
    )
