"""Times and durations as policies and quarantine lists write them: RFC 3339 with a zone, ``168h``."""

from __future__ import annotations

__all__ = ["DURATION_RE", "RFC3339_RE", "parse_duration", "parse_time"]

import re
from datetime import timedelta

from webhook.times import RFC3339_RE, parse_rfc3339

DURATION_RE = re.compile(r"(?:([0-9]+)d)?(?:([0-9]+)h)?(?:([0-9]+)m)?(?:([0-9]+)s)?")


def parse_duration(text: str) -> timedelta:
    """``7d``, ``168h``, ``1h30m``, ``90s`` -> timedelta (units in the order d, h, m, s).

    Raises:
        ValueError: not such a duration.
    """
    found = DURATION_RE.fullmatch(text) if isinstance(text, str) and text else None
    if found is None:
        raise ValueError(f"{text!r} is not a duration like 168h, 7d, 30m or 90s")
    days, hours, minutes, seconds = (int(g) if g else 0 for g in found.groups())
    try:
        return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
    except OverflowError:
        raise ValueError(f"{text!r} is too long a duration") from None


#: Policies and quarantine lists write times as RFC 3339 with a zone: the one parser reads them.
parse_time = parse_rfc3339
