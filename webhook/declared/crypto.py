"""The cryptographic step answered from declared facts (a :class:`~webhook.verify.crypto.PayloadVerifier`).

For a bundle the declared registry stored, :class:`DeclaredCrypto` answers what the real cryptography
would, from the declaration:

* a keyless signature verifies for a keyless signer whose trusted root the policy loaded, when it was
  certified by that root (``keyless.root``, or any root when the suite names none), and when that
  root's Fulcio CA, CT log key and Rekor key were valid at ``now``, the time the declared certificate
  and log entry are dated: the ``validFor`` windows a real bundle is held to
  (:func:`webhook.verify.bundles.check_root_windows_at`);
* a key signature verifies for a key signer whose key is the declared key (compared as keys, by their
  public key bytes: two names of one key are one key, as with real signatures);
* ``valid: false`` verifies for nobody; ``tlog: false`` verifies only for key signers that do not
  require transparency-log evidence (keyless signatures always need it);
* a bundle that is keyless is refused by key signers and the other way round, as sigstore does.

What verifies is returned as the same :class:`~webhook.verify.bundles.SignedPayload` a real bundle
gives: the in-toto statement as signed, and the certificate or key name. Everything else, that is
whether it is a signature or an attestation of the right type, the signer's identity, the binding to
the admitted digest, the predicates and k-of-n, is the verifier's, unchanged. A bundle the declared
registry did not store (none should reach here) verifies for nobody.
"""

from __future__ import annotations

__all__ = ["DeclaredCrypto"]

from collections.abc import Mapping
from datetime import datetime

from webhook.declared.registry import Evidence
from webhook.errors import VerificationFailed
from webhook.policy.model import KeylessSigner, Signer
from webhook.reasons import Reason
from webhook.verify.bundles import SignedPayload, check_root_windows_at
from webhook.verify.crypto import Artifact
from webhook.verify.discovery import BundleArtifact
from webhook.verify.statements import IN_TOTO_PAYLOAD_TYPE
from webhook.verify.trust import TrustMaterial


class DeclaredCrypto:
    """See the module docstring. ``evidence``: bundle layer digest -> what it stands for."""

    def __init__(self, trust: TrustMaterial, evidence: Mapping[str, Evidence]) -> None:
        self.trust = trust
        self.evidence = evidence

    def verify(self, signer: Signer, candidate: Artifact, *, digest: str, now: datetime) -> SignedPayload:
        del digest  # the declaration says what verifies; the verifier binds it
        found = self.evidence.get(candidate.layer) if isinstance(candidate, BundleArtifact) else None
        if found is None:
            raise _invalid("not a signature the test suite declares")
        declared = found.signature
        if isinstance(signer, KeylessSigner):
            if declared.keyless is None:
                raise _invalid("the bundle is key-signed (no certificate)")
            root = self.trust.root(signer.root)
            if root is None:
                raise _invalid(f"trust root {signer.root!r} is not loaded")
            if declared.keyless.root is not None and declared.keyless.root != signer.root:
                raise _invalid(
                    f"the certificate does not chain to trust root {signer.root!r} "
                    f"(declared: certified by root {declared.keyless.root!r})"
                )
            if not declared.tlog:
                raise _invalid("the bundle has no transparency log entry (declared tlog: false)")
            check_root_windows_at(root, when=now, now=now)
        else:
            if declared.key is None:
                raise _invalid("the bundle is keyless (certificate), not key-signed")
            key = self.trust.key(signer.name)
            if key is None:
                raise _invalid(f"trust key {signer.name!r} is not loaded")
            used = self.trust.key(declared.key)
            if used is None or used.spki_der != key.spki_der:
                raise _invalid(
                    f"the signature does not verify with key {signer.name!r} (declared: signed with key "
                    f"{declared.key!r})"
                )
            if not declared.tlog and signer.require_tlog:
                raise _invalid(
                    "transparency log evidence is required: the bundle has no transparency log entry "
                    "(declared tlog: false)"
                )
        if not declared.valid:
            raise _invalid("the signature does not verify (declared valid: false)")
        return SignedPayload(
            origin=candidate.describe(),
            payload_type=IN_TOTO_PAYLOAD_TYPE,
            payload=found.payload,
            certificate=found.certificate,
            key=None if isinstance(signer, KeylessSigner) else signer.name,
        )


def _invalid(message: str) -> VerificationFailed:
    return VerificationFailed(message, code=Reason.SIGNATURE_INVALID)
