"""What ``imagegate test`` found, and its three renderings: text, JSON and JUnit XML.

The JUnit report follows the format Jenkins, GitLab, GitHub Actions reporters and Azure Pipelines read
(the de-facto schema of Ant's JUnit task): one ``<testsuites>`` root; per suite file a ``<testsuite>``
with ``name``, ``tests``, ``failures``, ``errors``, ``skipped``, ``time`` and ``timestamp``; per case a
``<testcase>`` with ``name``, ``classname`` (the suite), ``time``, ``file`` and ``line``, holding a
``<failure>`` when the decision is not the expected one, or an ``<error>`` when the case could not be
run (an unreadable manifest, a malformed object). A suite that cannot be loaded is one ``<testcase>``
with an ``<error>`` listing its problems. Text from outside (images, registry answers, signer
identities) is escaped as in the webhook's answers (:mod:`webhook.text`), so it is always valid XML.
"""

from __future__ import annotations

__all__ = [
    "Admission",
    "CaseResult",
    "ImageResult",
    "SuiteResult",
    "json_report",
    "junit_report",
    "text_report",
]

import json
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from webhook.policy.suite import Expectation
from webhook.text import escape


@dataclass(frozen=True, slots=True)
class ImageResult:
    """The decision on one image: its outcome, failures ``(code, message, mode)`` and the checks made."""

    slot: str
    image: str
    outcome: str
    status: str
    digest: str | None = None
    rules: tuple[str, ...] = ()
    failures: tuple[tuple[str, str, str], ...] = ()
    explanation: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Admission:
    """One admitted object of a case: the answer (after /mutate and /validate) and its images."""

    label: str
    allowed: bool
    message: str
    warnings: tuple[str, ...]
    images: tuple[ImageResult, ...]


@dataclass(frozen=True, slots=True)
class CaseResult:
    """One case: ``problems`` is empty when it passed; ``error`` when its input could not be admitted."""

    name: str
    line: int
    expect: Expectation
    problems: tuple[str, ...] = ()
    admissions: tuple[Admission, ...] = ()
    error: bool = False
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return not self.problems


@dataclass(frozen=True, slots=True)
class SuiteResult:
    """One suite file: its cases, or the ``problems`` that kept it from loading."""

    path: Path
    name: str
    policy: str
    mode: str
    cases: tuple[CaseResult, ...] = ()
    problems: tuple[str, ...] = ()
    seconds: float = 0.0


# --- text ------------------------------------------------------------------------------------------


def text_report(results: Sequence[SuiteResult]) -> str:
    """A PASS or FAIL line per case; a failing case with the decision per image and its explanation."""
    lines: list[str] = []
    for result in results:
        if result.problems:
            count = len(result.problems)
            lines.append(f"ERROR {escape(result.path.name)}: the suite cannot be loaded ({count} problem(s))")
        for case in result.cases:
            label = escape(f"{result.path.name}: {case.name}")
            if case.passed:
                lines.append(f"PASS {label}")
                continue
            lines.append(f"FAIL {label}")
            lines.extend(f"     {escape(problem)}" for problem in case.problems)
            for admission in case.admissions:
                lines.extend(_explained(admission))
    passed, failed = _counts(results)
    lines.append(f"{passed} passed, {failed} failed")
    return "\n".join(lines) + "\n"


def _explained(admission: Admission) -> list[str]:
    verdict = "allowed" if admission.allowed else "denied"
    lines = [f"     decision: {escape(admission.label)} {verdict}"]
    for image in admission.images:
        head = f"{escape(image.slot)} image {json.dumps(image.image)}"
        lines.append(f"       {head}: {image.outcome} ({image.status})")
        lines.extend(
            f"         [{code}] ({mode}) {escape(message)}" for code, message, mode in image.failures
        )
        lines.extend(f"         {escape(step)}" for step in image.explanation)
    return lines


def _counts(results: Sequence[SuiteResult]) -> tuple[int, int]:
    cases = [case for result in results for case in result.cases]
    passed = sum(1 for case in cases if case.passed)
    return passed, len(cases) - passed


# --- JSON ------------------------------------------------------------------------------------------


def json_report(results: Sequence[SuiteResult]) -> str:
    passed, failed = _counts(results)
    document = {
        "passed": passed,
        "failed": failed,
        "suites": [_suite_json(result) for result in results],
    }
    return json.dumps(document, indent=2)


def _suite_json(result: SuiteResult) -> dict[str, Any]:
    return {
        "file": str(result.path),
        "name": result.name,
        "policy": result.policy,
        "mode": result.mode,
        "problems": list(result.problems),
        "seconds": round(result.seconds, 3),
        "cases": [_case_json(case) for case in result.cases],
    }


def _case_json(case: CaseResult) -> dict[str, Any]:
    expect: dict[str, Any] = {"allowed": case.expect.allowed}
    if case.expect.outcomes is not None:
        expect["outcomes"] = list(case.expect.outcomes)
    if case.expect.message_contains is not None:
        expect["messageContains"] = case.expect.message_contains
    if case.expect.warnings is not None:
        expect["warnings"] = case.expect.warnings
    return {
        "name": case.name,
        "line": case.line,
        "passed": case.passed,
        "error": case.error,
        "problems": list(case.problems),
        "expect": expect,
        "admissions": [
            {
                "object": admission.label,
                "allowed": admission.allowed,
                "message": admission.message,
                "warnings": list(admission.warnings),
                "images": [
                    {
                        "slot": image.slot,
                        "image": image.image,
                        "outcome": image.outcome,
                        "status": image.status,
                        "digest": image.digest,
                        "rules": list(image.rules),
                        "failures": [
                            {"code": code, "message": message, "mode": mode}
                            for code, message, mode in image.failures
                        ],
                        "explanation": list(image.explanation),
                    }
                    for image in admission.images
                ],
            }
            for admission in case.admissions
        ],
        "seconds": round(case.seconds, 3),
    }


# --- JUnit XML -------------------------------------------------------------------------------------


def junit_report(results: Sequence[SuiteResult], *, timestamp: datetime) -> bytes:
    """The JUnit XML report (see the module docstring), UTF-8 with an XML declaration."""
    root = ET.Element("testsuites", name="imagegate test")
    totals: dict[str, int] = {"tests": 0, "failures": 0, "errors": 0}
    total_time = 0.0
    for result in results:
        suite = ET.SubElement(root, "testsuite", name=escape(result.name))
        ET.SubElement(suite, "properties")
        properties = suite[0]
        for name, value in (("file", str(result.path)), ("policy", result.policy), ("mode", result.mode)):
            ET.SubElement(properties, "property", name=name, value=escape(value))
        counts: dict[str, int] = {"tests": 0, "failures": 0, "errors": 0}
        if result.problems:
            counts["tests"] += 1
            counts["errors"] += 1
            case = ET.SubElement(suite, "testcase", name="load", classname=escape(result.name), time="0")
            case.set("file", escape(str(result.path)))
            error = ET.SubElement(case, "error", message="the suite cannot be loaded", type="ConfigError")
            error.text = "\n".join(escape(problem) for problem in result.problems)
        for case_result in result.cases:
            counts["tests"] += 1
            case = ET.SubElement(
                suite,
                "testcase",
                name=escape(case_result.name),
                classname=escape(result.name),
                time=f"{case_result.seconds:.3f}",
            )
            case.set("file", escape(str(result.path)))
            case.set("line", str(case_result.line))
            if case_result.passed:
                continue
            kind = "error" if case_result.error else "failure"
            counts["errors" if case_result.error else "failures"] += 1
            element = ET.SubElement(
                case,
                kind,
                message=escape(case_result.problems[0]),
                type="InputError" if case_result.error else "UnexpectedDecision",
            )
            details = [escape(problem) for problem in case_result.problems]
            for admission in case_result.admissions:
                details.extend(line.strip() for line in _explained(admission))
            element.text = "\n".join(details)
        suite.set("tests", str(counts["tests"]))
        suite.set("failures", str(counts["failures"]))
        suite.set("errors", str(counts["errors"]))
        suite.set("skipped", "0")
        suite.set("time", f"{result.seconds:.3f}")
        suite.set("timestamp", timestamp.replace(microsecond=0).isoformat())
        for key, count in counts.items():
            totals[key] += count
        total_time += result.seconds
    for key, total in totals.items():
        root.set(key, str(total))
    root.set("time", f"{total_time:.3f}")
    ET.indent(root)
    document: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return document + b"\n"
