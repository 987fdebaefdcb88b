"""Wraps signature artifacts into the OCI manifests cosign pushes: legacy .sig/.att images and v0.3 referrers.

Shapes follow cosign (see the project's Sigstore notes, "How cosign stores signatures"):

* legacy: tag ``sha256-<hex>.sig`` / ``.att`` -> OCI image manifest, config = go-containerregistry's
  empty image config listing the layers as diff_ids, one layer per signature/attestation with annotations;
* new: an OCI 1.1 referrer manifest (``artifactType`` = bundle v0.3 media type, empty config ``{}``,
  one bundle layer, ``subject`` = the signed image), found by the referrers API or the ``sha256-<hex>``
  fallback tag.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

__all__ = [
    "BUNDLE_V03_MEDIA_TYPE",
    "DSSE_ENVELOPE_MEDIA_TYPE",
    "OCI_EMPTY_CONFIG_MEDIA_TYPE",
    "OCI_IMAGE_CONFIG_MEDIA_TYPE",
    "OCI_INDEX_MEDIA_TYPE",
    "OCI_MANIFEST_MEDIA_TYPE",
    "SIMPLESIGNING_MEDIA_TYPE",
    "OciArtifact",
    "bundle_referrer_manifest",
    "legacy_manifest",
    "legacy_tag",
    "referrers_fallback_tag",
    "sha256_digest",
]

SIMPLESIGNING_MEDIA_TYPE = "application/vnd.dev.cosign.simplesigning.v1+json"
DSSE_ENVELOPE_MEDIA_TYPE = "application/vnd.dsse.envelope.v1+json"
BUNDLE_V03_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
OCI_MANIFEST_MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX_MEDIA_TYPE = "application/vnd.oci.image.index.v1+json"
OCI_IMAGE_CONFIG_MEDIA_TYPE = "application/vnd.oci.image.config.v1+json"
OCI_EMPTY_CONFIG_MEDIA_TYPE = "application/vnd.oci.empty.v1+json"

_GO_ZERO_TIME = "0001-01-01T00:00:00Z"


def sha256_digest(data: bytes) -> str:
    """``sha256:<hex>`` of `data`."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _hex(digest: str) -> str:
    algorithm, _, hex_part = digest.partition(":")
    if algorithm != "sha256" or len(hex_part) != 64:
        raise ValueError(f"not a sha256 digest: {digest!r}")
    return hex_part


def legacy_tag(digest: str, suffix: Literal["sig", "att", "sbom"]) -> str:
    """cosign's legacy tag next to the image: ``sha256-<hex>.<suffix>``."""
    return f"sha256-{_hex(digest)}.{suffix}"


def referrers_fallback_tag(digest: str) -> str:
    """The OCI referrers tag-schema fallback tag: ``sha256-<hex>``."""
    return f"sha256-{_hex(digest)}"


@dataclass(frozen=True, slots=True)
class OciArtifact:
    """A manifest plus every blob it references, ready to push (blobs first, then the manifest)."""

    manifest: bytes
    media_type: str
    blobs: dict[str, bytes] = field(default_factory=dict)

    @property
    def digest(self) -> str:
        """The manifest digest."""
        return sha256_digest(self.manifest)

    @property
    def size(self) -> int:
        """The manifest size in bytes (for descriptors, e.g. a referrer's ``subject``)."""
        return len(self.manifest)


def _dumps(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def legacy_manifest(
    layers: Sequence[tuple[bytes, dict[str, str]]], *, kind: Literal["sig", "att"]
) -> OciArtifact:
    """The image manifest behind a ``.sig`` (simple-signing layers) or ``.att`` (DSSE layers) tag."""
    media_type = SIMPLESIGNING_MEDIA_TYPE if kind == "sig" else DSSE_ENVELOPE_MEDIA_TYPE
    blobs: dict[str, bytes] = {}
    descriptors = []
    for blob, layer_annotations in layers:
        digest = sha256_digest(blob)
        blobs[digest] = blob
        descriptors.append(
            {
                "mediaType": media_type,
                "size": len(blob),
                "digest": digest,
                "annotations": dict(layer_annotations),
            }
        )
    # go-containerregistry's empty image config after mutate.Append: one history item per layer.
    config = _dumps(
        {
            "architecture": "",
            "created": _GO_ZERO_TIME,
            "history": [{"created": _GO_ZERO_TIME} for _ in descriptors],
            "os": "",
            "rootfs": {"type": "layers", "diff_ids": [d["digest"] for d in descriptors]},
            "config": {},
        }
    )
    blobs[sha256_digest(config)] = config
    manifest = _dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST_MEDIA_TYPE,
            "config": {
                "mediaType": OCI_IMAGE_CONFIG_MEDIA_TYPE,
                "size": len(config),
                "digest": sha256_digest(config),
            },
            "layers": descriptors,
        }
    )
    return OciArtifact(manifest=manifest, media_type=OCI_MANIFEST_MEDIA_TYPE, blobs=blobs)


def bundle_referrer_manifest(
    bundle: bytes,
    *,
    subject_digest: str,
    subject_size: int,
    subject_media_type: str = OCI_MANIFEST_MEDIA_TYPE,
    created: datetime | None = None,
) -> OciArtifact:
    """cosign v3's OCI 1.1 referrer for a Sigstore bundle v0.3 about the image `subject_digest`.

    Bytes that are no bundle at all (a hostile or broken referrer) are stored as they are, without the
    content annotations cosign derives from a bundle.
    """
    annotations = {
        "org.opencontainers.image.created": (created or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    try:
        parsed = json.loads(bundle)
    except ValueError:
        parsed = None
    envelope = parsed.get("dsseEnvelope") if isinstance(parsed, dict) else None
    if isinstance(envelope, dict):
        annotations["dev.sigstore.bundle.content"] = "dsse-envelope"
        statement = json.loads(base64.b64decode(envelope["payload"]))
        annotations["dev.sigstore.bundle.predicateType"] = statement.get("predicateType", "")
    elif isinstance(parsed, dict):
        annotations["dev.sigstore.bundle.content"] = "message-signature"
    empty = b"{}"
    blobs = {sha256_digest(empty): empty, sha256_digest(bundle): bundle}
    manifest = _dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST_MEDIA_TYPE,
            "artifactType": BUNDLE_V03_MEDIA_TYPE,
            "config": {
                "mediaType": OCI_EMPTY_CONFIG_MEDIA_TYPE,
                "artifactType": BUNDLE_V03_MEDIA_TYPE,
                "digest": sha256_digest(empty),
                "size": len(empty),
            },
            "layers": [
                {"mediaType": BUNDLE_V03_MEDIA_TYPE, "digest": sha256_digest(bundle), "size": len(bundle)}
            ],
            "subject": {"mediaType": subject_media_type, "digest": subject_digest, "size": subject_size},
            "annotations": annotations,
        }
    )
    return OciArtifact(manifest=manifest, media_type=OCI_MANIFEST_MEDIA_TYPE, blobs=blobs)
