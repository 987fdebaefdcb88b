"""Vulnerability scan checks: in-toto vulns v0.1 and cosign vuln v1 (SARIF, Trivy, Grype reports)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from webhook.policy.model import VulnerabilityCheck
from webhook.verify.predicates import (
    COSIGN_VULN_V1,
    SEVERITIES,
    VULNS_V01,
    check_vulnerabilities,
    compare_vulnerabilities,
)
from webhook.verify.statements import STATEMENT_V01, STATEMENT_V1, Statement

from ._data import build_statement, data_statement

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def _scan(
    result: Any, *, kind: str = VULNS_V01, statement_type: str = STATEMENT_V1, **metadata: str
) -> Statement:
    predicate = {
        "invocation": {"uri": "https://github.com/acme/app/actions/runs/1", "event_id": "1"},
        "scanner": {
            "uri": "pkg:github/aquasecurity/trivy@244fd47e07d1004f0aed9",
            "version": "0.19.2",
            "db": {
                "uri": "pkg:github/aquasecurity/trivy-db",
                "version": "v1",
                "lastUpdate": "2026-11-20T08:00:00Z",
            },
            "result": result,
        },
        "metadata": {
            "scanStartedOn": "2026-11-20T09:00:00Z",
            "scanFinishedOn": "2026-11-20T09:05:00Z",
            **metadata,
        },
    }
    return build_statement(kind, predicate, statement_type=statement_type)


def _codes(statement: Statement, max_severity: str = "MEDIUM", max_age: timedelta | None = None) -> list[str]:
    findings = check_vulnerabilities(statement, VulnerabilityCheck(max_severity, max_age), now=NOW)
    return [f.code for f in findings]


def _vuln(ident: str, *scores: tuple[str, Any]) -> dict[str, Any]:
    return {"id": ident, "severity": [{"method": method, "score": score} for method, score in scores]}


@pytest.mark.parametrize("statement_type", [STATEMENT_V01, STATEMENT_V1])
@pytest.mark.parametrize(
    ("result", "worst"),
    [
        ([], "NONE"),
        ([_vuln("CVE-1", ("nvd", "medium"), ("cvss_score", "5.2"))], "MEDIUM"),
        ([_vuln("CVE-1", ("nvd", "LOW"))], "LOW"),
        ([_vuln("CVE-1", ("cvss_score", "0.0"))], "NONE"),
        ([_vuln("CVE-1", ("cvss_score", 3.9))], "LOW"),
        ([_vuln("CVE-1", ("cvss_score", "4.0"))], "MEDIUM"),
        ([_vuln("CVE-1", ("cvss_score", "7.0"))], "HIGH"),
        ([_vuln("CVE-1", ("cvss_score", "8.9"))], "HIGH"),
        ([_vuln("CVE-1", ("cvss_score", "9.0"))], "CRITICAL"),
        ([_vuln("CVE-1", ("vendor", "Important"))], "HIGH"),
        ([_vuln("CVE-1", ("vendor", "moderate"))], "MEDIUM"),
        ([_vuln("CVE-1", ("ubuntu", "negligible"))], "LOW"),
        # several methods: the highest known rating counts
        ([_vuln("CVE-1", ("nvd", "low"), ("ghsa", "high"))], "HIGH"),
        # a bare vector next to a rating is ignored; alone it is unknown
        (
            [_vuln("CVE-1", ("nvd", "medium"), ("cvss_v3", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"))],
            "MEDIUM",
        ),
        ([_vuln("CVE-1", ("cvss_v3", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"))], "CRITICAL"),
        # unknown, missing and out-of-range ratings fail closed
        ([_vuln("CVE-1", ("trivy", "UNKNOWN"))], "CRITICAL"),
        ([{"id": "CVE-1"}], "CRITICAL"),
        ([{"id": "CVE-1", "severity": []}], "CRITICAL"),
        ([_vuln("CVE-1", ("cvss_score", "11"))], "CRITICAL"),
        ([_vuln("CVE-1", ("cvss_score", "-1"))], "CRITICAL"),
        ([_vuln("CVE-1", ("cvss_score", True))], "CRITICAL"),
        # the spec's field list nests each finding under "vulnerability"
        ([{"vulnerability": _vuln("CVE-1", ("nvd", "low"))}], "LOW"),
        ([{"vulnerability": {"id": "CVE-1", "severity": {"method": "nvd", "score": "high"}}}], "HIGH"),
    ],
)
def test_intoto_scan_severity(statement_type: str, result: list[Any], worst: str) -> None:
    statement = _scan(result, statement_type=statement_type)
    for limit in SEVERITIES:
        expected = [] if SEVERITIES.index(worst) <= SEVERITIES.index(limit) else ["provenance-mismatch"]
        assert _codes(statement, limit) == expected, limit


def test_message_lists_the_worst_findings_first_and_counts_the_rest() -> None:
    result = [_vuln(f"CVE-{i}", ("nvd", "high")) for i in range(7)] + [
        _vuln("CVE-crit", ("nvd", "critical")),
        _vuln("CVE-ok", ("nvd", "low")),
    ]
    (finding,) = check_vulnerabilities(_scan(result), VulnerabilityCheck("MEDIUM"), now=NOW)
    assert finding.message.startswith(
        "8 of 9 vulnerabilities are above maxSeverity MEDIUM: CVE-crit (CRITICAL), CVE-0 (HIGH)"
    )
    assert finding.message.endswith("and 3 more")
    assert "CVE-ok" not in finding.message


def test_a_max_severity_the_policy_schema_refuses_cannot_be_required() -> None:
    statement = _scan([_vuln("CVE-1", ("nvd", "high"))])
    assert _codes(statement, "HIGH") == []
    for refused in ("SEVERE", "high"):
        with pytest.raises(ValueError, match=f"maxSeverity '{refused}'"):
            VulnerabilityCheck(refused)


@pytest.mark.parametrize(
    ("finished", "max_age", "codes"),
    [
        ("2026-11-20T09:05:00Z", timedelta(hours=168), []),
        ("2026-11-01T09:05:00Z", timedelta(hours=168), ["provenance-mismatch"]),
        ("2026-11-20T13:05:00.123456789+02:00", timedelta(hours=1), []),
        ("2026-11-20T09:05:00.5-02:00", timedelta(hours=1), []),
        ("2026-11-20T14:05:00Z", timedelta(hours=1), ["provenance-mismatch"]),
        ("yesterday", timedelta(hours=1), ["attestation-invalid"]),
        ("2026-11-20 09:05:00", timedelta(hours=1), ["attestation-invalid"]),
        ("2026-11-20T09:05:00Z", None, []),
        ("yesterday", None, []),
    ],
)
def test_scan_age(finished: str, max_age: timedelta | None, codes: list[str]) -> None:
    assert _codes(_scan([], scanFinishedOn=finished), "CRITICAL", max_age) == codes


def test_missing_scan_time_with_max_age_is_invalid() -> None:
    statement = build_statement(VULNS_V01, {"scanner": {"result": []}})
    findings = check_vulnerabilities(statement, VulnerabilityCheck("CRITICAL", timedelta(days=1)), now=NOW)
    assert [f.code for f in findings] == ["attestation-invalid"]
    assert "metadata.scanFinishedOn is missing" in findings[0].message


@pytest.mark.parametrize(
    ("predicate", "expected"),
    [
        ({}, "no scanner.result"),
        ({"scanner": {"uri": "x"}}, "no scanner.result"),
        ({"scanner": {"result": {"runs": []}}}, "expected a list"),
        ({"scanner": {"result": ["CVE-1"]}}, r"result\[0\] is a JSON string"),
    ],
)
def test_unreadable_intoto_scans_are_invalid(predicate: dict[str, Any], expected: str) -> None:
    findings = check_vulnerabilities(build_statement(VULNS_V01, predicate), VulnerabilityCheck(), now=NOW)
    assert [f.code for f in findings] == ["attestation-invalid"]
    assert findings[0].message.find(expected.replace("\\", "")) >= 0


def test_other_predicate_types_are_refused() -> None:
    findings = check_vulnerabilities(
        data_statement("statement-slsa-v1-minimal.json"), VulnerabilityCheck(), now=NOW
    )
    assert [f.code for f in findings] == ["attestation-invalid"]


# -- cosign vuln v1 -------------------------------------------------------------------------------------


def _trivy_sarif(results: list[dict[str, Any]], rules: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Shaped like `trivy image --format sarif`: severity in the rule's properties and tags."""
    if rules is None:
        rules = [
            {
                "id": "CVE-2024-0001",
                "name": "OsPackageVulnerability",
                "defaultConfiguration": {"level": "error"},
                "properties": {
                    "precision": "very-high",
                    "security-severity": "9.8",
                    "tags": ["vulnerability", "security", "CRITICAL"],
                },
            },
            {
                "id": "CVE-2024-0002",
                "name": "OsPackageVulnerability",
                "defaultConfiguration": {"level": "warning"},
                "properties": {
                    "precision": "very-high",
                    "security-severity": "5.3",
                    "tags": ["vulnerability", "security", "MEDIUM"],
                },
            },
            {
                "id": "CVE-2024-0003",
                "defaultConfiguration": {"level": "note"},
                "properties": {"tags": ["vulnerability", "security", "LOW"]},
            },
            {"id": "CVE-2024-0004", "properties": {"tags": ["vulnerability"]}},
        ]
    return {
        "version": "2.1.0",
        "$schema": "https://raw.githubusercontent.com/oasis-tcs/sarif-spec/master/Schemata/sarif-schema-2.1.0.json",
        "runs": [
            {
                "tool": {
                    "driver": {"name": "Trivy", "fullName": "Trivy Vulnerability Scanner", "rules": rules}
                },
                "results": results,
                "columnKind": "utf16CodeUnits",
            }
        ],
    }


@pytest.mark.parametrize(
    ("results", "worst"),
    [
        ([], "NONE"),
        ([{"ruleId": "CVE-2024-0002", "ruleIndex": 1, "level": "warning"}], "MEDIUM"),
        ([{"ruleId": "CVE-2024-0001", "ruleIndex": 0, "level": "error"}], "CRITICAL"),
        # ruleIndex wins over ruleId; without it the id finds the rule
        ([{"ruleId": "CVE-2024-0001", "ruleIndex": 1}], "MEDIUM"),
        ([{"ruleId": "CVE-2024-0002"}], "MEDIUM"),
        # the result's own security-severity wins over its rule's
        ([{"ruleId": "CVE-2024-0001", "properties": {"security-severity": "2.0"}}], "LOW"),
        # no score: the rule's severity tag
        ([{"ruleId": "CVE-2024-0003", "level": "error"}], "LOW"),
        # no score, no tag: the alert level read pessimistically
        ([{"ruleId": "CVE-2024-0004", "level": "note"}], "MEDIUM"),
        ([{"ruleId": "CVE-2024-0004", "level": "warning"}], "HIGH"),
        ([{"ruleId": "CVE-2024-0004", "level": "none"}], "NONE"),
        ([{"ruleId": "CVE-2024-0004"}], "HIGH"),
        ([{"ruleId": "unknown-rule", "level": "error"}], "CRITICAL"),
        ([{"ruleId": "unknown-rule", "level": "bogus"}], "CRITICAL"),
        # passes and not-applicable results are not findings
        (
            [
                {"ruleId": "CVE-2024-0001", "kind": "pass"},
                {"ruleId": "CVE-2024-0001", "kind": "notApplicable"},
            ],
            "NONE",
        ),
        ([{"ruleId": "CVE-2024-0001", "kind": "review"}], "CRITICAL"),
    ],
)
def test_cosign_sarif_scan_severity(results: list[dict[str, Any]], worst: str) -> None:
    statement = _scan(_trivy_sarif(results), kind=COSIGN_VULN_V1, statement_type=STATEMENT_V01)
    for limit in SEVERITIES:
        expected = [] if SEVERITIES.index(worst) <= SEVERITIES.index(limit) else ["provenance-mismatch"]
        assert _codes(statement, limit) == expected, limit


def test_cosign_sarif_message_names_rule_ids() -> None:
    statement = _scan(
        _trivy_sarif([{"ruleId": "CVE-2024-0001", "ruleIndex": 0, "level": "error"}]), kind=COSIGN_VULN_V1
    )
    (finding,) = check_vulnerabilities(statement, VulnerabilityCheck("HIGH"), now=NOW)
    assert finding.message == "1 of 1 vulnerabilities are above maxSeverity HIGH: CVE-2024-0001 (CRITICAL)"


def test_cosign_trivy_json_report() -> None:
    report = {
        "SchemaVersion": 2,
        "ArtifactName": "ghcr.io/acme/app:1.0",
        "Results": [
            {
                "Target": "alpine 3.20",
                "Vulnerabilities": [
                    {"VulnerabilityID": "CVE-2024-1", "Severity": "MEDIUM"},
                    {"VulnerabilityID": "CVE-2024-2", "Severity": "UNKNOWN"},
                ],
            },
            {"Target": "app/go.mod"},
        ],
    }
    statement = _scan(report, kind=COSIGN_VULN_V1)
    assert _codes(statement, "HIGH") == ["provenance-mismatch"]
    assert _codes(statement, "CRITICAL") == []
    (finding,) = check_vulnerabilities(statement, VulnerabilityCheck("HIGH"), now=NOW)
    assert "CVE-2024-2 (CRITICAL)" in finding.message


def test_cosign_trivy_json_report_without_findings() -> None:
    report = {"SchemaVersion": 2, "ArtifactName": "ghcr.io/acme/app:1.0", "ArtifactType": "container_image"}
    assert _codes(_scan(report, kind=COSIGN_VULN_V1), "NONE") == []


def test_cosign_grype_json_report() -> None:
    report = {"matches": [{"vulnerability": {"id": "GHSA-xxxx", "severity": "High"}}, {"vulnerability": {}}]}
    statement = _scan(report, kind=COSIGN_VULN_V1)
    (finding,) = check_vulnerabilities(statement, VulnerabilityCheck("HIGH"), now=NOW)
    assert finding.message == "1 of 2 vulnerabilities are above maxSeverity HIGH: matches[1] (CRITICAL)"


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        ({"summary": {"CRITICAL": 0}}, "expected SARIF (runs), Trivy JSON (Results) or Grype JSON (matches)"),
        ("sarif", "expected a list of vulnerabilities, found a JSON string"),
        ({"runs": [{"results": "x"}]}, "runs[0].results is not a list"),
        ({"runs": [{"tool": {"driver": {"name": "Trivy"}}}]}, "runs[0].results is not a list"),
        ({"version": "2.1.0", "runs": []}, "the SARIF report has no runs"),
        ({"SchemaVersion": 2, "Results": "none"}, "expected SARIF"),
    ],
)
def test_unreadable_cosign_scans_are_invalid(result: Any, expected: str) -> None:
    findings = check_vulnerabilities(_scan(result, kind=COSIGN_VULN_V1), VulnerabilityCheck(), now=NOW)
    assert [f.code for f in findings] == ["attestation-invalid"]
    assert expected in findings[0].message


def test_cosign_scan_age_and_severity_are_both_reported() -> None:
    statement = _scan(
        _trivy_sarif([{"ruleId": "CVE-2024-0001"}]),
        kind=COSIGN_VULN_V1,
        scanFinishedOn="2026-10-01T00:00:00Z",
    )
    findings = check_vulnerabilities(statement, VulnerabilityCheck("HIGH", timedelta(days=7)), now=NOW)
    assert [f.code for f in findings] == ["provenance-mismatch", "provenance-mismatch"]
    assert "maxSeverity HIGH" in findings[0].message
    assert "more than maxAge 7d0h00m00s" in findings[1].message


def test_the_severities_found_and_the_scan_time_are_evidence() -> None:
    statement = _scan([_vuln("CVE-1", ("nvd", "LOW")), _vuln("CVE-2", ("nvd", "HIGH"))])
    fields = compare_vulnerabilities(statement, VulnerabilityCheck("MEDIUM", timedelta(days=7)), now=NOW)
    assert [(f.name, f.policy, f.expected, f.found, f.source, f.passed) for f in fields] == [
        ("vulnerabilities", "maxSeverity", ("MEDIUM",), "2 findings, worst HIGH", "scanner.result", False),
        (
            "scan finished",
            "maxAge",
            ("7d0h00m00s",),
            "2026-11-20T09:05:00Z (2h55m00s old)",
            "metadata.scanFinishedOn",
            True,
        ),
    ]
    clean = compare_vulnerabilities(_scan([]), VulnerabilityCheck("NONE"), now=NOW)
    assert [(f.found, f.passed) for f in clean] == [("no findings", True)]
