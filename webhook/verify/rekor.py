"""Rekor transparency-log evidence: inclusion promises (SETs) and the entry bodies they vouch for.

The evidence is the Rekor *inclusion promise* (SET): an ECDSA signature by the log over the RFC 8785
JSON ``{body, integratedTime, logID, logIndex}``, checked with the log key whose trusted-root ``logId``
(for Rekor v1 the sha256 of its DER SubjectPublicKeyInfo, hex) is ``logID``, and only inside that key's
validity. The entry body must be of the kind that fits what was signed (``hashedrekord`` 0.0.1 for a
message signature or ``.sig`` layer, ``dsse`` 0.0.1 or ``intoto`` 0.0.2 for an envelope) and name the
same signature, the same key or certificate and the same signed digest. A SET proves that Rekor
*promised* to include the entry, which is what cosign accepts offline; inclusion proofs, checkpoints and
RFC 3161 timestamps are not checked here (Rekor v2 entries, which have only those, count as no
evidence).

Evidence that is present and checkable must be valid, whatever ``require_tlog`` says; evidence that
cannot be checked (no log keys, a log we do not know, no SET, an entry kind we do not read) is a failure
only under ``require_tlog``. Every failure is ``signature-invalid``.
"""

from __future__ import annotations

__all__ = [
    "TlogExpectation",
    "check_bundle_tlog",
    "check_integrated_time",
    "check_logged_at",
    "verify_legacy_set",
]

import base64
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import rfc8785
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

from webhook._json import mapping
from webhook.errors import VerificationFailed
from webhook.images.reference import SHA256_HEX_RE
from webhook.times import CLOCK_SKEW
from webhook.verify.evidence import b64, integer, load_json, signature_invalid, unverifiable
from webhook.verify.signatures import PublicKey, verify_signature

# Rekor entry kinds whose body this module can tie to a signature.
_ENTRY_KINDS = frozenset({("hashedrekord", "0.0.1"), ("dsse", "0.0.1"), ("intoto", "0.0.2")})


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


def check_bundle_tlog(
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
        raise signature_invalid("bundle tlogEntries is not a list")
    if len(entries) > 1:
        raise signature_invalid(f"bundle has {len(entries)} transparency log entries, expected at most 1")
    if not entries:
        unverifiable("bundle has no transparency log entry", require_tlog)
        return
    entry = entries[0]
    if not isinstance(entry, dict):
        raise signature_invalid("bundle tlogEntries[0] is not an object")
    promise = entry.get("inclusionPromise")
    if not isinstance(promise, dict) or not promise.get("signedEntryTimestamp"):
        unverifiable(
            "bundle log entry has no inclusion promise (SET); inclusion proofs are not checked", require_tlog
        )
        return
    body = b64(entry.get("canonicalizedBody"), "bundle log entry canonicalizedBody")
    log_id = b64(mapping(entry.get("logId")).get("keyId"), "bundle log entry logId.keyId").hex()
    integrated_time = integer(entry.get("integratedTime"), "bundle log entry integratedTime")
    log_index = integer(entry.get("logIndex"), "bundle log entry logIndex")
    log_key = (tlog_keys or {}).get(log_id)
    if log_key is None:
        reason = f"bundle log entry is from log {log_id[:16]}, unknown to the trusted roots"
        unverifiable(reason, require_tlog)
        return
    _verify_set(
        log_id=log_id,
        body_b64=base64.b64encode(body).decode("ascii"),
        integrated_time=integrated_time,
        log_index=log_index,
        log_key=log_key,
        signed_entry_timestamp=b64(promise["signedEntryTimestamp"], "bundle signedEntryTimestamp"),
        now=now,
    )
    entry_kind = _check_entry_body(body, expectation, require_tlog=require_tlog)
    declared = mapping(entry.get("kindVersion")).get("kind")
    if entry_kind is not None and declared is not None and declared != entry_kind:
        raise signature_invalid(f"bundle log entry kindVersion says {declared!r}, its body is {entry_kind!r}")


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
        VerificationFailed: ``signature-invalid``.
    """
    document = load_json(bundle_annotation.encode("utf-8"), "cosign bundle annotation")
    if not isinstance(document, dict):
        raise signature_invalid("cosign bundle annotation is not a JSON object")
    payload = document.get("Payload")
    if not isinstance(payload, dict):
        raise signature_invalid("cosign bundle annotation has no Payload object")
    body_b64 = payload.get("body")
    if not isinstance(body_b64, str):
        raise signature_invalid("cosign bundle annotation Payload.body is not a string")
    log_id = payload.get("logID")
    if not isinstance(log_id, str) or not SHA256_HEX_RE.fullmatch(log_id):
        raise signature_invalid(
            f"cosign bundle annotation Payload.logID {log_id!r} is not 64 lower-case hex digits"
        )
    integrated_time = integer(payload.get("integratedTime"), "cosign bundle Payload.integratedTime")
    log_index = integer(payload.get("logIndex"), "cosign bundle Payload.logIndex")
    log_key = tlog_keys.get(log_id)
    if log_key is None:
        raise signature_invalid(
            f"cosign bundle annotation comes from log {log_id[:16]}, which no trusted root names"
        )
    _verify_set(
        log_id=log_id,
        body_b64=body_b64,
        integrated_time=integrated_time,
        log_index=log_index,
        log_key=log_key,
        signed_entry_timestamp=b64(document.get("SignedEntryTimestamp"), "SignedEntryTimestamp"),
        now=now,
    )
    if expect is not None:
        _check_entry_body(b64(body_b64, "cosign bundle Payload.body"), expect, require_tlog=True)
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
        raise signature_invalid(
            f"transparency log promise (SET) does not verify with {log_key.name} (log {log_id[:16]}, "
            f"entry {log_index}, integrated time {integrated_time})"
        )
    check_integrated_time(integrated_time, log_key=log_key, now=now)


def check_integrated_time(integrated_time: int, *, log_key: PublicKey, now: datetime | None) -> None:
    """Refuse an entry the log integrated outside ``log_key``'s window (its ``end`` included), or, with
    ``now``, in the future: a retired log key vouches for nothing it signed afterwards.

    Raises:
        VerificationFailed: ``signature-invalid``.
    """
    when = datetime.fromtimestamp(integrated_time, tz=UTC)
    if log_key.valid_from is not None and when < log_key.valid_from:
        raise signature_invalid(f"integrated time {when.isoformat()} is before {log_key.name} became valid")
    if log_key.valid_until is not None and when > log_key.valid_until:
        raise signature_invalid(
            f"integrated time {when.isoformat()} is after {log_key.name} stopped being valid"
        )
    if now is not None and when > now + CLOCK_SKEW:
        raise signature_invalid(
            f"integrated time {when.isoformat()} is in the future (now {now.isoformat()})"
        )


def check_logged_at(when: datetime, *, log_keys: Iterable[PublicKey], now: datetime | None) -> None:
    """Refuse an entry integrated at ``when`` unless one of ``log_keys`` could have signed it then
    (:func:`check_integrated_time`): for an entry declared rather than read, whose log key is not named.

    Raises:
        VerificationFailed: ``signature-invalid`` with each key's refusal.
    """
    refusals: list[str] = []
    for log_key in log_keys:
        try:
            check_integrated_time(int(when.timestamp()), log_key=log_key, now=now)
        except VerificationFailed as error:
            refusals.append(error.user_message)
        else:
            return
    detail = "; ".join(refusals) or "there is none"
    raise signature_invalid(f"no transparency log key of the trust root could have logged it: {detail}")


def _check_entry_body(body: bytes, expect: TlogExpectation, *, require_tlog: bool) -> str | None:
    """Check that a Rekor entry body vouches for ``expect``: its kind, or None when it is not one we read."""
    document = load_json(body, "log entry body")
    if not isinstance(document, dict):
        raise signature_invalid("log entry body is not a JSON object")
    kind, version = document.get("kind"), document.get("apiVersion")
    if (kind, version) not in _ENTRY_KINDS:
        unverifiable(f"log entry kind {kind!r} version {version!r} is not supported", require_tlog)
        return None
    if expect.kinds and kind not in expect.kinds:
        raise signature_invalid(
            f"log entry is a {kind!r} entry, expected {' or '.join(map(repr, expect.kinds))}"
        )
    spec = mapping(document.get("spec"))
    if (kind, version) == ("hashedrekord", "0.0.1"):
        signature = mapping(spec.get("signature"))
        pairs = [(signature.get("content"), mapping(signature.get("publicKey")).get("content"), False)]
        digest = mapping(mapping(spec.get("data")).get("hash"))
    elif (kind, version) == ("dsse", "0.0.1"):
        signatures = spec.get("signatures")
        pairs = [
            (mapping(item).get("signature"), mapping(item).get("verifier"), False)
            for item in (signatures if isinstance(signatures, list) else [])
        ]
        digest = mapping(spec.get("payloadHash"))
    else:  # intoto 0.0.2
        content = mapping(spec.get("content"))
        signatures = mapping(content.get("envelope")).get("signatures")
        # intoto 0.0.2 stores each signature base64-encoded twice.
        pairs = [
            (mapping(item).get("sig"), mapping(item).get("publicKey"), True)
            for item in (signatures if isinstance(signatures, list) else [])
        ]
        digest = mapping(content.get("payloadHash"))

    if digest.get("algorithm") != "sha256" or digest.get("value") != expect.data_sha256:
        raise signature_invalid(
            f"log entry ({kind}) is for digest {digest.get('algorithm')}:{digest.get('value')}, "
            f"expected sha256:{expect.data_sha256}"
        )
    for encoded_signature, encoded_verifier, twice in pairs:
        if _entry_signature(encoded_signature, twice=twice) != expect.signature:
            continue
        if _entry_verifier_matches(encoded_verifier, expect):
            return str(kind)
        raise signature_invalid(f"log entry ({kind}) names the signature with a different key or certificate")
    raise signature_invalid(f"log entry ({kind}) does not contain the bundle's signature")


def _entry_signature(value: object, *, twice: bool) -> bytes | None:
    try:
        decoded = b64(value, "log entry signature")
        return b64(decoded.decode("ascii"), "log entry signature") if twice else decoded
    except (VerificationFailed, UnicodeDecodeError):
        return None


def _entry_verifier_matches(value: object, expect: TlogExpectation) -> bool:
    try:
        pem = b64(value, "log entry verifier")
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
