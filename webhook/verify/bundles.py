"""sigstore-python adapter: verify new-format Sigstore bundles (OCI referrers) offline.

A keyless bundle is verified by the ``Verifier`` of the signer's pinned trusted root: certificate chain
at the log or TSA time, embedded SCT, Rekor inclusion proof, checkpoint and SET, the DSSE or message
signature, and the log entry's consistency with the bundle. The ``Verifier`` uses every key and CA of the
root, retired ones too, so the root's ``validFor`` windows are then checked as for legacy layers: the
Rekor key that signed the SET was valid at the integrated time
(:func:`webhook.verify.rekor.check_integrated_time`), and the certificate chains to a CA valid at every
verified time and carries an SCT of a CT key valid then
(:func:`webhook.verify.certificates.verify_certificate`). The cryptographic check runs with an
identity policy that accepts any certificate, and the signer's identity policy
(:mod:`webhook.verify.identity`) is then applied to the very certificate the ``Verifier`` accepted. That
gives the same answer as passing the signer's policy to the ``Verifier``, but one verification serves
every signer of the root, and a failure can be told apart: ``signature-invalid`` (the cryptography) vs
``identity-mismatch`` (a valid signature by someone else).

Key-signed bundles, which sigstore-python 4.5.1 cannot verify, go through :mod:`webhook.verify.keys`.

Every sigstore, pydantic and parsing error becomes
:class:`~webhook.errors.VerificationFailed`; nothing else escapes, so callers fail closed.
"""

from __future__ import annotations

__all__ = [
    "COSIGN_SIGN_PREDICATE",
    "SignedPayload",
    "bundle_has_certificate",
    "check_root_windows_at",
    "load_bundle",
    "peek_predicate_type",
    "statement_covers",
    "verify_bundle",
    "verify_key_bundle",
    "verify_keyless_bundle",
]

import base64
import binascii
import hashlib
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pydantic
from cryptography import x509
from sigstore.errors import Error as SigstoreError
from sigstore.hashes import Hashed
from sigstore.models import Bundle
from sigstore_models.common.v1 import HashAlgorithm

from webhook._json import mapping
from webhook.errors import VerificationFailed
from webhook.reasons import Reason
from webhook.text import first_line
from webhook.verify import keys
from webhook.verify.certificates import check_issuable_at, verify_certificate
from webhook.verify.evidence import b64, integer, signature_invalid
from webhook.verify.identity import CertIdentity
from webhook.verify.rekor import check_integrated_time, check_logged_at
from webhook.verify.signatures import PublicKey
from webhook.verify.statements import Statement, parse_statement
from webhook.verify.trust import RootMaterial

_logger = logging.getLogger(__name__)

COSIGN_SIGN_PREDICATE = "https://sigstore.dev/cosign/sign/v1"
_DIGEST = re.compile(r"(sha256|sha384|sha512):([0-9a-f]+)")
_HASHES = {
    "sha256": HashAlgorithm.SHA2_256,
    "sha384": HashAlgorithm.SHA2_384,
    "sha512": HashAlgorithm.SHA2_512,
}
_ERRORS = (SigstoreError, pydantic.ValidationError, ValueError, KeyError, TypeError, binascii.Error)


@dataclass(frozen=True, slots=True)
class SignedPayload:
    """A payload whose signature verified cryptographically, and what signed it.

    Identity is NOT implied: check ``certificate`` against a signer policy, or ``key`` against the
    signer's key name, before trusting the payload.

    Attributes:
        origin: which artifact this came from (for explanations).
        payload_type: the DSSE payload type; None for a message signature.
        payload: the DSSE payload (empty for a message signature).
        message_digest: for a message signature, the ``sha256:<hex>`` it was verified against.
        certificate: the Fulcio leaf (keyless) or None (key).
        key: the ``trust.keys`` name whose key verified it, or None (keyless).
        integrated_time: the transparency log time, when the path establishes one.
    """

    origin: str
    payload_type: str | None = None
    payload: bytes = b""
    message_digest: str | None = None
    certificate: x509.Certificate | None = None
    key: str | None = None
    integrated_time: datetime | None = None
    # Read from the certificate once: every signer of every requirement asks (ten times per image).
    _identity: CertIdentity | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.certificate is not None:
            object.__setattr__(self, "_identity", CertIdentity.from_certificate(self.certificate))

    @property
    def identity(self) -> CertIdentity | None:
        return self._identity

    def statement(self) -> Statement:
        """The in-toto statement in the payload.

        Raises:
            VerificationFailed: not a DSSE in-toto payload, or a malformed statement.
        """
        if self.payload_type is None:
            raise VerificationFailed(
                f"{self.origin} is a message signature, not an in-toto statement",
                code=Reason.SIGNATURE_INVALID,
            )
        return parse_statement(self.payload_type, self.payload)

    def signer_description(self) -> str:
        if self.key is not None:
            return f"key {self.key}"
        identity = self.identity
        return f"keyless {identity.describe()}" if identity is not None else "an unknown signer"


class _IdentityCheckedByCaller:
    """A sigstore ``VerificationPolicy`` that accepts any certificate.

    Only used for the cryptographic pass: every caller applies the signer's own policy to the
    returned certificate before it trusts anything (see the module docstring).
    """

    def verify(self, cert: x509.Certificate) -> None:
        return None


def load_bundle(content: bytes) -> Bundle:
    """Parse a Sigstore bundle (v0.1 to v0.3). Raises VerificationFailed(signature-invalid)."""
    try:
        return Bundle.from_json(content)
    except _ERRORS as error:
        raise VerificationFailed(
            f"malformed Sigstore bundle: {first_line(error)}", code=Reason.SIGNATURE_INVALID
        ) from None


def bundle_has_certificate(content: bytes) -> bool:
    """Whether the bundle JSON carries a certificate (keyless) rather than only a public-key hint."""
    document = _json(content)
    material = document.get("verificationMaterial") if isinstance(document, dict) else None
    if not isinstance(material, dict):
        return False
    return bool(material.get("certificate") or material.get("x509CertificateChain"))


def verify_keyless_bundle(
    content: bytes,
    *,
    root: RootMaterial,
    origin: str = "bundle",
    digest: str | None = None,
    now: datetime | None = None,
) -> SignedPayload:
    """Verify a keyless bundle's cryptography against one trusted root (identity NOT checked).

    A DSSE bundle yields its payload. A message-signature bundle is verified against ``digest`` (the
    signed bytes' ``sha256:<hex>``); without ``digest`` it is rejected. ``now``, when given, refuses
    integrated times in the future.

    Raises:
        VerificationFailed: ``signature-invalid`` with the reason.
    """
    bundle = load_bundle(content)
    document = _json(content)
    dsse = isinstance(document, dict) and document.get("dsseEnvelope") is not None
    if not dsse and digest is None:
        raise VerificationFailed(
            f"{origin} is a message signature with nothing to check it against",
            code=Reason.SIGNATURE_INVALID,
        )
    try:
        if dsse:
            payload_type, payload = root.verifier.verify_dsse(bundle, _IdentityCheckedByCaller())
            signed = SignedPayload(
                origin=origin,
                payload_type=payload_type,
                payload=payload,
                certificate=bundle.signing_certificate,
                integrated_time=_promised_time(document),
            )
        else:
            assert digest is not None  # noqa: S101 - checked above
            root.verifier.verify_artifact(_hashed(digest), bundle, _IdentityCheckedByCaller())
            signed = SignedPayload(
                origin=origin,
                message_digest=digest,
                certificate=bundle.signing_certificate,
                integrated_time=_promised_time(document),
            )
        _check_root_windows(bundle, document, root=root, now=now)
    except VerificationFailed as error:
        raise VerificationFailed(f"{origin}: {error.user_message}", code=Reason.SIGNATURE_INVALID) from None
    except _ERRORS as error:
        _logger.debug("%s failed verification: %s", origin, error)
        raise VerificationFailed(f"{origin}: {first_line(error)}", code=Reason.SIGNATURE_INVALID) from None
    return signed


def _check_root_windows(bundle: Bundle, document: Any, *, root: RootMaterial, now: datetime | None) -> None:
    """The root's ``validFor`` windows, for a bundle the ``Verifier`` accepted (see the module docstring).

    Raises:
        VerificationFailed: ``signature-invalid``.
    """
    material = mapping(mapping(document).get("verificationMaterial"))
    entries = material.get("tlogEntries")
    entry = mapping(entries[0]) if isinstance(entries, list) and entries else {}
    integrated_time = int(entry.get("integratedTime") or 0)
    # As the Verifier: the integrated time is a verified time only with the promise (SET) that signs it.
    if integrated_time and entry.get("inclusionPromise"):
        log_id = b64(mapping(entry.get("logId")).get("keyId"), "bundle log entry logId.keyId").hex()
        log_key = root.tlog_keys.get(log_id)
        if log_key is None:
            # The Verifier tries every Rekor key of the root when none has the entry's log id.
            raise signature_invalid(
                f"the log entry names log {log_id[:16]}, which trust root {root.name!r} has no key for"
            )
        check_integrated_time(integrated_time, log_key=log_key, now=now)
    # The times the Verifier established and checked the certificate at (TSA times, the integrated
    # time); sigstore is pinned to 4.5.x, whose Verifier has no public way to say which they were.
    times = [verified.time for verified in root.verifier._establish_time(bundle)]
    verify_certificate(bundle.signing_certificate, root=root, times=times, chained=True)


def check_root_windows_at(root: RootMaterial, *, when: datetime, now: datetime | None) -> None:
    """The root's ``validFor`` windows for a keyless signature certified and logged at ``when``, as
    :func:`verify_keyless_bundle` holds a real bundle to them: a Rekor key of ``root`` valid then
    (:func:`~webhook.verify.rekor.check_logged_at`), and a Fulcio CA and a CT log key valid then
    (:func:`~webhook.verify.certificates.check_issuable_at`). For signatures that are declared rather
    than made (hermetic policy tests), so that what passes there is not refused live for a retired key.

    Raises:
        VerificationFailed: ``signature-invalid``.
    """
    check_logged_at(when, log_keys=root.tlog_keys.values(), now=now)
    check_issuable_at(root, when)


def verify_bundle(
    content: bytes,
    *,
    root: RootMaterial,
    policy: Any,
    artifact: bytes | None = None,
    digest: str | None = None,
    origin: str = "bundle",
) -> SignedPayload:
    """Fully verify a keyless bundle: cryptography, identity ``policy``, and what it is about.

    ``policy`` is a sigstore ``VerificationPolicy`` (e.g. :class:`~webhook.verify.identity.SignerPolicy`).
    What it is about: ``artifact`` (bytes) or ``digest`` (``<alg>:<hex>``); a message signature must be
    over it, a DSSE statement must have it as a subject. With neither, a DSSE payload is returned as is.

    Raises:
        VerificationFailed: ``signature-invalid``, ``identity-mismatch`` or ``attestation-invalid``.
    """
    if artifact is not None:
        digest = "sha256:" + hashlib.sha256(artifact).hexdigest()
    signed = verify_keyless_bundle(content, root=root, origin=origin, digest=digest)
    if signed.certificate is None:
        raise VerificationFailed(f"{origin} carries no signing certificate", code=Reason.SIGNATURE_INVALID)
    try:
        policy.verify(signed.certificate)
    except _ERRORS as error:
        found = CertIdentity.from_certificate(signed.certificate).describe()
        raise VerificationFailed(
            f"{origin}: signed by {found}: {first_line(error)}", code=Reason.IDENTITY_MISMATCH
        ) from None
    if signed.payload_type is not None and digest is not None:
        statement = signed.statement()
        if not statement_covers(statement, digest):
            raise VerificationFailed(
                f"{origin}: the statement's subjects do not include {digest}", code=Reason.ATTESTATION_INVALID
            )
    return signed


def verify_key_bundle(
    content: bytes,
    *,
    key: PublicKey,
    key_name: str,
    tlog_keys: Mapping[str, PublicKey] | None,
    require_tlog: bool,
    origin: str = "bundle",
    now: datetime | None = None,
) -> SignedPayload:
    """Verify a bundle signed with a public key, through :mod:`webhook.verify.keys`.

    A DSSE bundle yields its payload; a message-signature bundle yields ``message_digest`` (the
    ``sha256:<hex>`` it signs), which the caller must compare with what it expects.

    Raises:
        VerificationFailed: ``signature-invalid`` with the reason.
    """
    try:
        result = keys.verify_key_bundle(content, key, tlog_keys=tlog_keys, require_tlog=require_tlog, now=now)
    except VerificationFailed:
        raise
    except _ERRORS as error:
        raise VerificationFailed(f"{origin}: {first_line(error)}", code=Reason.SIGNATURE_INVALID) from None
    if result is None:
        raise VerificationFailed(f"{origin} is not signed by key {key_name}", code=Reason.SIGNATURE_INVALID)
    payload_type, payload = result
    if payload_type == "":
        # A message signature: keys.py hands back the raw SHA-256 it covers; callers compare it.
        return SignedPayload(origin=origin, message_digest="sha256:" + payload.hex(), key=key_name)
    return SignedPayload(origin=origin, payload_type=payload_type, payload=payload, key=key_name)


def statement_covers(statement: Statement, digest: str) -> bool:
    """Whether a subject of ``statement`` has exactly ``digest`` (``sha256:`` compared via the statement)."""
    if digest.startswith("sha256:"):
        return statement.covers(digest)
    match = _DIGEST.fullmatch(digest)
    if match is None:
        return False
    algorithm, hexdigest = match.groups()
    return any(subject.digests.get(algorithm) == hexdigest for subject in statement.subjects)


def peek_predicate_type(content: bytes) -> str | None:
    """The predicate type a DSSE bundle CLAIMS, read without verification (for explanations only)."""
    document = _json(content)
    envelope = document.get("dsseEnvelope") if isinstance(document, dict) else None
    if not isinstance(envelope, dict):
        return None
    return _predicate_type_of_payload(envelope.get("payload"))


def _predicate_type_of_payload(payload: object) -> str | None:
    if not isinstance(payload, str):
        return None
    try:
        statement = json.loads(base64.b64decode(payload, validate=True))
    except (ValueError, binascii.Error, RecursionError):
        return None
    value = statement.get("predicateType") if isinstance(statement, dict) else None
    return value if isinstance(value, str) else None


def _hashed(digest: str) -> Hashed:
    match = _DIGEST.fullmatch(digest)
    if match is None:
        raise VerificationFailed(
            f"cannot verify against malformed digest {digest!r}", code=Reason.SIGNATURE_INVALID
        )
    algorithm, hexdigest = match.groups()
    return Hashed(algorithm=_HASHES[algorithm], digest=bytes.fromhex(hexdigest))


def _promised_time(document: Any) -> datetime | None:
    """The log entry's integrated time, when an inclusion promise (a signed timestamp) comes with it.

    Read from a bundle sigstore's Verifier has just accepted: with a promise, it verified the promise,
    which signs the integrated time. Without one (Rekor v2 entries carry none) there is no log time.
    """
    material = document.get("verificationMaterial") if isinstance(document, dict) else None
    entries = material.get("tlogEntries") if isinstance(material, dict) else None
    if not isinstance(entries, list) or len(entries) != 1 or not isinstance(entries[0], dict):
        return None
    entry = entries[0]
    if not entry.get("inclusionPromise"):
        return None
    try:
        return datetime.fromtimestamp(integer(entry.get("integratedTime"), "integratedTime"), tz=UTC)
    except (VerificationFailed, OverflowError, OSError, ValueError):
        return None


def _json(content: bytes) -> Any:
    try:
        return json.loads(content)
    except (ValueError, RecursionError):
        return None
