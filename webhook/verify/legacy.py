"""Verify legacy cosign signature layers (``sha256-<hex>.sig`` / ``.att`` tags) offline, as cosign does.

sigstore-python's ``Verifier`` cannot take these layers: they carry a Rekor SET but no inclusion proof.
cosign verifies them offline with the SET, and so do we. For a keyless layer, in order:

1. the signature verifies with the leaf's key: over the layer bytes (``.sig``) or over the DSSE envelope
   (``.att``);
2. the Rekor SET in ``dev.sigstore.cosign/bundle`` is signed by a Rekor key of the root, which
   authenticates the entry body and its integrated time, and the entry body is about this very
   signature: signature, certificate and the hash of the payload (``hashedrekord/0.0.1`` for ``.sig``;
   ``dsse/0.0.1`` or cosign 1.x ``intoto/0.0.2`` for ``.att``), all through
   :func:`webhook.verify.verify_legacy_set`;
3. the Fulcio leaf in ``dev.sigstore.cosign/certificate`` chains to one of the root's CA chains that was
   valid at the integrated time, and the leaf was valid then (the chain annotation is ignored: only
   certificates of the pinned root are trust anchors); its embedded precertificate SCT is signed by a
   CT log key of the root valid then; it has KeyUsage digitalSignature and EKU codeSigning (all
   :func:`webhook.verify.certificates.verify_certificate`, which bundles go through too).

The caller then applies the signer's identity policy and checks what was signed: the simple-signing
``critical.image.docker-manifest-digest`` (``.sig``) or the in-toto subject (``.att``) must equal the
admitted digest. A SET proves that Rekor promised to include the entry, which is weaker than an inclusion
proof and is what cosign accepts offline.

Key-signed layers verify with the named public key; with ``requireTlog`` they also need a SET from one
of the trusted roots' Rekor keys whose entry names that key and signature (a SET that is present and
checkable must be valid in any case). A key-signed layer may carry a certificate (``cosign sign --key
--certificate``) only when the certificate is for that very key: a layer that shows one identity and
is signed by another is inconsistent, and tools that display the certificate would disagree with what
was admitted. Its Rekor entry then names the certificate, as cosign uploads it.

Each Rekor entry must be of the kind that fits the layer: ``hashedrekord`` for ``.sig``, ``dsse`` or
``intoto`` for ``.att``.

Every failure is :class:`~webhook.errors.VerificationFailed` (``signature-invalid``).
"""

from __future__ import annotations

__all__ = [
    "SIMPLE_SIGNING_TYPE",
    "simple_signing_digest",
    "verify_legacy_key",
    "verify_legacy_keyless",
]

import base64
import binascii
import hashlib
import json
import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pydantic
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.x509.verification import VerificationError as X509VerificationError
from sigstore.errors import Error as SigstoreError

from webhook.errors import ConfigError, VerificationFailed
from webhook.reasons import Reason
from webhook.text import first_line
from webhook.verify.bundles import SignedPayload
from webhook.verify.certificates import verify_certificate
from webhook.verify.discovery import LegacyLayer
from webhook.verify.dsse import pae, verify_dsse_envelope
from webhook.verify.rekor import TlogExpectation, verify_legacy_set
from webhook.verify.signatures import PublicKey, load_public_key, verify_signature
from webhook.verify.statements import IN_TOTO_PAYLOAD_TYPE
from webhook.verify.trust import RootMaterial

_logger = logging.getLogger(__name__)

SIMPLE_SIGNING_TYPE = "application/vnd.dev.cosign.simplesigning.v1+json"
_SIMPLE_SIGNING_CLAIM = "cosign container image signature"
_SIGNATURE = "dev.cosignproject.cosign/signature"
_CERTIFICATE = "dev.sigstore.cosign/certificate"
_BUNDLE = "dev.sigstore.cosign/bundle"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ERRORS = (
    SigstoreError,
    pydantic.ValidationError,
    ValueError,
    KeyError,
    TypeError,
    binascii.Error,
    UnsupportedAlgorithm,
    X509VerificationError,
)


class _Failed(Exception):
    """Internal: one verification step failed (message says which)."""


def verify_legacy_keyless(
    layer: LegacyLayer, *, root: RootMaterial, now: datetime | None = None
) -> SignedPayload:
    """Verify a keyless ``.sig``/``.att`` layer against ``root`` (identity NOT checked; see module doc).

    ``now``, when given, refuses integrated times in the future.

    Raises:
        VerificationFailed: ``signature-invalid`` naming the failed step.
    """
    origin = layer.describe()
    try:
        certificate_pem = layer.annotation(_CERTIFICATE)
        if not certificate_pem:
            raise _Failed("no signing certificate annotation (a key-signed layer?)")
        leaf = x509.load_pem_x509_certificate(certificate_pem.encode())
        bundle_annotation = layer.annotation(_BUNDLE)
        if not bundle_annotation:
            raise _Failed("no Rekor bundle annotation (the signature is not in a transparency log)")
        leaf_key = load_public_key(
            leaf.public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            ),
            name="the signing certificate",
        )
        payload_type, payload, signature, signed_data = _verify_layer_signature(layer, leaf_key)
        expectation = TlogExpectation(
            signature=signature,
            data_sha256=hashlib.sha256(signed_data).hexdigest(),
            certificate_der=leaf.public_bytes(serialization.Encoding.DER),
            kinds=_entry_kinds(layer),
        )
        integrated = _as_datetime(
            verify_legacy_set(bundle_annotation, tlog_keys=root.tlog_keys, expect=expectation, now=now)
        )
        verify_certificate(leaf, root=root, times=(integrated,))
        return SignedPayload(
            origin=origin,
            payload_type=payload_type,
            payload=payload,
            certificate=leaf,
            integrated_time=integrated,
        )
    except VerificationFailed as error:
        raise VerificationFailed(f"{origin}: {error.user_message}", code=Reason.SIGNATURE_INVALID) from None
    except (_Failed, ConfigError, *_ERRORS) as error:
        _logger.debug("%s failed legacy verification: %s", origin, error)
        raise VerificationFailed(f"{origin}: {first_line(error)}", code=Reason.SIGNATURE_INVALID) from None


def verify_legacy_key(
    layer: LegacyLayer,
    *,
    key: PublicKey,
    key_name: str,
    tlog_keys: Mapping[str, PublicKey],
    require_tlog: bool,
    now: datetime | None = None,
) -> SignedPayload:
    """Verify a key-signed ``.sig``/``.att`` layer with the public ``key`` named ``key_name``.

    A Rekor SET in the layer, when present, must be valid and name this key and signature (when it can
    be checked against ``tlog_keys``, the Rekor keys of the trusted roots by log id); with
    ``require_tlog`` it must be present and checkable.

    Raises:
        VerificationFailed: ``signature-invalid`` naming the failed step.
    """
    origin = layer.describe()
    try:
        certificate_der = _certificate_of_key(layer, key)
        payload_type, payload, signature, signed_data = _verify_layer_signature(layer, key)
        bundle_annotation = layer.annotation(_BUNDLE)
        integrated: datetime | None = None
        if bundle_annotation:
            expectation = TlogExpectation(
                signature=signature,
                data_sha256=hashlib.sha256(signed_data).hexdigest(),
                public_key=None if certificate_der is not None else key,
                certificate_der=certificate_der,
                kinds=_entry_kinds(layer),
            )
            try:
                integrated = _as_datetime(
                    verify_legacy_set(bundle_annotation, tlog_keys=tlog_keys, expect=expectation, now=now)
                )
            except VerificationFailed:
                if require_tlog or _log_known(bundle_annotation, tlog_keys):
                    raise
                _logger.debug("%s: transparency-log evidence from an unknown log not checked", origin)
        elif require_tlog:
            raise _Failed(f"key {key_name} requires a transparency-log entry, and the layer has none")
        return SignedPayload(
            origin=origin,
            payload_type=payload_type,
            payload=payload,
            key=key_name,
            integrated_time=integrated,
        )
    except VerificationFailed as error:
        raise VerificationFailed(f"{origin}: {error.user_message}", code=Reason.SIGNATURE_INVALID) from None
    except (_Failed, ConfigError, *_ERRORS) as error:
        _logger.debug("%s failed key verification: %s", origin, error)
        raise VerificationFailed(f"{origin}: {first_line(error)}", code=Reason.SIGNATURE_INVALID) from None


def simple_signing_digest(payload: bytes) -> str:
    """The ``critical.image.docker-manifest-digest`` of a cosign simple-signing payload.

    Raises:
        VerificationFailed: ``signature-invalid``: not a cosign container image signature payload.
    """
    try:
        document = json.loads(payload)
        critical = document["critical"]
        claim = critical["type"]
        digest = critical["image"]["docker-manifest-digest"]
    except (ValueError, KeyError, TypeError, RecursionError):
        raise VerificationFailed(
            "the signed payload is not a cosign simple-signing document", code=Reason.SIGNATURE_INVALID
        ) from None
    if claim != _SIMPLE_SIGNING_CLAIM or not isinstance(digest, str):
        raise VerificationFailed(
            f"the signed payload's claim type is {claim!r}, not a cosign image signature",
            code=Reason.SIGNATURE_INVALID,
        )
    return digest


# --- steps --------------------------------------------------------------------------------------


def _entry_kinds(layer: LegacyLayer) -> tuple[str, ...]:
    return ("hashedrekord",) if layer.kind == "sig" else ("dsse", "intoto")


def _certificate_of_key(layer: LegacyLayer, key: PublicKey) -> bytes | None:
    """The DER of the layer's certificate, which must be for ``key``; None when the layer has none."""
    certificate_pem = layer.annotation(_CERTIFICATE)
    if not certificate_pem:
        return None
    certificate = x509.load_pem_x509_certificate(certificate_pem.encode())
    if _spki(certificate.public_key()) != key.spki_der:
        raise _Failed(f"the layer carries a certificate for another key than {key.name}")
    return certificate.public_bytes(serialization.Encoding.DER)


def _log_known(annotation: str, tlog_keys: Mapping[str, PublicKey]) -> bool:
    try:
        log_id = json.loads(annotation)["Payload"]["logID"]
    except (ValueError, KeyError, TypeError, RecursionError):
        return True  # malformed evidence is never "unknown": it fails
    return log_id in tlog_keys


def _as_datetime(value: object) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if isinstance(value, int) and not isinstance(value, bool):
        return _EPOCH + timedelta(seconds=value)
    raise _Failed(f"Rekor SET gave an unusable integrated time {value!r}")


def _verify_layer_signature(layer: LegacyLayer, key: PublicKey) -> tuple[str, bytes, bytes, bytes]:
    """Verify the layer's signature with ``key``.

    Returns:
        (payload type, payload, the signature that verified, the data whose sha256 a Rekor entry names).
    """
    if layer.kind == "sig":
        encoded = layer.annotation(_SIGNATURE)
        if not encoded:
            raise _Failed("no signature annotation")
        signature = base64.b64decode(encoded, validate=True)
        if not verify_signature(key, signature, layer.content):
            raise _Failed(f"the signature does not verify over the layer with {key.name}")
        return SIMPLE_SIGNING_TYPE, layer.content, signature, layer.content
    payload_type, payload = verify_dsse_envelope(layer.content, key)
    envelope = json.loads(layer.content)
    message = pae(payload_type, payload)
    signatures = [base64.b64decode(item["sig"], validate=True) for item in envelope["signatures"]]
    signature = next(sig for sig in signatures if verify_signature(key, sig, message))
    if payload_type != IN_TOTO_PAYLOAD_TYPE:
        raise _Failed(f"DSSE payload type is {payload_type!r}, not {IN_TOTO_PAYLOAD_TYPE}")
    return payload_type, payload, signature, payload


def _spki(public_key: Any) -> bytes:
    return bytes(
        public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
