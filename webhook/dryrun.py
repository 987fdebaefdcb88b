"""Offline dry-runs: AdmissionReviews (or manifests wrapped into them) through /mutate then /validate,
in-process and exactly as the server would answer them. Used by ``evaluate`` and ``test``."""

from __future__ import annotations

__all__ = ["Adapt", "DryRun", "DryRunResult", "review_for", "reviews_from_text"]

import base64
import json
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonpatch
import yaml

from webhook._json import mapping
from webhook.admission.review import API_VERSION
from webhook.admission.workloads import SUPPORTED_KINDS, kind_resource
from webhook.policy.model import Policy
from webhook.reload import PolicyStore
from webhook.service import AdmissionService, Answer, FactGatherer, RuntimeSource
from webhook.settings import Settings
from webhook.wiring import RuntimeAdapter, Services, build_services


@dataclass(frozen=True, slots=True)
class DryRunResult:
    mutated: Answer
    validated: Answer

    @property
    def allowed(self) -> bool:
        return bool(
            self.mutated.review["response"]["allowed"] and self.validated.review["response"]["allowed"]
        )

    @property
    def final(self) -> Answer:
        """The answer that settles admission: /mutate's when it denies (the API server stops there)."""
        return self.mutated if not self.mutated.review["response"]["allowed"] else self.validated


#: Given the loaded policy and the gatherer built for it, what a dry run uses instead (``imagegate
#: audit``: the policy with modes overridden, lookups shared across a whole input).
Adapt = Callable[[Policy, FactGatherer], tuple[Policy, FactGatherer]]


class DryRun:
    """The server's admission path with the real adapters, minus HTTP. Raises ConfigError on a bad policy.

    ``settings`` default to the environment's (``IMAGEGATE_*``) without the audit log; ``adapt`` (see
    :data:`Adapt`) may replace the policy and the gatherer the admission path is given.
    """

    def __init__(
        self,
        policy_path: Path,
        *,
        clock: Callable[[], datetime] | None = None,
        settings: Settings | None = None,
        adapt: Adapt | None = None,
    ) -> None:
        clock = clock or (lambda: datetime.now(UTC))
        if settings is None:
            settings = Settings.from_env(policy_path=policy_path, audit_log=False, reload_interval=0.0)
        self._store: PolicyStore[Services] = PolicyStore(
            policy_path,
            build=lambda policy: build_services(policy, settings=settings),
            interval=0.0,
            clock=clock,
        )
        self._store.load()
        runtime: RuntimeSource = RuntimeAdapter(self._store)
        if adapt is not None:
            runtime = _Adapted(runtime, adapt)
        self._service = AdmissionService(settings=settings, runtime=runtime, clock=clock)

    def admit(self, review: Mapping[str, Any]) -> DryRunResult:
        """/mutate, the patch applied, then /validate. Raises BadRequest for a malformed review."""
        mutated = self._service.admit(review, stage="mutate")
        patched = _apply(review, mutated.review["response"])
        return DryRunResult(mutated, self._service.admit(patched, stage="validate"))

    def close(self) -> None:
        self._service.close()


class _Adapted:
    """The loaded runtime as ``adapt`` changes it, once: a dry run never reloads its policy."""

    def __init__(self, source: RuntimeSource, adapt: Adapt) -> None:
        current = source.current()
        self._current = adapt(*current) if current is not None else None

    def current(self) -> tuple[Policy, FactGatherer] | None:
        return self._current


def review_for(
    obj: Mapping[str, Any], *, namespace: str | None = None, operation: str = "CREATE"
) -> dict[str, Any]:
    """Wrap a pod-bearing object into the AdmissionReview the API server would send for it."""
    kind = str(obj.get("kind"))
    group, resource = kind_resource(kind) or _guess_resource(obj, kind)
    meta = obj.get("metadata") or {}
    gvk = {"group": group, "version": "v1", "kind": kind}
    gvr = {"group": group, "version": "v1", "resource": resource}
    return {
        "apiVersion": API_VERSION,
        "kind": "AdmissionReview",
        "request": {
            "uid": str(uuid.uuid4()),
            "kind": gvk,
            "resource": gvr,
            "requestKind": gvk,
            "requestResource": gvr,
            "name": meta.get("name", ""),
            "namespace": namespace or meta.get("namespace") or "default",
            "operation": operation,
            "userInfo": {"username": "imagegate-dry-run"},
            "object": dict(obj),
            "oldObject": dict(obj) if operation == "UPDATE" else None,
            "dryRun": True,
        },
    }


def reviews_from_text(
    text: str, *, source: str, namespace: str | None = None, unchecked: bool = False
) -> Iterator[tuple[str, dict[str, Any]]]:
    """(label, AdmissionReview) for every AdmissionReview, manifest or List item in YAML/JSON ``text``.

    Manifests of kinds imagegate does not check are skipped, unless ``unchecked`` (then they are
    wrapped too, and the answer says that nothing was checked). Raises ValueError or yaml.YAMLError.
    """
    for doc in yaml.safe_load_all(text):
        if doc is None:
            continue
        if not isinstance(doc, dict):
            raise ValueError(
                f"{source}: expected a Kubernetes object or AdmissionReview, found {type(doc).__name__}"
            )
        if doc.get("kind") == "AdmissionReview":
            # Only the label is built here: the service checks the review itself (BadRequest).
            request = mapping(doc.get("request"))
            obj = mapping(request.get("object")) or mapping(request.get("oldObject"))
            kind = mapping(request.get("kind")).get("kind", "?")
            label = f"{kind} {request.get('namespace', '')}/{_name(obj)} ({request.get('operation', '?')})"
            yield label, doc
        else:
            items = doc.get("items") or [] if doc.get("kind") == "List" else [doc]
            if not isinstance(items, list):
                raise ValueError(f"{source}: the items of a List must be a list")
            for item in items:
                if not isinstance(item, dict):
                    raise ValueError(f"{source}: expected Kubernetes objects in the List's items")
                if item.get("kind") not in SUPPORTED_KINDS:
                    if not unchecked:
                        continue
                    if not isinstance(item.get("kind"), str) or not item["kind"]:
                        raise ValueError(f"{source}: expected Kubernetes objects, found one without a kind")
                if not isinstance(item.get("metadata", {}), dict):
                    raise ValueError(f"{source}: {item['kind']}: metadata must be a mapping")
                review = review_for(item, namespace=namespace)
                yield f"{item['kind']} {review['request']['namespace']}/{_name(item)}", review


def _guess_resource(obj: Mapping[str, Any], kind: str) -> tuple[str, str]:
    """(group, resource) of a kind imagegate does not check, from the object's ``apiVersion``."""
    api_version = obj.get("apiVersion")
    group = api_version.rpartition("/")[0] if isinstance(api_version, str) else ""
    return group, kind.lower() + "s"


def _name(obj: Mapping[str, Any]) -> str:
    meta = mapping(obj.get("metadata"))
    return str(meta.get("name") or meta.get("generateName") or "?")


def _apply(review: Mapping[str, Any], response: Mapping[str, Any]) -> Mapping[str, Any]:
    patch = response.get("patch")
    if not response.get("allowed") or not patch:
        return review
    ops = json.loads(base64.b64decode(patch))
    request = dict(review["request"])
    request["object"] = jsonpatch.apply_patch(request["object"], ops)
    return {**review, "request": request}


def load_text(source: str | Path, *, stdin: Callable[[], str]) -> str:
    return stdin() if str(source) == "-" else Path(source).read_text()
