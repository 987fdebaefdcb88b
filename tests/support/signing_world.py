"""Signs images in a real registry the way cosign does, for the end-to-end verification tests.

Built only on test support code (``tests.support.oci``, ``fake_sigstore``, ``sigstore_oci``), never on
imagegate's own registry client, so the fixtures cannot share a bug with the code they test.

    world = SigningWorld(pusher=registry.pusher(), host=registry.host)
    image = world.push_image("keyless/app", "v1")
    world.sign_and_push("keyless/app", image, by=Keyless(sigstore, identity), fmt="bundle")  # referrer
    world.sign_and_push("keyless/app", image, by=WithKey(sigstore, key), fmt="legacy")  # .sig tag
    world.attest_and_push("keyless/app", image, statement, by=Keyless(sigstore, identity), fmt="legacy")

Formats:

* ``"bundle"``: a Sigstore bundle v0.3 (DSSE) stored as an OCI 1.1 referrer of the image. The registry
  (distribution 2.8) has no referrers API, so the referrer is also listed in the tag-schema fallback
  index ``sha256-<hex>`` of the subject, as cosign and oras do.
* ``"legacy"``: a layer appended to the image manifest behind cosign's ``sha256-<hex>.sig`` (simple
  signing) or ``sha256-<hex>.att`` (DSSE envelope) tag; earlier layers are kept, as cosign keeps them.

Negative tests bend these with ``signed_digest`` (sign one digest, store the signature under another
image: a replay) and ``tamper`` (rewrite the signed content after signing, keeping the signature).
"""

from __future__ import annotations

__all__ = [
    "BUNDLE_ARTIFACT_TYPE",
    "Format",
    "Keyless",
    "SignedBy",
    "SigningWorld",
    "WithKey",
]

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from tests.support.fake_sigstore import (
    BUNDLE_V03_MEDIA_TYPE,
    FakeSigstore,
    Identity,
    OciArtifact,
    SigningKey,
    bundle_referrer_manifest,
    cosign_sign_statement,
    legacy_manifest,
    legacy_tag,
)
from tests.support.oci import OciPusher, Pushed

BUNDLE_ARTIFACT_TYPE = BUNDLE_V03_MEDIA_TYPE

Format = Literal["bundle", "legacy"]


@dataclass(frozen=True)
class Keyless:
    """A Fulcio-certified identity of one Sigstore instance (the instance logs what it signs)."""

    sigstore: FakeSigstore
    identity: Identity


@dataclass(frozen=True)
class WithKey:
    """A cosign key pair; ``tlog`` adds a transparency-log entry of ``sigstore``'s log."""

    sigstore: FakeSigstore
    key: SigningKey
    tlog: bool = True


SignedBy = Keyless | WithKey


@dataclass
class SigningWorld:
    """Pushes images and their signatures and attestations to one registry (see the module docstring)."""

    pusher: OciPusher
    host: str

    # -- images ----------------------------------------------------------------------------------------

    def push_image(self, repo: str, tag: str | None, *, content: bytes | None = None) -> Pushed:
        return self.pusher.push_image(repo, tag, content=content)

    def push_multiarch(self, repo: str, tag: str) -> tuple[Pushed, Pushed, Pushed]:
        """(index, amd64, arm64); the index is tagged ``tag``."""
        return self.pusher.push_multiarch(repo, tag)

    def name(self, repo: str) -> str:
        """The image name as cosign writes it into ``docker-reference``: ``host/repo``."""
        return f"{self.host}/{repo}"

    def ref(self, repo: str, tag: str | None = None, digest: str | None = None) -> str:
        text = self.name(repo)
        if tag is not None:
            text += f":{tag}"
        if digest is not None:
            text += f"@{digest}"
        return text

    # -- signing -----------------------------------------------------------------------------------------

    def sign_and_push(
        self,
        repo: str,
        image: Pushed,
        *,
        by: SignedBy,
        fmt: Format,
        signed_digest: str | None = None,
        tamper: Callable[[bytes], bytes] | None = None,
    ) -> Pushed:
        """Sign ``image`` (or ``signed_digest``) as ``cosign sign`` would and store it next to ``image``.

        ``tamper`` rewrites the stored signed content (bundle JSON, or simple-signing payload) after
        signing. Returns the pushed referrer or legacy signature manifest.
        """
        digest = signed_digest or image.digest
        if fmt == "bundle":
            statement = cosign_sign_statement(digest)
            if isinstance(by, Keyless):
                bundle = by.sigstore.bundle_dsse(by.identity, statement)
            else:
                bundle = by.sigstore.bundle_dsse_with_key(by.key, statement, tlog=by.tlog)
            return self.push_bundle(repo, image, tamper(bundle) if tamper else bundle)
        if isinstance(by, Keyless):
            payload, annotations = by.sigstore.legacy_sig_layer(
                by.identity, image_name=self.name(repo), digest=digest
            )
        else:
            payload, annotations = by.sigstore.legacy_sig_layer_with_key(
                by.key, image_name=self.name(repo), digest=digest, tlog=by.tlog
            )
        return self.push_legacy(repo, image, "sig", (tamper(payload) if tamper else payload, annotations))

    def attest_and_push(
        self,
        repo: str,
        image: Pushed,
        statement: Mapping[str, Any],
        *,
        by: SignedBy,
        fmt: Format,
    ) -> Pushed:
        """Sign an in-toto ``statement`` as ``cosign attest`` would and store it next to ``image``."""
        if fmt == "bundle":
            if isinstance(by, Keyless):
                bundle = by.sigstore.bundle_dsse(by.identity, statement)
            else:
                bundle = by.sigstore.bundle_dsse_with_key(by.key, statement, tlog=by.tlog)
            return self.push_bundle(repo, image, bundle)
        if isinstance(by, Keyless):
            layer = by.sigstore.legacy_att_layer(by.identity, statement)
        else:
            layer = by.sigstore.legacy_att_layer_with_key(by.key, statement, tlog=by.tlog)
        return self.push_legacy(repo, image, "att", layer)

    # -- storage -----------------------------------------------------------------------------------------

    def push_artifact(self, repo: str, artifact: OciArtifact, *, tag: str | None = None) -> Pushed:
        for data in artifact.blobs.values():
            self.pusher.push_blob(repo, data)
        return self.pusher.push_manifest(repo, artifact.manifest, artifact.media_type, ref=tag)

    def push_bundle(self, repo: str, image: Pushed, bundle: bytes) -> Pushed:
        """Push ``bundle`` as a referrer of ``image`` and list it in the ``sha256-<hex>`` fallback index."""
        artifact = bundle_referrer_manifest(
            bundle, subject_digest=image.digest, subject_size=image.size, subject_media_type=image.media_type
        )
        pushed = self.push_artifact(repo, artifact)
        index = self.pusher.fallback_index(repo, image.digest) or {}
        entries = [e for e in index.get("manifests", []) if e.get("digest") != pushed.digest]
        annotations = json.loads(artifact.manifest).get("annotations", {})
        entries.append(pushed.descriptor(artifactType=BUNDLE_ARTIFACT_TYPE, annotations=annotations))
        self.pusher.put_fallback_index(repo, image.digest, entries)
        return pushed

    def push_legacy(
        self, repo: str, image: Pushed, kind: Literal["sig", "att"], layer: tuple[bytes, Mapping[str, str]]
    ) -> Pushed:
        """Append ``layer`` to the manifest behind ``sha256-<hex>.<kind>`` of ``image`` (create it if new)."""
        tag = legacy_tag(image.digest, kind)
        layers = self._legacy_layers(repo, tag)
        layers.append((layer[0], dict(layer[1])))
        return self.push_artifact(repo, legacy_manifest(layers, kind=kind), tag=tag)

    def legacy_layers(
        self, repo: str, image: Pushed, kind: Literal["sig", "att"]
    ) -> list[tuple[bytes, dict[str, str]]]:
        """(blob, annotations) of every layer behind ``sha256-<hex>.<kind>`` of ``image``, as stored."""
        return self._legacy_layers(repo, legacy_tag(image.digest, kind))

    def _legacy_layers(self, repo: str, tag: str) -> list[tuple[bytes, dict[str, str]]]:
        existing = self.pusher.get_manifest(repo, tag)
        if existing is None:
            return []
        layers = []
        for descriptor in json.loads(existing.body)["layers"]:
            response = self.pusher.request("GET", f"/v2/{repo}/blobs/{descriptor['digest']}")
            response.raise_for_status()
            layers.append((response.content, dict(descriptor.get("annotations", {}))))
        return layers
