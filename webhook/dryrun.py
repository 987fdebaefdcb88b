"""Offline dry-runs: AdmissionReviews (or manifests wrapped into them) through /mutate then /validate,
in-process and exactly as the server would answer them. Used by ``evaluate`` and ``test``."""

from __future__ import annotations

__all__ = [
    "DryRun",
    "DryRunResult",
    "Input",
    "inputs_from_text",
    "load_text",
    "review_for",
    "reviews_from_text",
]

import base64
import json
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import jsonpatch
import yaml

from webhook._json import json_type, mapping
from webhook.admission.review import API_VERSION
from webhook.admission.workloads import SUPPORTED_KINDS, kind_resource
from webhook.deadline import Deadline
from webhook.decision import ImagePlan
from webhook.facts import ImageFacts
from webhook.policy import material
from webhook.policy.model import Policy
from webhook.policy.report import os_reason
from webhook.reload import PolicyStore
from webhook.service import AdmissionService, Answer, FactGatherer
from webhook.settings import Settings
from webhook.wiring import build_services

#: Builds the policy and fact gatherer admission runs with, from the policy as loaded (``DryRun``).
RuntimeBuilder = Callable[[Policy, Settings], tuple[Policy, FactGatherer]]

#: Given the loaded policy and the gatherer built for it, what a dry run uses instead (``imagegate
#: audit``: the policy with modes overridden, lookups shared across a whole input).
Adapt = Callable[[Policy, FactGatherer], tuple[Policy, FactGatherer]]


@dataclass(frozen=True, slots=True)
class DryRunResult:
    """The answers of /mutate and /validate, and the facts each gathered (by image), for explanations."""

    mutated: Answer
    validated: Answer
    facts: Mapping[str, ImageFacts] = field(default_factory=dict)

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
    """The server's admission path minus HTTP. Raises ConfigError on a bad policy.

    The adapters are the server's (``build_services``) unless ``runtime`` builds others from the loaded
    policy: ``imagegate test`` answers the registry and the cryptography from a suite's declared facts
    (:func:`webhook.declared.declared_runtime`). ``settings`` default to the environment's
    (``IMAGEGATE_*``) without the audit log; ``adapt`` (see :data:`Adapt`) may then replace the policy
    and the gatherer, once: a dry run never reloads its policy.
    """

    def __init__(
        self,
        policy_path: Path,
        *,
        clock: Callable[[], datetime] | None = None,
        settings: Settings | None = None,
        runtime: RuntimeBuilder | None = None,
        adapt: Adapt | None = None,
    ) -> None:
        clock = clock or (lambda: datetime.now(UTC))
        if settings is None:
            settings = Settings.from_env(policy_path=policy_path, audit_log=False, reload_interval=0.0)
        build = runtime or _server_runtime
        self._facts: dict[str, ImageFacts] = {}
        self._store: PolicyStore[tuple[Policy, FactGatherer]] = PolicyStore(
            policy_path,
            build=lambda policy: build(policy, settings),
            interval=0.0,
            clock=clock,
        )
        self._store.load()
        loaded = self._store.current()
        self._runtime = loaded.services if loaded is not None else None
        if adapt is not None and self._runtime is not None:
            self._runtime = adapt(*self._runtime)
        self._service = AdmissionService(settings=settings, runtime=self, clock=clock)

    def current(self) -> tuple[Policy, FactGatherer] | None:
        """The service's RuntimeSource: the loaded policy, and its gatherer recording what it finds."""
        if self._runtime is None:
            return None
        policy, gather = self._runtime
        return policy, _Recording(gather, self._facts)

    def admit(self, review: Mapping[str, Any]) -> DryRunResult:
        """/mutate, the patch applied, then /validate. Raises BadRequest for a malformed review."""
        self._facts.clear()
        mutated = self._service.admit(review, stage="mutate")
        patched = _apply(review, mutated.review["response"])
        validated = self._service.admit(patched, stage="validate")
        return DryRunResult(mutated, validated, dict(self._facts))

    def close(self) -> None:
        self._service.close()


def review_for(
    obj: Mapping[str, Any],
    *,
    namespace: str | None = None,
    operation: str = "CREATE",
    old: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Wrap a pod-bearing object into the AdmissionReview the API server would send for it.

    Group and version are the object's ``apiVersion``'s, so a kind in another API group (an ``apps/v1``
    Pod, a custom resource named ``Deployment``) is answered "not checked", as the server answers it. An
    object without an ``apiVersion`` (which no API server accepts) is taken as the kind imagegate checks.
    ``old`` is the object as it runs: the review is then an UPDATE from it (``operation`` UPDATE
    alone updates the object to itself).

    Raises:
        ValueError: the object's (or ``old``'s) ``metadata`` is not a mapping, which no API server sends.
    """
    _check_metadata(obj, what="")
    if old is not None:
        _check_metadata(old, what=" (oldObject)")
        operation = "UPDATE"
    kind = str(obj.get("kind"))
    checked = kind_resource(kind)
    group, version = _group_version(obj.get("apiVersion"), checked[0] if checked else "")
    if checked is not None and checked[0] == group:
        resource = checked[1]
    else:
        resource = kind.lower() + "s"
    meta = obj.get("metadata") or {}
    gvk = {"group": group, "version": version, "kind": kind}
    gvr = {"group": group, "version": version, "resource": resource}
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
            "oldObject": dict(old if old is not None else obj) if operation == "UPDATE" else None,
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
    for number, doc in enumerate(_documents(text, source=source), start=1):
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
                try:
                    review = review_for(item, namespace=namespace)
                except ValueError as error:
                    raise ValueError(f"{source}: {error}") from None
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


def _check_metadata(obj: Mapping[str, Any], *, what: str) -> None:
    metadata = obj.get("metadata", {})
    if not isinstance(metadata, Mapping):
        raise ValueError(f"{obj.get('kind')}{what}: metadata must be a mapping, not {json_type(metadata)}")


def _documents(text: str, *, source: str) -> Iterator[object]:
    """The YAML (or JSON) documents in ``text``. Raises ValueError (nested too deeply) or yaml.YAMLError."""
    try:
        yield from yaml.safe_load_all(text)
    except RecursionError:
        # The composer recurses per nesting level: a hostile document would end the run in a traceback.
        raise ValueError(f"{source}: nested too deeply to read") from None


def _server_runtime(policy: Policy, settings: Settings) -> tuple[Policy, FactGatherer]:
    return policy, build_services(policy, settings=settings).gatherer


@dataclass(frozen=True, slots=True)
class _Recording:
    """A fact gatherer that also keeps what it found, by image (the last admission's facts)."""

    gather: FactGatherer
    found: dict[str, ImageFacts]

    def __call__(self, plan: ImagePlan, *, deadline: Deadline, now: datetime) -> ImageFacts:
        facts = self.gather(plan, deadline=deadline, now=now)
        self.found[plan.image] = facts
        return facts


def _group_version(api_version: object, default_group: str) -> tuple[str, str]:
    """(group, version) of an ``apiVersion`` (``apps/v1`` -> apps, v1; ``v1`` -> the core group)."""
    if not isinstance(api_version, str) or not api_version:
        return default_group, "v1"
    group, _, version = api_version.rpartition("/")
    return group, version


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


def load_text(source: str | Path, *, stdin: Callable[[], BinaryIO] | None = None) -> str:
    """The text of an input file, or with ``stdin`` of ``-``, standard input: read as the policy and the
    files it names are, at most :data:`~webhook.policy.material.MAX_FILE_BYTES`.

    Raises:
        ValueError: it cannot be read, is larger than that, or is not UTF-8; the message names it.
    """
    handle = stdin() if stdin is not None and str(source) == "-" else None
    name = "standard input" if handle is not None else str(source)
    try:
        data = material.read_bounded(handle if handle is not None else Path(source))
        return data.decode("utf-8-sig")
    except OSError as error:
        raise ValueError(f"{name}: cannot be read: {os_reason(error)}") from None
    except UnicodeDecodeError:
        raise ValueError(f"{name}: not UTF-8 text") from None
