"""Quarantine markers stored in the registry (policies/README.md, quarantine): read, add, remove, list them.

A marker is an OCI artifact manifest with ``artifactType`` :data:`QUARANTINE_ARTIFACT_TYPE`, an
empty config and layer (``{}``), ``subject`` = the quarantined manifest, and annotations
``dev.imagegate.quarantine/reason`` (plus ``/by`` and ``/since``). The markers ``imagegate quarantine
add`` puts on the manifests an index lists also carry ``dev.imagegate.quarantine/index`` (the index they
were added for; removing that index's quarantine removes them) and ``dev.imagegate.quarantine/platform``
(what the index says, e.g. ``linux/amd64``). Readers find markers through the referrers API or, on
registries without it, the tag-schema fallback index at tag ``sha256-<hex>``.

A marker lives in one repository, next to its subject; the same digest pushed under another name has
no marker there. The webhook remembers the markers it has seen (:mod:`webhook.seen_markers`) and
refuses their digest in every repository until they are removed.

Writers always maintain that fallback index too (it is harmless where the API exists and keeps the
marker visible to fallback-only readers). The index is shared with other tools (cosign puts
signatures and attestations there): entries are merged, foreign entries are never dropped. The
read-modify-write of the index is not atomic; two writers racing on the same digest can lose an
entry, which is inherent to the fallback scheme.
"""

from __future__ import annotations

__all__ = [
    "ANNOTATION_BY",
    "ANNOTATION_INDEX",
    "ANNOTATION_PLATFORM",
    "ANNOTATION_REASON",
    "ANNOTATION_SINCE",
    "QUARANTINE_ARTIFACT_TYPE",
    "Marker",
    "add_marker",
    "list_markers",
    "read_marker",
    "remove_marker",
]

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from webhook.deadline import Deadline
from webhook.errors import RegistryError
from webhook.images.reference import ImageRef
from webhook.policy.model import QuarantineEntry
from webhook.reasons import Reason
from webhook.registry.cached import CachingRegistry
from webhook.registry.port import (
    EMPTY_JSON,
    EMPTY_JSON_DIGEST,
    INDEX_MEDIA_TYPES,
    MEDIA_OCI_EMPTY,
    MEDIA_OCI_INDEX,
    MEDIA_OCI_MANIFEST,
    Descriptor,
    Registry,
    check_digest,
    fallback_tag,
    is_digest,
)
from webhook.times import format_rfc3339, parse_rfc3339

_logger = logging.getLogger(__name__)

QUARANTINE_ARTIFACT_TYPE = "application/vnd.imagegate.quarantine.v1+json"
ANNOTATION_REASON = "dev.imagegate.quarantine/reason"
ANNOTATION_BY = "dev.imagegate.quarantine/by"
ANNOTATION_SINCE = "dev.imagegate.quarantine/since"
ANNOTATION_INDEX = "dev.imagegate.quarantine/index"
ANNOTATION_PLATFORM = "dev.imagegate.quarantine/platform"
_ANNOTATION_CREATED = "org.opencontainers.image.created"
_DEFAULT_REASON = "quarantined by a marker in the registry"


@dataclass(frozen=True, slots=True)
class Marker:
    """One marker: the digest of the marker manifest and what it says about its subject."""

    manifest_digest: str
    entry: QuarantineEntry


def list_markers(
    registry: Registry, repo: ImageRef, digest: str, *, deadline: Deadline
) -> tuple[Marker, ...]:
    """Every quarantine marker whose subject is ``digest``, oldest first.

    Raises:
        RegistryError: the registry could not be read (callers fail closed).
    """
    check_digest(digest)
    found = registry.referrers(repo, digest, deadline=deadline, artifact_type=QUARANTINE_ARTIFACT_TYPE)
    markers = []
    for descriptor in found:
        annotations: Mapping[str, str] = descriptor.annotations
        if ANNOTATION_REASON not in annotations:
            # Some referrer listings carry no annotations: the marker manifest has them.
            manifest = registry.manifest(repo, descriptor.digest, deadline=deadline).json()
            subject = manifest.get("subject")
            if not isinstance(subject, dict) or subject.get("digest") != digest:
                _logger.debug("marker %s does not name %s as its subject: ignored", descriptor.digest, digest)
                continue
            raw = manifest.get("annotations")
            annotations = (
                {k: v for k, v in raw.items() if isinstance(v, str)} if isinstance(raw, dict) else {}
            )
        markers.append(Marker(manifest_digest=descriptor.digest, entry=_entry(digest, annotations)))
    markers.sort(key=lambda m: (m.entry.since or datetime.min.replace(tzinfo=UTC), m.manifest_digest))
    return tuple(markers)


def read_marker(
    registry: Registry, repo: ImageRef, digest: str, *, deadline: Deadline
) -> QuarantineEntry | None:
    """The (oldest) quarantine marker of ``digest`` as a :class:`QuarantineEntry`, or None.

    ``source`` is ``"registry"``. Raises :class:`RegistryError` when the registry cannot be read.
    """
    markers = list_markers(registry, repo, digest, deadline=deadline)
    return markers[0].entry if markers else None


def add_marker(
    registry: Registry,
    repo: ImageRef,
    digest: str,
    *,
    reason: str,
    by: str = "",
    index: str = "",
    platform: str = "",
    deadline: Deadline,
    now: datetime | None = None,
) -> str:
    """Push a quarantine marker for ``digest`` and list it in the fallback index; returns its digest.

    ``index`` and ``platform`` mark it as added for a manifest the index ``index`` lists.

    Raises:
        ValueError: empty reason.
        RegistryError: the subject does not exist, or the registry refused a write.
    """
    check_digest(digest)
    if not reason.strip():
        raise ValueError("a quarantine marker needs a reason")
    subject = _uncached(registry).manifest(repo, digest, deadline=deadline)
    config = registry.push_blob(repo, EMPTY_JSON, deadline=deadline)
    if config.digest != EMPTY_JSON_DIGEST:  # pragma: no cover - sha256 of b"{}" is a constant
        raise RegistryError("empty config blob has an unexpected digest", code=Reason.REGISTRY_ERROR)
    since = format_rfc3339(now or datetime.now(UTC))
    annotations = {ANNOTATION_REASON: reason, ANNOTATION_SINCE: since, _ANNOTATION_CREATED: since}
    if by:
        annotations[ANNOTATION_BY] = by
    if index:
        check_digest(index)
        annotations[ANNOTATION_INDEX] = index
    if platform:
        annotations[ANNOTATION_PLATFORM] = platform
    empty = {"mediaType": MEDIA_OCI_EMPTY, "digest": EMPTY_JSON_DIGEST, "size": len(EMPTY_JSON)}
    manifest = {
        "schemaVersion": 2,
        "mediaType": MEDIA_OCI_MANIFEST,
        "artifactType": QUARANTINE_ARTIFACT_TYPE,
        "config": empty,
        "layers": [empty],
        "subject": {"mediaType": subject.media_type, "digest": digest, "size": len(subject.body)},
        "annotations": annotations,
    }
    body = json.dumps(manifest, separators=(",", ":"), sort_keys=True).encode()
    marker_digest = registry.push_manifest(repo, body, MEDIA_OCI_MANIFEST, deadline=deadline)
    descriptor = Descriptor(
        media_type=MEDIA_OCI_MANIFEST,
        digest=marker_digest,
        size=len(body),
        artifact_type=QUARANTINE_ARTIFACT_TYPE,
        annotations=annotations,
    )
    _update_fallback(registry, repo, digest, add=descriptor, remove=frozenset(), deadline=deadline)
    _logger.info("quarantine marker %s added for %s@%s", marker_digest, repo.name, digest)
    return marker_digest


def remove_marker(
    registry: Registry, repo: ImageRef, digest: str, *, deadline: Deadline, only: str | None = None
) -> tuple[str, ...]:
    """Remove the quarantine markers of ``digest`` (or just the marker ``only``); returns their digests.

    The fallback index is rewritten first (keeping every foreign entry), then the marker manifests
    are deleted, so no reader is left with an index entry whose marker is half gone.

    Raises:
        RegistryError: the registry refused a write or a delete.
    """
    check_digest(digest)
    reader = _uncached(registry)
    targets = {m.manifest_digest for m in list_markers(reader, repo, digest, deadline=deadline)}
    index = reader.manifest_if_exists(repo, fallback_tag(digest), deadline=deadline)
    if index is not None and index.media_type in INDEX_MEDIA_TYPES:
        for entry in _entries(index.json(), what=fallback_tag(digest)):
            if isinstance(entry, dict) and entry.get("artifactType") == QUARANTINE_ARTIFACT_TYPE:
                value = entry.get("digest")
                if isinstance(value, str) and is_digest(value):
                    targets.add(value)
    if only is not None:
        targets &= {only}
    if not targets:
        return ()
    _update_fallback(registry, repo, digest, add=None, remove=frozenset(targets), deadline=deadline)
    for marker in sorted(targets):
        registry.delete_manifest(repo, marker, deadline=deadline)
    _logger.info("quarantine markers %s removed for %s@%s", sorted(targets), repo.name, digest)
    return tuple(sorted(targets))


def _update_fallback(
    registry: Registry,
    repo: ImageRef,
    digest: str,
    *,
    add: Descriptor | None,
    remove: frozenset[str],
    deadline: Deadline,
) -> None:
    tag = fallback_tag(digest)
    existing = _uncached(registry).manifest_if_exists(repo, tag, deadline=deadline)
    media_type = MEDIA_OCI_INDEX
    if existing is None:
        if add is None:
            return
        document: dict[str, Any] = {"schemaVersion": 2, "mediaType": MEDIA_OCI_INDEX, "manifests": []}
    else:
        if existing.media_type not in INDEX_MEDIA_TYPES:
            raise RegistryError(
                f"{repo.name}:{tag} holds a {existing.media_type or 'non-index manifest'}, not a referrers "
                "index: refusing to overwrite it",
                code=Reason.REGISTRY_ERROR,
            )
        media_type = existing.media_type
        document = existing.json()
    entries = _entries(document, what=tag)
    kept = [e for e in entries if not (isinstance(e, dict) and e.get("digest") in remove)]
    changed = len(kept) != len(entries)
    if add is not None and not any(isinstance(e, dict) and e.get("digest") == add.digest for e in kept):
        kept.append(add.to_json())
        changed = True
    if not changed:
        return
    document["manifests"] = kept
    body = json.dumps(document, separators=(",", ":")).encode()
    registry.push_manifest(repo, body, media_type, deadline=deadline, tag=tag)


def _entries(document: dict[str, Any], *, what: str) -> list[Any]:
    entries = document.get("manifests", [])
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise RegistryError(
            f"{what}: the referrers index has no 'manifests' list", code=Reason.REGISTRY_ERROR
        )
    return entries


def _entry(digest: str, annotations: Mapping[str, str]) -> QuarantineEntry:
    index = annotations.get(ANNOTATION_INDEX, "")
    return QuarantineEntry(
        digest=digest,
        reason=annotations.get(ANNOTATION_REASON, "").strip() or _DEFAULT_REASON,
        by=annotations.get(ANNOTATION_BY, ""),
        since=_parse_time(annotations.get(ANNOTATION_SINCE)),
        source="registry",
        indexes=(index,) if is_digest(index) and index != digest else (),
        platform=annotations.get(ANNOTATION_PLATFORM, "")[:100],
    )


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        # In UTC, as every reader prints it; an offset can push a time out of datetime's range.
        return parse_rfc3339(value).astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def _uncached(registry: Registry) -> Registry:
    # Writes read-modify-write the fallback index: a cached (stale) read could drop entries. Writes
    # still go through the cache, which drops the entries they make stale.
    return registry.inner if isinstance(registry, CachingRegistry) else registry
