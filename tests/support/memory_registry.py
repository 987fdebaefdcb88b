"""An in-memory OCI registry implementing ``webhook.registry.port.Registry``, for verification tests.

It stores manifests and blobs per repository, answers referrers from the stored manifests' ``subject``
(as the OCI 1.1 API does), and can inject failures. It is a stand-in for the real registry that
tests/support/registry.py starts; it must behave as the port documents, nothing more:
tests/registry/test_port_contract.py runs the same checks against it and against RegistryClient on
docker-registry. The ``put_*``/``push_image``/``push_index`` helpers set content up without those
checks, so that tests can store what no well-behaved client would push.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from tests.support.oci import Pushed as PushedImage
from webhook.deadline import Deadline
from webhook.errors import InvalidReference, RegistryError
from webhook.images.reference import ImageRef
from webhook.reasons import Reason
from webhook.registry.port import Descriptor, Manifest, is_digest
from webhook.registry.settings import RegistrySettings

__all__ = ["InMemoryRegistry", "PushedImage"]

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
# What RegistryClient refuses to push or read, as distribution itself does.
MANIFEST_MAX_BYTES = RegistrySettings().manifest_max_bytes


def _check_reference(repo: ImageRef, reference: str) -> None:
    """A tag (the image reference grammar's) or a sha256 digest, as the client demands."""
    if is_digest(reference):
        return
    try:
        repo.with_tag(reference)
    except InvalidReference:
        raise RegistryError(
            f"invalid tag or digest {reference[:140]!r}", code=Reason.REGISTRY_ERROR
        ) from None


def _check_digest(digest: str) -> None:
    if not is_digest(digest):
        raise RegistryError(f"invalid digest {digest[:140]!r}", code=Reason.REGISTRY_ERROR)


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _dumps(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


@dataclass
class _Repo:
    manifests: dict[str, tuple[str, bytes]] = field(default_factory=dict)  # digest -> (media type, body)
    tags: dict[str, str] = field(default_factory=dict)
    blobs: dict[str, bytes] = field(default_factory=dict)


class InMemoryRegistry:
    """The Registry port over dictionaries. ``fail`` names operations that raise RegistryError."""

    def __init__(self) -> None:
        self._repos: dict[str, _Repo] = {}
        self.fail: set[str] = set()
        self.ignore_artifact_type_filter = False
        self.calls: list[tuple[str, str]] = []

    # -- setting up content ------------------------------------------------------------------------------

    def repo(self, ref: ImageRef) -> _Repo:
        return self._repos.setdefault(ref.name, _Repo())

    def put_blob(self, ref: ImageRef, data: bytes) -> str:
        digest = _digest(data)
        self.repo(ref).blobs[digest] = data
        return digest

    def put_manifest(
        self, ref: ImageRef, body: bytes, media_type: str = OCI_MANIFEST, tag: str | None = None
    ) -> str:
        digest = _digest(body)
        repo = self.repo(ref)
        repo.manifests[digest] = (media_type, body)
        if tag is not None:
            repo.tags[tag] = digest
        return digest

    def push_image(self, ref: ImageRef, tag: str | None = "v1", *, arch: str = "amd64") -> PushedImage:
        config = _dumps({"architecture": arch, "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}})
        layer = f"layer for {arch}".encode()
        body = _dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {
                    "mediaType": "application/vnd.oci.image.config.v1+json",
                    "digest": self.put_blob(ref, config),
                    "size": len(config),
                },
                "layers": [
                    {
                        "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                        "digest": self.put_blob(ref, layer),
                        "size": len(layer),
                    }
                ],
            }
        )
        return PushedImage(self.put_manifest(ref, body, OCI_MANIFEST, tag), OCI_MANIFEST, body)

    def push_index(
        self, ref: ImageRef, tag: str | None, images: list[tuple[PushedImage, str]]
    ) -> PushedImage:
        body = _dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_INDEX,
                "manifests": [
                    {
                        "mediaType": image.media_type,
                        "digest": image.digest,
                        "size": image.size,
                        "platform": {"os": "linux", "architecture": arch},
                    }
                    for image, arch in images
                ],
            }
        )
        return PushedImage(self.put_manifest(ref, body, OCI_INDEX, tag), OCI_INDEX, body)

    def push_artifact(self, ref: ImageRef, artifact: Any, *, tag: str | None = None) -> str:
        """Push a tests.support ``OciArtifact`` (blobs, then the manifest)."""
        for data in artifact.blobs.values():
            self.put_blob(ref, data)
        return self.put_manifest(ref, artifact.manifest, artifact.media_type, tag)

    def _check(self, operation: str, detail: str) -> None:
        self.calls.append((operation, detail))
        if operation in self.fail:
            raise RegistryError(f"injected failure in {operation}", code=Reason.REGISTRY_ERROR)

    # -- the port -----------------------------------------------------------------------------------

    def resolve(self, repo: ImageRef, reference: str, *, deadline: Deadline) -> str:
        return self.manifest(repo, reference, deadline=deadline).digest

    def manifest(self, repo: ImageRef, reference: str, *, deadline: Deadline) -> Manifest:
        found = self.manifest_if_exists(repo, reference, deadline=deadline)
        if found is None:
            raise RegistryError(f"{repo.name}:{reference} not found", code=Reason.REGISTRY_ERROR)
        return found

    def manifest_if_exists(self, repo: ImageRef, tag: str, *, deadline: Deadline) -> Manifest | None:
        self._check("manifest", tag)
        _check_reference(repo, tag)
        deadline.timeout(5.0)
        stored = self.repo(repo)
        digest = tag if is_digest(tag) else stored.tags.get(tag)
        if digest is None or digest not in stored.manifests:
            return None
        media_type, body = stored.manifests[digest]
        if len(body) > MANIFEST_MAX_BYTES:
            raise RegistryError(
                f"{repo.name}:{tag}: manifest over {MANIFEST_MAX_BYTES} bytes", code=Reason.REGISTRY_ERROR
            )
        return Manifest(digest=digest, media_type=media_type, body=body)

    def blob(self, repo: ImageRef, digest: str, *, deadline: Deadline, max_bytes: int) -> bytes:
        self._check("blob", digest)
        _check_digest(digest)
        deadline.timeout(5.0)
        data = self.repo(repo).blobs.get(digest)
        if data is None:
            raise RegistryError(f"blob {digest} not found", code=Reason.REGISTRY_ERROR)
        if len(data) > max_bytes:
            raise RegistryError(f"blob {digest} is larger than {max_bytes} bytes", code=Reason.REGISTRY_ERROR)
        return data

    def referrers(
        self, repo: ImageRef, digest: str, *, deadline: Deadline, artifact_type: str | None = None
    ) -> tuple[Descriptor, ...]:
        self._check("referrers", digest)
        _check_digest(digest)
        deadline.timeout(5.0)
        found = []
        for manifest_digest, (media_type, body) in sorted(self.repo(repo).manifests.items()):
            try:
                parsed = json.loads(body)
            except ValueError:
                continue
            subject = parsed.get("subject") if isinstance(parsed, dict) else None
            if not isinstance(subject, dict) or subject.get("digest") != digest:
                continue
            kind = parsed.get("artifactType") or parsed.get("config", {}).get("mediaType")
            if artifact_type is not None and kind != artifact_type and not self.ignore_artifact_type_filter:
                continue
            found.append(
                Descriptor(
                    media_type=media_type,
                    digest=manifest_digest,
                    size=len(body),
                    artifact_type=kind,
                    annotations=parsed.get("annotations") or {},
                )
            )
        return tuple(found)

    def push_blob(self, repo: ImageRef, data: bytes, *, deadline: Deadline) -> Descriptor:
        deadline.timeout(5.0)
        digest = self.put_blob(repo, data)
        return Descriptor(media_type="application/octet-stream", digest=digest, size=len(data))

    def push_manifest(
        self, repo: ImageRef, body: bytes, media_type: str, *, deadline: Deadline, tag: str | None = None
    ) -> str:
        if len(body) > MANIFEST_MAX_BYTES:
            raise RegistryError(
                f"manifest of {len(body)} bytes exceeds the limit of {MANIFEST_MAX_BYTES}",
                code=Reason.REGISTRY_ERROR,
            )
        _check_reference(repo, tag if tag is not None else _digest(body))
        deadline.timeout(5.0)
        return self.put_manifest(repo, body, media_type, tag)

    def delete_manifest(self, repo: ImageRef, digest: str, *, deadline: Deadline) -> None:
        _check_digest(digest)
        deadline.timeout(5.0)
        self.repo(repo).manifests.pop(digest, None)
