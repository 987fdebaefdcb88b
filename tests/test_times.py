"""The one RFC 3339 parser: as strict as the RFC's date-time grammar, for every time imagegate reads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from webhook.times import format_rfc3339, parse_rfc3339


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-31T00:00:00Z", datetime(2026, 12, 31, tzinfo=UTC)),
        ("2026-12-31t00:00:00z", datetime(2026, 12, 31, tzinfo=UTC)),  # RFC 3339 5.6, NOTE
        ("2026-12-31T02:00:00+02:00", datetime(2026, 12, 31, 2, tzinfo=timezone(timedelta(hours=2)))),
        ("2026-12-31T00:00:00-00:00", datetime(2026, 12, 31, tzinfo=UTC)),  # "offset unknown": UTC
        ("2026-12-31T00:00:00.5Z", datetime(2026, 12, 31, 0, 0, 0, 500000, tzinfo=UTC)),
        # Protobuf JSON (trusted roots) writes up to nanoseconds: kept to the microsecond.
        ("2021-03-07T03:20:29.123456789Z", datetime(2021, 3, 7, 3, 20, 29, 123456, tzinfo=UTC)),
    ],
)
def test_rfc3339_times_are_read(text: str, expected: datetime) -> None:
    parsed = parse_rfc3339(text)
    assert parsed == expected
    assert parsed.utcoffset() == expected.utcoffset()


@pytest.mark.parametrize(
    "text",
    [
        "2026-12-31T00:00:00",  # no zone: a local time means something else on every machine
        "2026-12-31",
        "2026-12-31 00:00:00Z",  # a space for T
        "2026-12-31T00:00:00+0200",
        "2026-12-31T00:00Z",
        "20261231T000000Z",
        "2026-W53-4T00:00:00Z",
        "2026-13-01T00:00:00Z",
        "2026-02-30T00:00:00Z",
        "2026-12-31T24:00:00Z",
        "2016-12-31T23:59:60Z",  # a leap second: datetime cannot hold it
        "2026-12-31T00:00:00+24:00",
        "0000-01-01T00:00:00Z",
        "\u0662\u0660\u0662\u0666-12-31T00:00:00Z",  # Arabic-Indic digits are digits to \\d, not to RFC 3339
        " 2026-12-31T00:00:00Z",
        "2026-12-31T00:00:00Z\n",
        "",
        None,
        20261231,
    ],
)
def test_anything_else_is_refused(text: object) -> None:
    with pytest.raises(ValueError, match=r"RFC 3339|valid date"):
        parse_rfc3339(text)


def test_times_are_written_in_utc_to_the_second() -> None:
    when = datetime(2026, 11, 20, 12, 0, 0, 999999, tzinfo=timezone(timedelta(hours=2)))
    assert format_rfc3339(when) == "2026-11-20T10:00:00Z"
    assert parse_rfc3339(format_rfc3339(when)) == when.replace(microsecond=0)


def test_audit_times_are_written_in_utc_to_the_microsecond() -> None:
    when = datetime(2026, 11, 20, 12, 0, 0, 5, tzinfo=timezone(timedelta(hours=2)))
    assert format_rfc3339(when, microseconds=True) == "2026-11-20T10:00:00.000005Z"
    assert parse_rfc3339(format_rfc3339(when, microseconds=True)) == when


@pytest.mark.parametrize("text", ["0001-01-01T00:00:00Z", "0999-12-31T23:59:59Z", "9999-12-31T23:59:59Z"])
def test_times_at_the_ends_of_the_calendar_are_written_as_rfc3339(text: str) -> None:
    """A signed attestation may state any year: what imagegate writes of it still reads back (four digits)."""
    when = parse_rfc3339(text)
    assert format_rfc3339(when) == text
    assert parse_rfc3339(format_rfc3339(when, microseconds=True)) == when
