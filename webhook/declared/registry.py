"""The registry port answered from a test suite's declared facts: an OCI registry held in memory.

:meth:`DeclaredRegistry.build` stores what the suite's ``images`` declare the way the real tools store
it, so everything above the port reads it with the code admission uses (resolution, index listing,
quarantine markers, discovery of signatures):

* each declared manifest under its declared digest (an OCI image manifest, or an OCI index listing the
  declared platforms with their ``platform`` objects), and each tag naming it;
* each signature and attestation as a Sigstore bundle referrer of its manifest, as cosign v3 stores
  it (artifact type and layer ``application/vnd.dev.sigstore.bundle.v0.3+json``, the predicate type
  annotated on the referrer). The bundle layer holds the in-toto statement in a DSSE envelope without
  signatures, and names the declaration; what it stands for (the declaration, the exact payload, a
  certificate for a keyless signer) is kept in :class:`Evidence` for :mod:`webhook.declared.crypto`.
  A signature is a ``https://sigstore.dev/cosign/sign/v1`` statement about the digest, as cosign v3
  signs; an attestation is the declared statement;
* each quarantine marker written by :func:`webhook.registry.markers.add_marker`, as ``imagegate
  quarantine add --registry`` writes it (a referrer plus the ``sha256-<hex>`` fallback index).

Declared manifests are stored under their declared digest, which is not the sha256 of the stand-in
body (a real digest names content the suite does not have); everything else (referrers, markers,
blobs) is content-addressed as in a real registry. A lookup of anything not declared fails as a
missing manifest does (``registry-error``), saying that it is not declared. Hosts outside the
policy's ``registries.allow`` are refused as the real client refuses them.
"""

from __future__ import annotations

__all__ = ["DeclaredRegistry", "Evidence"]

import base64
import hashlib
import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cryptography import x509

from webhook.deadline import Deadline
from webhook.declared.certificates import CertificateFactory
from webhook.errors import RegistryError
from webhook.images.reference import ImageRef
from webhook.policy.suite import DeclaredImage, DeclaredSignature, DeclaredWorld
from webhook.reasons import Reason
from webhook.registry.markers import add_marker
from webhook.registry.port import (
    EMPTY_JSON,
    EMPTY_JSON_DIGEST,
    MEDIA_OCI_EMPTY,
    MEDIA_OCI_INDEX,
    MEDIA_OCI_MANIFEST,
    Descriptor,
    Manifest,
    is_digest,
)
from webhook.verify.bundles import COSIGN_SIGN_PREDICATE
from webhook.verify.discovery import BUNDLE_ARTIFACT_TYPE, PREDICATE_ANNOTATION
from webhook.verify.statements import IN_TOTO_PAYLOAD_TYPE, STATEMENT_V1

_DECLARED_ANNOTATION = "dev.imagegate.declared"
_CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"


@dataclass(frozen=True, slots=True)
class Evidence:
    """What one stored bundle stands for: the declaration, the payload it signs, its certificate."""

    signature: DeclaredSignature
    payload: bytes
    certificate: x509.Certificate | None


@dataclass
class _Repository:
    manifests: dict[str, tuple[str, bytes]] = field(default_factory=dict)  # digest -> (media type, body)
    tags: dict[str, str] = field(default_factory=dict)
    blobs: dict[str, bytes] = field(default_factory=dict)


class DeclaredRegistry:
    """The :class:`~webhook.registry.port.Registry` port over declared facts (see the module docstring).

    ``evidence`` maps each stored bundle layer digest to what it stands for.
    """

    def __init__(self, *, allowed: Callable[[str], bool]) -> None:
        self._allowed = allowed
        self._repositories: dict[str, _Repository] = {}
        self._lock = threading.Lock()
        self.evidence: dict[str, Evidence] = {}

    @classmethod
    def build(
        cls, world: DeclaredWorld, *, allowed: Callable[[str], bool], now: datetime
    ) -> DeclaredRegistry:
        """A registry holding everything ``world`` declares; certificates and markers are dated ``now``."""
        registry = cls(allowed=lambda _: True)  # every declared repository is written, allowed or not
        certificates = CertificateFactory()
        deadline = Deadline.after(60.0)
        for image in world.images:
            registry._store_image(image)
        for image in world.images:
            ref = ImageRef.parse(image.name)
            for signature in image.signatures:
                registry._store_bundle(ref, image, signature, certificates=certificates, now=now)
            for attestation in image.attestations:
                registry._store_bundle(ref, image, attestation, certificates=certificates, now=now)
            marked = [(image.digest, image.marker, "")]
            marked += [(p.digest, p.marker, p.platform) for p in image.platforms]
            for digest, marker, platform in marked:
                if marker is not None:
                    add_marker(
                        registry,
                        ref,
                        digest,
                        reason=marker.reason,
                        by=marker.by,
                        platform=platform,
                        deadline=deadline,
                        now=marker.since or now,
                    )
        registry._allowed = allowed
        return registry

    # --- storing ---------------------------------------------------------------------------------

    def _repository(self, repo: ImageRef) -> _Repository:
        with self._lock:
            return self._repositories.setdefault(repo.name, _Repository())

    def _store_image(self, image: DeclaredImage) -> None:
        stored = self._repository(ImageRef.parse(image.name))
        if image.platforms:
            entries = []
            for platform in image.platforms:
                body = _image_manifest(image.name, platform.digest)
                stored.manifests.setdefault(platform.digest, (MEDIA_OCI_MANIFEST, body))
                os_name, architecture, *variant = platform.platform.split("/")
                described: dict[str, Any] = {"os": os_name, "architecture": architecture}
                if variant:
                    described["variant"] = variant[0]
                entries.append(
                    {
                        "mediaType": MEDIA_OCI_MANIFEST,
                        "digest": platform.digest,
                        "size": len(body),
                        "platform": described,
                    }
                )
            index = {"schemaVersion": 2, "mediaType": MEDIA_OCI_INDEX, "manifests": entries}
            stored.manifests[image.digest] = (MEDIA_OCI_INDEX, _dumps(index))
        else:
            stored.manifests[image.digest] = (MEDIA_OCI_MANIFEST, _image_manifest(image.name, image.digest))
        for tag in image.tags:
            stored.tags[tag] = image.digest

    def _store_bundle(
        self,
        ref: ImageRef,
        image: DeclaredImage,
        signature: DeclaredSignature,
        *,
        certificates: CertificateFactory,
        now: datetime,
    ) -> None:
        stored = self._repository(ref)
        predicate_type = signature.predicate_type or COSIGN_SIGN_PREDICATE
        subject = (signature.signed_digest or image.digest).removeprefix("sha256:")
        statement = {
            "_type": STATEMENT_V1,
            "subject": [{"name": image.name, "digest": {"sha256": subject}}],
            "predicateType": predicate_type,
            "predicate": dict(signature.predicate),
        }
        certificate = (
            certificates.issue(signature.keyless, not_before=now) if signature.keyless is not None else None
        )
        payload = _dumps(statement)
        # Bundle-shaped, as far as anything reads a bundle before verifying it (the DSSE payload's
        # claimed predicate type), and naming the declaration (its place makes every layer distinct).
        layer = _dumps(
            {
                "mediaType": BUNDLE_ARTIFACT_TYPE,
                "dsseEnvelope": {
                    "payload": base64.b64encode(payload).decode(),
                    "payloadType": IN_TOTO_PAYLOAD_TYPE,
                    "signatures": [],
                },
                _DECLARED_ANNOTATION: signature.pointer,
            }
        )
        layer_digest = _put_blob(stored, layer)
        self.evidence[layer_digest] = Evidence(signature, payload, certificate)
        media_type, body = stored.manifests[image.digest]
        referrer: dict[str, Any] = {
            "schemaVersion": 2,
            "mediaType": MEDIA_OCI_MANIFEST,
            "artifactType": BUNDLE_ARTIFACT_TYPE,
            "config": {"mediaType": MEDIA_OCI_EMPTY, "digest": _put_blob(stored, EMPTY_JSON), "size": 2},
            "layers": [{"mediaType": BUNDLE_ARTIFACT_TYPE, "digest": layer_digest, "size": len(layer)}],
            "subject": {"mediaType": media_type, "digest": image.digest, "size": len(body)},
            # As cosign v3 annotates its bundle referrers.
            "annotations": {
                "dev.sigstore.bundle.content": "dsse-envelope",
                PREDICATE_ANNOTATION: predicate_type,
            },
        }
        encoded = _dumps(referrer)
        stored.manifests[_sha256(encoded)] = (MEDIA_OCI_MANIFEST, encoded)

    # --- the port ----------------------------------------------------------------------------------

    def _check(self, repo: ImageRef) -> _Repository | None:
        if not self._allowed(repo.api_host):
            raise RegistryError(
                f"registry host {repo.api_host} is not in registries.allow: refusing to contact it",
                code=Reason.REGISTRY_NOT_ALLOWED,
            )
        with self._lock:
            return self._repositories.get(repo.name)

    def resolve(self, repo: ImageRef, reference: str, *, deadline: Deadline) -> str:
        return self.manifest(repo, reference, deadline=deadline).digest

    def manifest(self, repo: ImageRef, reference: str, *, deadline: Deadline) -> Manifest:
        found = self.manifest_if_exists(repo, reference, deadline=deadline)
        if found is None:
            separator = "@" if is_digest(reference) else ":"
            raise RegistryError(
                f"{repo.name}{separator}{reference}: manifest not found "
                "(the test suite's images do not declare it)",
                code=Reason.REGISTRY_ERROR,
            )
        return found

    def manifest_if_exists(self, repo: ImageRef, tag: str, *, deadline: Deadline) -> Manifest | None:
        stored = self._check(repo)
        if stored is None:
            return None
        digest = tag if is_digest(tag) else stored.tags.get(tag)
        if digest is None or digest not in stored.manifests:
            return None
        media_type, body = stored.manifests[digest]
        return Manifest(digest=digest, media_type=media_type, body=body)

    def blob(self, repo: ImageRef, digest: str, *, deadline: Deadline, max_bytes: int) -> bytes:
        stored = self._check(repo)
        data = stored.blobs.get(digest) if stored is not None else None
        if data is None:
            raise RegistryError(f"{repo.name}@{digest}: blob not found", code=Reason.REGISTRY_ERROR)
        if len(data) > max_bytes:
            raise RegistryError(
                f"{repo.name}@{digest}: blob is larger than {max_bytes} bytes", code=Reason.REGISTRY_ERROR
            )
        return data

    def referrers(
        self, repo: ImageRef, digest: str, *, deadline: Deadline, artifact_type: str | None = None
    ) -> tuple[Descriptor, ...]:
        stored = self._check(repo)
        if stored is None:
            return ()
        found = []
        for manifest_digest, (media_type, body) in sorted(stored.manifests.items()):
            document = _json(body)
            subject = document.get("subject")
            if not isinstance(subject, dict) or subject.get("digest") != digest:
                continue
            kind = document.get("artifactType")
            if artifact_type is not None and kind != artifact_type:
                continue
            annotations = document.get("annotations")
            found.append(
                Descriptor(
                    media_type=media_type,
                    digest=manifest_digest,
                    size=len(body),
                    artifact_type=kind if isinstance(kind, str) else None,
                    annotations=annotations if isinstance(annotations, dict) else {},
                )
            )
        return tuple(found)

    def push_blob(self, repo: ImageRef, data: bytes, *, deadline: Deadline) -> Descriptor:
        digest = _put_blob(self._repository(repo), data)
        return Descriptor(media_type="application/octet-stream", digest=digest, size=len(data))

    def push_manifest(
        self, repo: ImageRef, body: bytes, media_type: str, *, deadline: Deadline, tag: str | None = None
    ) -> str:
        stored = self._repository(repo)
        digest = _sha256(body)
        stored.manifests[digest] = (media_type, body)
        if tag is not None:
            stored.tags[tag] = digest
        return digest

    def delete_manifest(self, repo: ImageRef, digest: str, *, deadline: Deadline) -> None:
        self._repository(repo).manifests.pop(digest, None)


def _image_manifest(name: str, digest: str) -> bytes:
    """A stand-in image manifest: an empty config, no layers, annotated with what it stands for."""
    return _dumps(
        {
            "schemaVersion": 2,
            "mediaType": MEDIA_OCI_MANIFEST,
            "config": {"mediaType": _CONFIG_TYPE, "digest": EMPTY_JSON_DIGEST, "size": len(EMPTY_JSON)},
            "layers": [],
            "annotations": {_DECLARED_ANNOTATION: f"{name}@{digest}"},
        }
    )


def _put_blob(stored: _Repository, data: bytes) -> str:
    digest = _sha256(data)
    stored.blobs[digest] = data
    return digest


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _dumps(document: Mapping[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode()


def _json(body: bytes) -> dict[str, Any]:
    try:
        document = json.loads(body)
    except ValueError:
        return {}
    return document if isinstance(document, dict) else {}
