"""Regenerate the AdmissionReview fixtures of this directory from kubectl output (no cluster needed).

    python tests/data/reviews/generate.py [--out DIR] [--kubectl PATH]

Deployment, Job and CronJob objects come verbatim from ``kubectl create ... --dry-run=client -o json``.
Pod, ReplicaSet, StatefulSet, DaemonSet, ReplicationController and PodTemplate objects are built from the
pod template of a kubectl-generated Deployment (``tests.support.reviews.from_template``), because kubectl
cannot create them offline. Every object is checked with ``kubernetes_validate`` (1.33, strict) before
it is written; README.md in this directory lists the exact kubectl commands.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2]))  # the repository root, for tests.support

import kubernetes_validate  # noqa: E402

from tests.support.reviews import admission_review, from_template, review_uid  # noqa: E402

K8S_VERSION = "1.33.0"
DIGEST = "sha256:" + "0123456789abcdef" * 4

# (label, kubectl arguments after "kubectl create"). Each line of README.md's command list is one of these.
COMMANDS: dict[str, list[str]] = {
    "deployment": [
        "deployment", "web", "--image=ghcr.io/acme/app:1.4.2", "--image=nginx:1.25", "--namespace=prod",
    ],
    "template": [
        "deployment", "tpl", "--image=registry.example.com:5000/team/api:v2",
        f"--image=127.0.0.1:5000/demo/sidecar@{DIGEST}", "--namespace=prod",
    ],
    "job": [
        "job", "migrate", "--image=ghcr.io/acme/migrate:2.0", "--namespace=prod",
        "--", "/bin/migrate", "--apply",
    ],
    "cronjob": [
        "cronjob", "nightly", "--image=ghcr.io/acme/report:3", "--schedule=0 2 * * *", "--namespace=prod",
    ],
}  # fmt: skip


def kubectl_create(kubectl: str, args: list[str]) -> dict[str, Any]:
    command = [kubectl, "create", *args[: args.index("--") if "--" in args else len(args)]]
    command += ["--dry-run=client", "-o", "json"]
    if "--" in args:
        command += args[args.index("--") :]
    result = subprocess.run(command, check=True, capture_output=True, text=True, timeout=60)
    obj: dict[str, Any] = json.loads(result.stdout)
    return obj


def build(kubectl: str) -> dict[str, dict[str, Any]]:
    """Fixture file name -> AdmissionReview."""
    made = {label: kubectl_create(kubectl, args) for label, args in COMMANDS.items()}
    template = made["template"]["spec"]["template"]
    reviews: dict[str, dict[str, Any]] = {}

    def add(file: str, obj: dict[str, Any] | None, *, kind: str, **options: Any) -> None:
        target = obj if obj is not None else options.get("old_object")
        assert target is not None
        name = target["metadata"]["name"]
        reviews[file] = admission_review(
            obj, kind=kind, namespace="prod", name=name, uid=review_uid(file), **options
        )

    # Verbatim kubectl objects.
    add("review_deployment_create.json", made["deployment"], kind="Deployment")
    add("review_job_create.json", made["job"], kind="Job")
    add("review_cronjob_create.json", made["cronjob"], kind="CronJob")

    # The kubectl Deployment's pod template, re-homed in every other kind.
    for kind in ("Pod", "ReplicaSet", "StatefulSet", "DaemonSet", "ReplicationController", "PodTemplate"):
        obj = from_template(kind, template, name=f"tpl-{kind.lower()}", namespace="prod")
        add(f"review_{kind.lower()}_create.json", obj, kind=kind)

    # A Pod using every image location: init and ephemeral containers and an image volume (volumes/2).
    pod = from_template("Pod", template, name="all-slots", namespace="prod")
    spec = pod["spec"]
    spec["initContainers"] = [
        {"name": "setup", "image": "ghcr.io/acme/setup:1.0", "command": ["/setup"], "resources": {}}
    ]
    spec["ephemeralContainers"] = [
        {"name": "debug", "image": "busybox:1.36", "targetContainerName": "api", "resources": {}}
    ]
    spec["volumes"] = [
        {"name": "cache", "emptyDir": {}},
        {"name": "config", "configMap": {"name": "all-slots"}},
        {
            "name": "models",
            "image": {"reference": "ghcr.io/acme/models:2025.1", "pullPolicy": "IfNotPresent"},
        },
    ]
    spec["containers"][0]["volumeMounts"] = [{"name": "models", "mountPath": "/models", "readOnly": True}]
    add("review_pod_all_slots.json", pod, kind="Pod")

    # kubectl debug: UPDATE through pods/ephemeralcontainers; the object is the whole Pod.
    before = from_template("Pod", template, name="debug-me", namespace="prod")
    after = copy.deepcopy(before)
    after["spec"]["ephemeralContainers"] = [
        {
            "name": "debugger-x7k2p",
            "image": "busybox:1.36",
            "targetContainerName": "api",
            "stdin": True,
            "tty": True,
            "resources": {},
        }
    ]
    add(
        "review_pod_ephemeralcontainers_update.json",
        after,
        kind="Pod",
        operation="UPDATE",
        old_object=before,
        sub_resource="ephemeralcontainers",
        username="kubernetes-admin",
    )

    # An image change of the kubectl Deployment, its deletion, and a server-side dry run.
    changed = copy.deepcopy(made["deployment"])
    changed["spec"]["template"]["spec"]["containers"][0]["image"] = "ghcr.io/acme/app:1.5.0"
    add(
        "review_deployment_update.json",
        changed,
        kind="Deployment",
        operation="UPDATE",
        old_object=made["deployment"],
    )
    add(
        "review_deployment_delete.json",
        None,
        kind="Deployment",
        operation="DELETE",
        old_object=made["deployment"],
    )
    add("review_deployment_dryrun.json", made["deployment"], kind="Deployment", dry_run=True)

    for file, item in reviews.items():
        for key in ("object", "oldObject"):
            if item["request"][key] is not None:
                try:
                    kubernetes_validate.validate(item["request"][key], K8S_VERSION, strict=True)
                except kubernetes_validate.ValidationError as error:
                    raise SystemExit(
                        f"{file}: request.{key} is not a valid object: {error.message}"
                    ) from error
    return reviews


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=HERE, help="directory to write the fixtures to")
    parser.add_argument("--kubectl", default=os.environ.get("KUBECTL", "kubectl"), help="kubectl binary")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for file, item in build(args.kubectl).items():
        (args.out / file).write_text(json.dumps(item, indent=2) + "\n", encoding="utf-8")
        print(file)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
