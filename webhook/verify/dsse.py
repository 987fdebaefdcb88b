"""DSSE envelopes: the pre-authentication encoding and verifying an envelope with a public key.

Base64 fields may use either alphabet (the DSSE protocol requires verifiers to accept both); a
malformed envelope, or one no signature of which verifies, is ``signature-invalid``.
"""

from __future__ import annotations

__all__ = ["pae", "read_envelope", "verify_dsse_envelope", "verify_envelope"]

from collections.abc import Mapping
from typing import Any

from webhook.verify.evidence import b64, load_json, signature_invalid
from webhook.verify.signatures import PublicKey, verify_signature


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
        VerificationFailed: ``signature-invalid``: malformed envelope, or no signature by ``key``.
    """
    payload_type, payload, _signature = verify_envelope(envelope, key)
    return payload_type, payload


def verify_envelope(envelope: Mapping[str, Any] | bytes, key: PublicKey) -> tuple[str, bytes, bytes]:
    payload_type, payload, signatures = read_envelope(envelope)
    message = pae(payload_type, payload)
    for signature in signatures:
        if verify_signature(key, signature, message):
            return payload_type, payload, signature
    raise signature_invalid(
        f"DSSE envelope: none of its {len(signatures)} signature(s) verifies with key {key.name!r} "
        f"({key.algorithm}, id {key.key_id[:16]})"
    )


def read_envelope(envelope: Mapping[str, Any] | bytes) -> tuple[str, bytes, list[bytes]]:
    if isinstance(envelope, bytes):
        envelope = load_json(envelope, "DSSE envelope")
    if not isinstance(envelope, Mapping):
        raise signature_invalid(f"DSSE envelope is a {type(envelope).__name__}, expected a JSON object")
    payload_type = envelope.get("payloadType")
    if not isinstance(payload_type, str):
        raise signature_invalid("DSSE envelope has no payloadType string")
    payload = b64(envelope.get("payload"), "DSSE payload")
    entries = envelope.get("signatures")
    if not isinstance(entries, list) or not entries:
        raise signature_invalid("DSSE envelope has no signatures")
    signatures = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, Mapping):
            raise signature_invalid(f"DSSE signatures[{index}] is not an object")
        signatures.append(b64(entry.get("sig"), f"DSSE signatures[{index}].sig"))
    return payload_type, payload, signatures
