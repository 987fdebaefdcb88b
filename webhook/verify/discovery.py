"""Discovery: find every Sigstore signature and attestation stored next to one image digest.

One discovery per (repository, digest) is shared by all signers and attestation requirements of all
rules. It looks in the two places cosign writes to:

(a) new format (cosign v3 default): OCI 1.1 referrers of the digest whose ``artifactType`` is
    ``application/vnd.dev.sigstore.bundle.v0.3+json`` (the registry port falls back to the
    ``sha256-<hex>`` referrers index tag on registries without the referrers API); each referrer's
    bundle layer is fetched by digest, with a byte cap;
(b) legacy format: the tags ``sha256-<hex>.sig`` (simple-signing layers) and ``sha256-<hex>.att``
    (DSSE envelope layers), with their layer annotations (certificate, chain, Rekor SET, signature).

Nothing found here is trusted: :mod:`webhook.verify.verifier` verifies it. Content that cannot be an
artifact (malformed manifests, wrong media types, a referrer about another digest) is skipped with a
note, which can only lower what verifies. Registry failures propagate as
:class:`~webhook.errors.RegistryError` so the caller can deny with ``registry-error``.

Multi-arch images: discovery runs for the digest being admitted, which for an index is the INDEX
digest. Signatures over a platform manifest only are not looked up (cosign ``--recursive`` signs the
index too), because the kubelet may pull any platform of the index.
"""

from __future__ import annotations

__all__ = [
    "ATTESTATION_LAYER_TYPE",
    "BUNDLE_ARTIFACT_TYPE",
    "MAX_ARTIFACT_BYTES",
    "MAX_LAYERS",
    "MAX_REFERRERS",
    "PREDICATE_ANNOTATION",
    "SIGNATURE_LAYER_TYPE",
    "ArtifactSource",
    "Artifacts",
    "BundleArtifact",
    "LegacyLayer",
    "discover",
    "legacy_tag",
]

import hashlib
import logging
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from webhook.deadline import Deadline
from webhook.errors import RegistryError
from webhook.images.reference import ImageRef, is_sha256_digest
from webhook.reasons import Reason

_logger = logging.getLogger(__name__)

BUNDLE_ARTIFACT_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
SIGNATURE_LAYER_TYPE = "application/vnd.dev.cosign.simplesigning.v1+json"
ATTESTATION_LAYER_TYPE = "application/vnd.dsse.envelope.v1+json"
_BUNDLE_LAYER_PREFIX = "application/vnd.dev.sigstore.bundle"
# cosign's referrer annotation naming an attestation's predicate type (a hint, never trusted).
PREDICATE_ANNOTATION = "dev.sigstore.bundle.predicateType"

# Byte and count caps: a hostile registry or repository must not make admission slow or unbounded.
MAX_ARTIFACT_BYTES = 4 * 1024 * 1024  # one bundle or layer (SLSA provenance can be large)
MAX_REFERRERS = 32
MAX_LAYERS = 32


class _Manifest(Protocol):
    @property
    def digest(self) -> str: ...

    def json(self) -> Any: ...


class _Descriptor(Protocol):
    @property
    def digest(self) -> str: ...

    @property
    def artifact_type(self) -> str | None: ...


class ArtifactSource(Protocol):
    """The part of the registry port (``webhook.registry.port.Registry``) discovery uses."""

    def manifest(self, repo: ImageRef, reference: str, *, deadline: Deadline) -> _Manifest: ...

    def manifest_if_exists(self, repo: ImageRef, tag: str, *, deadline: Deadline) -> _Manifest | None: ...

    def blob(self, repo: ImageRef, digest: str, *, deadline: Deadline, max_bytes: int) -> bytes: ...

    def referrers(
        self, repo: ImageRef, digest: str, *, deadline: Deadline, artifact_type: str | None = None
    ) -> tuple[_Descriptor, ...]: ...


@dataclass(frozen=True, slots=True)
class BundleArtifact:
    """A Sigstore bundle stored as an OCI referrer of the image (not yet verified).

    ``predicate_type`` is the referrer's ``dev.sigstore.bundle.predicateType`` annotation: a hint for
    explanations only, never trusted.
    """

    referrer: str
    layer: str
    content: bytes
    predicate_type: str | None = None

    def describe(self) -> str:
        return f"bundle {_short(self.layer)} (referrer {_short(self.referrer)})"


@dataclass(frozen=True, slots=True)
class LegacyLayer:
    """One layer of a legacy cosign ``.sig`` or ``.att`` manifest (not yet verified)."""

    kind: Literal["sig", "att"]
    tag: str
    manifest: str
    layer: str
    media_type: str
    content: bytes
    annotations: tuple[tuple[str, str], ...] = ()
    position: int = 0  # cosign gives every signer's layer the same payload blob: position tells them apart

    def annotation(self, key: str) -> str | None:
        return next((value for name, value in self.annotations if name == key), None)

    def describe(self) -> str:
        return f"legacy .{self.kind} layer #{self.position + 1} {_short(self.layer)} (tag {self.tag})"


@dataclass(frozen=True, slots=True)
class Artifacts:
    """Everything discovery found for one digest, plus notes on what it skipped and why."""

    digest: str
    bundles: tuple[BundleArtifact, ...] = ()
    signatures: tuple[LegacyLayer, ...] = ()
    attestations: tuple[LegacyLayer, ...] = ()
    notes: tuple[str, ...] = field(default=())

    @property
    def empty(self) -> bool:
        return not (self.bundles or self.signatures or self.attestations)

    def summary(self) -> str:
        return (
            f"found {len(self.bundles)} Sigstore bundle referrer(s), {len(self.signatures)} legacy .sig "
            f"layer(s), {len(self.attestations)} legacy .att layer(s) for {self.digest}"
        )


def legacy_tag(digest: str, suffix: str) -> str:
    """The cosign tag for ``digest``: ``sha256:<hex>`` -> ``sha256-<hex>.<suffix>``."""
    algorithm, _, hexdigest = digest.partition(":")
    return f"{algorithm}-{hexdigest}.{suffix}"


def discover(registry: ArtifactSource, repo: ImageRef, digest: str, *, deadline: Deadline) -> Artifacts:
    """Find the signature and attestation artifacts of ``digest`` in ``repo``.

    Raises:
        RegistryError: the registry failed, or served content that does not match its digest.
        ValueError: ``digest`` is not a sha256 digest.
    """
    if not is_sha256_digest(digest):
        raise ValueError(f"not a sha256 digest: {digest!r}")
    notes: list[str] = []
    sig_notes: list[str] = []
    att_notes: list[str] = []
    # The three lookups are independent: against a remote registry, one round trip instead of three.
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="imagegate-discover") as pool:
        sigs = pool.submit(_legacy, registry, repo, digest, kind="sig", deadline=deadline, notes=sig_notes)
        atts = pool.submit(_legacy, registry, repo, digest, kind="att", deadline=deadline, notes=att_notes)
        bundles = _bundles(registry, repo, digest, deadline=deadline, notes=notes)
        signatures, attestations = sigs.result(), atts.result()
    artifacts = Artifacts(
        digest=digest,
        bundles=bundles,
        signatures=signatures,
        attestations=attestations,
        notes=(*notes, *sig_notes, *att_notes),
    )
    _logger.debug("discovery for %s@%s: %s", repo.name, digest, artifacts.summary())
    return artifacts


def _bundles(
    registry: ArtifactSource, repo: ImageRef, digest: str, *, deadline: Deadline, notes: list[str]
) -> tuple[BundleArtifact, ...]:
    descriptors = registry.referrers(repo, digest, deadline=deadline, artifact_type=BUNDLE_ARTIFACT_TYPE)
    # Registries may ignore the filter: filter again on our side.
    wanted = [d for d in descriptors if d.artifact_type == BUNDLE_ARTIFACT_TYPE]
    if len(wanted) > MAX_REFERRERS:
        notes.append(f"only the first {MAX_REFERRERS} of {len(wanted)} bundle referrers were examined")
        wanted = wanted[:MAX_REFERRERS]
    found: dict[str, BundleArtifact] = {}
    for descriptor in wanted:
        # A referrer the index lists but the registry no longer has (a stale fallback index) cannot
        # hold a signature: skip it rather than fail discovery for the digest.
        manifest = registry.manifest_if_exists(repo, descriptor.digest, deadline=deadline)
        if manifest is None:
            notes.append(f"referrer {_short(descriptor.digest)} skipped: listed but not found (HTTP 404)")
            continue
        body = _json_object(manifest)
        if body is None:
            notes.append(f"referrer {_short(descriptor.digest)} skipped: not a JSON manifest")
            continue
        subject = body.get("subject")
        if not isinstance(subject, dict) or subject.get("digest") != digest:
            # Only the referrers index links it to the digest; the manifest itself must agree.
            notes.append(f"referrer {_short(descriptor.digest)} skipped: its subject is not {digest}")
            continue
        annotations = body.get("annotations")
        predicate = annotations.get(PREDICATE_ANNOTATION) if isinstance(annotations, dict) else None
        for layer in _layers(body):
            media_type = layer.get("mediaType")
            layer_digest = layer.get("digest")
            if not (isinstance(media_type, str) and media_type.startswith(_BUNDLE_LAYER_PREFIX)):
                continue
            if (
                not isinstance(layer_digest, str)
                or not is_sha256_digest(layer_digest)
                or layer_digest in found
            ):
                continue
            content = _fetch(registry, repo, layer_digest, deadline=deadline)
            found[layer_digest] = BundleArtifact(
                referrer=manifest.digest,
                layer=layer_digest,
                content=content,
                predicate_type=predicate if isinstance(predicate, str) else None,
            )
    return tuple(found.values())


def _legacy(
    registry: ArtifactSource,
    repo: ImageRef,
    digest: str,
    *,
    kind: Literal["sig", "att"],
    deadline: Deadline,
    notes: list[str],
) -> tuple[LegacyLayer, ...]:
    tag = legacy_tag(digest, kind)
    manifest = registry.manifest_if_exists(repo, tag, deadline=deadline)
    if manifest is None:
        return ()
    body = _json_object(manifest)
    if body is None:
        notes.append(f"tag {tag} skipped: not a JSON manifest")
        return ()
    expected_type = SIGNATURE_LAYER_TYPE if kind == "sig" else ATTESTATION_LAYER_TYPE
    layers = [layer for layer in _layers(body) if layer.get("mediaType") == expected_type]
    if len(layers) > MAX_LAYERS:
        notes.append(f"only the first {MAX_LAYERS} of {len(layers)} layers of tag {tag} were examined")
        layers = layers[:MAX_LAYERS]
    found: list[LegacyLayer] = []
    for position, layer in enumerate(layers):
        layer_digest = layer.get("digest")
        if not isinstance(layer_digest, str) or not is_sha256_digest(layer_digest):
            notes.append(f"a layer of tag {tag} skipped: invalid digest")
            continue
        raw_annotations = layer.get("annotations")
        annotations: Mapping[str, object] = raw_annotations if isinstance(raw_annotations, dict) else {}
        found.append(
            LegacyLayer(
                kind=kind,
                tag=tag,
                manifest=manifest.digest,
                layer=layer_digest,
                media_type=expected_type,
                content=_fetch(registry, repo, layer_digest, deadline=deadline),
                annotations=tuple((k, v) for k, v in annotations.items() if isinstance(v, str)),
                position=position,
            )
        )
    return tuple(found)


def _fetch(registry: ArtifactSource, repo: ImageRef, digest: str, *, deadline: Deadline) -> bytes:
    content = registry.blob(repo, digest, deadline=deadline, max_bytes=MAX_ARTIFACT_BYTES)
    if "sha256:" + hashlib.sha256(content).hexdigest() != digest:
        raise RegistryError(
            f"registry {repo.registry} served blob {digest} with content of another digest",
            code=Reason.DIGEST_MISMATCH,
        )
    return content


def _json_object(manifest: _Manifest) -> dict[str, Any] | None:
    try:
        body = manifest.json()
    except (ValueError, UnicodeDecodeError, RegistryError):
        # The registry served it intact (digest-checked); it is just not a manifest we can read.
        return None
    return body if isinstance(body, dict) else None


def _layers(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    layers = body.get("layers")
    if not isinstance(layers, list):
        return []
    return [layer for layer in layers if isinstance(layer, dict)]


def _short(digest: str) -> str:
    return digest[:19] if digest.startswith("sha256:") else digest
