"""Reading a cluster for an audit: kubectl's JSON and manifests, pods grouped under their workloads."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.cluster import job_of, kube_list, kubectl_create, pod_of, replicaset_of
from webhook.audit.inventory import Inventory, Running, Workload, read_inventory, running_digest

DIGEST = "sha256:" + "a" * 64
OTHER = "sha256:" + "b" * 64


def read(*texts: str, namespace: str | None = None) -> Inventory:
    pending = list(texts)
    return read_inventory(["-"] * len(texts), stdin=lambda: pending.pop(0), namespace=namespace)


def shape(inventory: Inventory) -> dict[tuple[str, str, str], list[str]]:
    """Each workload (namespace, kind, name) with what is reported under it, as ``Kind/name``."""
    return {
        (w.namespace, w.kind, w.name): [f"{o.kind}/{o.name}" for o in w.objects] for w in inventory.workloads
    }


def workload(inventory: Inventory, name: str) -> Workload:
    return next(w for w in inventory.workloads if w.name == name)


def test_pods_are_grouped_under_the_workload_at_the_top_of_their_owners() -> None:
    web = kubectl_create("deployment", "web", "--image=nginx:1.25", "--replicas=3", namespace="prod")
    current, old = replicaset_of(web, "5d4f8b7c9"), replicaset_of(web, "6c8f9d7b4")
    nightly = kubectl_create(
        "cronjob", "nightly", "--image=busybox:1.36", "--schedule=0 0 * * *", namespace="ops"
    )
    run = job_of(nightly, 29017440)
    once = kubectl_create("job", "once", "--image=busybox:1.36", namespace="ops")
    service = kubectl_create("service", "clusterip", "web", "--tcp=80:80", namespace="prod")
    items = [
        web,
        current,
        old,
        pod_of(current, "web-5d4f8b7c9-b", running={"nginx": f"docker.io/library/nginx@{DIGEST}"}),
        pod_of(current, "web-5d4f8b7c9-a", running={"nginx": f"docker.io/library/nginx@{DIGEST}"}),
        pod_of(old, "web-6c8f9d7b4-a", images={"nginx": "nginx:1.24"}),
        nightly,
        run,
        pod_of(run, "nightly-29017440-x"),
        once,
        pod_of(once, "once-q"),
        service,
    ]
    inventory = read(kube_list(items))
    assert shape(inventory) == {
        ("ops", "CronJob", "nightly"): ["CronJob/nightly", "Job/nightly-29017440", "Pod/nightly-29017440-x"],
        ("ops", "Job", "once"): ["Job/once", "Pod/once-q"],
        ("prod", "Deployment", "web"): [
            "Deployment/web",
            "ReplicaSet/web-5d4f8b7c9",
            "ReplicaSet/web-6c8f9d7b4",
            "Pod/web-5d4f8b7c9-a",
            "Pod/web-5d4f8b7c9-b",
            "Pod/web-6c8f9d7b4-a",
        ],
    }
    assert inventory.objects == len(items)
    assert inventory.skipped == {"Service": 1}
    web_group = workload(inventory, "web")
    assert web_group.read
    assert [p.name for p in web_group.pods] == ["web-5d4f8b7c9-a", "web-5d4f8b7c9-b", "web-6c8f9d7b4-a"]
    old_pod = web_group.pods[2]
    assert [s.image for s in old_pod.slots] == ["nginx:1.24"]
    assert old_pod.running == ()
    assert web_group.pods[0].running == (
        Running("containers", "nginx", f"docker.io/library/nginx@{DIGEST}", DIGEST),
    )


def test_owners_missing_from_the_input_are_found_by_the_names_their_controllers_give() -> None:
    """``kubectl get pods,deployments,...,cronjobs`` lists no ReplicaSets and no Jobs."""
    web = kubectl_create("deployment", "web", "--image=nginx:1.25", namespace="prod")
    nightly = kubectl_create(
        "cronjob", "nightly", "--image=busybox:1.36", "--schedule=0 0 * * *", namespace="ops"
    )
    orphan_rs = replicaset_of(
        kubectl_create("deployment", "gone", "--image=nginx:1.25", namespace="prod"), "77"
    )
    pods = [
        pod_of(replicaset_of(web, "5d4f8b7c9"), "web-5d4f8b7c9-a"),
        pod_of(job_of(nightly, 29017440), "nightly-29017440-x"),
        pod_of(orphan_rs, "gone-77-a"),
    ]
    static = pod_of(
        kubectl_create("job", "unused", "--image=busybox:1.36", namespace="kube-system"), "etcd-node1"
    )
    static["metadata"]["ownerReferences"] = [
        {"apiVersion": "v1", "kind": "Node", "name": "node1", "uid": "n1", "controller": True}
    ]
    pods.append(static)
    # A pod whose hash label does not match its ReplicaSet's name is not guessed into a Deployment.
    mislabelled = pod_of(replicaset_of(web, "abc"), "web-abc-z")
    mislabelled["metadata"]["labels"]["pod-template-hash"] = "zzz"
    inventory = read(kube_list([web, nightly, *pods, mislabelled]))
    assert shape(inventory) == {
        ("kube-system", "Pod", "etcd-node1"): ["Pod/etcd-node1"],
        ("ops", "CronJob", "nightly"): ["CronJob/nightly", "Pod/nightly-29017440-x"],
        ("prod", "Deployment", "web"): ["Deployment/web", "Pod/web-5d4f8b7c9-a"],
        ("prod", "ReplicaSet", "gone-77"): ["Pod/gone-77-a"],
        ("prod", "ReplicaSet", "web-abc"): ["Pod/web-abc-z"],
    }
    assert not workload(inventory, "gone-77").read


def test_standalone_pods_and_status_lists_of_every_container_kind() -> None:
    pod: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "debug", "namespace": "ops"},
        "spec": {
            "initContainers": [{"name": "setup", "image": "busybox:1.36"}],
            "containers": [{"name": "app", "image": "app:1"}, {"name": "side", "image": "side:1"}],
            "ephemeralContainers": [{"name": "dbg", "image": "busybox:1.36"}],
        },
        "status": {
            "initContainerStatuses": [{"name": "setup", "imageID": f"docker.io/library/busybox@{DIGEST}"}],
            "containerStatuses": [
                {"name": "app", "imageID": f"docker-pullable://app@{OTHER}"},
                {"name": "side", "imageID": ""},  # waiting for its image
            ],
            "ephemeralContainerStatuses": [{"name": "dbg", "imageID": "sha256:" + "c" * 64}],
        },
    }
    inventory = read(yaml.safe_dump(pod))
    [only] = inventory.workloads
    assert (only.kind, only.name, only.read) == ("Pod", "debug", True)
    assert only.objects[0].running == (
        Running("containers", "app", f"docker-pullable://app@{OTHER}", OTHER),
        Running("initContainers", "setup", f"docker.io/library/busybox@{DIGEST}", DIGEST),
        Running("ephemeralContainers", "dbg", "sha256:" + "c" * 64, None),
    )


@pytest.mark.parametrize(
    ("image_id", "digest"),
    [
        (f"docker.io/library/nginx@{DIGEST}", DIGEST),
        (f"docker-pullable://nginx@{DIGEST}", DIGEST),
        (f"ghcr.io/acme/app@{DIGEST}", DIGEST),
        (f"127.0.0.1:5000/app@{DIGEST}", DIGEST),
        (DIGEST, None),  # an image ID: the config's digest, not a manifest's
        (f"docker://{DIGEST}", None),
        ("docker.io/library/nginx@sha256:short", None),
        (f"docker.io/library/nginx@{DIGEST.upper()}", None),
        ("", None),
    ],
)
def test_the_running_digest_is_the_manifest_digest_of_the_image_id(image_id: str, digest: str | None) -> None:
    assert running_digest(image_id) == digest


def test_a_directory_is_read_recursively_and_files_that_hold_no_objects_are_skipped(tmp_path: Path) -> None:
    (tmp_path / "apps" / "web").mkdir(parents=True)
    web = kubectl_create("deployment", "web", "--image=nginx:1.25", namespace="prod")
    (tmp_path / "apps" / "web" / "deployment.json").write_text(json.dumps(web))
    job = kubectl_create("job", "a", "--image=busybox:1.36")
    del job["metadata"]["namespace"]  # a manifest that leaves the namespace to kubectl -n
    (tmp_path / "apps" / "jobs.yaml").write_text(
        yaml.safe_dump_all(
            [
                job,
                kubectl_create("configmap", "settings", "--from-literal=a=b"),
                {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "b"}, "spec": {}},
            ]
        )
    )
    (tmp_path / "apps" / "values.yaml").write_text("replicas: 3\n")
    (tmp_path / "apps" / "template.yaml").write_text("image: {{ .Values.image }}\n  bad: [\n")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "pod.yaml").write_text(yaml.safe_dump(web))
    (tmp_path / "README.md").write_text("kind: Deployment\n")
    inventory = read_inventory([str(tmp_path)], stdin=lambda: "", namespace="staging")
    assert shape(inventory) == {
        ("prod", "Deployment", "web"): ["Deployment/web"],
        ("staging", "Job", "a"): ["Job/a"],
        ("staging", "Job", "b"): ["Job/b"],
    }
    assert inventory.skipped == {"ConfigMap": 1}
    assert [w.split(": ", 1) for w in inventory.warnings] == [
        [str(tmp_path / "apps" / "template.yaml"), "skipped: while parsing a block mapping"],
        [str(tmp_path / "apps" / "values.yaml"), "skipped: no Kubernetes objects found"],
    ]


def test_an_empty_list_is_an_empty_cluster() -> None:
    inventory = read(kube_list([]))
    assert (inventory.workloads, inventory.objects, inventory.skipped) == ((), 0, {})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("replicas: [", "-: not YAML or JSON: while parsing a flow node"),
        ("- a\n- b\n", "-: document 1: expected a Kubernetes object, found an array"),
        (
            '{"kind": "List", "items": [1]}',
            "-: document 1: items/0: expected a Kubernetes object, found a number",
        ),
        ("replicas: 3\n", "-: no Kubernetes objects found"),
        (
            '{"kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": {"name": "x"}}}',
            "-: Pod default/p: /spec/containers: must be an array, not an object",
        ),
        ('{"kind": "Pod", "metadata": []}', "-: Pod: metadata must be an object, not an array"),
    ],
)
def test_an_input_named_on_the_command_line_must_hold_kubernetes_objects(text: str, message: str) -> None:
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        read(text)


def test_a_missing_file_is_an_input_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"missing\.json: cannot be read: No such file"):
        read_inventory([str(tmp_path / "missing.json")], stdin=lambda: "")


def test_inputs_are_read_with_the_policy_loaders_bound(tmp_path: Path) -> None:
    """A file past 32 MiB (``/dev/zero``-like input) is refused, not read into memory whole."""
    huge = tmp_path / "cluster" / "huge.json"
    huge.parent.mkdir()
    with huge.open("wb") as handle:
        handle.truncate(33 * 1024 * 1024)  # sparse: cheap to make, 33 MiB to read
    with pytest.raises(ValueError, match=r"huge\.json: cannot be read: larger than 32 MiB"):
        read_inventory([str(huge)], stdin=lambda: "")
    in_a_directory = read_inventory([str(huge.parent)], stdin=lambda: "")
    assert in_a_directory.workloads == ()
    assert in_a_directory.warnings == (f"{huge}: skipped: cannot be read: larger than 32 MiB",)


def test_an_ownership_cycle_in_a_hand_written_input_ends() -> None:
    a = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a", "uid": "1"}, "spec": {"containers": []}}
    b = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "b", "uid": "2"}, "spec": {"containers": []}}
    a["metadata"]["ownerReferences"] = [{"kind": "Pod", "name": "b", "uid": "2", "controller": True}]
    b["metadata"]["ownerReferences"] = [{"kind": "Pod", "name": "a", "uid": "1", "controller": True}]
    assert shape(read(kube_list([a, b]))) == {
        ("default", "Pod", "a"): ["Pod/a"],
        ("default", "Pod", "b"): ["Pod/b"],
    }
