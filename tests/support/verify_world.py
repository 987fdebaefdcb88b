"""A small world for verification tests: a test Sigstore, an in-memory registry, an image, trust, rules.

``World`` pushes signatures and attestations in both cosign formats (Sigstore bundle referrers and
legacy ``.sig``/``.att`` tags) and verifies rules through the real discovery and verifier.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.support.fake_sigstore import (
    FakeSigstore,
    Identity,
    SigningKey,
    bundle_referrer_manifest,
    cosign_sign_statement,
    legacy_manifest,
    legacy_tag,
)
from tests.support.memory_registry import InMemoryRegistry, PushedImage
from webhook.deadline import Deadline
from webhook.facts import RuleVerification
from webhook.images.reference import ImageRef
from webhook.policy.material import KeyMaterial, TrustedRootMaterial
from webhook.policy.model import (
    AttestationRequirement,
    KeylessSigner,
    KeySigner,
    Policy,
    Rule,
    SignatureRequirement,
    Signer,
    Trust,
    TrustKey,
    TrustRoot,
)
from webhook.verify.discovery import Artifacts, discover
from webhook.verify.trust import TrustMaterial
from webhook.verify.verifier import ImageVerifier

__all__ = [
    "ACME_REGEXP",
    "EVIL",
    "GITHUB_ISSUER",
    "IMAGE",
    "WORKFLOW",
    "World",
    "attestation_rule",
    "fixture_world",
    "keyless",
    "signature_rule",
]

GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
WORKFLOW = "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main"
EVIL = "https://github.com/evil/app/.github/workflows/release.yml@refs/heads/main"
ACME_REGEXP = r"^https://github\.com/acme/.+$"
IMAGE = "registry.example.com/acme/app"


def keyless(
    *,
    subject: str | None = WORKFLOW,
    regexp: str | None = None,
    issuer: str = GITHUB_ISSUER,
    root: str = "test",
    extensions: Mapping[str, str] | None = None,
) -> KeylessSigner:
    return KeylessSigner(
        root=root,
        issuer=issuer,
        subject=None if regexp is not None else subject,
        subject_regexp=regexp,
        extensions=tuple((extensions or {}).items()),
    )


def signature_rule(*signers: Signer, minimum: int = 1, name: str = "release") -> Rule:
    return Rule(
        name=name,
        images=(f"{IMAGE.split('/', 1)[0]}/**",),
        signatures=SignatureRequirement(signers=tuple(signers), minimum=minimum),
    )


def attestation_rule(*requirements: AttestationRequirement, name: str = "provenance") -> Rule:
    return Rule(name=name, images=(f"{IMAGE.split('/', 1)[0]}/**",), attestations=tuple(requirements))


@dataclass
class World:
    sigstore: FakeSigstore
    tmp: Path
    registry: InMemoryRegistry = field(default_factory=InMemoryRegistry)
    keys: dict[str, SigningKey] = field(default_factory=dict)
    extra_roots: dict[str, Path] = field(default_factory=dict)
    _layers: dict[tuple[str, str], list[tuple[bytes, dict[str, str]]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.ref = ImageRef.parse(f"{IMAGE}:v1")
        self.image = self.registry.push_image(self.ref, "v1")

    # -- identities and keys -------------------------------------------------------------------------

    def identity(self, subject: str = WORKFLOW, issuer: str = GITHUB_ISSUER, **extensions: str) -> Identity:
        return self.sigstore.issue_cert(subject=subject, issuer=issuer, extensions=extensions or None)

    def key(self, name: str, kind: Any = "ecdsa-p256") -> SigningKey:
        if name not in self.keys:
            self.keys[name] = self.sigstore.generate_key(kind)
        return self.keys[name]

    # -- pushing -------------------------------------------------------------------------------------

    def push_referrer(self, bundle: bytes, *, subject: PushedImage | None = None) -> str:
        target = subject or self.image
        artifact = bundle_referrer_manifest(
            bundle,
            subject_digest=target.digest,
            subject_size=target.size,
            subject_media_type=target.media_type,
        )
        return self.registry.push_artifact(self.ref, artifact)

    def push_legacy(
        self, kind: str, layer: tuple[bytes, Mapping[str, str]], *, digest: str | None = None
    ) -> None:
        target = digest or self.image.digest
        layers = self._layers.setdefault((target, kind), [])
        layers.append((layer[0], dict(layer[1])))
        artifact = legacy_manifest(layers, kind=kind)  # type: ignore[arg-type]
        self.registry.push_artifact(self.ref, artifact, tag=legacy_tag(target, kind))  # type: ignore[arg-type]

    def sign_bundle(
        self, identity: Identity, *, signed: str | None = None, subject: PushedImage | None = None
    ) -> str:
        target = subject or self.image
        bundle = self.sigstore.bundle_dsse(identity, cosign_sign_statement(signed or target.digest))
        return self.push_referrer(bundle, subject=target)

    def sign_legacy(self, identity: Identity, *, signed: str | None = None, under: str | None = None) -> None:
        layer = self.sigstore.legacy_sig_layer(identity, image_name=IMAGE, digest=signed or self.image.digest)
        self.push_legacy("sig", layer, digest=under)

    def sign_legacy_with_key(self, key: SigningKey, *, tlog: bool = True) -> None:
        layer = self.sigstore.legacy_sig_layer_with_key(
            key, image_name=IMAGE, digest=self.image.digest, tlog=tlog
        )
        self.push_legacy("sig", layer)

    def sign_bundle_with_key(self, key: SigningKey, *, tlog: bool = True) -> str:
        bundle = self.sigstore.bundle_dsse_with_key(key, cosign_sign_statement(self.image.digest), tlog=tlog)
        return self.push_referrer(bundle)

    def attest_bundle(self, identity: Identity, statement: Mapping[str, Any]) -> str:
        return self.push_referrer(self.sigstore.bundle_dsse(identity, statement))

    def attest_legacy(self, identity: Identity, statement: Mapping[str, Any]) -> None:
        self.push_legacy("att", self.sigstore.legacy_att_layer(identity, statement))

    # -- trust and verification ----------------------------------------------------------------------

    def policy(self, *, roots: Mapping[str, Path] | None = None) -> Policy:
        key_dir = self.tmp / "keys"
        key_dir.mkdir(exist_ok=True)
        trust_keys = []
        for name, key in self.keys.items():
            path = key_dir / f"{name}.pub"
            path.write_bytes(key.public_pem)
            trust_keys.append(TrustKey(name=name, material=KeyMaterial.read(path)))
        all_roots = {"test": self.sigstore.trusted_root_path, **self.extra_roots, **(roots or {})}
        return Policy(
            name="test",
            source=str(self.tmp / "policy.yaml"),
            trust=Trust(
                roots=tuple(
                    TrustRoot(name=n, material=TrustedRootMaterial.read(p)) for n, p in all_roots.items()
                ),
                keys=tuple(trust_keys),
            ),
            fingerprint="fp-" + ",".join(sorted(self.keys)),
        )

    def trust(self) -> TrustMaterial:
        return TrustMaterial.from_policy(self.policy())

    def discover(self, digest: str | None = None) -> Artifacts:
        return discover(self.registry, self.ref, digest or self.image.digest, deadline=Deadline.after(10))

    def verify(
        self, rule: Rule, *, digest: str | None = None, now: datetime | None = None
    ) -> RuleVerification:
        target = digest or self.image.digest
        return ImageVerifier(self.trust()).verify_rule(
            rule=rule,
            image=self.ref,
            digest=target,
            artifacts=self.discover(target),
            now=now or datetime.now(UTC),
        )


def codes(result: RuleVerification) -> list[str]:
    return [finding.code for finding in result.findings]


def messages(result: RuleVerification) -> str:
    return "\n".join(finding.message for finding in result.findings)


def requirement(
    predicate_type: str, signers: Sequence[Signer], *, minimum: int = 1, **checks: Any
) -> AttestationRequirement:
    return AttestationRequirement(
        predicate_type=predicate_type, signers=tuple(signers), minimum=minimum, **checks
    )


def key_signer(name: str, *, require_tlog: bool = True) -> KeySigner:
    return KeySigner(name=name, require_tlog=require_tlog)


@pytest.fixture(name="world")
def fixture_world(sigstore_instance: FakeSigstore, tmp_path: Path) -> World:
    """A World on a fresh test Sigstore (import this fixture: ``refresh_world`` has a ``world`` too)."""
    return World(sigstore=sigstore_instance, tmp=tmp_path)
