"""Sigstore bundles signed with a public key, and the Rekor keys of a trusted root.

sigstore-python 4.5.1 verifies only certificate (keyless) bundles, so what ``cosign sign --key`` and
``cosign attest --key`` put in a bundle is verified here, with :mod:`webhook.verify.signatures`,
:mod:`webhook.verify.dsse` and the transparency-log evidence of :mod:`webhook.verify.rekor`.
"""

from __future__ import annotations

__all__ = ["verify_key_bundle"]

import hashlib
import logging
from collections.abc import Mapping
from datetime import datetime

from webhook.errors import VerificationFailed
from webhook.verify.dsse import read_envelope, verify_envelope
from webhook.verify.evidence import b64, load_json, signature_invalid
from webhook.verify.rekor import TlogExpectation, check_bundle_tlog
from webhook.verify.signatures import PublicKey, verify_prehashed

_logger = logging.getLogger(__name__)

_BUNDLE_MEDIA_TYPES = frozenset(
    {
        "application/vnd.dev.sigstore.bundle+json;version=0.1",
        "application/vnd.dev.sigstore.bundle+json;version=0.2",
        "application/vnd.dev.sigstore.bundle+json;version=0.3",
        "application/vnd.dev.sigstore.bundle.v0.3+json",
    }
)


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
        VerificationFailed: ``signature-invalid``: malformed or unsupported bundle, transparency
            evidence that is invalid or does not match, or (``require_tlog``) evidence that is missing or
            cannot be checked.
    """
    bundle = load_json(bundle_json, "bundle")
    if not isinstance(bundle, dict):
        raise signature_invalid("bundle is not a JSON object")
    media_type = bundle.get("mediaType")
    if media_type not in _BUNDLE_MEDIA_TYPES:
        raise signature_invalid(
            f"bundle media type {media_type!r} is not a supported Sigstore bundle version"
        )
    material = bundle.get("verificationMaterial")
    if not isinstance(material, dict):
        raise signature_invalid("bundle has no verificationMaterial")
    if "publicKey" not in material:
        if "certificate" in material or "x509CertificateChain" in material:
            _logger.debug("bundle carries a certificate, not a public key: not for key %s", key.name)
            return None
        raise signature_invalid("bundle verificationMaterial has neither a public key nor a certificate")

    has_dsse = "dsseEnvelope" in bundle
    has_message = "messageSignature" in bundle
    if has_dsse == has_message:
        raise signature_invalid("bundle must hold exactly one of dsseEnvelope and messageSignature")
    result: tuple[str, bytes]
    if has_dsse:
        envelope = bundle["dsseEnvelope"]
        _, _, signatures = read_envelope(envelope)
        if len(signatures) != 1:
            # A bundle's log entry vouches for one signature; sigstore clients refuse others too.
            raise signature_invalid(
                f"bundle DSSE envelope has {len(signatures)} signatures, expected exactly 1"
            )
        try:
            payload_type, payload, signature = verify_envelope(envelope, key)
        except VerificationFailed:
            return None
        result = (payload_type, payload)
        expectation = TlogExpectation(
            signature, hashlib.sha256(payload).hexdigest(), public_key=key, kinds=("dsse", "intoto")
        )
    else:
        digest, signature = _read_message_signature(bundle["messageSignature"])
        if not verify_prehashed(key, signature, digest):
            return None
        result = ("", digest)
        expectation = TlogExpectation(signature, digest.hex(), public_key=key, kinds=("hashedrekord",))

    check_bundle_tlog(material, expectation, tlog_keys=tlog_keys, require_tlog=require_tlog, now=now)
    return result


def _read_message_signature(value: object) -> tuple[bytes, bytes]:
    if not isinstance(value, dict):
        raise signature_invalid("bundle messageSignature is not an object")
    message_digest = value.get("messageDigest")
    if not isinstance(message_digest, dict):
        raise signature_invalid("bundle messageSignature has no messageDigest")
    algorithm = message_digest.get("algorithm")
    if algorithm != "SHA2_256":
        raise signature_invalid(f"bundle message digest algorithm is {algorithm!r}, expected 'SHA2_256'")
    digest = b64(message_digest.get("digest"), "bundle messageDigest.digest")
    if len(digest) != hashlib.sha256().digest_size:
        raise signature_invalid(f"bundle message digest is {len(digest)} bytes, expected 32")
    return digest, b64(value.get("signature"), "bundle messageSignature.signature")


# --------------------------------------------------------------------------------------------------
