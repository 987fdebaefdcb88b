"""What changed between two Sigstore trusted roots, as an operator reads a key rotation.

Entries are matched by identity: transparency logs (``tlog``) and CT logs (``ctlog``) by log id (shown in
hex), certificate authorities (``CA``) and timestamp authorities (``TSA``) by the SHA-256 fingerprint of
the first certificate of their chain. A matched entry whose key, chain or URL differs is ``changed``; one
whose validity window differs is ``expired`` when its new end has passed, else ``changed``. Validity
times are compared as instants (``...27Z`` and ``...27.000Z`` are the same time).

The previous document may be anything (a file an operator edited, nothing at all): whatever does not
parse contributes no entries, so every entry of the new root is then reported as added.
"""

from __future__ import annotations

__all__ = ["Change", "TrustEntry", "compare", "describe", "entries"]

import base64
import binascii
import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from webhook.times import format_rfc3339, parse_rfc3339

Action = Literal["added", "removed", "changed", "expired"]

# (document key, kind shown, is a log)
_SECTIONS = (
    ("certificateAuthorities", "CA", False),
    ("tlogs", "tlog", True),
    ("ctlogs", "ctlog", True),
    ("timestampAuthorities", "TSA", False),
)


@dataclass(frozen=True, slots=True)
class TrustEntry:
    """One CA, TSA, transparency log or CT log of a trusted root."""

    kind: str
    ident: str
    location: str
    name: str
    material: str
    valid_from: datetime | None
    valid_until: datetime | None

    def label(self) -> str:
        if self.kind in ("tlog", "ctlog"):
            return f"{self.ident} {self.location}".rstrip()
        named = f" ({self.name})" if self.name else ""
        return f"{self.location}{named} sha256:{self.ident[:16]}"

    def window(self) -> str:
        start, end = _show(self.valid_from), _show(self.valid_until)
        if start and end:
            return f"valid from {start} until {end}"
        if start:
            return f"valid from {start}"
        return f"valid until {end}" if end else "valid at any time"

    def expired(self, now: datetime) -> bool:
        return self.valid_until is not None and self.valid_until <= now


@dataclass(frozen=True, slots=True)
class Change:
    action: Action
    entry: TrustEntry
    previous: TrustEntry | None = None


def entries(data: bytes | None) -> dict[tuple[str, str], TrustEntry]:
    """The entries of a trusted root document by (kind, identity); nothing for what does not parse."""
    try:
        document = json.loads(data) if data is not None else None
    except (ValueError, UnicodeDecodeError):
        return {}
    if not isinstance(document, dict):
        return {}
    found: dict[tuple[str, str], TrustEntry] = {}
    for key, kind, is_log in _SECTIONS:
        for item in _list(document.get(key)):
            entry = _log(item, kind) if is_log else _authority(item, kind)
            if entry is not None:
                found.setdefault((entry.kind, entry.ident), entry)
    return found


def compare(old: bytes | None, new: bytes, *, now: datetime) -> tuple[Change, ...]:
    """The changes from ``old`` (``None``: no previous file) to ``new``, in document order."""
    before, after = entries(old), entries(new)
    changes: list[Change] = []
    for identity, entry in after.items():
        previous = before.get(identity)
        if previous is None:
            changes.append(Change("added", entry))
        elif (entry.material, entry.location) != (previous.material, previous.location):
            changes.append(Change("changed", entry, previous))
        elif (entry.valid_from, entry.valid_until) != (previous.valid_from, previous.valid_until):
            action: Action = "expired" if entry.expired(now) else "changed"
            changes.append(Change(action, entry, previous))
    changes.extend(Change("removed", entry) for identity, entry in before.items() if identity not in after)
    return tuple(changes)


def describe(change: Change, *, now: datetime) -> str:
    """One line: ``added    tlog  <log id> <url>  valid from ...`` (``was: ...`` for a changed entry)."""
    entry = change.entry
    text = f"{change.action:<8} {entry.kind:<5} {entry.label()}  {entry.window()}"
    if change.action != "expired" and entry.expired(now):
        text += " (expired)"
    previous = change.previous
    if previous is not None:
        if previous.location != entry.location:
            text += f" (was at {previous.location})"
        elif previous.material != entry.material:
            text += " (new key material)"
        else:
            text += f" (was: {previous.window()})"
    return text


def _log(item: object, kind: str) -> TrustEntry | None:
    if not isinstance(item, dict):
        return None
    log_id = _b64(_get(item, "logId", "keyId"))
    key = item.get("publicKey")
    if log_id is None or not isinstance(key, dict):
        return None
    start, end = _window(key.get("validFor"))
    material = f"{key.get('keyDetails')}:{key.get('rawBytes')}"
    return TrustEntry(
        kind=kind,
        ident=log_id.hex(),
        location=str(item.get("baseUrl") or ""),
        name="",
        material=hashlib.sha256(material.encode()).hexdigest(),
        valid_from=start,
        valid_until=end,
    )


def _authority(item: object, kind: str) -> TrustEntry | None:
    if not isinstance(item, dict):
        return None
    certificates = _get(item, "certChain", "certificates")
    chain = [_b64(c.get("rawBytes")) if isinstance(c, dict) else None for c in _list(certificates)]
    if not chain or any(der is None for der in chain):
        return None
    ders = [der for der in chain if der is not None]
    subject = item.get("subject")
    names = [subject.get("organization"), subject.get("commonName")] if isinstance(subject, dict) else []
    start, end = _window(item.get("validFor"))
    return TrustEntry(
        kind=kind,
        ident=hashlib.sha256(ders[0]).hexdigest(),
        location=str(item.get("uri") or ""),
        name="/".join(str(n) for n in names if n),
        material=hashlib.sha256(b"".join(hashlib.sha256(der).digest() for der in ders)).hexdigest(),
        valid_from=start,
        valid_until=end,
    )


def _get(item: Mapping[str, Any], *keys: str) -> object:
    value: object = item
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def _list(value: object) -> Iterator[object]:
    yield from value if isinstance(value, list) else ()


def _b64(value: object) -> bytes | None:
    if not isinstance(value, str):
        return None
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None


def _window(valid_for: object) -> tuple[datetime | None, datetime | None]:
    if not isinstance(valid_for, dict):
        return None, None
    return _instant(valid_for.get("start")), _instant(valid_for.get("end"))


def _instant(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return parse_rfc3339(value)
    except ValueError:
        return None


def _show(value: datetime | None) -> str:
    return format_rfc3339(value) if value is not None else ""
