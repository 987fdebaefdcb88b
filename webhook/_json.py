"""JSON helpers: reading untrusted JSON (AdmissionReviews, statements, predicates); writing compact JSON."""

from __future__ import annotations

__all__ = ["compact_json", "json_kind", "json_type", "mapping", "nested_deeper_than"]

import json
from collections.abc import Iterable, Mapping
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


def nested_deeper_than(value: object, limit: int) -> bool:
    """Whether decoded JSON ``value`` nests arrays and objects more than ``limit`` deep (``[]`` is 1).

    The standard decoder's own bound is the interpreter's recursion limit less the caller's stack depth,
    so it moves with the caller; this one does not (no recursion, so no stack of its own either).
    """
    pending: list[tuple[object, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict):
            children: Iterable[object] = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        pending.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False
