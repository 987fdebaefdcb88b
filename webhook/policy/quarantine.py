"""Quarantine lists (``kind: Quarantine``): checked and read into the model.

The same checks serve ``imagegate lint`` of a list, a policy's ``quarantine.files`` (read once by the
loader, carried on the policy) and the list editor (:mod:`webhook.policy.quarantine_editor`).
"""

from __future__ import annotations

__all__ = ["check_quarantine", "check_quarantine_doc", "load_quarantine", "read_quarantine"]

from datetime import datetime
from pathlib import Path

from webhook.policy._yaml_lines import YamlDocument, items, obj
from webhook.policy.model import QuarantineEntry, QuarantineList
from webhook.policy.report import Report, config_error, in_order, read_top
from webhook.policy.schema import schema_check
from webhook.policy.times import RFC3339_RE, parse_time


def load_quarantine(path: str | Path) -> tuple[QuarantineEntry, ...]:
    """Load and validate the quarantine list at ``path`` (entries carry ``source=str(path)``).

    Raises:
        ConfigError: the file is invalid; ``problems`` lists every problem found.
    """
    source = str(path)
    return check_quarantine(read_top(source, "quarantine list"), source=source)


def check_quarantine(data: bytes, *, source: str) -> tuple[QuarantineEntry, ...]:
    """The entries of the quarantine list ``data`` (read from ``source``), checked as :func:`load_quarantine`
    checks a file.

    Raises:
        ConfigError: the list is invalid; ``problems`` lists every problem found.
    """
    report = Report(source)
    found = read_quarantine(data, path=Path(source), report=report)
    if found is None:
        raise config_error(f"invalid quarantine list {source}", in_order(report.problems, source))
    return found.entries


def read_quarantine(data: bytes, *, path: Path, report: Report) -> QuarantineList | None:
    """The list in ``data`` (read from ``path``), or None with its problems in ``report``."""
    doc = report.parse(data)
    if doc is None:
        return None
    entries = check_quarantine_doc(doc, report)
    return QuarantineList(path=path, data=data, entries=entries) if entries is not None else None


def check_quarantine_doc(doc: YamlDocument, report: Report) -> tuple[QuarantineEntry, ...] | None:
    """The entries of a parsed list, or None when it has errors (reported)."""
    schema_check("Quarantine", doc.data, report)
    entries: list[QuarantineEntry] = []
    first_line: dict[str, int] = {}
    for pointer, item in items(obj(doc.data).get("entries"), "/entries"):
        entry = obj(item)
        digest, reason = entry.get("digest"), entry.get("reason")
        since: datetime | None = None
        if isinstance(entry.get("since"), str) and RFC3339_RE.fullmatch(entry["since"]):
            try:
                since = parse_time(entry["since"])
            except ValueError as error:
                report.error(f"{pointer}/since", str(error), 'write e.g. "2026-11-20T10:00:00Z"')
        if not isinstance(digest, str):
            continue
        if digest in first_line:
            report.error(
                f"{pointer}/digest",
                f"digest {digest} is listed twice (first at line {first_line[digest]})",
                "remove one of the two entries",
            )
            continue
        first_line[digest] = report.line(f"{pointer}/digest")
        by, indexes, platform = entry.get("by"), entry.get("indexes"), entry.get("platform")
        indexes = tuple(i for i in indexes if isinstance(i, str)) if isinstance(indexes, list) else ()
        if digest in indexes:
            report.error(
                f"{pointer}/indexes", "an entry cannot be a manifest of itself", "remove its own digest"
            )
        entries.append(
            QuarantineEntry(
                digest=digest,
                reason=reason if isinstance(reason, str) else "",
                by=by if isinstance(by, str) else "",
                since=since,
                source=report.file,
                indexes=indexes,
                platform=platform if isinstance(platform, str) else "",
            )
        )
    if report.has_errors():
        return None
    return tuple(entries)
