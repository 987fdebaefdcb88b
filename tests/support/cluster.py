"""What ``kubectl get ... -A -o json`` prints for a cluster, built offline for the audit tests.

Workloads come from the real ``kubectl create ... --dry-run=client -o json`` (it needs no cluster);
what only a cluster makes (uids, the ReplicaSets and Jobs controllers create, pods with their
``ownerReferences`` and ``status.containerStatuses``) is added the way the controllers and the kubelet
write it:

    web = kubectl_create("deployment", "web", "--image=nginx:1.25", namespace="prod")
    rs = replicaset_of(web, "5d4f8b7c9")
    pods = [pod_of(rs, f"web-5d4f8b7c9-{i}", running={"nginx": "docker.io/library/nginx@sha256:..."})
            for i in range(3)]
    text = kube_list([web, rs, *pods])     # a v1 List, kinds mixed, as kubectl prints it
"""

from __future__ import annotations

__all__ = ["job_of", "kube_list", "kubectl_create", "pod_of", "replicaset_of", "with_uid"]

import copy
import json
import subprocess
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from tests.support.deploy import require_kubectl

_POD_SPEC_PATHS = {
    "Deployment": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}


def kubectl_create(kind: str, name: str, *args: str, namespace: str = "default") -> dict[str, Any]:
    """``kubectl create KIND NAME ARGS -n NAMESPACE --dry-run=client -o json``, given a uid."""
    result = subprocess.run(
        [require_kubectl(), "create", kind, name, *args, "-n", namespace, "--dry-run=client", "-o", "json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, f"kubectl create {kind} {name} failed:\n{result.stderr}"
    return with_uid(json.loads(result.stdout))


def with_uid(obj: dict[str, Any]) -> dict[str, Any]:
    obj.setdefault("metadata", {})["uid"] = str(uuid.uuid4())
    return obj


def _pod_spec(obj: Mapping[str, Any]) -> dict[str, Any]:
    spec: Any = obj
    for key in _POD_SPEC_PATHS[obj["kind"]]:
        spec = spec[key]
    return copy.deepcopy(spec)


def _owner(obj: Mapping[str, Any]) -> dict[str, Any]:
    meta = obj["metadata"]
    return {
        "apiVersion": obj["apiVersion"],
        "kind": obj["kind"],
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def replicaset_of(deployment: Mapping[str, Any], template_hash: str) -> dict[str, Any]:
    """The ReplicaSet the Deployment controller makes for its current template."""
    meta = deployment["metadata"]
    template = copy.deepcopy(deployment["spec"]["template"])
    template["metadata"].setdefault("labels", {})["pod-template-hash"] = template_hash
    return with_uid(
        {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": f"{meta['name']}-{template_hash}",
                "namespace": meta["namespace"],
                "labels": {**template["metadata"]["labels"]},
                "ownerReferences": [_owner(deployment)],
            },
            "spec": {"replicas": deployment["spec"].get("replicas", 1), "template": template},
        }
    )


def job_of(cronjob: Mapping[str, Any], scheduled: int) -> dict[str, Any]:
    """The Job the CronJob controller makes for the run scheduled at minute ``scheduled``."""
    meta = cronjob["metadata"]
    job_template = copy.deepcopy(cronjob["spec"]["jobTemplate"])
    return with_uid(
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {
                "name": f"{meta['name']}-{scheduled}",
                "namespace": meta["namespace"],
                "ownerReferences": [_owner(cronjob)],
            },
            "spec": job_template["spec"],
        }
    )


def pod_of(
    owner: Mapping[str, Any],
    name: str,
    *,
    running: Mapping[str, str] | None = None,
    images: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A pod of ``owner`` (any workload kind) as its controller creates it.

    ``running`` maps container names to the ``imageID`` the kubelet reports for them (containers left
    out are still waiting for their image); ``images`` replaces the images of named containers (a pod
    from an older template).
    """
    spec = _pod_spec(owner)
    for container in spec.get("containers", []):
        if images and container["name"] in images:
            container["image"] = images[container["name"]]
    labels = {}
    if owner["kind"] == "ReplicaSet":
        labels = dict(owner["spec"]["template"]["metadata"].get("labels", {}))
    statuses = [
        {
            "name": container["name"],
            "image": container["image"],
            "imageID": running[container["name"]],
            "ready": True,
            "restartCount": 0,
            "started": True,
            "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}},
        }
        for container in spec.get("containers", [])
        if running and container["name"] in running
    ]
    return with_uid(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name,
                "namespace": owner["metadata"]["namespace"],
                "labels": labels,
                "ownerReferences": [_owner(owner)],
            },
            "spec": spec,
            "status": {"phase": "Running" if statuses else "Pending", "containerStatuses": statuses},
        }
    )


def kube_list(items: Sequence[Mapping[str, Any]]) -> str:
    """The JSON ``kubectl get ... -o json`` prints: a v1 List of the items, kinds mixed."""
    document = {"apiVersion": "v1", "kind": "List", "items": list(items), "metadata": {"resourceVersion": ""}}
    return json.dumps(document, indent=4)
