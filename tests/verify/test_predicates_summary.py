"""Verification summary (VSA v1) checks: a real signed Google VSA and tables over synthetic ones."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from webhook.policy.model import VerificationSummaryCheck
from webhook.verify.dsse import verify_dsse_envelope
from webhook.verify.predicates import (
    VERIFICATION_SUMMARY_V1,
    check_verification_summary,
    compare_verification_summary,
)
from webhook.verify.signatures import load_public_key
from webhook.verify.statements import STATEMENT_V01, STATEMENT_V1, Statement, parse_statement

from ._data import DIGEST, DIGEST_HEX, build_statement, data_statement, read_data

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
IMAGE = "ghcr.io/acme/app"
VERIFIER = "https://verifier.example/promotion/v1"
GOOGLE_VERIFIER = "https://bcid.corp.google.com/verifier/bcid_package_enforcer/v0.1"


def _real_vsa() -> Statement:
    """Google's BCID VSA from slsa-verifier's test data, verified with its published key first."""
    key = load_public_key(read_data("vsa_signing_public_key.pem"), name="bcid")
    payload_type, payload = verify_dsse_envelope(
        json.loads(read_data("vsa-gke-gce-pre.bcid-vsa.dsse.json")), key
    )
    return parse_statement(payload_type, payload)


def _vsa(*, statement_type: str = STATEMENT_V1, **change: Any) -> Statement:
    predicate: dict[str, Any] = {
        "verifier": {"id": VERIFIER},
        "timeVerified": "2026-11-20T10:00:00Z",
        "resourceUri": f"{IMAGE}@{DIGEST}",
        "policy": {"uri": "https://policies.example/prod"},
        "verificationResult": "PASSED",
        "verifiedLevels": ["SLSA_BUILD_LEVEL_3"],
        "slsaVersion": "1.0",
    }
    for key, value in change.items():
        if value is None:
            predicate.pop(key, None)
        else:
            predicate[key] = value
    return build_statement(VERIFICATION_SUMMARY_V1, predicate, statement_type=statement_type)


def _check(
    statement: Statement, check: VerificationSummaryCheck, *, image: str = IMAGE
) -> list[tuple[str, str]]:
    findings = check_verification_summary(statement, check, image_name=image, digest=DIGEST, now=NOW)
    return [(f.code, f.message) for f in findings]


def test_real_google_vsa_meets_its_own_level_and_verifier() -> None:
    statement = _real_vsa()
    check = VerificationSummaryCheck(
        verifier_ids=(GOOGLE_VERIFIER,),
        min_level="SLSA_BUILD_LEVEL_2",
        resource_uri="gce_image://gke-node-images:*",
    )
    assert _check(statement, check) == []
    assert (
        _check(statement, VerificationSummaryCheck(min_level="BCID_L1", resource_uri="gce_image://**")) == []
    )


def test_real_google_vsa_is_refused_where_it_does_not_qualify() -> None:
    statement = _real_vsa()
    check = VerificationSummaryCheck(
        verifier_ids=(VERIFIER,),
        min_level="SLSA_BUILD_LEVEL_3",
        max_age=timedelta(days=30),
    )
    found = _check(statement, check)
    assert [code for code, _ in found] == ["provenance-mismatch"] * 4
    assert GOOGLE_VERIFIER in found[0][1]
    assert "SLSA_BUILD_LEVEL_2" in found[1][1]
    assert "minLevel SLSA_BUILD_LEVEL_3" in found[1][1]
    assert "more than maxAge" in found[2][1]
    assert "gce_image://" in found[3][1]
    assert IMAGE in found[3][1]


@pytest.mark.parametrize("statement_type", [STATEMENT_V01, STATEMENT_V1])
def test_a_passing_summary_passes(statement_type: str) -> None:
    check = VerificationSummaryCheck(
        verifier_ids=(VERIFIER,), min_level="SLSA_BUILD_LEVEL_3", max_age=timedelta(hours=24)
    )
    assert _check(_vsa(statement_type=statement_type), check) == []


@pytest.mark.parametrize("statement_type", [STATEMENT_V01, STATEMENT_V1])
@pytest.mark.parametrize(
    ("change", "check", "code", "expected"),
    [
        ({"verificationResult": "FAILED"}, {}, "provenance-mismatch", "verificationResult is 'FAILED'"),
        ({"verificationResult": None}, {}, "attestation-invalid", "no verificationResult"),
        (
            {"verifier": {"id": "https://evil.example/v"}},
            {"verifier_ids": (VERIFIER,)},
            "provenance-mismatch",
            "'https://evil.example/v' is not one of verifierIds",
        ),
        ({"verifier": None}, {"verifier_ids": (VERIFIER,)}, "attestation-invalid", "no verifier.id"),
        (
            {"verifiedLevels": ["SLSA_BUILD_LEVEL_2"]},
            {"min_level": "SLSA_BUILD_LEVEL_3"},
            "provenance-mismatch",
            "do not reach minLevel SLSA_BUILD_LEVEL_3",
        ),
        (
            {"verifiedLevels": ["SLSA_SOURCE_LEVEL_3"]},
            {"min_level": "SLSA_BUILD_LEVEL_2"},
            "provenance-mismatch",
            "do not reach",
        ),
        (
            {"verifiedLevels": ["FAILED"]},
            {"min_level": "SLSA_BUILD_LEVEL_1"},
            "provenance-mismatch",
            "FAILED",
        ),
        ({"verifiedLevels": []}, {"min_level": "SLSA_BUILD_LEVEL_1"}, "provenance-mismatch", "do not reach"),
        (
            {"verifiedLevels": "SLSA_BUILD_LEVEL_3"},
            {"min_level": "SLSA_BUILD_LEVEL_1"},
            "attestation-invalid",
            "not a list of strings",
        ),
        (
            {"timeVerified": "2026-11-10T10:00:00Z"},
            {"max_age": timedelta(days=7)},
            "provenance-mismatch",
            "10d2h00m00s old, more than maxAge 7d0h00m00s",
        ),
        (
            {"timeVerified": "2026-11-21T10:00:00Z"},
            {"max_age": timedelta(days=7)},
            "provenance-mismatch",
            "in the future",
        ),
        ({"timeVerified": "2026-11-20"}, {"max_age": timedelta(days=7)}, "attestation-invalid", "RFC 3339"),
        (
            {"timeVerified": "2026-11-20T10:00:00"},
            {"max_age": timedelta(days=7)},
            "attestation-invalid",
            "RFC 3339",
        ),
        (
            {"timeVerified": None},
            {"max_age": timedelta(days=7)},
            "attestation-invalid",
            "timeVerified is missing",
        ),
        ({"resourceUri": None}, {}, "attestation-invalid", "no resourceUri"),
        (
            {"resourceUri": "ghcr.io/acme/other"},
            {},
            "provenance-mismatch",
            "names ghcr.io/acme/other, expected",
        ),
        ({"resourceUri": f"ghcr.io/acme/app@sha256:{'0' * 64}"}, {}, "provenance-mismatch", "names digest"),
        ({"resourceUri": "pkg:npm/acme@1.0.0"}, {}, "provenance-mismatch", "does not name an image"),
        (
            {"resourceUri": "ghcr.io/acme/app"},
            {"resource_uri": "ghcr.io/acme/app@*"},
            "provenance-mismatch",
            "does not match 'ghcr.io/acme/app@*'",
        ),
    ],
)
def test_summary_failures(
    statement_type: str, change: dict[str, Any], check: dict[str, Any], code: str, expected: str
) -> None:
    found = _check(_vsa(statement_type=statement_type, **change), VerificationSummaryCheck(**check))
    assert len(found) == 1, found
    assert found[0][0] == code
    assert expected in found[0][1]


@pytest.mark.parametrize(
    ("levels", "minimum", "ok"),
    [
        (["SLSA_BUILD_LEVEL_3"], "SLSA_BUILD_LEVEL_3", True),
        (["SLSA_BUILD_LEVEL_3"], "SLSA_BUILD_LEVEL_1", True),
        (["SLSA_SOURCE_LEVEL_1", "SLSA_BUILD_LEVEL_2"], "SLSA_BUILD_LEVEL_2", True),
        (["SLSA_BUILD_LEVEL_10"], "SLSA_BUILD_LEVEL_3", True),
        (["SLSA_BUILD_LEVEL_2"], "SLSA_BUILD_LEVEL_3", False),
        (["XSLSA_BUILD_LEVEL_3"], "SLSA_BUILD_LEVEL_3", False),
        (["SLSA_BUILD_LEVEL_3x"], "SLSA_BUILD_LEVEL_3", False),
        (["BCID_L1"], "BCID_L1", True),
        (["BCID_L2"], "BCID_L1", False),
    ],
)
def test_levels_compare_within_a_track(levels: list[str], minimum: str, ok: bool) -> None:
    found = _check(_vsa(verifiedLevels=levels), VerificationSummaryCheck(min_level=minimum))
    assert (found == []) is ok


@pytest.mark.parametrize(
    ("resource", "image", "ok"),
    [
        ("ghcr.io/acme/app", IMAGE, True),
        ("ghcr.io/acme/app:v1.2.3", IMAGE, True),
        (f"ghcr.io/acme/app@{DIGEST}", IMAGE, True),
        (f"ghcr.io/acme/app:v1@{DIGEST}", IMAGE, True),
        ("oci://ghcr.io/acme/app", IMAGE, True),
        ("docker://ghcr.io/acme/app", IMAGE, True),
        (f"https://ghcr.io/acme/app@{DIGEST}", IMAGE, True),
        ("GHCR.IO/acme/app", IMAGE, True),
        (f"pkg:docker/acme/app@sha256%3A{DIGEST_HEX}?repository_url=ghcr.io", IMAGE, True),
        ("pkg:docker/acme/app@v1.2.3?repository_url=ghcr.io", IMAGE, True),
        (f"pkg:oci/app@sha256%3A{DIGEST_HEX}?repository_url=ghcr.io/acme/app", IMAGE, True),
        (f"pkg:oci/app@sha256%3A{DIGEST_HEX}?arch=amd64&repository_url=ghcr.io%2Facme%2Fapp", IMAGE, True),
        ("docker.io/library/nginx", "nginx", True),
        ("index.docker.io/library/nginx:1.27", "docker.io/library/nginx", True),
        ("pkg:docker/library/nginx@1.27", "nginx:1.27", True),
        ("nginx", "docker.io/library/nginx", True),
        ("ghcr.io/acme/app-evil", IMAGE, False),
        ("ghcr.io/acme", IMAGE, False),
        ("ghcr.io/acme/app/sub", IMAGE, False),
        ("ghcr.io.evil.example/acme/app", IMAGE, False),
        (f"ghcr.io/acme/app@sha256:{'1' * 64}", IMAGE, False),
        ("pkg:docker/acme/app", IMAGE, False),
        (f"pkg:oci/app@sha256%3A{DIGEST_HEX}", IMAGE, False),
        (f"pkg:oci/app@sha256%3A{DIGEST_HEX}?repository_url=ghcr.io/acme/other", IMAGE, False),
        ("pkg:npm/app@1.0.0", IMAGE, False),
        ("https://example.com/app.tar.gz", IMAGE, False),
        ("", IMAGE, False),
    ],
)
def test_resource_uri_must_name_the_admitted_image(resource: str, image: str, ok: bool) -> None:
    found = _check(_vsa(resourceUri=resource), VerificationSummaryCheck(), image=image)
    assert (found == []) is ok, found


def test_resource_uri_glob_replaces_the_default() -> None:
    check = VerificationSummaryCheck(resource_uri="pkg:docker/acme/**")
    assert _check(_vsa(resourceUri="pkg:docker/acme/app@v1?repository_url=ghcr.io"), check) == []
    assert _check(_vsa(resourceUri="ghcr.io/acme/app"), check) != []


def test_other_predicate_types_are_refused() -> None:
    statement = data_statement("statement-slsa-v1-minimal.json")
    findings = check_verification_summary(
        statement, VerificationSummaryCheck(), image_name=IMAGE, digest=DIGEST, now=NOW
    )
    assert [f.code for f in findings] == ["attestation-invalid"]
    assert VERIFICATION_SUMMARY_V1 in findings[0].message


def test_now_must_be_timezone_aware() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        check_verification_summary(
            _vsa(), VerificationSummaryCheck(), image_name=IMAGE, digest=DIGEST, now=datetime(2026, 1, 1)
        )


def test_every_field_compared_is_evidence_with_what_was_expected() -> None:
    check = VerificationSummaryCheck(
        verifier_ids=(VERIFIER,), min_level="SLSA_BUILD_LEVEL_3", max_age=timedelta(hours=1)
    )
    fields = compare_verification_summary(_vsa(), check, image_name=IMAGE, digest=DIGEST, now=NOW)
    assert [(f.name, f.policy, f.expected, f.found, f.source, f.passed) for f in fields] == [
        ("verifier", "verifierIds", (VERIFIER,), VERIFIER, "verifier.id", True),
        ("verification result", "", ("PASSED",), "PASSED", "verificationResult", True),
        (
            "verified levels",
            "minLevel",
            ("SLSA_BUILD_LEVEL_3",),
            "SLSA_BUILD_LEVEL_3",
            "verifiedLevels",
            True,
        ),
        (
            "time verified",
            "maxAge",
            ("1h00m00s",),
            "2026-11-20T10:00:00Z (2h00m00s old)",
            "timeVerified",
            False,
        ),
        ("resource", "resourceUri", (IMAGE,), f"{IMAGE}@{DIGEST}", "resourceUri", True),
    ]
    assert [f.failure for f in fields if f.failure] == list(
        check_verification_summary(_vsa(), check, image_name=IMAGE, digest=DIGEST, now=NOW)
    )
