"""Text from outside (images, registry answers, certificates, markers) in messages, escaped alike.

Every character outside printable ASCII is written the way JSON writes it (``\\n``, ``\\u001b``,
``\\u0430``), wherever it appears: in a quoted image, a quoted value inside a reason, or a whole reason
line. A homoglyph (a Cyrillic ``\u0430`` in ``acme``), a right-to-left override or a terminal escape therefore
reads the same in every part of a message and can neither pass for ASCII nor forge a line.
"""

from __future__ import annotations

__all__ = ["escape", "first_line", "one_line", "quote", "show", "show_value"]

import json
import re

from webhook._json import json_kind

_UNSAFE_RE = re.compile(r"[^\x20-\x7e]")


def escape(text: str) -> str:
    """``text`` with every character outside printable ASCII written as JSON writes it."""
    return _UNSAFE_RE.sub(lambda found: json.dumps(found.group(0))[1:-1], text)


def one_line(text: str, *, limit: int) -> str:
    """``text`` cut to ``limit`` characters (ending in ``...``), then :func:`escape`\\ d: one safe line."""
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return escape(text)


def quote(text: str, *, limit: int) -> str:
    """``text`` as a JSON string literal (escaped as :func:`escape` does); past ``limit`` characters it is
    cut short and followed by its length, e.g. ``"ghcr.io/a:xxx..." (100017 characters)``."""
    if len(text) > limit:
        return json.dumps(text[:limit])[:-1] + f'..." ({len(text)} characters)'
    return json.dumps(text)


def show(text: str, *, limit: int) -> str:
    """``text`` in single quotes for a reason (``invalid tag 'v1\\u0430'``), cut to ``limit`` characters.

    Backslashes and single quotes are escaped so the quoted value cannot end early or fake an escape.
    """
    cut = text if len(text) <= limit else text[:limit] + "..."
    return "'" + escape(cut.replace("\\", "\\\\").replace("'", "\\'")) + "'"


def show_value(value: object, *, limit: int, missing: str = "missing") -> str:
    """A value from an untrusted document for a reason: :func:`show` of a string, of the JSON of anything
    else (or of its JSON kind, when it is nested too deep to write), and ``missing`` for None."""
    if value is None:
        return missing
    if isinstance(value, str):
        return show(value, limit=limit)
    try:
        text = json.dumps(value)
    except (TypeError, ValueError, RecursionError):
        text = f"a JSON {json_kind(value)}"
    return show(text, limit=limit)


def first_line(error: BaseException) -> str:
    """The first line of what ``error`` says, or its type's name when it says nothing."""
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__
