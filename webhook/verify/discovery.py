"""Discovery: find every Sigstore signature and attestation stored next to one image digest.

One discovery per (repository, digest) is shared by all signers and attestation requirements of all
rules. It looks in the two places cosign writes to:

(a) new format (cosign v3 default): OCI 1.1 referrers of the digest whose ``artifactType`` is
    ``application/vnd.dev.sigstore.bundle.v0.3+json`` (the registry port falls back to the
    ``sha256-<hex>`` referrers index tag on registries without the referrers API); each referrer's
    bundle layer is fetched by digest, with a byte cap;
(b) legacy format: the tags ``sha256-<hex>.sig`` (simple-signing layers) and ``sha256-<hex>.att``
    (DSSE envelope layers), with their layer annotations (certificate, chain, Rekor SET, signature).

The three places (``parts``: the referrers, the ``.sig`` tag, the ``.att`` tag) are looked at
concurrently, and within each the referrer manifests and blobs too (:class:`~webhook.fanout.FanOut`):
the lookups cost the longest chain of round trips (referrers, manifest, bundle), not their sum. A
caller may ask for some parts only (:mod:`webhook.verify.cached` looks at the bundles first and at the
legacy tags only when the bundles do not settle a rule); :attr:`Artifacts.searched` says which.
``on_found`` hears of each artifact as soon as its content is in (the caller may start verifying it
while the other lookups are still under way).

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
    "ALL_PARTS",
    "ATTESTATION_LAYER_TYPE",
    "BUNDLES",
    "BUNDLE_ARTIFACT_TYPE",
    "LEGACY_ATTESTATIONS",
    "LEGACY_SIGNATURES",
    "MAX_ARTIFACT_BYTES",
    "MAX_LAYERS",
    "MAX_REFERRERS",
    "PART_NAMES",
    "PREDICATE_ANNOTATION",
    "SIGNATURE_LAYER_TYPE",
    "ArtifactSource",
    "Artifacts",
    "BundleArtifact",
    "LegacyLayer",
    "Part",
    "discover",
    "legacy_tag",
]

import functools
import hashlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol, TypeVar

from webhook.deadline import Deadline
from webhook.errors import RegistryError
from webhook.fanout import FanOut, Outcome
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

Part = Literal["bundles", "sig", "att"]
BUNDLES: Part = "bundles"  # the referrers of the digest (Sigstore bundles)
LEGACY_SIGNATURES: Part = "sig"  # the sha256-<hex>.sig tag
LEGACY_ATTESTATIONS: Part = "att"  # the sha256-<hex>.att tag
ALL_PARTS: frozenset[Part] = frozenset({BUNDLES, LEGACY_SIGNATURES, LEGACY_ATTESTATIONS})
_ORDER: tuple[Part, ...] = (BUNDLES, LEGACY_SIGNATURES, LEGACY_ATTESTATIONS)

T = TypeVar("T")


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
    """What discovery found for one digest in the ``searched`` parts, and notes on what it skipped."""

    digest: str
    bundles: tuple[BundleArtifact, ...] = ()
    signatures: tuple[LegacyLayer, ...] = ()
    attestations: tuple[LegacyLayer, ...] = ()
    notes: tuple[str, ...] = field(default=())
    searched: frozenset[Part] = ALL_PARTS

    @property
    def empty(self) -> bool:
        return not (self.bundles or self.signatures or self.attestations)

    def found_in(self, part: Part) -> int:
        """How many artifacts were found in ``part``."""
        found = {
            BUNDLES: self.bundles,
            LEGACY_SIGNATURES: self.signatures,
            LEGACY_ATTESTATIONS: self.attestations,
        }
        return len(found[part])

    def merged(self, other: Artifacts) -> Artifacts:
        """These artifacts and ``other``'s (found for the same digest in other parts)."""
        if other.digest != self.digest:
            raise ValueError(f"artifacts of {other.digest} cannot join those of {self.digest}")
        return replace(
            self,
            bundles=self.bundles if BUNDLES in self.searched else other.bundles,
            signatures=self.signatures if LEGACY_SIGNATURES in self.searched else other.signatures,
            attestations=self.attestations if LEGACY_ATTESTATIONS in self.searched else other.attestations,
            notes=(*self.notes, *(note for note in other.notes if note not in self.notes)),
            searched=self.searched | other.searched,
        )

    def summary(self) -> str:
        counts = {
            BUNDLES: f"{len(self.bundles)} Sigstore bundle referrer(s)",
            LEGACY_SIGNATURES: f"{len(self.signatures)} legacy .sig layer(s)",
            LEGACY_ATTESTATIONS: f"{len(self.attestations)} legacy .att layer(s)",
        }
        found = [counts[part] for part in _ORDER if part in self.searched]
        text = f"found {', '.join(found) if found else 'nothing'} for {self.digest}"
        skipped = [PART_NAMES[part] for part in _ORDER if part not in self.searched]
        if skipped:
            text += f" ({_join(skipped)} not looked up)"
        return text


PART_NAMES: Mapping[Part, str] = {
    BUNDLES: "referrers",
    LEGACY_SIGNATURES: "legacy .sig tag",
    LEGACY_ATTESTATIONS: "legacy .att tag",
}


def _join(items: Sequence[str]) -> str:
    return ", ".join(items[:-1]) + f" and {items[-1]}" if len(items) > 1 else "".join(items)


def legacy_tag(digest: str, suffix: str) -> str:
    """The cosign tag for ``digest``: ``sha256:<hex>`` -> ``sha256-<hex>.<suffix>``."""
    algorithm, _, hexdigest = digest.partition(":")
    return f"{algorithm}-{hexdigest}.{suffix}"


def discover(
    registry: ArtifactSource,
    repo: ImageRef,
    digest: str,
    *,
    deadline: Deadline,
    parts: frozenset[Part] = ALL_PARTS,
    fanout: FanOut | None = None,
    on_found: Callable[[BundleArtifact | LegacyLayer], None] | None = None,
) -> Artifacts:
    """Find the signature and attestation artifacts of ``digest`` in ``repo`` (in ``parts`` only).

    Independent lookups run concurrently on ``fanout`` (without one, one after the other).
    ``on_found(artifact)`` runs on the thread that fetched each artifact, once its content is in;
    whatever it raises is logged and ignored (it cannot change what is found).

    Raises:
        RegistryError: the registry failed, or served content that does not match its digest.
        TimeoutError: a lookup was not done within ``deadline``.
        ValueError: ``digest`` is not a sha256 digest.
    """
    if not is_sha256_digest(digest):
        raise ValueError(f"not a sha256 digest: {digest!r}")
    fan = fanout if fanout is not None else FanOut(None)
    found_one = functools.partial(_announce, on_found) if on_found is not None else _ignore
    lookups: dict[Part, Callable[[], tuple[tuple[Any, ...], list[str]]]] = {
        BUNDLES: lambda: _bundles(registry, repo, digest, deadline=deadline, fanout=fan, found=found_one),
        LEGACY_SIGNATURES: lambda: _legacy(
            registry, repo, digest, kind="sig", deadline=deadline, fanout=fan, found=found_one
        ),
        LEGACY_ATTESTATIONS: lambda: _legacy(
            registry, repo, digest, kind="att", deadline=deadline, fanout=fan, found=found_one
        ),
    }
    wanted = [part for part in _ORDER if part in parts]
    found = dict(
        zip(wanted, _all(fan.map(lambda part: lookups[part](), wanted, deadline=deadline)), strict=True)
    )
    empty: tuple[tuple[Any, ...], list[str]] = ((), [])
    artifacts = Artifacts(
        digest=digest,
        bundles=found.get(BUNDLES, empty)[0],
        signatures=found.get(LEGACY_SIGNATURES, empty)[0],
        attestations=found.get(LEGACY_ATTESTATIONS, empty)[0],
        notes=tuple(note for part in wanted for note in found[part][1]),
        searched=frozenset(wanted),
    )
    _logger.debug("discovery for %s@%s: %s", repo.name, digest, artifacts.summary())
    return artifacts


def _announce(
    on_found: Callable[[BundleArtifact | LegacyLayer], None], artifact: BundleArtifact | LegacyLayer
) -> None:
    try:
        on_found(artifact)
    except Exception:
        _logger.exception("a discovery listener failed on %s (ignored)", artifact.layer)


def _ignore(artifact: BundleArtifact | LegacyLayer) -> None:
    del artifact


def _all(outcomes: Sequence[Outcome[T]]) -> list[T]:
    """Every value, or the first failure in order (:class:`TimeoutError` for a late lookup)."""
    return [outcome.get() for outcome in outcomes]


def _bundles(
    registry: ArtifactSource,
    repo: ImageRef,
    digest: str,
    *,
    deadline: Deadline,
    fanout: FanOut,
    found: Callable[[BundleArtifact], None],
) -> tuple[tuple[BundleArtifact, ...], list[str]]:
    notes: list[str] = []
    descriptors = registry.referrers(repo, digest, deadline=deadline, artifact_type=BUNDLE_ARTIFACT_TYPE)
    # Registries may ignore the filter: filter again on our side.
    wanted = [d for d in descriptors if d.artifact_type == BUNDLE_ARTIFACT_TYPE]
    if len(wanted) > MAX_REFERRERS:
        notes.append(f"only the first {MAX_REFERRERS} of {len(wanted)} bundle referrers were examined")
        wanted = wanted[:MAX_REFERRERS]
    per_referrer = _all(
        fanout.map(
            lambda descriptor: _referrer(
                registry, repo, digest, descriptor.digest, deadline=deadline, announce=found
            ),
            wanted,
            deadline=deadline,
        )
    )
    bundles: dict[str, BundleArtifact] = {}
    for artifacts, referrer_notes in per_referrer:
        notes.extend(referrer_notes)
        for artifact in artifacts:
            bundles.setdefault(artifact.layer, artifact)
    return tuple(bundles.values()), notes


def _referrer(
    registry: ArtifactSource,
    repo: ImageRef,
    digest: str,
    referrer: str,
    *,
    deadline: Deadline,
    announce: Callable[[BundleArtifact], None],
) -> tuple[list[BundleArtifact], list[str]]:
    """The bundles of one referrer manifest (its layers fetched one after the other: cosign writes one)."""
    # A referrer the index lists but the registry no longer has (a stale fallback index) cannot
    # hold a signature: skip it rather than fail discovery for the digest.
    manifest = registry.manifest_if_exists(repo, referrer, deadline=deadline)
    if manifest is None:
        return [], [f"referrer {_short(referrer)} skipped: listed but not found (HTTP 404)"]
    body = _json_object(manifest)
    if body is None:
        return [], [f"referrer {_short(referrer)} skipped: not a JSON manifest"]
    subject = body.get("subject")
    if not isinstance(subject, dict) or subject.get("digest") != digest:
        # Only the referrers index links it to the digest; the manifest itself must agree.
        return [], [f"referrer {_short(referrer)} skipped: its subject is not {digest}"]
    annotations = body.get("annotations")
    predicate = annotations.get(PREDICATE_ANNOTATION) if isinstance(annotations, dict) else None
    found: dict[str, BundleArtifact] = {}
    for layer in _layers(body):
        media_type = layer.get("mediaType")
        layer_digest = layer.get("digest")
        if not (isinstance(media_type, str) and media_type.startswith(_BUNDLE_LAYER_PREFIX)):
            continue
        if not isinstance(layer_digest, str) or not is_sha256_digest(layer_digest) or layer_digest in found:
            continue
        artifact = BundleArtifact(
            referrer=manifest.digest,
            layer=layer_digest,
            content=_fetch(registry, repo, layer_digest, deadline=deadline),
            predicate_type=predicate if isinstance(predicate, str) else None,
        )
        found[layer_digest] = artifact
        announce(artifact)
    return list(found.values()), []


def _legacy(
    registry: ArtifactSource,
    repo: ImageRef,
    digest: str,
    *,
    kind: Literal["sig", "att"],
    deadline: Deadline,
    fanout: FanOut,
    found: Callable[[LegacyLayer], None],
) -> tuple[tuple[LegacyLayer, ...], list[str]]:
    notes: list[str] = []
    tag = legacy_tag(digest, kind)
    manifest = registry.manifest_if_exists(repo, tag, deadline=deadline)
    if manifest is None:
        return (), notes
    body = _json_object(manifest)
    if body is None:
        return (), [f"tag {tag} skipped: not a JSON manifest"]
    expected_type = SIGNATURE_LAYER_TYPE if kind == "sig" else ATTESTATION_LAYER_TYPE
    layers = [layer for layer in _layers(body) if layer.get("mediaType") == expected_type]
    if len(layers) > MAX_LAYERS:
        notes.append(f"only the first {MAX_LAYERS} of {len(layers)} layers of tag {tag} were examined")
        layers = layers[:MAX_LAYERS]
    usable: list[tuple[int, str, Mapping[str, object]]] = []
    for position, layer in enumerate(layers):
        layer_digest = layer.get("digest")
        if not isinstance(layer_digest, str) or not is_sha256_digest(layer_digest):
            notes.append(f"a layer of tag {tag} skipped: invalid digest")
            continue
        raw_annotations = layer.get("annotations")
        usable.append((position, layer_digest, raw_annotations if isinstance(raw_annotations, dict) else {}))
    # cosign gives every signer's layer the same payload blob: fetch each blob once.
    distinct = list(dict.fromkeys(layer_digest for _, layer_digest, _ in usable))
    contents = dict(
        zip(
            distinct,
            _all(
                fanout.map(
                    lambda blob: _fetch(registry, repo, blob, deadline=deadline), distinct, deadline=deadline
                )
            ),
            strict=True,
        )
    )
    layers_found = tuple(
        LegacyLayer(
            kind=kind,
            tag=tag,
            manifest=manifest.digest,
            layer=layer_digest,
            media_type=expected_type,
            content=contents[layer_digest],
            annotations=tuple((k, v) for k, v in annotations.items() if isinstance(v, str)),
            position=position,
        )
        for position, layer_digest, annotations in usable
    )
    for layer_found in layers_found:
        found(layer_found)
    return layers_found, notes


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
