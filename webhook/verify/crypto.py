"""The cryptographic step of verification, as a port: what an artifact signs, for one signer.

:class:`~webhook.verify.verifier.ImageVerifier` asks a :class:`PayloadVerifier` whether a candidate
artifact verifies cryptographically for a signer (keyless: against the signer's pinned trusted root;
key: with the named key, transparency-log evidence as the signer requires) and, when it does, for the
:class:`~webhook.verify.bundles.SignedPayload` it signs. Everything after that is policy and stays in the
verifier whatever produced the payload: what kind of artifact it is, the signer's identity, the binding
to the admitted digest, the predicate checks and the k-of-n count over distinct signing keys.

:class:`SigstoreCrypto` is the only implementation the webhook, ``evaluate`` and ``verify`` use.
``imagegate test`` replaces it, and only it, with the declared facts of a test suite
(:mod:`webhook.declared`), so hermetic policy tests run the same policy checks as admission.
"""

from __future__ import annotations

__all__ = ["Artifact", "PayloadVerifier", "SigstoreCrypto"]

from datetime import datetime
from typing import Protocol

from webhook.errors import VerificationFailed
from webhook.policy.model import KeylessSigner, Signer
from webhook.reasons import Reason
from webhook.verify.bundles import (
    SignedPayload,
    bundle_has_certificate,
    verify_key_bundle,
    verify_keyless_bundle,
)
from webhook.verify.discovery import BundleArtifact, LegacyLayer
from webhook.verify.legacy import verify_legacy_key, verify_legacy_keyless
from webhook.verify.trust import TrustMaterial

#: A candidate signature or attestation, as discovery found it (not yet verified).
Artifact = BundleArtifact | LegacyLayer


class PayloadVerifier(Protocol):
    """The cryptographic step (see the module docstring)."""

    def verify(self, signer: Signer, candidate: Artifact, *, digest: str, now: datetime) -> SignedPayload:
        """The payload ``candidate`` signs, verified for ``signer``; ``digest`` is the admitted digest.

        Raises:
            VerificationFailed: the cryptography or the evidence's structure does not hold for ``signer``.
        """
        ...


class SigstoreCrypto:
    """Sigstore bundles and cosign's legacy layers, verified with the policy's trust material."""

    def __init__(self, trust: TrustMaterial) -> None:
        self.trust = trust

    def verify(self, signer: Signer, candidate: Artifact, *, digest: str, now: datetime) -> SignedPayload:
        origin = candidate.describe()
        if isinstance(signer, KeylessSigner):
            root = self.trust.root(signer.root)
            if root is None:
                raise VerificationFailed(
                    f"trust root {signer.root!r} is not loaded", code=Reason.SIGNATURE_INVALID
                )
            if isinstance(candidate, LegacyLayer):
                return verify_legacy_keyless(candidate, root=root, now=now)
            if not bundle_has_certificate(candidate.content):
                raise VerificationFailed(
                    "the bundle is key-signed (no certificate)", code=Reason.SIGNATURE_INVALID
                )
            return verify_keyless_bundle(candidate.content, root=root, origin=origin, digest=digest, now=now)
        key = self.trust.key(signer.name)
        if key is None:
            raise VerificationFailed(
                f"trust key {signer.name!r} is not loaded", code=Reason.SIGNATURE_INVALID
            )
        tlog_keys = self.trust.all_tlog_keys()
        if isinstance(candidate, LegacyLayer):
            return verify_legacy_key(
                candidate,
                key=key,
                key_name=signer.name,
                tlog_keys=tlog_keys,
                require_tlog=signer.require_tlog,
                now=now,
            )
        if bundle_has_certificate(candidate.content):
            raise VerificationFailed(
                "the bundle is keyless (certificate), not key-signed", code=Reason.SIGNATURE_INVALID
            )
        return verify_key_bundle(
            candidate.content,
            key=key,
            key_name=signer.name,
            tlog_keys=tlog_keys,
            require_tlog=signer.require_tlog,
            origin=origin,
            now=now,
        )
