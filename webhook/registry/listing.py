"""The manifests an image index lists: what a node may pull when a pod names the index.

A multi-arch image is an index (OCI image index or Docker manifest list) with one manifest per platform;
each node pulls the one for its own platform. Quarantine therefore checks every manifest an admitted
index lists, and ``imagegate quarantine add`` of an index records each of them.

Which entries are listed:

* every entry a node could select: platform manifests, entries without a platform (the container
  runtime selects those for any platform) and nested indexes, whose own entries are listed in turn
  (at most :data:`MAX_DEPTH` levels below the admitted index);
* not buildkit's attestation manifests: entries annotated ``vnd.docker.reference.type:
  attestation-manifest`` that name the platform ``unknown/unknown``. No node has that platform, so
  they are never pulled as an image, and a quarantine names what runs. An entry with the annotation
  but a real platform is listed like any other: the annotation alone must not hide a runnable manifest.

Fail closed: an entry that is malformed or addressed by another algorithm than sha256 (it could not be
compared with the quarantine), a nested index the registry cannot serve, nesting deeper than
:data:`MAX_DEPTH`, or more than :data:`MAX_ENTRIES` entries in all raise :class:`RegistryError`.
Manifests are fetched by digest, which the caching registry keeps (they never change).
"""

from __future__ import annotations

__all__ = ["MAX_DEPTH", "MAX_ENTRIES", "IndexEntry", "index_entries", "listed_manifests"]

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from webhook.deadline import Deadline
from webhook.errors import RegistryError
from webhook.facts import ListedManifest
from webhook.images.reference import ImageRef
from webhook.reasons import Reason
from webhook.registry.port import INDEX_MEDIA_TYPES, Registry, is_digest

# Real multi-arch images list a few dozen entries (platforms plus their attestations); far more is
# either a mistake or an attempt to make every admission do thousands of lookups.
MAX_ENTRIES = 128
MAX_DEPTH = 3
_REFERENCE_TYPE = "vnd.docker.reference.type"
_ATTESTATION = "attestation-manifest"
_UNKNOWN = "unknown"
_MAX_PLATFORM = 100
_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]")


@dataclass(frozen=True, slots=True)
class IndexEntry:
    """One entry of an index: its digest, media type, platform (``os/arch[/variant]`` or ``""``)."""

    digest: str
    media_type: str
    platform: str = ""
    attestation: bool = False

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_MEDIA_TYPES


def index_entries(document: Mapping[str, Any], *, what: str) -> tuple[IndexEntry, ...]:
    """The entries of the index ``document`` (pure). ``what`` names it in error messages.

    Raises:
        RegistryError: no ``manifests`` list, more than :data:`MAX_ENTRIES` entries, or an entry
            that is malformed or not sha256-addressed.
    """
    entries = document.get("manifests")
    if entries is None:
        return ()
    if not isinstance(entries, list):
        raise RegistryError(f"{what}: the index has no 'manifests' list", code=Reason.REGISTRY_ERROR)
    if len(entries) > MAX_ENTRIES:
        raise RegistryError(
            f"{what}: the index lists {len(entries)} manifests, more than imagegate checks ({MAX_ENTRIES})",
            code=Reason.REGISTRY_ERROR,
        )
    return tuple(_entry(entry, position=n, what=what) for n, entry in enumerate(entries))


def listed_manifests(
    registry: Registry, repo: ImageRef, digest: str, *, deadline: Deadline
) -> tuple[ListedManifest, ...]:
    """Every manifest the index ``digest`` lists, nested indexes included; () when it is no index.

    Each result names the index that lists it (``digest`` or a nested index) and its platform.
    The same manifest listed twice is returned once.

    Raises:
        RegistryError: see the module docstring.
    """
    manifest = registry.manifest(repo, digest, deadline=deadline)
    if not manifest.is_index:
        return ()
    found: dict[str, ListedManifest] = {}
    level = [(digest, manifest.json())]
    for depth in range(MAX_DEPTH + 1):
        nested: list[tuple[str, dict[str, Any]]] = []
        for parent, document in level:
            what = f"{repo.name}@{parent}"
            for entry in index_entries(document, what=what):
                if entry.attestation or entry.digest == digest or entry.digest in found:
                    continue
                found[entry.digest] = ListedManifest(entry.digest, platform=entry.platform, index=parent)
                if len(found) > MAX_ENTRIES:
                    raise RegistryError(
                        f"{repo.name}@{digest}: the index and the indexes it lists name more than "
                        f"{MAX_ENTRIES} manifests, more than imagegate checks",
                        code=Reason.REGISTRY_ERROR,
                    )
                if entry.is_index:
                    if depth == MAX_DEPTH:
                        raise RegistryError(
                            f"{what}: indexes nested more than {MAX_DEPTH} levels deep are not checked",
                            code=Reason.REGISTRY_ERROR,
                        )
                    child = registry.manifest(repo, entry.digest, deadline=deadline)
                    if child.is_index:
                        nested.append((entry.digest, child.json()))
        level = nested
        if not level:
            break
    return tuple(found.values())


def _entry(raw: object, *, position: int, what: str) -> IndexEntry:
    where = f"{what}: manifests[{position}]"
    if not isinstance(raw, dict):
        raise RegistryError(f"{where} is not a JSON object", code=Reason.REGISTRY_ERROR)
    digest, media_type = raw.get("digest"), raw.get("mediaType")
    if not isinstance(digest, str) or not is_digest(digest):
        shown = repr(digest[:80]) if isinstance(digest, str) else "missing"
        raise RegistryError(
            f"{where} names digest {shown}: imagegate compares sha256 digests only, so it cannot tell "
            "whether that manifest is quarantined",
            code=Reason.REGISTRY_ERROR,
        )
    if not isinstance(media_type, str) or not media_type:
        raise RegistryError(f"{where} ({digest}) has no mediaType", code=Reason.REGISTRY_ERROR)
    platform = raw.get("platform")
    if platform is not None and not isinstance(platform, dict):
        raise RegistryError(
            f"{where} ({digest}) has a platform that is not a JSON object", code=Reason.REGISTRY_ERROR
        )
    annotations = raw.get("annotations")
    if annotations is not None and not isinstance(annotations, dict):
        raise RegistryError(
            f"{where} ({digest}) has annotations that are not a JSON object", code=Reason.REGISTRY_ERROR
        )
    os_name = _field(platform, "os")
    architecture = _field(platform, "architecture")
    attestation = (
        (annotations or {}).get(_REFERENCE_TYPE) == _ATTESTATION
        and os_name == _UNKNOWN
        and architecture == _UNKNOWN
    )
    parts = [os_name, architecture, _field(platform, "variant")]
    text = "/".join(p for p in parts if p) if os_name or architecture else ""
    return IndexEntry(digest, media_type, platform=text[:_MAX_PLATFORM], attestation=attestation)


def _field(platform: Mapping[str, Any] | None, name: str) -> str:
    value = (platform or {}).get(name)
    # Platform names are short words (linux, arm64, v8); anything else from the registry is shown masked,
    # never as control characters in a terminal or a denial message.
    return _UNSAFE.sub("?", value) if isinstance(value, str) else ""
