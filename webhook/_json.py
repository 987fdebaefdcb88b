"""JSON helpers: reading untrusted JSON (AdmissionReviews, statements, predicates); writing compact JSON."""

from __future__ import annotations

__all__ = ["compact_json", "json_kind", "json_type", "mapping"]

import json
from collections.abc import Mapping
from typing import Any

# Made once: json.dumps with any option builds a new encoder per call, a measurable part of an
# admission that writes three documents (the response, its annotations and the audit line).
_COMPACT = json.JSONEncoder(separators=(",", ":"))


def compact_json(value: object) -> str:
    """``json.dumps(value, separators=(",", ":"))``: the same text (thread-safe)."""
    return _COMPACT.encode(value)


def json_kind(value: object) -> str:
    """The JSON name of a decoded value's type: ``null``, ``boolean``, ``number``, ``string``, ..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__


def json_type(value: object) -> str:
    """The same with an article, for messages: ``null``, ``an array``, ``a string``, ..."""
    kind = json_kind(value)
    if kind == "null":
        return kind
    return f"an {kind}" if kind in ("array", "object") else f"a {kind}"


def mapping(value: object) -> Mapping[str, Any]:
    """``value`` when it is a JSON object, else an empty one: for reading optional nested fields."""
    return value if isinstance(value, Mapping) else {}
