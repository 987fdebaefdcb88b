"""Provenance annotations: which source commit built each admitted container, recorded on the object.

When an admitted image's SLSA provenance was verified, ``/mutate`` records what it says on the object it
admits: a Pod's own ``metadata.annotations``, or the pod template's of a workload (Deployment,
StatefulSet, DaemonSet, ReplicaSet, ReplicationController, PodTemplate, Job, and a CronJob's
``jobTemplate``), so every pod created from it carries them too.

**Format.** One annotation per container, keyed ``provenance.imagegate.dev/<container name>`` (an image
volume: ``volume.provenance.imagegate.dev/<volume name>``): the name part of an annotation key holds at
most 63 characters, exactly what a container or volume name (a DNS label) may hold, so every name fits
and the key reads like Kubernetes' own per-container annotations. The value is compact JSON, its fields
in this order, each present only when known::

    {"digest":"sha256:...","repository":"github.com/acme/app","ref":"refs/tags/v1.2.0",
     "commit":"4d329c75...","builder":"https://github.com/actions/runner/github-hosted",
     "finished":"2026-11-20T10:00:00Z","attested":"2026-11-20T10:00:05Z",
     "policy":"production","rule":"acme-release"}

``digest`` is the admitted digest (an index's, for a multi-arch image), ``repository`` the source
repository normalised as policies compare it, ``finished`` when the provenance says the build finished,
``attested`` when the attestation entered the transparency log (GitHub's provenance states no finish
time), ``policy`` and ``rule`` what verified it. A field longer than 512 characters is left out and
named in ``"dropped"``.

**When annotations change** (so that nothing rolls out that the request did not change):

* a container that is new, renamed or given another image (every container of a CREATE) gets its
  annotation set when its provenance was verified, and removed otherwise: an annotation that came with
  the object describes another image, or nothing imagegate verified;
* a container an UPDATE leaves running keeps exactly the annotation the old object had: a client that
  sends the object without it (``kubectl replace``, server-side apply of a manifest without it) gets it
  back, so the pod template stays as it was and the workload does not roll out (when it no longer fits,
  see Bounds, it is removed instead: never left as the client sent it);
* the annotation of a container the UPDATE removes is removed (removing the container changes the
  template anyway); any other annotation under these prefixes stays as the old object had it (on
  CREATE, it is removed).

The result is the same when ``/mutate`` is called again on its own output (``reinvocationPolicy:
IfNeeded``): values are a function of the image and its verified provenance, and equal values give no
operation. Subresource requests (``pods/ephemeralcontainers``) change no annotation: the API server
keeps only the containers of such an update.

**Bounds.** The annotations of an object are limited to 256 KiB together. imagegate writes at most 64 KiB
of them, and never more than what leaves 8 KiB of that limit free after the object's other annotations;
a container whose annotation does not fit gets none (it is named in the answer's audit annotation
``provenanceOmitted``): annotations the object already holds as the old one had them come first, then
those an UPDATE writes back, then new ones in pod-spec order.

**JSONPatch.** ``add`` sets an annotation (RFC 6902: it replaces an existing member), ``remove`` removes
one, and ``/`` and ``~`` in keys are written ``~1`` and ``~0``. When the object has no annotations
(or no ``metadata``) yet, one ``add`` creates them.
"""

from __future__ import annotations

__all__ = [
    "MAX_TOTAL",
    "MAX_VALUE_FIELD",
    "PREFIX",
    "VOLUME_PREFIX",
    "ProvenanceRecord",
    "annotation_key",
    "provenance_patch",
]

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from webhook._json import compact_json
from webhook.admission.patch import json_pointer
from webhook.admission.workloads import ImageSlot, pod_spec_path

PREFIX = "provenance.imagegate.dev/"
VOLUME_PREFIX = "volume.provenance.imagegate.dev/"
#: A field of a value longer than this is left out (and named in ``dropped``).
MAX_VALUE_FIELD = 512
#: What imagegate's provenance annotations of one object may take together (keys and values, bytes).
MAX_TOTAL = 64 * 1024
# Kubernetes' limit on an object's annotations together, and what imagegate leaves free of it.
_ANNOTATIONS_LIMIT = 256 * 1024
_HEADROOM = 8 * 1024
# The name part of an annotation key (the container or volume name).
_NAME = re.compile(r"[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?", re.ASCII)


@dataclass(frozen=True, slots=True)
class ProvenanceRecord:
    """What an annotation says (see the module docstring); None: not known."""

    digest: str
    repository: str | None = None
    ref: str | None = None
    commit: str | None = None
    builder: str | None = None
    finished: str | None = None
    attested: str | None = None
    policy: str | None = None
    rule: str | None = None

    def value(self) -> str:
        """The annotation's value: compact JSON of the known fields, long ones left out and named."""
        document: dict[str, Any] = {}
        dropped = []
        for field in fields(self):
            value = getattr(self, field.name)
            if value is None:
                continue
            if len(value) > MAX_VALUE_FIELD:
                dropped.append(field.name)
                continue
            document[field.name] = value
        if dropped:
            document["dropped"] = dropped
        return compact_json(document)


def annotation_key(slot: ImageSlot) -> str | None:
    """The annotation key of ``slot``, or None when its name cannot be one (none, or not a valid name)."""
    if not _NAME.fullmatch(slot.name):
        return None
    return (VOLUME_PREFIX if slot.location == "volumes" else PREFIX) + slot.name


def provenance_patch(
    *,
    kind: str,
    group: str,
    obj: Mapping[str, Any],
    old: Mapping[str, Any] | None,
    old_slots: Sequence[ImageSlot],
    records: Sequence[tuple[ImageSlot, ProvenanceRecord | None]],
    running: frozenset[str],
) -> tuple[list[dict[str, Any]], tuple[str, ...]]:
    """The JSONPatch operations that bring ``obj``'s provenance annotations to what they should be.

    Args:
        kind: the object's kind; group: its API group.
        obj: the object being admitted (as the API server will apply the patch to it).
        old: the object before an UPDATE, else None.
        old_slots: the image slots of ``old`` (empty for a CREATE).
        records: every image slot of ``obj`` with its verified provenance (None when none was verified).
        running: the pointers of the slots an UPDATE leaves running.

    Returns:
        The operations (none when nothing changes or the object's shape is not one to annotate) and the
        names of the containers whose annotation did not fit (see the module docstring).
    """
    path = pod_spec_path(kind, group=group)
    if path is None:
        return [], ()
    meta_path = (*path[:-1], "metadata")
    current = _annotations(obj, meta_path)
    if current is None:
        return [], ()  # a malformed shape: the API server refuses it, imagegate does not guess
    before = _annotations(old, meta_path) if old is not None else {}
    before = before or {}

    wanted: dict[str, str | None] = {}
    kept: list[tuple[str, str, str]] = []  # (key, old value, container name) an UPDATE keeps
    setting: list[tuple[str, str, str]] = []  # (key, value, container name) to set, in slot order
    present = set()
    for slot, record in records:
        key = annotation_key(slot)
        if key is None or key in present:
            continue
        present.add(key)
        if slot.pointer in running:
            if (value := before.get(key)) is not None:
                kept.append((key, value, slot.name))
            else:
                wanted[key] = None
        elif record is None:
            wanted[key] = None
        else:
            setting.append((key, record.value(), slot.name))
    removed = {key for slot in old_slots if (key := annotation_key(slot)) is not None} - present
    for key in _ours(current, before):
        if key not in present:
            value = None if key in removed or old is None else before.get(key)
            if value is None:
                wanted[key] = None
            else:
                kept.append((key, value, key.removeprefix(VOLUME_PREFIX).removeprefix(PREFIX)))

    # Kept values the object still holds first (they cost nothing more), then kept values to write back,
    # then new ones in slot order, while they fit; one that does not fit is removed, never left forged.
    others = sum(_size(key, value) for key, value in current.items() if not _is_ours(key))
    budget = min(MAX_TOTAL, _ANNOTATIONS_LIMIT - _HEADROOM - others)
    used = 0
    for key, value, _ in kept:
        if current.get(key) == value:
            wanted[key] = value
            used += _size(key, value)
    omitted = []
    for key, value, name in [*(item for item in kept if item[0] not in wanted), *setting]:
        if used + _size(key, value) <= budget:
            wanted[key] = value
            used += _size(key, value)
        else:
            wanted[key] = None
            omitted.append(name)
    return _operations(obj, meta_path, current, wanted), tuple(omitted)


def _operations(
    obj: Mapping[str, Any],
    meta_path: tuple[str, ...],
    current: Mapping[str, str],
    wanted: Mapping[str, str | None],
) -> list[dict[str, Any]]:
    changes = {key: value for key, value in wanted.items() if current.get(key) != value}
    annotations_path = (*meta_path, "annotations")
    if _has(obj, annotations_path):
        ops: list[dict[str, Any]] = []
        for key, change in changes.items():
            pointer = json_pointer((*annotations_path, key))
            if change is not None:
                ops.append({"op": "add", "path": pointer, "value": change})
            elif key in current:
                ops.append({"op": "remove", "path": pointer})
        return ops
    sets = {key: value for key, value in changes.items() if value is not None}
    if not sets:
        return []
    # No annotations yet (or no metadata): one ``add`` creates what is missing.
    target: tuple[str, ...] = annotations_path
    value: Any = sets
    while not _has(obj, target[:-1]):
        value = {target[-1]: value}
        target = target[:-1]
    return [{"op": "add", "path": json_pointer(target), "value": value}]


def _annotations(obj: Mapping[str, Any], meta_path: tuple[str, ...]) -> dict[str, str] | None:
    """The annotations at ``meta_path`` (``{}`` when absent), or None when the shape is not an object's."""
    value: Any = obj
    for key in meta_path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
        if value is None:
            return {}
    if not isinstance(value, Mapping):
        return None
    annotations = value.get("annotations")
    if annotations is None:
        return {}
    if not isinstance(annotations, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in annotations.items()
    ):
        return None
    return dict(annotations)


def _has(obj: Mapping[str, Any], path: tuple[str, ...]) -> bool:
    """Whether ``path`` leads to a value that is not null (an empty path: the object itself)."""
    value: Any = obj
    for key in path:
        if not isinstance(value, Mapping) or value.get(key) is None:
            return False
        value = value[key]
    return True


def _ours(*annotation_maps: Mapping[str, str]) -> Iterable[str]:
    return sorted({key for annotations in annotation_maps for key in annotations if _is_ours(key)})


def _is_ours(key: str) -> bool:
    return key.startswith((PREFIX, VOLUME_PREFIX))


def _size(key: str, value: str) -> int:
    return len(key.encode()) + len(value.encode())
