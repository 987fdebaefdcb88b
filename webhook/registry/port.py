"""The registry port: what imagegate asks of an OCI distribution registry, as a Protocol and values.

The real adapter is :class:`webhook.registry.client.RegistryClient`; :class:`webhook.registry.cached.
CachingRegistry` wraps any implementation. Tests may use in-memory fakes of :class:`Registry`.
Only ``repo.registry`` and ``repo.repository`` of the :class:`ImageRef` arguments are used.
"""

from __future__ import annotations

__all__ = [
    "EMPTY_JSON",
    "EMPTY_JSON_DIGEST",
    "INDEX_MEDIA_TYPES",
    "MANIFEST_ACCEPT",
    "MANIFEST_MEDIA_TYPES",
    "MEDIA_DOCKER_LIST",
    "MEDIA_DOCKER_MANIFEST",
    "MEDIA_OCI_EMPTY",
    "MEDIA_OCI_INDEX",
    "MEDIA_OCI_MANIFEST",
    "Descriptor",
    "Manifest",
    "Registry",
    "check_digest",
    "fallback_tag",
    "is_digest",
    "sha256_digest",
]

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol

from webhook.deadline import Deadline
from webhook.errors import RegistryError
from webhook.images.reference import ImageRef, is_sha256_digest
from webhook.reasons import Reason

MEDIA_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MEDIA_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MEDIA_OCI_EMPTY = "application/vnd.oci.empty.v1+json"
EMPTY_JSON = b"{}"
EMPTY_JSON_DIGEST = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"

INDEX_MEDIA_TYPES = frozenset({MEDIA_OCI_INDEX, MEDIA_DOCKER_LIST})
MANIFEST_MEDIA_TYPES = frozenset(
    {MEDIA_OCI_INDEX, MEDIA_OCI_MANIFEST, MEDIA_DOCKER_LIST, MEDIA_DOCKER_MANIFEST}
)
# distribution answers 404 for OCI content unless the OCI types are accepted explicitly.
MANIFEST_ACCEPT = ", ".join((MEDIA_OCI_INDEX, MEDIA_OCI_MANIFEST, MEDIA_DOCKER_LIST, MEDIA_DOCKER_MANIFEST))

# Registry code says "is a digest" of a reference: only sha256 digests are (webhook.images.reference).
is_digest = is_sha256_digest


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def check_digest(digest: str) -> None:
    """Refuse anything but a sha256 digest before it goes into a registry URL or document.

    Raises:
        RegistryError: ``registry-error``, quoting the start of ``digest``.
    """
    if not is_digest(digest):
        raise RegistryError(
            f"invalid digest {digest[:140]!r} (expected sha256:<64 hex>)", code=Reason.REGISTRY_ERROR
        )


def fallback_tag(digest: str) -> str:
    """The referrers tag-schema fallback tag of ``digest``: ``sha256:<hex>`` -> ``sha256-<hex>``."""
    check_digest(digest)
    return digest.replace(":", "-", 1)


@dataclass(frozen=True, slots=True)
class Manifest:
    """A manifest or index exactly as the registry served it; ``digest`` is the sha256 of ``body``."""

    digest: str
    media_type: str
    body: bytes

    def json(self) -> dict[str, Any]:
        """The parsed body.

        Raises:
            RegistryError: the body is not a JSON object.
        """
        try:
            parsed = json.loads(self.body)
        except (ValueError, UnicodeDecodeError) as error:
            raise RegistryError(
                f"manifest {self.digest} is not valid JSON", details=str(error), code=Reason.REGISTRY_ERROR
            ) from None
        if not isinstance(parsed, dict):
            raise RegistryError(f"manifest {self.digest} is not a JSON object", code=Reason.REGISTRY_ERROR)
        return parsed

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_MEDIA_TYPES


@dataclass(frozen=True, slots=True)
class Descriptor:
    """An OCI content descriptor (as listed by the referrers API or an index)."""

    media_type: str
    digest: str
    size: int
    artifact_type: str | None = None
    annotations: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def to_json(self) -> dict[str, Any]:
        """The descriptor as an OCI JSON object (for building manifests and indexes)."""
        out: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.artifact_type is not None:
            out["artifactType"] = self.artifact_type
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        return out

    @classmethod
    def from_json(cls, obj: object) -> Descriptor | None:
        """Parse one descriptor; None when it is malformed or not sha256-addressed.

        Callers skip such entries: an index may legitimately hold other digest algorithms, and
        what imagegate looks for is always sha256-addressed.
        """
        if not isinstance(obj, dict):
            return None
        media_type, digest, size = obj.get("mediaType"), obj.get("digest"), obj.get("size")
        artifact_type = obj.get("artifactType")
        annotations = obj.get("annotations") or {}
        if not isinstance(media_type, str) or not isinstance(digest, str) or not is_digest(digest):
            return None
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            return None
        if artifact_type is not None and not isinstance(artifact_type, str):
            return None
        if not isinstance(annotations, dict):
            return None
        clean = {k: v for k, v in annotations.items() if isinstance(k, str) and isinstance(v, str)}
        return cls(
            media_type=media_type,
            digest=digest,
            size=size,
            artifact_type=artifact_type,
            annotations=MappingProxyType(clean),
        )


class Registry(Protocol):
    """What imagegate asks of a registry. Every method raises :class:`RegistryError` on failure.

    ``repo`` names the repository (only ``registry`` and ``repository`` are used); ``deadline``
    bounds the whole call including retries.
    """

    def resolve(self, repo: ImageRef, reference: str, *, deadline: Deadline) -> str:
        """The manifest digest a tag (or digest) names; for a multi-arch image, the index digest."""
        ...

    def manifest(self, repo: ImageRef, reference: str, *, deadline: Deadline) -> Manifest:
        """The manifest a tag or digest names; a digest reference is verified against the content."""
        ...

    def manifest_if_exists(self, repo: ImageRef, tag: str, *, deadline: Deadline) -> Manifest | None:
        """Like :meth:`manifest`, but None when the registry does not know the tag (404)."""
        ...

    def blob(self, repo: ImageRef, digest: str, *, deadline: Deadline, max_bytes: int) -> bytes:
        """The content of a blob, verified against ``digest`` and at most ``max_bytes`` long."""
        ...

    def referrers(
        self, repo: ImageRef, digest: str, *, deadline: Deadline, artifact_type: str | None = None
    ) -> tuple[Descriptor, ...]:
        """Manifests whose ``subject`` is ``digest`` (OCI 1.1 API, else the ``sha256-<hex>`` tag)."""
        ...

    def push_blob(self, repo: ImageRef, data: bytes, *, deadline: Deadline) -> Descriptor:
        """Upload a blob (skipped when it exists); the descriptor's media type is a placeholder."""
        ...

    def push_manifest(
        self, repo: ImageRef, body: bytes, media_type: str, *, deadline: Deadline, tag: str | None = None
    ) -> str:
        """Upload a manifest by digest, or under ``tag``; returns its digest."""
        ...

    def delete_manifest(self, repo: ImageRef, digest: str, *, deadline: Deadline) -> None:
        """Delete a manifest by digest (a manifest that is already gone counts as deleted)."""
        ...
