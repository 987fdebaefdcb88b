"""Problems of a policy or quarantine file, each with its file, line, JSON pointer and fix hint.

:class:`Report` collects the problems of one file as they are found (every check reports and goes on,
so one ``imagegate lint`` run shows everything); :func:`in_order` sorts them for display and
:func:`config_error` raises them as one :class:`~webhook.errors.ConfigError`.
"""

from __future__ import annotations

__all__ = ["Report", "config_error", "in_order", "os_reason", "read_top"]

from collections.abc import Sequence
from pathlib import Path

from webhook.errors import ConfigError, PolicyProblem
from webhook.policy import material
from webhook.policy._yaml_lines import YamlDocument, parse_yaml


class Report:
    """Problems of one file, with the line map of its YAML document once it is parsed."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.doc: YamlDocument | None = None
        self.problems: list[PolicyProblem] = []

    def line(self, pointer: str) -> int:
        return self.doc.line_of(pointer) if self.doc is not None else 0

    def error(self, pointer: str, message: str, hint: str = "", *, line: int | None = None) -> None:
        self.add(pointer, message, hint, line=line, severity="error")

    def warning(self, pointer: str, message: str, hint: str = "") -> None:
        self.add(pointer, message, hint, line=None, severity="warning")

    def add(self, pointer: str, message: str, hint: str, *, line: int | None, severity: str) -> None:
        where = self.line(pointer) if line is None else line
        self.problems.append(PolicyProblem(self.file, where, pointer, message, hint, severity))

    def extend(self, problems: Sequence[PolicyProblem]) -> None:
        self.problems.extend(problems)

    def has_errors(self, below: str | None = None) -> bool:
        """Whether an error was reported (at ``below`` or under it, when given)."""
        return any(
            p.severity == "error"
            and (below is None or p.pointer == below or p.pointer.startswith(below + "/"))
            for p in self.problems
        )

    def parse(self, raw: bytes) -> YamlDocument | None:
        """Parse ``raw`` as this file's YAML document, reporting what is wrong with it."""
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as error:
            self.error("", f"the file is not UTF-8 (byte {error.start})", "save the file as UTF-8", line=0)
            return None
        doc, issues = parse_yaml(text)
        self.doc = doc
        for issue in issues:
            self.error(issue.pointer, issue.message, issue.hint, line=issue.line)
        return doc


def in_order(problems: Sequence[PolicyProblem], primary: str) -> tuple[PolicyProblem, ...]:
    """Problems of ``primary`` first, then of the files it references (as first reported); by line."""
    first: dict[str, int] = {primary: 0}
    for problem in problems:
        first.setdefault(problem.file, len(first))
    return tuple(sorted(problems, key=lambda p: (first[p.file], p.line)))


def config_error(summary: str, problems: Sequence[PolicyProblem]) -> ConfigError:
    # The message is one line; callers print ``problems`` (one line each) below it.
    errors = sum(1 for p in problems if p.severity == "error")
    return ConfigError(f"{summary}: {errors} error(s)", problems=tuple(problems))


def os_reason(error: OSError) -> str:
    return error.strerror or type(error).__name__


def read_top(source: str, what: str) -> bytes:
    try:
        return material.read_bounded(Path(source))
    except OSError as error:
        reason = os_reason(error)
        problem = PolicyProblem(source, 0, "", f"cannot read the {what}: {reason}", "check the path")
        raise ConfigError(f"cannot read {what} {source}: {reason}", problems=(problem,)) from None
