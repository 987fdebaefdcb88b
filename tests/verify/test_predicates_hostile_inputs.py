"""Hostile values in signed statements and certificates: always a finding or a mismatch, never a crash."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from webhook.errors import VerificationFailed
from webhook.policy.model import KeylessSigner, VerificationSummaryCheck, VulnerabilityCheck
from webhook.verify import predicates
from webhook.verify.identity import SignerPolicy
from webhook.verify.statements import IN_TOTO_PAYLOAD_TYPE, Statement, parse_statement

DIGEST = "sha256:" + "a" * 64
NOW = datetime(2026, 1, 1, tzinfo=UTC)
ISSUER = "https://issuer.example"
OTHERNAME = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.7")


def _statement(predicate_type: str, predicate: str) -> Statement:
    document = (
        '{"_type":"https://in-toto.io/Statement/v1","subject":[{"digest":{"sha256":"'
        + "a" * 64
        + f'"}}}}],"predicateType":"{predicate_type}","predicate":{predicate}}}'
    )
    return parse_statement(IN_TOTO_PAYLOAD_TYPE, document.encode())


# --- statements ------------------------------------------------------------------------------------------


def test_a_number_too_long_to_convert_is_an_invalid_statement() -> None:
    with pytest.raises(VerificationFailed) as caught:
        _statement("x", '{"n":' + "1" * 5000 + "}")
    assert caught.value.code == "attestation-invalid"
    assert "not JSON" in caught.value.user_message


# --- predicates --------------------------------------------------------------------------------------------


def test_a_cvss_score_too_large_for_a_float_counts_as_unrated() -> None:
    scan = _statement(
        predicates.VULNS_V01,
        '{"scanner":{"result":[{"id":"CVE-1","severity":[{"score":1' + "0" * 400 + "}]}]}}",
    )
    findings = predicates.check_vulnerabilities(scan, VulnerabilityCheck(max_severity="HIGH"), now=NOW)
    assert [f.code for f in findings] == ["provenance-mismatch"]
    assert "CVE-1 (CRITICAL)" in findings[0].message


@pytest.mark.parametrize("rule_id", ['{"a":1}', '["a"]'])
def test_a_sarif_rule_id_of_the_wrong_type_is_judged(rule_id: str) -> None:
    report = {
        "runs": [
            {"tool": {"driver": {"rules": [{"id": "x"}]}}, "results": [{"ruleId": "RULE", "level": "none"}]}
        ]
    }
    text = json.dumps({"scanner": {"result": report}}).replace('"RULE"', rule_id)
    scan = _statement(predicates.COSIGN_VULN_V1, text)
    findings = predicates.check_vulnerabilities(scan, VulnerabilityCheck(max_severity="HIGH"), now=NOW)
    assert findings == ()


def test_a_verified_level_with_a_huge_number_is_a_mismatch() -> None:
    summary = _statement(
        predicates.VERIFICATION_SUMMARY_V1,
        json.dumps(
            {
                "verifier": {"id": "v"},
                "verificationResult": "PASSED",
                "verifiedLevels": ["SLSA_BUILD_LEVEL_" + "9" * 5000],
                "resourceUri": "registry.example.com/acme/app",
            }
        ),
    )
    findings = predicates.check_verification_summary(
        summary,
        VerificationSummaryCheck(min_level="SLSA_BUILD_LEVEL_3"),
        image_name="registry.example.com/acme/app",
        digest=DIGEST,
        now=NOW,
    )
    assert [f.code for f in findings] == ["provenance-mismatch"]
    assert "minLevel" in findings[0].message


# --- identities: a Sigstore OtherName SAN too long for a one-byte DER length -----------------------------


def _der_utf8(value: str) -> bytes:
    raw = value.encode()
    length = bytes([len(raw)]) if len(raw) < 0x80 else bytes([0x81, len(raw)])
    assert len(raw) < 0x100
    return b"\x0c" + length + raw


def _othername_cert(name: str) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test")])
    start = datetime.now(UTC) - timedelta(minutes=1)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(start)
        .not_valid_after(start + timedelta(minutes=10))
        .add_extension(
            x509.SubjectAlternativeName([x509.OtherName(OTHERNAME, _der_utf8(name))]), critical=True
        )
        .add_extension(
            x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.8"), _der_utf8(ISSUER)),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )


LONG_NAME = "user-" + "x" * 150 + "@example.com"


def test_a_long_othername_subject_matches_exactly() -> None:
    cert = _othername_cert(LONG_NAME)
    policy = SignerPolicy(KeylessSigner(root="r", issuer=ISSUER, subject=LONG_NAME))
    assert policy.failure(cert) is None
    assert policy.matches(cert)


def test_a_long_othername_subject_mismatch_is_reported_not_raised() -> None:
    cert = _othername_cert(LONG_NAME)
    policy = SignerPolicy(KeylessSigner(root="r", issuer=ISSUER, subject="someone@example.com"))
    failure = policy.failure(cert)
    assert failure is not None
    assert "is not someone@example.com" in failure
    assert not policy.matches(cert)
