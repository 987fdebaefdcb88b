"""RFC 3339 times: the one parser and the one writer, and the clock skew imagegate allows.

Times reach imagegate in policy files (exemption ``expires``, quarantine ``since``), in registry
quarantine markers, in Sigstore trusted roots (validity windows, protobuf JSON timestamps) and in
attestations (scan and summary times). All of them are RFC 3339 date-times, and all are read by
:func:`parse_rfc3339`, as strictly as the RFC's grammar (``date-time``, section 5.6):

* ``YYYY-MM-DDTHH:MM:SS``, then an optional fraction of any length (kept to the microsecond), then a
  zone: ``Z`` or ``+HH:MM`` / ``-HH:MM``; ``T`` and ``Z`` may be lower-case (section 5.6's note);
* refused: no zone (a local time means something else on every machine), a date alone, a space for
  ``T``, ``+HHMM``, week or ordinal dates and other ISO 8601 forms, non-ASCII digits, values out of range
  (month 13, ``24:00``, the leap second ``:60``, which Python cannot represent).

Converting a parsed time to UTC (``astimezone``) can overflow at the ends of the calendar
(``0001-01-01T00:00:00+01:00``): callers that convert catch ``OverflowError``.
"""

from __future__ import annotations

__all__ = ["CLOCK_SKEW", "RFC3339_RE", "format_rfc3339", "parse_rfc3339", "require_aware"]

import re
from datetime import UTC, datetime, timedelta

#: How far clocks may disagree (this cluster, Rekor, builders, scanners): a time this much in the
#: future still counts as now; certificates imagegate issues start this much in the past.
CLOCK_SKEW = timedelta(minutes=5)

#: The grammar alone (what :func:`parse_rfc3339` also checks the values of).
RFC3339_RE = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?(?:[Zz]|[+-][0-9]{2}:[0-9]{2})",
    re.ASCII,
)


def parse_rfc3339(text: object) -> datetime:
    """An RFC 3339 date-time with a zone (``2026-12-31T00:00:00Z``) -> an aware datetime, in its zone.

    Raises:
        ValueError: ``text`` is not such a time (see the module docstring), naming it.
    """
    if not isinstance(text, str) or not RFC3339_RE.fullmatch(text):
        raise ValueError(f"{_cut(text)!r} is not an RFC 3339 time with a zone")
    try:
        return datetime.fromisoformat(text.upper())
    except ValueError:
        raise ValueError(f"{text!r} is not a valid date and time") from None


def format_rfc3339(when: datetime, *, microseconds: bool = False) -> str:
    """``when`` in UTC, to the second: ``2026-11-20T10:00:00Z`` (how imagegate writes times); with
    ``microseconds``, to the microsecond: ``2026-11-20T10:00:00.250000Z`` (the audit log's times)."""
    utc = when.astimezone(UTC)
    # Not strftime's %Y: it writes a year before 1000 with fewer than the four digits RFC 3339 requires.
    text = f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}T{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}"
    return f"{text}.{utc.microsecond:06d}Z" if microseconds else f"{text}Z"


def require_aware(now: datetime) -> None:
    """Refuse a naive ``now``: compared with an aware time it would raise, or mean another instant.

    Raises:
        ValueError: ``now`` has no time zone.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be a timezone-aware datetime")


def _cut(value: object) -> object:
    return value[:80] if isinstance(value, str) else value
