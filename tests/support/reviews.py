"""Factories for admission.k8s.io/v1 AdmissionReview requests, for every workload kind imagegate reads.

``review(kind="Deployment", images=["ghcr.io/acme/app:1.0"])`` gives a complete AdmissionReview whose
object validates with ``kubernetes_validate`` (strict, 1.33). The shapes are those of
``kubectl create ... --dry-run=client -o json`` (see tests/data/reviews/README.md, whose generator
uses :func:`from_template` and :func:`admission_review` too).

Naming: containers are ``app``, ``app-1``, ``app-2``, ...; init containers ``init``, ``init-1``, ...;
ephemeral containers ``debug``, ``debug-1``, ...; image volumes ``vol``, ``vol-1``, .... Pass a
``(name, image)`` pair instead of an image to choose a name.
"""

from __future__ import annotations

__all__ = [
    "FIXTURES",
    "KINDS",
    "admission_review",
    "fixture",
    "fixture_names",
    "from_template",
    "kubectl",
    "pod_spec",
    "review",
    "review_uid",
]

import copy
import json
import os
import shutil
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

# tests/data/reviews: the kubectl-generated AdmissionReview fixtures (see the README there).
FIXTURES = Path(__file__).resolve().parents[1] / "data" / "reviews"

# kind -> (group, version, resource): what the API server puts in request.kind / request.resource.
KINDS: Mapping[str, tuple[str, str, str]] = {
    "Pod": ("", "v1", "pods"),
    "PodTemplate": ("", "v1", "podtemplates"),
    "ReplicationController": ("", "v1", "replicationcontrollers"),
    "Deployment": ("apps", "v1", "deployments"),
    "ReplicaSet": ("apps", "v1", "replicasets"),
    "StatefulSet": ("apps", "v1", "statefulsets"),
    "DaemonSet": ("apps", "v1", "daemonsets"),
    "Job": ("batch", "v1", "jobs"),
    "CronJob": ("batch", "v1", "cronjobs"),
}

# Kinds whose status has required fields: an empty status would not validate, so kubectl-style
# "status: {}" is left out.
_REQUIRED_STATUS = frozenset({"ReplicaSet", "StatefulSet", "DaemonSet", "ReplicationController"})
_OPTIONS = {"CREATE": "CreateOptions", "UPDATE": "UpdateOptions", "DELETE": "DeleteOptions"}
DEFAULT_IMAGE = "ghcr.io/acme/app:1.0.0"

Image = str | tuple[str, str]


def review_uid(label: str) -> str:
    """A stable request uid for ``label`` (fixtures stay byte-identical when regenerated)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"https://imagegate.dev/tests/{label}"))


def pod_spec(
    images: Sequence[Image] = (DEFAULT_IMAGE,),
    *,
    init_images: Sequence[Image] = (),
    ephemeral_images: Sequence[Image] = (),
    volume_images: Sequence[Image] = (),
) -> dict[str, Any]:
    """A pod spec with one container per image, as kubectl writes them (``resources: {}``)."""
    spec: dict[str, Any] = {
        "containers": [{"name": n, "image": i, "resources": {}} for n, i in _named(images, "app")]
    }
    if init_images:
        spec["initContainers"] = [
            {"name": n, "image": i, "resources": {}} for n, i in _named(init_images, "init")
        ]
    if ephemeral_images:
        target = spec["containers"][0]["name"] if spec["containers"] else None
        spec["ephemeralContainers"] = [
            {"name": n, "image": i, "resources": {}, **({"targetContainerName": target} if target else {})}
            for n, i in _named(ephemeral_images, "debug")
        ]
    if volume_images:
        spec["volumes"] = [
            {"name": n, "image": {"reference": i, "pullPolicy": "IfNotPresent"}}
            for n, i in _named(volume_images, "vol")
        ]
    return spec


def from_template(kind: str, template: Mapping[str, Any], *, name: str, namespace: str) -> dict[str, Any]:
    """The object of ``kind`` named ``name`` whose pod template is ``template`` ({metadata, spec}).

    This is how the fixtures turn the template of a kubectl-generated Deployment into the kinds kubectl
    cannot create offline; fields follow each kind's required API fields (selectors match the
    template's labels, Jobs get a restartPolicy).
    """
    copied = copy.deepcopy(dict(template))
    copied.setdefault("metadata", {})
    template = copied
    labels = template["metadata"].setdefault("labels", {"app": name})
    group, version, _ = KINDS[kind]
    metadata: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        "creationTimestamp": None,
        "labels": labels,
    }
    head: dict[str, Any] = {"kind": kind, "apiVersion": f"{group}/{version}" if group else version}
    if kind == "Pod":
        pod_metadata = {**metadata, **{k: v for k, v in template["metadata"].items() if k not in metadata}}
        return {**head, "metadata": pod_metadata, "spec": template["spec"], "status": {}}
    if kind == "PodTemplate":
        return {**head, "metadata": metadata, "template": template}
    if kind in ("Job", "CronJob"):
        template["spec"].setdefault("restartPolicy", "Never" if kind == "Job" else "OnFailure")
    selector = {"matchLabels": dict(labels)}
    spec: dict[str, Any]
    if kind == "ReplicationController":
        spec = {"replicas": 1, "selector": dict(labels), "template": template}
    elif kind in ("Deployment", "ReplicaSet"):
        spec = {"replicas": 1, "selector": selector, "template": template}
        if kind == "Deployment":
            spec["strategy"] = {}
    elif kind == "StatefulSet":
        spec = {
            "replicas": 1,
            "selector": selector,
            "template": template,
            "serviceName": name,
            "updateStrategy": {},
        }
    elif kind == "DaemonSet":
        spec = {"selector": selector, "template": template, "updateStrategy": {}}
    elif kind == "Job":
        spec = {"template": template}
    elif kind == "CronJob":
        spec = {
            "schedule": "0 2 * * *",
            "jobTemplate": {
                "metadata": {"name": name, "creationTimestamp": None},
                "spec": {"template": template},
            },
        }
    else:
        raise ValueError(f"unsupported kind {kind!r}; known: {', '.join(KINDS)}")
    obj = {**head, "metadata": metadata, "spec": spec}
    if kind not in _REQUIRED_STATUS:
        obj["status"] = {}  # as kubectl writes it
    return obj


def admission_review(
    obj: Mapping[str, Any] | None,
    *,
    kind: str,
    operation: str = "CREATE",
    old_object: Mapping[str, Any] | None = None,
    namespace: str = "default",
    name: str = "demo",
    uid: str | None = None,
    sub_resource: str = "",
    dry_run: bool = False,
    username: str = "alice@example.com",
) -> dict[str, Any]:
    """Wrap ``obj`` in an AdmissionReview request as the API server sends it."""
    group, version, resource = KINDS[kind]
    gvk = {"group": group, "version": version, "kind": kind}
    gvr = {"group": group, "version": version, "resource": resource}
    request: dict[str, Any] = {
        "uid": uid or review_uid(f"{kind}/{namespace}/{name}/{operation}/{sub_resource}"),
        "kind": gvk,
        "resource": gvr,
    }
    if sub_resource:
        request["subResource"] = sub_resource
    request |= {"requestKind": dict(gvk), "requestResource": dict(gvr)}
    if sub_resource:
        request["requestSubResource"] = sub_resource
    request |= {
        "name": name,
        "namespace": namespace,
        "operation": operation,
        "userInfo": {"username": username, "groups": ["system:authenticated"]},
        "object": copy.deepcopy(obj) if obj is not None else None,
        "oldObject": copy.deepcopy(old_object) if old_object is not None else None,
        "dryRun": dry_run,
    }
    if operation in _OPTIONS:
        request["options"] = {"kind": _OPTIONS[operation], "apiVersion": "meta.k8s.io/v1"}
    return {"kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1", "request": request}


def review(
    kind: str = "Pod",
    images: Sequence[Image] = (DEFAULT_IMAGE,),
    *,
    init_images: Sequence[Image] = (),
    ephemeral_images: Sequence[Image] = (),
    volume_images: Sequence[Image] = (),
    operation: str = "CREATE",
    namespace: str = "default",
    name: str = "demo",
    uid: str | None = None,
    sub_resource: str = "",
    dry_run: bool = False,
) -> dict[str, Any]:
    """A complete AdmissionReview request for a ``kind`` object with the given images.

    ``operation`` ``UPDATE`` sends the same object as ``oldObject``; ``DELETE`` sends only
    ``oldObject`` (``object`` is null). ``sub_resource="ephemeralcontainers"`` (kind Pod, UPDATE) models
    ``kubectl debug``: ``oldObject`` is the Pod without its ephemeral containers.
    """
    if kind not in KINDS:
        raise ValueError(f"unsupported kind {kind!r}; known: {', '.join(KINDS)}")
    spec = pod_spec(
        images, init_images=init_images, ephemeral_images=ephemeral_images, volume_images=volume_images
    )
    obj = from_template(
        kind, {"metadata": {"labels": {"app": name}}, "spec": spec}, name=name, namespace=namespace
    )
    new: dict[str, Any] | None = obj
    old: dict[str, Any] | None = None
    if operation == "UPDATE":
        old = copy.deepcopy(obj)
        if sub_resource == "ephemeralcontainers":
            old["spec"].pop("ephemeralContainers", None)
    elif operation == "DELETE":
        new, old = None, obj
    return admission_review(
        new,
        kind=kind,
        operation=operation,
        old_object=old,
        namespace=namespace,
        name=name,
        uid=uid,
        sub_resource=sub_resource,
        dry_run=dry_run,
    )


def fixture_names() -> list[str]:
    """File names of all AdmissionReview fixtures, sorted."""
    return sorted(p.name for p in FIXTURES.glob("review_*.json"))


def fixture(name: str) -> dict[str, Any]:
    """A fresh copy of the fixture ``name`` (``review_pod_create.json``, ...)."""
    result: dict[str, Any] = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return result


def kubectl() -> str:
    """The kubectl binary; a missing one fails the test."""
    found = os.environ.get("KUBECTL") or shutil.which("kubectl")
    if found:
        return found
    pytest.fail("kubectl is required (it ships with the machine image; set KUBECTL to its path)")


def _named(images: Sequence[Image], prefix: str) -> list[tuple[str, str]]:
    named = []
    for index, item in enumerate(images):
        if isinstance(item, tuple):
            named.append(item)
        else:
            named.append((prefix if index == 0 else f"{prefix}-{index}", item))
    return named
