"""Public-key signatures: key loading, DSSE envelopes, key-signed Sigstore bundles and Rekor SETs.

sigstore-python 4.5.1 verifies only certificate (keyless) bundles, so what ``cosign sign --key`` and
``cosign attest --key`` produce is verified here with ``cryptography`` alone.

Algorithms (what cosign and the DSSE reference produce):

* ECDSA P-256 with SHA-256; ECDSA P-384 with SHA-384 **or SHA-256** (cosign hashes with SHA-256 whatever
  the curve unless told otherwise, so both are accepted for P-384); signatures DER-encoded or raw
  ``r || s`` (IEEE P1363, used by the DSSE test vectors and by KMS-backed signers such as Google's);
* Ed25519 (over the message itself; it cannot verify a message signature given only a digest);
* RSA (at least 2048 bits) PKCS#1 v1.5 or PSS (MGF1, any salt length), both with SHA-256.

Transparency-log evidence for key bundles is the Rekor *inclusion promise* (SET): an ECDSA signature by
the log over the RFC 8785 JSON ``{body, integratedTime, logID, logIndex}``, checked with the log key whose
trusted-root ``logId`` (for Rekor v1 the sha256 of its DER SubjectPublicKeyInfo, hex) is ``logID``, and
only inside that key's validity. The entry body must be of the kind that fits the bundle
(``hashedrekord`` 0.0.1 for a message signature, ``dsse`` 0.0.1 or ``intoto`` 0.0.2 for an envelope) and
name the same signature, the same key and the same signed digest. A SET proves that Rekor *promised* to
include the entry, which is what cosign accepts offline; inclusion proofs, checkpoints and RFC 3161
timestamps are not checked here (Rekor v2 entries, which have only those, count as no evidence).

Evidence that is present and checkable must be valid, whatever ``require_tlog`` says; evidence that
cannot be checked (no log keys, a log we do not know, no SET, an entry kind we do not read) is a failure
only under ``require_tlog``.
"""

from __future__ import annotations

__all__ = [
    "KeyObject",
    "PublicKey",
    "TlogExpectation",
    "load_public_key",
    "pae",
    "verify_dsse_envelope",
    "verify_key_bundle",
    "verify_legacy_set",
    "verify_signature",
]

import base64
import binascii
import hashlib
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import rfc8785
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa, utils

from webhook.errors import ConfigError, VerificationFailed
from webhook.policy import material

_logger = logging.getLogger(__name__)

KeyObject = material.KeyObject

_SIGNATURE_INVALID = "signature-invalid"
_BUNDLE_MEDIA_TYPES = frozenset(
    {
        "application/vnd.dev.sigstore.bundle+json;version=0.1",
        "application/vnd.dev.sigstore.bundle+json;version=0.2",
        "application/vnd.dev.sigstore.bundle+json;version=0.3",
        "application/vnd.dev.sigstore.bundle.v0.3+json",
    }
)
# Bundles and legacy annotations are small JSON documents; a cap keeps a hostile layer from costing
# more than a parse of this size.
_MAX_BUNDLE_BYTES = 8 * 1024 * 1024
# Clock skew allowed between Rekor and this cluster when an integrated time is checked against now.
_CLOCK_SKEW = timedelta(minutes=5)
_HEX64 = re.compile(r"[0-9a-f]{64}")
# Rekor entry kinds whose body this module can tie to a signature.
_ENTRY_KINDS = frozenset({("hashedrekord", "0.0.1"), ("dsse", "0.0.1"), ("intoto", "0.0.2")})


@dataclass(frozen=True, slots=True)
class PublicKey:
    """A public key accepted for verification (type and size checked by :func:`load_public_key`).

    Attributes:
        name: where it came from (policy key name, or ``tlog <url>`` for a log key); used in messages.
        key: the ``cryptography`` key object.
        spki_der: its DER SubjectPublicKeyInfo; two keys are the same key exactly when these are equal.
        valid_from, valid_until: validity of a transparency-log key (from a trusted root), else None.
    """

    name: str
    key: KeyObject = field(compare=False, hash=False, repr=False)
    spki_der: bytes = field(repr=False)
    valid_from: datetime | None = None
    valid_until: datetime | None = None

    @property
    def key_id(self) -> str:
        """sha256 of the DER SubjectPublicKeyInfo, lower-case hex (Rekor's log id)."""
        return hashlib.sha256(self.spki_der).hexdigest()

    @property
    def algorithm(self) -> str:
        """``ecdsa-p256``, ``ecdsa-p384``, ``ed25519`` or ``rsa-<bits>``."""
        key = self.key
        if isinstance(key, ec.EllipticCurvePublicKey):
            return "ecdsa-p256" if isinstance(key.curve, ec.SECP256R1) else "ecdsa-p384"
        if isinstance(key, ed25519.Ed25519PublicKey):
            return "ed25519"
        return f"rsa-{key.key_size}"


@dataclass(frozen=True, slots=True)
class TlogExpectation:
    """What a Rekor entry body must say for it to vouch for one signature.

    Attributes:
        signature: the raw signature bytes that were verified.
        data_sha256: hex sha256 of what was signed: the message for ``hashedrekord``, the DSSE payload
            for ``dsse`` and ``intoto`` entries.
        public_key: the verifying key (key-signed), or
        certificate_der: the signing certificate (keyless); exactly one of the two is set.
        kinds: the entry kinds accepted (``hashedrekord`` for a signed message or ``.sig`` layer,
            ``dsse``/``intoto`` for an envelope); empty accepts any kind this module reads.
    """

    signature: bytes
    data_sha256: str
    public_key: PublicKey | None = None
    certificate_der: bytes | None = None
    kinds: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if (self.public_key is None) == (self.certificate_der is None):
            raise ValueError("TlogExpectation needs exactly one of public_key and certificate_der")


# --------------------------------------------------------------------------------------------------
# Keys and raw signatures


def load_public_key(pem: bytes, *, name: str) -> PublicKey:
    """Load a PEM (or DER) SubjectPublicKeyInfo: ECDSA P-256/P-384, Ed25519 or RSA >= 2048 bits.

    The rules are :func:`webhook.policy.material.public_key`'s, the ones ``imagegate lint`` applies.

    Raises:
        ConfigError: the data is not a public key, or its type or size is not accepted.
    """
    try:
        key = material.public_key(pem)
    except material.MaterialError as error:
        raise ConfigError(f"key {name!r}: {error.message}") from None
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return PublicKey(name=name, key=key, spki_der=der)


def verify_signature(key: PublicKey, signature: bytes, data: bytes) -> bool:
    """Whether ``signature`` is ``key``'s signature over ``data`` (algorithms in the module docstring).

    Never raises for a bad or malformed signature: it answers False.
    """
    public = key.key
    if isinstance(public, ed25519.Ed25519PublicKey):
        try:
            public.verify(signature, data)
        except InvalidSignature:
            return False
        return True
    if isinstance(public, ec.EllipticCurvePublicKey):
        algorithms: tuple[hashes.HashAlgorithm, ...] = (hashes.SHA256(),)
        if isinstance(public.curve, ec.SECP384R1):
            algorithms = (hashes.SHA384(), hashes.SHA256())
        return any(_verify_ecdsa(public, signature, data, algorithm) for algorithm in algorithms)
    return _verify_rsa(public, signature, data, hashes.SHA256())


def _verify_prehashed(key: PublicKey, signature: bytes, digest: bytes) -> bool:
    """Whether ``signature`` signs the message whose SHA-256 is ``digest`` (message-signature bundles)."""
    public = key.key
    if len(digest) != hashlib.sha256().digest_size or isinstance(public, ed25519.Ed25519PublicKey):
        return False
    prehashed = utils.Prehashed(hashes.SHA256())
    if isinstance(public, ec.EllipticCurvePublicKey):
        return _verify_ecdsa(public, signature, digest, prehashed)
    return _verify_rsa(public, signature, digest, prehashed)


def _verify_ecdsa(
    public: ec.EllipticCurvePublicKey,
    signature: bytes,
    data: bytes,
    algorithm: hashes.HashAlgorithm | utils.Prehashed,
) -> bool:
    for candidate in _ecdsa_encodings(public, signature):
        try:
            public.verify(candidate, data, ec.ECDSA(algorithm))
        except InvalidSignature:
            continue
        return True
    return False


def _ecdsa_encodings(public: ec.EllipticCurvePublicKey, signature: bytes) -> list[bytes]:
    """The DER signature as given, plus its DER form when it is a raw ``r || s`` of the curve's size."""
    candidates = [signature]
    size = (public.curve.key_size + 7) // 8
    if len(signature) == 2 * size:
        r = int.from_bytes(signature[:size], "big")
        s = int.from_bytes(signature[size:], "big")
        candidates.append(utils.encode_dss_signature(r, s))
    return candidates


def _verify_rsa(
    public: rsa.RSAPublicKey, signature: bytes, data: bytes, algorithm: hashes.HashAlgorithm | utils.Prehashed
) -> bool:
    schemes: tuple[padding.AsymmetricPadding, ...] = (
        padding.PKCS1v15(),
        padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.AUTO),
    )
    for scheme in schemes:
        try:
            public.verify(signature, data, scheme, algorithm)
        except (InvalidSignature, ValueError):
            continue
        return True
    return False


# --------------------------------------------------------------------------------------------------
# DSSE


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE pre-authentication encoding: ``DSSEv1 SP len(type) SP type SP len(body) SP body``.

    Lengths are byte lengths in ASCII decimal; the type is UTF-8 encoded.
    """
    encoded = payload_type.encode("utf-8")
    return b"DSSEv1 %d %b %d %b" % (len(encoded), encoded, len(payload), payload)


def verify_dsse_envelope(envelope: Mapping[str, Any] | bytes, key: PublicKey) -> tuple[str, bytes]:
    """Verify a DSSE envelope with one key; any of its signatures that verifies is enough.

    ``envelope`` is the parsed JSON object, or its bytes (a legacy ``.att`` layer as fetched). Base64
    fields may use either alphabet (the DSSE protocol requires verifiers to accept both).

    Returns:
        ``(payloadType, payload)``; the caller still checks the payload type and parses the payload.

    Raises:
        VerificationFailed: ``code="signature-invalid"``: malformed envelope, or no signature by ``key``.
    """
    payload_type, payload, _signature = _verify_envelope(envelope, key)
    return payload_type, payload


def _verify_envelope(envelope: Mapping[str, Any] | bytes, key: PublicKey) -> tuple[str, bytes, bytes]:
    payload_type, payload, signatures = _read_envelope(envelope)
    message = pae(payload_type, payload)
    for signature in signatures:
        if verify_signature(key, signature, message):
            return payload_type, payload, signature
    raise _failed(
        f"DSSE envelope: none of its {len(signatures)} signature(s) verifies with key {key.name!r} "
        f"({key.algorithm}, id {key.key_id[:16]})"
    )


def _read_envelope(envelope: Mapping[str, Any] | bytes) -> tuple[str, bytes, list[bytes]]:
    if isinstance(envelope, bytes):
        envelope = _load_json(envelope, "DSSE envelope")
    if not isinstance(envelope, Mapping):
        raise _failed(f"DSSE envelope is a {type(envelope).__name__}, expected a JSON object")
    payload_type = envelope.get("payloadType")
    if not isinstance(payload_type, str):
        raise _failed("DSSE envelope has no payloadType string")
    payload = _b64(envelope.get("payload"), "DSSE payload")
    entries = envelope.get("signatures")
    if not isinstance(entries, list) or not entries:
        raise _failed("DSSE envelope has no signatures")
    signatures = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, Mapping):
            raise _failed(f"DSSE signatures[{index}] is not an object")
        signatures.append(_b64(entry.get("sig"), f"DSSE signatures[{index}].sig"))
    return payload_type, payload, signatures


# --------------------------------------------------------------------------------------------------
# Sigstore bundles signed with a key


def verify_key_bundle(
    bundle_json: bytes,
    key: PublicKey,
    *,
    tlog_keys: Mapping[str, PublicKey] | None,
    require_tlog: bool,
    now: datetime | None = None,
) -> tuple[str, bytes] | None:
    """Verify a Sigstore bundle (v0.1-v0.3) whose verification material is a public key.

    Args:
        bundle_json: the bundle document.
        key: the key the policy trusts.
        tlog_keys: Rekor keys by log id (hex), from :func:`webhook.verify.trust.tlog_keys`; None when no
            trusted root is configured.
        require_tlog: demand a verified Rekor inclusion promise for the signature.
        now: when given, an integrated time later than now (plus a little skew) is refused.

    Returns:
        ``(payloadType, payload)`` for a DSSE bundle; ``("", digest)`` for a message-signature bundle,
        where ``digest`` is the raw SHA-256 (32 bytes) the signature covers: the caller must compare it
        with the sha256 of the artifact it expects. None when the bundle is not signed by ``key`` (it is a
        certificate bundle, or its signature does not verify with this key), so another signer may be
        tried.

    Raises:
        VerificationFailed: ``code="signature-invalid"``: malformed or unsupported bundle, transparency
            evidence that is invalid or does not match, or (``require_tlog``) evidence that is missing or
            cannot be checked.
    """
    bundle = _load_json(bundle_json, "bundle")
    if not isinstance(bundle, dict):
        raise _failed("bundle is not a JSON object")
    media_type = bundle.get("mediaType")
    if media_type not in _BUNDLE_MEDIA_TYPES:
        raise _failed(f"bundle media type {media_type!r} is not a supported Sigstore bundle version")
    material = bundle.get("verificationMaterial")
    if not isinstance(material, dict):
        raise _failed("bundle has no verificationMaterial")
    if "publicKey" not in material:
        if "certificate" in material or "x509CertificateChain" in material:
            _logger.debug("bundle carries a certificate, not a public key: not for key %s", key.name)
            return None
        raise _failed("bundle verificationMaterial has neither a public key nor a certificate")

    has_dsse = "dsseEnvelope" in bundle
    has_message = "messageSignature" in bundle
    if has_dsse == has_message:
        raise _failed("bundle must hold exactly one of dsseEnvelope and messageSignature")
    result: tuple[str, bytes]
    if has_dsse:
        envelope = bundle["dsseEnvelope"]
        _, _, signatures = _read_envelope(envelope)
        if len(signatures) != 1:
            # A bundle's log entry vouches for one signature; sigstore clients refuse others too.
            raise _failed(f"bundle DSSE envelope has {len(signatures)} signatures, expected exactly 1")
        try:
            payload_type, payload, signature = _verify_envelope(envelope, key)
        except VerificationFailed:
            return None
        result = (payload_type, payload)
        expectation = TlogExpectation(
            signature, hashlib.sha256(payload).hexdigest(), public_key=key, kinds=("dsse", "intoto")
        )
    else:
        digest, signature = _read_message_signature(bundle["messageSignature"])
        if not _verify_prehashed(key, signature, digest):
            return None
        result = ("", digest)
        expectation = TlogExpectation(signature, digest.hex(), public_key=key, kinds=("hashedrekord",))

    _check_bundle_tlog(material, expectation, tlog_keys=tlog_keys, require_tlog=require_tlog, now=now)
    return result


def _read_message_signature(value: object) -> tuple[bytes, bytes]:
    if not isinstance(value, dict):
        raise _failed("bundle messageSignature is not an object")
    message_digest = value.get("messageDigest")
    if not isinstance(message_digest, dict):
        raise _failed("bundle messageSignature has no messageDigest")
    algorithm = message_digest.get("algorithm")
    if algorithm != "SHA2_256":
        raise _failed(f"bundle message digest algorithm is {algorithm!r}, expected 'SHA2_256'")
    digest = _b64(message_digest.get("digest"), "bundle messageDigest.digest")
    if len(digest) != hashlib.sha256().digest_size:
        raise _failed(f"bundle message digest is {len(digest)} bytes, expected 32")
    return digest, _b64(value.get("signature"), "bundle messageSignature.signature")


def _check_bundle_tlog(
    material: Mapping[str, Any],
    expectation: TlogExpectation,
    *,
    tlog_keys: Mapping[str, PublicKey] | None,
    require_tlog: bool,
    now: datetime | None,
) -> None:
    entries = material.get("tlogEntries", [])
    if entries is None:
        entries = []
    if not isinstance(entries, list):
        raise _failed("bundle tlogEntries is not a list")
    if len(entries) > 1:
        raise _failed(f"bundle has {len(entries)} transparency log entries, expected at most 1")
    if not entries:
        _unverifiable("bundle has no transparency log entry", require_tlog)
        return
    entry = entries[0]
    if not isinstance(entry, dict):
        raise _failed("bundle tlogEntries[0] is not an object")
    promise = entry.get("inclusionPromise")
    if not isinstance(promise, dict) or not promise.get("signedEntryTimestamp"):
        _unverifiable(
            "bundle log entry has no inclusion promise (SET); inclusion proofs are not checked", require_tlog
        )
        return
    body = _b64(entry.get("canonicalizedBody"), "bundle log entry canonicalizedBody")
    log_id = _b64(_mapping(entry.get("logId")).get("keyId"), "bundle log entry logId.keyId").hex()
    integrated_time = _integer(entry.get("integratedTime"), "bundle log entry integratedTime")
    log_index = _integer(entry.get("logIndex"), "bundle log entry logIndex")
    log_key = (tlog_keys or {}).get(log_id)
    if log_key is None:
        reason = f"bundle log entry is from log {log_id[:16]}, unknown to the trusted roots"
        _unverifiable(reason, require_tlog)
        return
    _verify_set(
        log_id=log_id,
        body_b64=base64.b64encode(body).decode("ascii"),
        integrated_time=integrated_time,
        log_index=log_index,
        log_key=log_key,
        signed_entry_timestamp=_b64(promise["signedEntryTimestamp"], "bundle signedEntryTimestamp"),
        now=now,
    )
    entry_kind = _check_entry_body(body, expectation, require_tlog=require_tlog)
    declared = _mapping(entry.get("kindVersion")).get("kind")
    if entry_kind is not None and declared is not None and declared != entry_kind:
        raise _failed(f"bundle log entry kindVersion says {declared!r}, its body is {entry_kind!r}")


# --------------------------------------------------------------------------------------------------
# Rekor SETs and entry bodies


def verify_legacy_set(
    bundle_annotation: str,
    *,
    tlog_keys: Mapping[str, PublicKey],
    expect: TlogExpectation | None = None,
    now: datetime | None = None,
) -> int:
    """Verify the SET in cosign's legacy layer annotation ``dev.sigstore.cosign/bundle``.

    The annotation is ``{"SignedEntryTimestamp": b64, "Payload": {"body": b64, "integratedTime": int,
    "logIndex": int, "logID": hex}}``. With ``expect``, the entry body must also name that signature,
    verifier and signed digest; without it, only the log's promise is checked and the caller must tie
    the entry to the layer itself.

    Returns:
        The integrated time (seconds since the epoch).

    Raises:
        VerificationFailed: ``code="signature-invalid"``.
    """
    document = _load_json(bundle_annotation.encode("utf-8"), "cosign bundle annotation")
    if not isinstance(document, dict):
        raise _failed("cosign bundle annotation is not a JSON object")
    payload = document.get("Payload")
    if not isinstance(payload, dict):
        raise _failed("cosign bundle annotation has no Payload object")
    body_b64 = payload.get("body")
    if not isinstance(body_b64, str):
        raise _failed("cosign bundle annotation Payload.body is not a string")
    log_id = payload.get("logID")
    if not isinstance(log_id, str) or not _HEX64.fullmatch(log_id):
        raise _failed(f"cosign bundle annotation Payload.logID {log_id!r} is not 64 lower-case hex digits")
    integrated_time = _integer(payload.get("integratedTime"), "cosign bundle Payload.integratedTime")
    log_index = _integer(payload.get("logIndex"), "cosign bundle Payload.logIndex")
    log_key = tlog_keys.get(log_id)
    if log_key is None:
        raise _failed(f"cosign bundle annotation comes from log {log_id[:16]}, which no trusted root names")
    _verify_set(
        log_id=log_id,
        body_b64=body_b64,
        integrated_time=integrated_time,
        log_index=log_index,
        log_key=log_key,
        signed_entry_timestamp=_b64(document.get("SignedEntryTimestamp"), "SignedEntryTimestamp"),
        now=now,
    )
    if expect is not None:
        _check_entry_body(_b64(body_b64, "cosign bundle Payload.body"), expect, require_tlog=True)
    return integrated_time


def _verify_set(
    *,
    log_id: str,
    body_b64: str,
    integrated_time: int,
    log_index: int,
    log_key: PublicKey,
    signed_entry_timestamp: bytes,
    now: datetime | None,
) -> None:
    signed = rfc8785.dumps(
        {"body": body_b64, "integratedTime": integrated_time, "logID": log_id, "logIndex": log_index}
    )
    if not verify_signature(log_key, signed_entry_timestamp, signed):
        raise _failed(
            f"transparency log promise (SET) does not verify with {log_key.name} (log {log_id[:16]}, "
            f"entry {log_index}, integrated time {integrated_time})"
        )
    when = datetime.fromtimestamp(integrated_time, tz=UTC)
    if log_key.valid_from is not None and when < log_key.valid_from:
        raise _failed(f"integrated time {when.isoformat()} is before {log_key.name} became valid")
    if log_key.valid_until is not None and when > log_key.valid_until:
        raise _failed(f"integrated time {when.isoformat()} is after {log_key.name} stopped being valid")
    if now is not None and when > now + _CLOCK_SKEW:
        raise _failed(f"integrated time {when.isoformat()} is in the future (now {now.isoformat()})")


def _check_entry_body(body: bytes, expect: TlogExpectation, *, require_tlog: bool) -> str | None:
    """Check that a Rekor entry body vouches for ``expect``: its kind, or None when it is not one we read."""
    document = _load_json(body, "log entry body")
    if not isinstance(document, dict):
        raise _failed("log entry body is not a JSON object")
    kind, version = document.get("kind"), document.get("apiVersion")
    if (kind, version) not in _ENTRY_KINDS:
        _unverifiable(f"log entry kind {kind!r} version {version!r} is not supported", require_tlog)
        return None
    if expect.kinds and kind not in expect.kinds:
        raise _failed(f"log entry is a {kind!r} entry, expected {' or '.join(map(repr, expect.kinds))}")
    spec = _mapping(document.get("spec"))
    if (kind, version) == ("hashedrekord", "0.0.1"):
        signature = _mapping(spec.get("signature"))
        pairs = [(signature.get("content"), _mapping(signature.get("publicKey")).get("content"), False)]
        digest = _mapping(_mapping(spec.get("data")).get("hash"))
    elif (kind, version) == ("dsse", "0.0.1"):
        signatures = spec.get("signatures")
        pairs = [
            (_mapping(item).get("signature"), _mapping(item).get("verifier"), False)
            for item in (signatures if isinstance(signatures, list) else [])
        ]
        digest = _mapping(spec.get("payloadHash"))
    else:  # intoto 0.0.2
        content = _mapping(spec.get("content"))
        signatures = _mapping(content.get("envelope")).get("signatures")
        # intoto 0.0.2 stores each signature base64-encoded twice.
        pairs = [
            (_mapping(item).get("sig"), _mapping(item).get("publicKey"), True)
            for item in (signatures if isinstance(signatures, list) else [])
        ]
        digest = _mapping(content.get("payloadHash"))

    if digest.get("algorithm") != "sha256" or digest.get("value") != expect.data_sha256:
        raise _failed(
            f"log entry ({kind}) is for digest {digest.get('algorithm')}:{digest.get('value')}, "
            f"expected sha256:{expect.data_sha256}"
        )
    for encoded_signature, encoded_verifier, twice in pairs:
        if _entry_signature(encoded_signature, twice=twice) != expect.signature:
            continue
        if _entry_verifier_matches(encoded_verifier, expect):
            return str(kind)
        raise _failed(f"log entry ({kind}) names the signature with a different key or certificate")
    raise _failed(f"log entry ({kind}) does not contain the bundle's signature")


def _entry_signature(value: object, *, twice: bool) -> bytes | None:
    try:
        decoded = _b64(value, "log entry signature")
        return _b64(decoded.decode("ascii"), "log entry signature") if twice else decoded
    except (VerificationFailed, UnicodeDecodeError):
        return None


def _entry_verifier_matches(value: object, expect: TlogExpectation) -> bool:
    try:
        pem = _b64(value, "log entry verifier")
    except VerificationFailed:
        return False
    if b"-----BEGIN CERTIFICATE-----" in pem:
        if expect.certificate_der is None:
            return False
        try:
            certificate = x509.load_pem_x509_certificate(pem)
        except ValueError:
            return False
        return certificate.public_bytes(serialization.Encoding.DER) == expect.certificate_der
    if expect.public_key is None:
        return False
    try:
        found = serialization.load_pem_public_key(pem)
    except (ValueError, UnsupportedAlgorithm):
        return False
    der = found.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return der == expect.public_key.spki_der


# --------------------------------------------------------------------------------------------------
# Helpers


def _unverifiable(reason: str, require_tlog: bool) -> None:
    if require_tlog:
        raise _failed(f"transparency log evidence is required: {reason}")
    _logger.debug("transparency log evidence not checked: %s", reason)


def _failed(message: str) -> VerificationFailed:
    return VerificationFailed(message, code=_SIGNATURE_INVALID)


def _b64(value: object, what: str) -> bytes:
    """Decode standard or URL-safe base64, padded or not; anything else is refused."""
    if not isinstance(value, str):
        raise _failed(f"{what} is not a base64 string")
    text = value.strip().replace("-", "+").replace("_", "/")
    text += "=" * (-len(text) % 4)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise _failed(f"{what} is not valid base64") from None


def _integer(value: object, what: str) -> int:
    # Protobuf JSON writes int64 as a string; cosign's annotation writes a number.
    if isinstance(value, bool):
        raise _failed(f"{what} is not an integer")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.isdigit():
        number = int(value)
    else:
        raise _failed(f"{what} is not a non-negative integer")
    if number < 0:
        raise _failed(f"{what} is negative")
    return number


def _load_json(data: bytes, what: str) -> Any:
    if len(data) > _MAX_BUNDLE_BYTES:
        raise _failed(f"{what} is {len(data)} bytes, more than the {_MAX_BUNDLE_BYTES} allowed")
    try:
        return json.loads(data, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:
        raise _failed(f"{what} is not valid JSON ({exc})") from None


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def _no_constant(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}
