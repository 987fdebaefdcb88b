"""Reading signature evidence strictly: whatever is malformed is ``signature-invalid``.

Bundles, DSSE envelopes, cosign's legacy annotations and Rekor entry bodies are JSON from registries:
they are parsed with a size cap, without duplicate keys or NaN; base64 fields may use either alphabet,
padded or not; integers may be JSON numbers or (protobuf JSON's int64) decimal strings, never negative.
"""

from __future__ import annotations

__all__ = ["MAX_EVIDENCE_BYTES", "b64", "integer", "load_json", "signature_invalid", "unverifiable"]

import base64
import binascii
import json
import logging
from typing import Any

from webhook.errors import VerificationFailed
from webhook.reasons import Reason

_logger = logging.getLogger(__name__)

# Bundles and legacy annotations are small JSON documents; a cap keeps a hostile layer from costing
# more than a parse of this size.
MAX_EVIDENCE_BYTES = 8 * 1024 * 1024


def unverifiable(reason: str, require_tlog: bool) -> None:
    """Transparency-log evidence that cannot be checked: a failure only when it is required."""
    if require_tlog:
        raise signature_invalid(f"transparency log evidence is required: {reason}")
    _logger.debug("transparency log evidence not checked: %s", reason)


def signature_invalid(message: str) -> VerificationFailed:
    """The error for malformed or unverified evidence: ``signature-invalid`` with ``message``."""
    return VerificationFailed(message, code=Reason.SIGNATURE_INVALID)


def b64(value: object, what: str) -> bytes:
    """Decode standard or URL-safe base64, padded or not; anything else is refused."""
    if not isinstance(value, str):
        raise signature_invalid(f"{what} is not a base64 string")
    text = value.strip().replace("-", "+").replace("_", "/")
    text += "=" * (-len(text) % 4)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise signature_invalid(f"{what} is not valid base64") from None


def integer(value: object, what: str) -> int:
    # Protobuf JSON writes int64 as a string; cosign's annotation writes a number.
    if isinstance(value, bool):
        raise signature_invalid(f"{what} is not an integer")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.isdigit():
        number = int(value)
    else:
        raise signature_invalid(f"{what} is not a non-negative integer")
    if number < 0:
        raise signature_invalid(f"{what} is negative")
    return number


def load_json(data: bytes, what: str) -> Any:
    if len(data) > MAX_EVIDENCE_BYTES:
        raise signature_invalid(f"{what} is {len(data)} bytes, more than the {MAX_EVIDENCE_BYTES} allowed")
    try:
        return json.loads(data, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:
        raise signature_invalid(f"{what} is not valid JSON ({exc})") from None


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def _no_constant(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")
