"""What an audit reads: objects from ``kubectl get -o json`` output or manifests, grouped by workload.

Inputs: a file or ``-`` (standard input) holding JSON or YAML, one or more documents, where a ``List``
(what ``kubectl get pods,deployments,... -A -o json`` prints, kinds mixed) contributes its items; or a
directory, searched recursively for ``*.yaml``, ``*.yml`` and ``*.json`` (a file there that is not
YAML, is nested too deeply to read, or holds no Kubernetes objects, a Helm template for instance, is
skipped with a warning; such a file named on the command line is an input error).
Objects of kinds imagegate does not check are counted and skipped.

Grouping: every object is reported under the workload at the top of its chain of controller owners
(``metadata.ownerReferences``): a pod under its Deployment (through its ReplicaSet), StatefulSet,
DaemonSet, or CronJob (through its Job). An owner is found in the input by uid, else by kind and name
in the same namespace. ``kubectl get pods,deployments`` does not list ReplicaSets, so a ReplicaSet
that is not in the input leads to the Deployment named like it without its ``-<pod-template-hash>``
suffix (the pod carries that hash as its ``pod-template-hash`` label), and a Job that is not in the
input to the CronJob named like it without its ``-<scheduled time>`` suffix. An owner found nowhere
is still the workload its objects are reported under, marked as not read. A static pod (whose owner is
its Node) stands alone.

For a pod, what runs is read from its status: ``containerStatuses`` (and the init and ephemeral
lists) give each container's ``imageID``, whose ``@sha256:...`` digest is the manifest the node
pulled: for a multi-arch image usually one platform manifest of the index the spec names.
"""

from __future__ import annotations

__all__ = ["AuditObject", "Inventory", "Owner", "Running", "Workload", "read_inventory", "running_digest"]

import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import yaml

from webhook._json import json_type, mapping
from webhook.admission.workloads import SUPPORTED_KINDS, ImageSlot, Location, image_slots
from webhook.dryrun import load_text
from webhook.errors import BadRequest
from webhook.images.reference import is_sha256_digest
from webhook.text import first_line

_LOADER: Final[type[yaml.SafeLoader]] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_SUFFIXES: Final = (".yaml", ".yml", ".json")
_STATUS_LISTS: Final[Mapping[str, Location]] = {
    "containerStatuses": "containers",
    "initContainerStatuses": "initContainers",
    "ephemeralContainerStatuses": "ephemeralContainers",
}
# Where a workload's own object sorts among the objects reported under it: itself, then what it
# controls, then pods.
_ORDER: Final[Mapping[str, int]] = {"ReplicaSet": 1, "Job": 1, "ReplicationController": 1, "Pod": 2}
_SCHEDULED_SUFFIX: Final = re.compile(r"(?P<name>.+)-[0-9]+")


@dataclass(frozen=True, slots=True)
class Running:
    """What a pod's status says one of its containers runs.

    ``digest`` is the ``sha256:...`` after the ``@`` of ``image_id``; None when the runtime reported no
    manifest digest (an image ID alone is the config's digest, which no registry check can use).
    """

    location: Location
    container: str
    image_id: str
    digest: str | None


@dataclass(frozen=True, slots=True)
class Owner:
    kind: str
    name: str
    uid: str = ""


@dataclass(frozen=True, slots=True)
class AuditObject:
    """One pod-bearing object of the input, with its images (``slots``) and, for a pod, what runs."""

    kind: str
    namespace: str
    name: str
    origin: str
    body: Mapping[str, Any] = field(repr=False, compare=False)
    slots: tuple[ImageSlot, ...] = ()
    running: tuple[Running, ...] = ()
    uid: str = ""
    owner: Owner | None = None
    labels: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    @property
    def label(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"


@dataclass(frozen=True, slots=True)
class Workload:
    """What is reported together: the workload's own object when it was read (``read``), the objects
    it controls and its pods, in that order."""

    namespace: str
    kind: str
    name: str
    read: bool
    objects: tuple[AuditObject, ...]

    @property
    def pods(self) -> tuple[AuditObject, ...]:
        return tuple(o for o in self.objects if o.kind == "Pod")


@dataclass(frozen=True, slots=True)
class Inventory:
    workloads: tuple[Workload, ...]
    objects: int
    skipped: Mapping[str, int]  # kinds imagegate does not check -> how many were read
    warnings: tuple[str, ...] = ()


def read_inventory(
    inputs: Sequence[str], *, stdin: Callable[[], str], namespace: str | None = None
) -> Inventory:
    """Read every input and group its objects.

    ``namespace`` is the namespace of objects that name none (default ``default``).

    Files are read as the policy is, at most 32 MiB each (:func:`webhook.dryrun.load_text`); ``stdin``
    reads standard input, bounded by the caller.

    Raises:
        ValueError: a file named on the command line cannot be read, is too large or not UTF-8, or a file
            or ``-`` named on the command line is not YAML/JSON of Kubernetes objects,
            or an object is malformed (the message names the input and the object).
    """
    objects: list[AuditObject] = []
    skipped: Counter[str] = Counter()
    warnings: list[str] = []
    for source in inputs:
        if source != "-" and Path(source).is_dir():
            for path in _files(Path(source)):
                try:
                    documents = list(_documents(load_text(path), source=str(path)))
                except (ValueError, yaml.YAMLError) as error:
                    warnings.append(f"{path}: skipped: {first_line(error).removeprefix(f'{path}: ')}")
                    continue
                objects += _objects(documents, source=str(path), namespace=namespace, skipped=skipped)
        else:
            text = stdin() if source == "-" else load_text(source)
            try:
                documents = list(_documents(text, source=source))
            except yaml.YAMLError as error:
                raise ValueError(f"{source}: not YAML or JSON: {first_line(error)}") from None
            objects += _objects(documents, source=source, namespace=namespace, skipped=skipped)
    return Inventory(
        workloads=_group(objects),
        objects=len(objects) + sum(skipped.values()),
        skipped=dict(sorted(skipped.items())),
        warnings=tuple(warnings),
    )


def running_digest(image_id: str) -> str | None:
    """The manifest digest in a container status's ``imageID``, e.g. ``docker.io/library/nginx@sha256:...``
    or ``docker-pullable://nginx@sha256:...``; None for a bare image ID (``sha256:...``: the config)."""
    _, at, digest = image_id.rpartition("@")
    return digest if at and is_sha256_digest(digest) else None


def _files(root: Path) -> list[Path]:
    return sorted(
        path
        for path in root.rglob("*")
        if path.suffix in _SUFFIXES
        and path.is_file()
        and not any(part.startswith(".") for part in path.relative_to(root).parts)
    )


def _documents(text: str, *, source: str) -> Iterator[dict[str, Any]]:
    """Every object in ``text``, the items of a ``List`` included. Raises ValueError or yaml.YAMLError."""
    stripped = text.lstrip()
    documents: Iterable[object]
    try:
        # kubectl's JSON of a whole cluster is large: the JSON parser reads it far faster than YAML's.
        documents = [json.loads(text)] if stripped[:1] == "{" else ()
    except ValueError:
        documents = ()
    except RecursionError:
        raise _too_deep(source) from None
    if not documents:
        documents = _yaml_documents(text, source=source)
    found = False
    for number, document in enumerate(documents, start=1):
        if document is None:
            continue
        if not isinstance(document, dict):
            raise ValueError(
                f"{source}: document {number}: expected a Kubernetes object, found {json_type(document)}"
            )
        items = document.get("items")
        if str(document.get("kind", "")).endswith("List") and isinstance(items, list):
            found = True  # an empty List (a cluster without such objects) is an answer too
            for index, item in enumerate(items):
                if not isinstance(item, dict):
                    raise ValueError(
                        f"{source}: document {number}: items/{index}: expected a Kubernetes object, "
                        f"found {json_type(item)}"
                    )
                yield item
        elif "kind" in document or "apiVersion" in document:
            found = True
            yield document
    if not found:
        raise ValueError(f"{source}: no Kubernetes objects found")


def _yaml_documents(text: str, *, source: str) -> Iterator[object]:
    try:
        yield from yaml.load_all(text, Loader=_LOADER)  # a safe loader: C when built, else Python
    except RecursionError:
        raise _too_deep(source) from None


def _too_deep(source: str) -> ValueError:
    # The parsers recurse per nesting level: a hostile document would end the audit in a traceback.
    return ValueError(f"{source}: nested too deeply to read")


def _objects(
    documents: Iterable[dict[str, Any]],
    *,
    source: str,
    namespace: str | None,
    skipped: Counter[str],
) -> list[AuditObject]:
    objects = []
    for document in documents:
        kind = document.get("kind")
        if not isinstance(kind, str) or kind not in SUPPORTED_KINDS:
            skipped[kind if isinstance(kind, str) and kind else "(no kind)"] += 1
            continue
        objects.append(_object(kind, document, source=source, namespace=namespace))
    return objects


def _object(kind: str, body: dict[str, Any], *, source: str, namespace: str | None) -> AuditObject:
    meta = body.get("metadata", {})
    if not isinstance(meta, dict):
        raise ValueError(f"{source}: {kind}: metadata must be an object, not {json_type(meta)}")
    name = str(meta.get("name") or meta.get("generateName") or "?")
    where = str(meta.get("namespace") or namespace or "default")
    try:
        slots = image_slots(kind, body)
    except BadRequest as error:
        raise ValueError(f"{source}: {kind} {where}/{name}: {error.user_message}") from None
    labels = {str(k): str(v) for k, v in mapping(meta.get("labels")).items()}
    return AuditObject(
        kind=kind,
        namespace=where,
        name=name,
        origin=source,
        body=body,
        slots=slots,
        running=_running(body) if kind == "Pod" else (),
        uid=str(meta.get("uid") or ""),
        owner=_controller(meta.get("ownerReferences")),
        labels=labels,
    )


def _controller(references: object) -> Owner | None:
    """The controlling owner (``controller: true``), else the first owner listed."""
    if not isinstance(references, list):
        return None
    owners = [r for r in references if isinstance(r, dict) and r.get("kind") and r.get("name")]
    chosen = next((r for r in owners if r.get("controller") is True), owners[0] if owners else None)
    if chosen is None or chosen["kind"] == "Node":
        return None  # a static pod's mirror: the node is not a workload, the pod stands alone
    return Owner(str(chosen["kind"]), str(chosen["name"]), str(chosen.get("uid") or ""))


def _running(pod: Mapping[str, Any]) -> tuple[Running, ...]:
    """What the pod's status says each container runs (entries without an ``imageID`` are skipped:
    a container still waiting for its image runs nothing yet)."""
    status = mapping(pod.get("status"))
    found = []
    for key, location in _STATUS_LISTS.items():
        entries = status.get(key)
        for entry in entries if isinstance(entries, list) else ():
            entry = mapping(entry)
            image_id, name = entry.get("imageID"), entry.get("name")
            if isinstance(image_id, str) and image_id and isinstance(name, str):
                found.append(Running(location, name, image_id, running_digest(image_id)))
    return tuple(found)


def _group(objects: Sequence[AuditObject]) -> tuple[Workload, ...]:
    by_uid = {o.uid: o for o in objects if o.uid}
    by_name: dict[tuple[str, str, str], AuditObject] = {}
    for o in objects:
        by_name.setdefault((o.namespace, o.kind, o.name), o)

    def parent(o: AuditObject) -> AuditObject | Owner | None:
        owner = o.owner
        if owner is None:
            return None
        found = by_uid.get(owner.uid) if owner.uid else None
        found = found or by_name.get((o.namespace, owner.kind, owner.name))
        return found or _named_after(o, owner, by_name) or owner

    def top(o: AuditObject) -> tuple[str, str, str]:
        seen = {id(o)}
        current = o
        while True:
            up = parent(current)
            if up is None:
                return (current.namespace, current.kind, current.name)
            if isinstance(up, Owner):
                return (current.namespace, up.kind, up.name)
            if id(up) in seen:  # an ownership cycle: only a hand-written input has one
                return (o.namespace, o.kind, o.name)
            seen.add(id(up))
            current = up

    members: dict[tuple[str, str, str], list[AuditObject]] = {}
    for o in objects:
        members.setdefault(top(o), []).append(o)
    workloads = []
    for key in sorted(members):
        namespace, kind, name = key
        own = members[key]
        own.sort(key=lambda o: (o.kind != kind or o.name != name, _ORDER.get(o.kind, 0), o.kind, o.name))
        read = any(o.kind == kind and o.name == name for o in own)
        workloads.append(Workload(namespace, kind, name, read, tuple(own)))
    return tuple(workloads)


def _named_after(
    o: AuditObject, owner: Owner, by_name: Mapping[tuple[str, str, str], AuditObject]
) -> AuditObject | None:
    """The Deployment or CronJob an owner that is not in the input was named after (module docstring)."""
    if owner.kind == "ReplicaSet":
        template_hash = o.labels.get("pod-template-hash", "")
        if template_hash and owner.name.endswith("-" + template_hash):
            return by_name.get((o.namespace, "Deployment", owner.name[: -len(template_hash) - 1]))
    if owner.kind == "Job":
        scheduled = _SCHEDULED_SUFFIX.fullmatch(owner.name)
        if scheduled is not None:
            return by_name.get((o.namespace, "CronJob", scheduled["name"]))
    return None
