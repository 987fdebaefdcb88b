"""ImageVerifier against hostile or duplicated artifacts: k-of-n counts distinct signatures, one bad artifact
never sinks the others, and a certificate on a key-signed layer must be that key's."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support.fake_sigstore import (
    ANNOTATION_CERTIFICATE,
    VULNS_V01,
    cosign_sign_statement,
    statement_v1,
    vuln,
    vulns_v01,
)
from tests.support.verify_world import (
    ACME_REGEXP,
    EVIL,
    IMAGE,
    World,
    attestation_rule,
    codes,
    fixture_world,  # noqa: F401 - pytest fixture
    key_signer,
    keyless,
    messages,
    requirement,
    signature_rule,
)
from webhook.policy.model import VulnerabilityCheck

pytestmark = [pytest.mark.usefixtures("offline"), pytest.mark.sigstore]

HUGE_INTEGER = "1" * 5000  # more digits than Python converts to int by default


# --- k of n: one signature, copied, is still one signature -------------------------------------------


def test_a_legacy_layer_pushed_twice_counts_once(world: World) -> None:
    layer = world.sigstore.legacy_sig_layer(world.identity(), image_name=IMAGE, digest=world.image.digest)
    world.push_legacy("sig", layer)
    world.push_legacy("sig", layer)
    rule = signature_rule(keyless(), keyless(subject=None, regexp=ACME_REGEXP), minimum=2)
    result = world.verify(rule)
    assert not result.passed
    assert codes(result) == ["identity-mismatch"]
    assert "only 1 of minimum 2" in messages(result)


def test_a_bundle_re_encoded_as_a_second_referrer_counts_once(world: World) -> None:
    bundle = world.sigstore.bundle_dsse(world.identity(), cosign_sign_statement(world.image.digest))
    world.push_referrer(bundle)
    world.push_referrer(json.dumps(json.loads(bundle), indent=2).encode())
    rule = signature_rule(keyless(), keyless(subject=None, regexp=ACME_REGEXP), minimum=2)
    result = world.verify(rule)
    assert len(world.discover().bundles) == 2
    assert not result.passed
    assert codes(result) == ["identity-mismatch"]


def test_one_key_under_two_names_is_one_signer(world: World) -> None:
    key = world.key("release")
    world.keys["release-copy"] = key
    world.sign_legacy_with_key(key)
    world.sign_bundle_with_key(key)
    result = world.verify(signature_rule(key_signer("release"), key_signer("release-copy"), minimum=2))
    assert not result.passed
    assert codes(result) == ["identity-mismatch"]


def test_two_keys_still_count_twice(world: World) -> None:
    world.sign_legacy_with_key(world.key("release"))
    world.sign_legacy_with_key(world.key("qa"))
    assert world.verify(signature_rule(key_signer("release"), key_signer("qa"), minimum=2)).passed


# --- hostile JSON in a signed payload --------------------------------------------------------------------


def _statement_with_huge_number(digest: str) -> bytes:
    statement = cosign_sign_statement(digest)
    text = json.dumps(statement, separators=(",", ":"))
    # A number too long to convert: valid JSON, but Python's int() refuses it.
    return text.replace('"predicate":{}', '"predicate":{"n":' + HUGE_INTEGER + "}").encode()


@contextmanager
def _unlimited_int_digits() -> Iterator[None]:
    # Only while the test pushes: the test registry reads the statement to annotate the referrer.
    limit = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(0)
    try:
        yield
    finally:
        sys.set_int_max_str_digits(limit)


def test_a_statement_with_a_huge_number_does_not_sink_a_valid_signature(world: World) -> None:
    hostile = _statement_with_huge_number(world.image.digest)
    assert HUGE_INTEGER.encode() in hostile
    with _unlimited_int_digits():
        world.push_referrer(world.sigstore.bundle_dsse(world.identity(EVIL), hostile))
    world.sign_bundle(world.identity())
    result = world.verify(signature_rule(keyless()))
    assert result.passed, result.findings


def test_a_statement_with_a_huge_number_alone_is_an_invalid_artifact(world: World) -> None:
    with _unlimited_int_digits():
        world.push_referrer(
            world.sigstore.bundle_dsse(world.identity(), _statement_with_huge_number(world.image.digest))
        )
    result = world.verify(signature_rule(keyless()))
    assert codes(result) == ["signature-invalid"]
    assert "unexpectedly" not in messages(result)
    assert "not JSON" in messages(result)


def test_a_scan_with_an_unconvertible_score_is_judged_not_crashed(world: World) -> None:
    scan = statement_v1(world.image.digest, VULNS_V01, vulns_v01(results=[vuln("CVE-1", "LOW")]))
    text = json.dumps(scan).replace('"LOW"', "1" + "0" * 400)  # an int too large for a float
    assert "0" * 400 in text
    world.push_referrer(world.sigstore.bundle_dsse(world.identity(), text.encode()))
    rule = attestation_rule(
        requirement(VULNS_V01, [keyless()], vulnerabilities=VulnerabilityCheck(max_severity="HIGH"))
    )
    result = world.verify(rule)
    assert not result.passed
    assert "unexpectedly" not in messages(result)
    # A score nobody can read is CRITICAL (fail closed), hence above HIGH.
    assert codes(result) == ["provenance-mismatch"]
    assert "CVE-1 (CRITICAL)" in messages(result)


# --- a certificate on a key-signed legacy layer -----------------------------------------------------------


def test_key_signed_layer_carrying_someone_elses_certificate_is_refused(world: World) -> None:
    key = world.key("release")
    payload, annotations = world.sigstore.legacy_sig_layer_with_key(
        key, image_name=IMAGE, digest=world.image.digest, tlog=False
    )
    annotations[ANNOTATION_CERTIFICATE] = world.identity(EVIL).cert_pem
    world.push_legacy("sig", (payload, annotations))
    result = world.verify(signature_rule(key_signer("release", require_tlog=False)))
    assert not result.passed
    assert codes(result) == ["signature-invalid"]
    assert "certificate" in messages(result)


def _certificate_for(public_key: object) -> str:
    issuer_key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "release signer")])
    start = datetime.now(UTC) - timedelta(minutes=1)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public_key)  # type: ignore[arg-type]
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=1))
        .sign(issuer_key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


def test_key_signed_layer_carrying_a_certificate_for_that_key_verifies(world: World) -> None:
    key = world.key("release")
    payload, annotations = world.sigstore.legacy_sig_layer_with_key(
        key, image_name=IMAGE, digest=world.image.digest, tlog=False
    )
    annotations[ANNOTATION_CERTIFICATE] = _certificate_for(key.public_key)
    world.push_legacy("sig", (payload, annotations))
    result = world.verify(signature_rule(key_signer("release", require_tlog=False)))
    assert result.passed, result.findings
