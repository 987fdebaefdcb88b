"""Offline dry-runs: AdmissionReviews (or manifests wrapped into them) through /mutate then /validate,
in-process and exactly as the server would answer them. Used by ``evaluate`` and ``test``."""

from __future__ import annotations

__all__ = ["DryRun", "DryRunResult", "Input", "inputs_from_text", "review_for", "reviews_from_text"]

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
from webhook.reload import PolicyStore
from webhook.service import AdmissionService, Answer
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


class DryRun:
    """The server's admission path with the real adapters, minus HTTP. Raises ConfigError on a bad policy."""

    def __init__(self, policy_path: Path, *, clock: Callable[[], datetime] | None = None) -> None:
        clock = clock or (lambda: datetime.now(UTC))
        settings = Settings.from_env(policy_path=policy_path, audit_log=False, reload_interval=0.0)
        self._store: PolicyStore[Services] = PolicyStore(
            policy_path,
            build=lambda policy: build_services(policy, settings=settings),
            interval=0.0,
            clock=clock,
        )
        self._store.load()
        self._service = AdmissionService(settings=settings, runtime=RuntimeAdapter(self._store), clock=clock)

    def admit(self, review: Mapping[str, Any]) -> DryRunResult:
        """/mutate, the patch applied, then /validate. Raises BadRequest for a malformed review."""
        mutated = self._service.admit(review, stage="mutate")
        patched = _apply(review, mutated.review["response"])
        return DryRunResult(mutated, self._service.admit(patched, stage="validate"))

    def close(self) -> None:
        self._service.close()


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


@dataclass(frozen=True, slots=True)
class Input:
    """Where one AdmissionReview of a dry run came from, and what it admits.

    ``source`` is the file as given (``-`` for stdin), ``document`` the YAML document's number in it
    (from 1), ``item`` the object's index in a ``kind: List`` (else None); ``review`` says whether the
    document was an AdmissionReview (else a manifest was wrapped into one).
    """

    source: str
    document: int
    item: int | None
    review: bool
    kind: str
    namespace: str
    name: str
    operation: str
    uid: str

    @property
    def label(self) -> str:
        """How ``evaluate`` heads its output for the input: ``Deployment default/web``, and for an
        AdmissionReview its operation too: ``Pod prod/web (CREATE)``."""
        head = f"{self.kind} {self.namespace}/{self.name}"
        return f"{head} ({self.operation})" if self.review else head

    def as_json(self) -> dict[str, Any]:
        found: dict[str, Any] = {"source": self.source, "document": self.document}
        if self.item is not None:
            found["item"] = self.item
        found["from"] = "AdmissionReview" if self.review else "manifest"
        found |= {
            "kind": self.kind,
            "namespace": self.namespace,
            "name": self.name,
            "operation": self.operation,
            "uid": self.uid,
        }
        return found


def reviews_from_text(
    text: str, *, source: str, namespace: str | None = None, unchecked: bool = False
) -> Iterator[tuple[str, dict[str, Any]]]:
    """(label, AdmissionReview) for every AdmissionReview, manifest or List item in YAML/JSON ``text``
    (:func:`inputs_from_text`, with each input's :attr:`Input.label`)."""
    for found, review in inputs_from_text(text, source=source, namespace=namespace, unchecked=unchecked):
        yield found.label, review


def inputs_from_text(
    text: str, *, source: str, namespace: str | None = None, unchecked: bool = False
) -> Iterator[tuple[Input, dict[str, Any]]]:
    """(input, AdmissionReview) for every AdmissionReview, manifest or List item in YAML/JSON ``text``.

    Manifests of kinds imagegate does not check are skipped, unless ``unchecked`` (then they are
    wrapped too, and the answer says that nothing was checked). Raises ValueError or yaml.YAMLError.
    """
    for number, doc in enumerate(yaml.safe_load_all(text), start=1):
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
            found = Input(
                source=source,
                document=number,
                item=None,
                review=True,
                kind=str(mapping(request.get("kind")).get("kind", "?")),
                namespace=str(request.get("namespace", "")),
                name=_name(obj),
                operation=str(request.get("operation", "?")),
                uid=str(request.get("uid", "")),
            )
            yield found, doc
        else:
            listed = doc.get("kind") == "List"
            items = doc.get("items") or [] if listed else [doc]
            if not isinstance(items, list):
                raise ValueError(f"{source}: the items of a List must be a list")
            for index, item in enumerate(items):
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
                request = review["request"]
                found = Input(
                    source=source,
                    document=number,
                    item=index if listed else None,
                    review=False,
                    kind=item["kind"],
                    namespace=request["namespace"],
                    name=_name(item),
                    operation=request["operation"],
                    uid=request["uid"],
                )
                yield found, review


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
