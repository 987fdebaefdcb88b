"""``imagegate evaluate``: the offline dry-run. Runs /mutate then /validate exactly as the server would."""

from __future__ import annotations

__all__ = ["register", "run"]

import argparse
import base64
import json
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonpatch
import yaml

from webhook.decision import ImageDecision
from webhook.errors import BadRequest
from webhook.policy.loader import load_policy
from webhook.reload import PolicyStore
from webhook.runtime import RuntimeAdapter, Services, build_services
from webhook.service import AdmissionService
from webhook.settings import Settings

_PLURALS = {
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


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "evaluate",
        help="dry-run AdmissionReviews or manifests against a policy",
        description="Run /mutate then /validate offline, exactly as the server would, and print per image: "
        "decision, reason code, rule, resolved digest and patch. Exit 1 if anything is denied.",
    )
    p.add_argument("--policy", required=True, type=Path, help="ImagePolicy file")
    p.add_argument("--namespace", help="namespace for manifests that name none (default: default)")
    p.add_argument("--json", action="store_true", help="print the AdmissionReview responses as a JSON array")
    p.add_argument(
        "inputs", nargs="+", metavar="INPUT", help="AdmissionReview JSON or YAML/JSON manifests ('-' = stdin)"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    policy_path = args.policy.resolve()
    settings = Settings.from_env(policy_path=policy_path, audit_log=False, reload_interval=0.0)
    loaded = load_policy(policy_path, now=datetime.now(UTC))
    for warning in loaded.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    store: PolicyStore[Services] = PolicyStore(
        policy_path, build=lambda policy: build_services(policy, settings=settings), interval=0.0
    )
    store.load()
    service = AdmissionService(settings=settings, runtime=RuntimeAdapter(store))
    try:
        reviews = [review for source in args.inputs for review in _reviews(source, args.namespace)]
    except (OSError, ValueError, yaml.YAMLError, BadRequest) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if not reviews:
        print("error: no objects found in the input", file=sys.stderr)
        return 2
    responses: list[dict[str, Any]] = []
    denied = False
    try:
        for label, review in reviews:
            try:
                mutated = service.admit(review, stage="mutate")
                patched = _apply(review, mutated.review["response"])
                validated = service.admit(patched, stage="validate")
            except BadRequest as error:
                print(f"error: {label}: {error.user_message}", file=sys.stderr)
                return 2
            responses += [mutated.review, validated.review]
            allowed = mutated.review["response"]["allowed"] and validated.review["response"]["allowed"]
            denied |= not allowed
            if not args.json:
                _print_human(label, mutated, validated)
    finally:
        service.close()
    if args.json:
        print(json.dumps(responses, indent=2))
    return 1 if denied else 0


def _reviews(source: str, namespace: str | None) -> Iterator[tuple[str, dict[str, Any]]]:
    text = sys.stdin.read() if source == "-" else Path(source).read_text()
    for doc in yaml.safe_load_all(text):
        if doc is None:
            continue
        if not isinstance(doc, dict):
            raise ValueError(
                f"{source}: expected a Kubernetes object or AdmissionReview, found {type(doc).__name__}"
            )
        if doc.get("kind") == "AdmissionReview":
            request = doc.get("request") or {}
            obj = request.get("object") or {}
            label = f"{request.get('kind', {}).get('kind', '?')} {request.get('namespace', '')}/{_name(obj)}"
            yield label + f" ({request.get('operation', '?')})", doc
        elif doc.get("kind") == "List":
            for item in doc.get("items") or []:
                yield from _wrap(item, source, namespace)
        else:
            yield from _wrap(doc, source, namespace)


def _wrap(obj: dict[str, Any], source: str, namespace: str | None) -> Iterator[tuple[str, dict[str, Any]]]:
    kind = obj.get("kind")
    if kind not in _PLURALS:
        print(f"note: {source}: {kind} objects hold no pod templates; skipped", file=sys.stderr)
        return
    group, version, resource = _PLURALS[kind]
    meta = obj.get("metadata") or {}
    ns = namespace or meta.get("namespace") or "default"
    review = {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": str(uuid.uuid4()),
            "kind": {"group": group, "version": version, "kind": kind},
            "resource": {"group": group, "version": version, "resource": resource},
            "requestKind": {"group": group, "version": version, "kind": kind},
            "requestResource": {"group": group, "version": version, "resource": resource},
            "name": meta.get("name", ""),
            "namespace": ns,
            "operation": "CREATE",
            "userInfo": {"username": "imagegate-evaluate"},
            "object": obj,
            "oldObject": None,
            "dryRun": True,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"},
        },
    }
    yield f"{kind} {ns}/{_name(obj)}", review


def _name(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    return str(meta.get("name") or meta.get("generateName") or "?")


def _apply(review: dict[str, Any], response: dict[str, Any]) -> dict[str, Any]:
    patch = response.get("patch")
    if not response.get("allowed") or not patch:
        return review
    ops = json.loads(base64.b64decode(patch))
    request = dict(review["request"])
    request["object"] = jsonpatch.apply_patch(request["object"], ops)
    return {**review, "request": request}


def _print_human(label: str, mutated: Any, validated: Any) -> None:
    """Per image, the decision of the stage that settles it: /mutate when it denies (the API server stops
    there), else /validate of the patched object; plus what /mutate pinned."""
    print(label)
    pins = {d.slot.pointer: d.pin for d in (mutated.decision.images if mutated.decision else ()) if d.pin}
    final = mutated if not mutated.review["response"]["allowed"] else validated
    response = final.review["response"]
    if final.decision is None:
        message = response.get("status", {}).get("message", "")
        print(f"  {'allowed' if response['allowed'] else 'denied'} {message}".rstrip())
    else:
        for image in final.decision.images:
            print("  " + _image_line(image, pins.get(image.slot.pointer)))
    patch = mutated.review["response"].get("patch")
    if patch:
        print("  patch: " + base64.b64decode(patch).decode())
    print(f"  result: {'allowed' if response['allowed'] else 'denied'}")


def _image_line(image: ImageDecision, pin: str | None) -> str:
    modes = {m for _, m in image.failures}
    status = "denied" if "enforce" in modes else "warned" if "warn" in modes else "allowed"
    head = f"{image.slot.describe()} image {json.dumps(image.slot.image)}: {status}"
    if image.failures:
        detail = "; ".join(f"[{f.code}] {f.message}" for f, _ in image.failures)
        head += f" {detail}"
    else:
        head += f" ({image.outcome})"
    extras = []
    if image.rules:
        extras.append(f"rule {', '.join(image.rules)}")
    if image.digest:
        extras.append(f"digest {image.digest}")
    if pin:
        extras.append(f"pinned to {pin}")
    return head + (f" [{'; '.join(extras)}]" if extras else "")
