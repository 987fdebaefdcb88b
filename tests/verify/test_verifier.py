"""ImageVerifier end to end over a local test Sigstore and an in-memory registry: every outcome and code."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.support.fake_sigstore import (
    SLSA_PROVENANCE_V02,
    SLSA_PROVENANCE_V1,
    VSA_V1,
    VULNS_V01,
    FakeSigstore,
    github_actions_extensions,
    legacy_tag,
    other_digest,
    shift_legacy_integrated_time,
    slsa_provenance_v02,
    slsa_provenance_v1,
    statement_v01,
    statement_v1,
    tamper_payload,
    vsa_v1,
    vuln,
    vulns_v01,
)
from tests.support.verify_world import (
    ACME_REGEXP,
    EVIL,
    GITHUB_ISSUER,
    IMAGE,
    WORKFLOW,
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
from webhook.explain import verification_lines
from webhook.policy.model import SlsaCheck, VerificationSummaryCheck, VulnerabilityCheck

pytestmark = [pytest.mark.usefixtures("offline"), pytest.mark.sigstore]


# --- signatures: positives ---------------------------------------------------------------------


def test_bundle_referrer_signature_verifies(world: World) -> None:
    world.sign_bundle(world.identity())
    result = world.verify(signature_rule(keyless()))
    assert result.passed, result.findings
    assert any("satisfies signer #1" in step for step in verification_lines(result))
    assert verification_lines(result)[-1] == "rule release: passed"


def test_legacy_sig_verifies(world: World) -> None:
    world.sign_legacy(world.identity())
    result = world.verify(signature_rule(keyless()))
    assert result.passed, result.findings
    assert any(
        "legacy .sig layer" in step and "satisfies signer #1" in step for step in verification_lines(result)
    )


def test_anchored_regexp_identity_verifies(world: World) -> None:
    world.sign_bundle(world.identity())
    assert world.verify(signature_rule(keyless(regexp=ACME_REGEXP))).passed


def test_extensions_must_match_exactly(world: World) -> None:
    world.sign_bundle(world.identity(**github_actions_extensions()))
    good = keyless(
        extensions={
            "sourceRepositoryURI": "https://github.com/acme/app",
            "sourceRepositoryRef": "refs/heads/main",
        }
    )
    bad = keyless(extensions={"sourceRepositoryRef": "refs/heads/dev"})
    assert world.verify(signature_rule(good)).passed
    result = world.verify(signature_rule(bad))
    assert codes(result) == ["identity-mismatch"]
    assert "refs/heads/dev" in "\n".join(verification_lines(result))


@pytest.mark.parametrize("kind", ["ecdsa-p256", "ed25519", "rsa"])
def test_key_signed_legacy_sig_verifies(world: World, kind: str) -> None:
    world.sign_legacy_with_key(world.key("release", kind))
    assert world.verify(signature_rule(key_signer("release"))).passed
    assert world.verify(signature_rule(key_signer("release", require_tlog=True))).passed


def test_key_signed_bundle_verifies(world: World) -> None:
    world.sign_bundle_with_key(world.key("release"))
    assert world.verify(signature_rule(key_signer("release", require_tlog=True))).passed


def test_require_tlog_rejects_key_signature_without_log_entry(world: World) -> None:
    world.sign_legacy_with_key(world.key("release"), tlog=False)
    world.sign_bundle_with_key(world.key("release"), tlog=False)
    assert world.verify(signature_rule(key_signer("release", require_tlog=False))).passed
    result = world.verify(signature_rule(key_signer("release")))  # requireTlog defaults to true
    assert codes(result) == ["signature-invalid"]
    assert "transparency" in messages(result)


@pytest.mark.parametrize("fmt", ["bundle", "legacy"])
@pytest.mark.parametrize("window", ["starts-after-signing", "ended-before-signing"])
def test_log_evidence_outside_the_log_keys_validity_window_is_refused(
    world: World, tmp_path: Path, fmt: str, window: str
) -> None:
    if fmt == "bundle":
        world.sign_bundle_with_key(world.key("release"))
    else:
        world.sign_legacy_with_key(world.key("release"))
    # The same root, but its Rekor key valid only from tomorrow, or only until yesterday.
    root = json.loads(json.dumps(world.sigstore.trusted_root()))  # a copy: its windows share one dict
    day = timedelta(days=1)
    validity = root["tlogs"][0]["publicKey"]["validFor"]
    if window == "starts-after-signing":
        validity["start"] = (datetime.now(UTC) + day).isoformat().replace("+00:00", "Z")
    else:
        validity["start"] = (datetime.now(UTC) - 10 * day).isoformat().replace("+00:00", "Z")
        validity["end"] = (datetime.now(UTC) - day).isoformat().replace("+00:00", "Z")
    path = tmp_path / "windowed_trusted_root.json"
    path.write_text(json.dumps(root))
    world.extra_roots["test"] = path

    for require_tlog in (True, False):  # evidence that is present must be valid either way
        result = world.verify(signature_rule(key_signer("release", require_tlog=require_tlog)))
        assert codes(result) == ["signature-invalid"], verification_lines(result)
        assert "became valid" in messages(result) or "stopped being valid" in messages(result)


def test_signature_by_another_key_is_invalid(world: World) -> None:
    world.key("release")
    world.sign_legacy_with_key(world.key("intruder"))
    result = world.verify(signature_rule(key_signer("release")))
    assert codes(result) == ["signature-invalid"]


# --- signatures: negatives ---------------------------------------------------------------------


def test_no_signature_is_unsigned(world: World) -> None:
    result = world.verify(signature_rule(keyless()))
    assert codes(result) == ["unsigned"]
    assert world.image.digest in messages(result)
    assert "expected #1 keyless" in messages(result)


def test_attestation_alone_does_not_count_as_signature(world: World) -> None:
    statement = statement_v1(world.image.digest, SLSA_PROVENANCE_V1, slsa_provenance_v1())
    world.attest_bundle(world.identity(), statement)
    assert codes(world.verify(signature_rule(keyless()))) == ["unsigned"]


def test_replayed_legacy_signature_for_another_digest_is_invalid(world: World) -> None:
    # A valid signature of another image, copied under this image's .sig tag.
    world.sign_legacy(world.identity(), signed=other_digest(world.image.digest))
    result = world.verify(signature_rule(keyless()))
    assert codes(result) == ["signature-invalid"]
    assert other_digest(world.image.digest) in messages(result)


def test_replayed_bundle_for_another_digest_is_invalid(world: World) -> None:
    world.sign_bundle(world.identity(), signed=other_digest(world.image.digest))
    result = world.verify(signature_rule(keyless()))
    assert codes(result) == ["signature-invalid"]
    assert "not " + world.image.digest in messages(result)


@pytest.mark.parametrize("legacy", [False, True], ids=["bundle", "legacy"])
def test_wrong_identity_is_identity_mismatch(world: World, legacy: bool) -> None:
    evil = world.identity(subject=EVIL)
    world.sign_legacy(evil) if legacy else world.sign_bundle(evil)
    result = world.verify(signature_rule(keyless(regexp=ACME_REGEXP)))
    assert codes(result) == ["identity-mismatch"]
    message = messages(result)
    assert f"expected #1 keyless ~/{ACME_REGEXP}/ (issuer {GITHUB_ISSUER}" in message
    assert f"found keyless {EVIL} issuer {GITHUB_ISSUER}" in message


def test_wrong_issuer_is_identity_mismatch(world: World) -> None:
    world.sign_bundle(world.identity(issuer="https://accounts.google.com"))
    result = world.verify(signature_rule(keyless()))
    assert codes(result) == ["identity-mismatch"]
    assert "issuer https://accounts.google.com" in messages(result)
    assert any("issuer https://accounts.google.com is not" in step for step in verification_lines(result))


def test_unanchored_regexp_must_match_the_whole_identity(world: World) -> None:
    world.sign_bundle(world.identity())
    # re.search would accept it (WORKFLOW starts with it); re.fullmatch does not.
    unanchored = r"https://github\.com/acme/app/\.github/workflows/release\.yml"
    result = world.verify(signature_rule(keyless(regexp=unanchored)))
    assert codes(result) == ["identity-mismatch"]
    # ... and a longer look-alike identity does not match an anchored-looking exact prefix either.
    world.sign_bundle(world.identity(subject=WORKFLOW.replace("acme/app", "acme/app-evil")))
    result = world.verify(signature_rule(keyless(subject=None, regexp=r"https://github\.com/acme/app/.*")))
    assert any("acme/app-evil" in step and "does not match" in step for step in verification_lines(result))


def test_signature_from_untrusted_instance_is_invalid(world: World, tmp_path) -> None:  # type: ignore[no-untyped-def]
    stranger = FakeSigstore.create(tmp_path / "stranger")
    world.sign_bundle(stranger.issue_cert(subject=WORKFLOW, issuer=GITHUB_ISSUER))
    world.push_legacy(
        "sig",
        stranger.legacy_sig_layer(
            stranger.issue_cert(subject=WORKFLOW, issuer=GITHUB_ISSUER),
            image_name=IMAGE,
            digest=world.image.digest,
        ),
    )
    result = world.verify(signature_rule(keyless()))
    assert codes(result) == ["signature-invalid"]
    assert "bundle" in messages(result)
    assert "legacy .sig layer" in messages(result)


def test_tampered_bundle_payload_is_invalid(world: World) -> None:
    from tests.support.fake_sigstore import cosign_sign_statement

    bundle = world.sigstore.bundle_dsse(world.identity(), cosign_sign_statement(world.image.digest))
    world.push_referrer(tamper_payload(bundle))
    assert codes(world.verify(signature_rule(keyless()))) == ["signature-invalid"]


def test_tampered_legacy_layer_is_invalid(world: World) -> None:
    payload, annotations = world.sigstore.legacy_sig_layer(
        world.identity(), image_name=IMAGE, digest=world.image.digest
    )
    world.push_legacy("sig", (payload.replace(b'"optional":null', b'"optional":{"x":"y"}'), annotations))
    result = world.verify(signature_rule(keyless()))
    assert codes(result) == ["signature-invalid"]
    assert "does not verify" in messages(result)


def test_legacy_layer_with_altered_integrated_time_is_invalid(world: World) -> None:
    payload, annotations = world.sigstore.legacy_sig_layer(
        world.identity(), image_name=IMAGE, digest=world.image.digest
    )
    world.push_legacy("sig", (payload, shift_legacy_integrated_time(annotations, 1)))
    result = world.verify(signature_rule(keyless()))
    assert codes(result) == ["signature-invalid"]
    assert "SET" in messages(result)


def test_legacy_layer_without_sct_is_invalid(world: World) -> None:
    no_sct = world.sigstore.issue_cert(subject=WORKFLOW, issuer=GITHUB_ISSUER, sct=False)
    world.sign_legacy(no_sct)
    result = world.verify(signature_rule(keyless()))
    assert codes(result) == ["signature-invalid"]
    assert "SCT" in messages(result)


# --- k of n ------------------------------------------------------------------------------------


def test_two_of_two_signers(world: World) -> None:
    world.sign_bundle(world.identity())
    world.sign_legacy_with_key(world.key("release"))
    rule = signature_rule(keyless(), key_signer("release"), minimum=2)
    assert world.verify(rule).passed


def test_k_of_n_not_met(world: World) -> None:
    world.key("release")
    world.sign_bundle(world.identity())
    result = world.verify(signature_rule(keyless(), key_signer("release"), minimum=2))
    assert codes(result) == ["identity-mismatch"]
    assert "only 1 of minimum 2" in messages(result)


def test_one_signature_never_counts_for_two_signers(world: World) -> None:
    world.sign_bundle(world.identity())
    rule = signature_rule(keyless(), keyless(subject=None, regexp=ACME_REGEXP), minimum=2)
    result = world.verify(rule)
    assert codes(result) == ["identity-mismatch"]
    # Two distinct signatures by the same workflow satisfy the two (overlapping) signers.
    world.sign_legacy(world.identity())
    assert world.verify(rule).passed


def test_one_signer_cannot_be_required_twice() -> None:
    # k-of-n would count one signer twice: the model refuses it, as the policy loader does.
    with pytest.raises(ValueError, match="listed twice"):
        signature_rule(keyless(), keyless(), minimum=2)


# --- multi-arch ---------------------------------------------------------------------------------


def test_signed_index_verifies_but_a_signed_platform_manifest_alone_does_not(world: World) -> None:
    amd64 = world.registry.push_image(world.ref, None, arch="amd64")
    arm64 = world.registry.push_image(world.ref, None, arch="arm64")
    index = world.registry.push_index(world.ref, "multi", [(amd64, "amd64"), (arm64, "arm64")])
    identity = world.identity()
    world.sign_bundle(identity, subject=amd64)
    world.sign_legacy(identity, signed=amd64.digest, under=amd64.digest)
    rule = signature_rule(keyless())
    # Only a platform manifest is signed: the index (what is admitted and pinned) is unsigned.
    assert codes(world.verify(rule, digest=index.digest)) == ["unsigned"]
    assert world.verify(rule, digest=amd64.digest).passed
    world.sign_bundle(identity, subject=index)
    assert world.verify(rule, digest=index.digest).passed


# --- attestations -------------------------------------------------------------------------------


SLSA = SlsaCheck(
    builder_ids=("https://github.com/actions/runner/github-hosted",),
    source_repositories=("github.com/acme/app",),
    source_refs=("refs/heads/main", "refs/tags/v*"),
)


def _slsa_rule(check: SlsaCheck = SLSA, **signer: object) -> object:
    return attestation_rule(requirement(SLSA_PROVENANCE_V1, [keyless(**signer)], slsa=check))  # type: ignore[arg-type]


def test_slsa_bundle_attestation_verifies(world: World) -> None:
    world.attest_bundle(
        world.identity(), statement_v1(world.image.digest, SLSA_PROVENANCE_V1, slsa_provenance_v1())
    )
    result = world.verify(_slsa_rule())  # type: ignore[arg-type]
    assert result.passed, result.findings


def test_slsa_legacy_attestation_v02_verifies(world: World) -> None:
    builder = (
        "https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_container_slsa3.yml"
        "@refs/tags/v2.1.0"
    )
    statement = statement_v01(
        world.image.digest, SLSA_PROVENANCE_V02, slsa_provenance_v02(builder_id=builder)
    )
    world.attest_legacy(world.identity(subject=builder), statement)
    check = SlsaCheck(builder_ids=(builder,), source_repositories=("https://github.com/acme/app",))
    rule = attestation_rule(requirement(SLSA_PROVENANCE_V02, [keyless(subject=builder)], slsa=check))
    result = world.verify(rule)
    assert result.passed, result.findings


def test_key_signed_attestations_verify(world: World) -> None:
    key = world.key("ci")
    statement = statement_v1(world.image.digest, SLSA_PROVENANCE_V1, slsa_provenance_v1())
    world.push_legacy("att", world.sigstore.legacy_att_layer_with_key(key, statement))
    rule = attestation_rule(requirement(SLSA_PROVENANCE_V1, [key_signer("ci", require_tlog=True)], slsa=SLSA))
    assert world.verify(rule).passed
    other = World(sigstore=world.sigstore, tmp=world.tmp / "other")
    (world.tmp / "other").mkdir()
    other.keys["ci"] = key
    other.push_referrer(
        world.sigstore.bundle_dsse_with_key(
            key, statement_v1(other.image.digest, SLSA_PROVENANCE_V1, slsa_provenance_v1())
        )
    )
    assert other.verify(rule).passed


def test_attestation_missing(world: World) -> None:
    world.sign_bundle(world.identity())
    result = world.verify(_slsa_rule())  # type: ignore[arg-type]
    assert codes(result) == ["attestation-missing"]
    assert SLSA_PROVENANCE_V1 in messages(result)


def test_attestation_about_another_digest_is_invalid(world: World) -> None:
    statement = statement_v1(other_digest(world.image.digest), SLSA_PROVENANCE_V1, slsa_provenance_v1())
    world.attest_bundle(world.identity(), statement)
    world.attest_legacy(world.identity(), statement)
    result = world.verify(_slsa_rule())  # type: ignore[arg-type]
    assert codes(result) == ["attestation-invalid"]
    assert other_digest(world.image.digest) in messages(result)


def test_attestation_by_wrong_identity(world: World) -> None:
    world.attest_bundle(
        world.identity(subject=EVIL),
        statement_v1(world.image.digest, SLSA_PROVENANCE_V1, slsa_provenance_v1()),
    )
    result = world.verify(_slsa_rule(regexp=ACME_REGEXP))  # type: ignore[arg-type]
    assert codes(result) == ["identity-mismatch"]
    assert EVIL in messages(result)


def test_tampered_attestation_is_invalid(world: World) -> None:
    bundle = world.sigstore.bundle_dsse(
        world.identity(), statement_v1(world.image.digest, SLSA_PROVENANCE_V1, slsa_provenance_v1())
    )
    world.push_referrer(tamper_payload(bundle))
    assert codes(world.verify(_slsa_rule())) == ["attestation-invalid"]  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("provenance", "expected"),
    [
        ({"builder_id": "https://evil.example/builder"}, "builder id"),
        ({"repository": "https://github.com/evil/app"}, "github.com/evil/app"),
        ({"ref": "refs/heads/feature"}, "refs/heads/feature"),
    ],
    ids=["wrong-builder", "wrong-source-repository", "wrong-ref"],
)
def test_provenance_mismatch(world: World, provenance: dict[str, str], expected: str) -> None:
    statement = statement_v1(world.image.digest, SLSA_PROVENANCE_V1, slsa_provenance_v1(**provenance))
    world.attest_bundle(world.identity(), statement)
    result = world.verify(_slsa_rule())  # type: ignore[arg-type]
    assert codes(result) == ["provenance-mismatch"]
    assert expected in messages(result)


def test_ref_from_certificate_when_provenance_has_none(world: World) -> None:
    predicate = slsa_provenance_v1()
    del predicate["buildDefinition"]["externalParameters"]["workflow"]["ref"]
    predicate["buildDefinition"]["resolvedDependencies"] = []
    predicate["buildDefinition"]["externalParameters"]["workflow"]["repository"] = (
        "https://github.com/acme/app"
    )
    statement = statement_v1(world.image.digest, SLSA_PROVENANCE_V1, predicate)
    world.attest_bundle(world.identity(**github_actions_extensions(ref="refs/tags/v1.2.3")), statement)
    check = SlsaCheck(source_refs=("refs/tags/v*",))
    assert world.verify(_slsa_rule(check)).passed  # type: ignore[arg-type]
    assert codes(world.verify(_slsa_rule(SlsaCheck(source_refs=("refs/heads/main",))))) == [
        "provenance-mismatch"
    ]  # type: ignore[arg-type]


def _vsa_rule(**check: object) -> object:
    summary = VerificationSummaryCheck(verifier_ids=("https://imagegate.dev/test-verifier",), **check)  # type: ignore[arg-type]
    return attestation_rule(requirement(VSA_V1, [keyless()], verification_summary=summary))


def test_vsa_passed_verifies(world: World) -> None:
    world.attest_bundle(
        world.identity(), statement_v1(world.image.digest, VSA_V1, vsa_v1(resource_uri=f"oci://{IMAGE}"))
    )
    assert world.verify(_vsa_rule(min_level="SLSA_BUILD_LEVEL_2", max_age=timedelta(days=1))).passed  # type: ignore[arg-type]


def test_vsa_failed_is_provenance_mismatch(world: World) -> None:
    predicate = vsa_v1(resource_uri=f"oci://{IMAGE}", verification_result="FAILED")
    world.attest_bundle(world.identity(), statement_v1(world.image.digest, VSA_V1, predicate))
    result = world.verify(_vsa_rule())  # type: ignore[arg-type]
    assert codes(result) == ["provenance-mismatch"]
    assert "FAILED" in messages(result)


def test_vsa_too_old_is_provenance_mismatch(world: World) -> None:
    old = datetime.now(UTC) - timedelta(days=30)
    predicate = vsa_v1(resource_uri=f"oci://{IMAGE}", time_verified=old)
    world.attest_bundle(world.identity(), statement_v1(world.image.digest, VSA_V1, predicate))
    result = world.verify(_vsa_rule(max_age=timedelta(days=7)))  # type: ignore[arg-type]
    assert codes(result) == ["provenance-mismatch"]
    assert "timeVerified" in messages(result)


def test_vulnerability_above_threshold(world: World) -> None:
    scan = vulns_v01(results=[vuln("CVE-2026-0001", "LOW"), vuln("CVE-2026-0002", "CRITICAL")])
    world.attest_bundle(world.identity(), statement_v1(world.image.digest, VULNS_V01, scan))
    rule = attestation_rule(
        requirement(VULNS_V01, [keyless()], vulnerabilities=VulnerabilityCheck(max_severity="MEDIUM"))
    )
    result = world.verify(rule)
    assert codes(result) == ["provenance-mismatch"]
    assert "CVE-2026-0002 (CRITICAL)" in messages(result)
    lenient = attestation_rule(
        requirement(VULNS_V01, [keyless()], vulnerabilities=VulnerabilityCheck(max_severity="CRITICAL"))
    )
    assert world.verify(lenient).passed


def test_a_passing_attestation_is_enough_when_another_fails(world: World) -> None:
    world.attest_bundle(
        world.identity(),
        statement_v1(world.image.digest, SLSA_PROVENANCE_V1, slsa_provenance_v1(ref="refs/heads/feature")),
    )
    world.attest_legacy(
        world.identity(), statement_v1(world.image.digest, SLSA_PROVENANCE_V1, slsa_provenance_v1())
    )
    assert world.verify(_slsa_rule()).passed  # type: ignore[arg-type]


def test_signatures_and_attestations_together(world: World) -> None:
    identity = world.identity()
    world.sign_bundle(identity)
    world.attest_bundle(identity, statement_v1(world.image.digest, SLSA_PROVENANCE_V1, slsa_provenance_v1()))
    rule = signature_rule(keyless())
    rule = type(rule)(
        name="both",
        images=rule.images,
        signatures=rule.signatures,
        attestations=(requirement(SLSA_PROVENANCE_V1, [keyless()], slsa=SLSA),),
    )
    result = world.verify(rule)
    assert result.passed, result.findings
    assert any(step.startswith("signatures: passed") for step in verification_lines(result))
    assert any(
        step.startswith(f"attestation {SLSA_PROVENANCE_V1}: passed") for step in verification_lines(result)
    )


def test_unknown_root_or_key_fails_closed(world: World) -> None:
    world.sign_bundle(world.identity())
    assert codes(world.verify(signature_rule(keyless(root="nowhere")))) == ["signature-invalid"]
    assert codes(world.verify(signature_rule(key_signer("nowhere")))) == ["signature-invalid"]


def test_artifacts_for_another_digest_are_refused(world: World) -> None:
    world.sign_bundle(world.identity())
    artifacts = world.discover()
    from webhook.verify.verifier import ImageVerifier

    result = ImageVerifier(world.trust()).verify_rule(
        rule=signature_rule(keyless()),
        image=world.ref,
        digest=other_digest(world.image.digest),
        artifacts=artifacts,
        now=datetime.now(UTC),
    )
    assert codes(result) == ["signature-invalid"]


def test_message_signature_bundle_over_the_manifest_counts(world: World) -> None:
    identity = world.identity()
    world.push_referrer(world.sigstore.bundle_message(identity, world.image.body))
    assert world.verify(signature_rule(keyless())).passed


def test_message_signature_bundle_over_other_bytes_is_invalid(world: World) -> None:
    world.push_referrer(world.sigstore.bundle_message(world.identity(), b"some other artifact"))
    result = world.verify(signature_rule(keyless()))
    assert codes(result) == ["signature-invalid"]
    assert "digest mismatch" in messages(result)


def test_legacy_layer_with_another_signatures_log_entry_is_invalid(world: World) -> None:
    identity = world.identity()
    _, first = world.sigstore.legacy_sig_layer(identity, image_name=IMAGE, digest=world.image.digest)
    payload, second = world.sigstore.legacy_sig_layer(
        identity, image_name=IMAGE + "-copy", digest=world.image.digest
    )
    # A valid signature, with the (valid) Rekor SET of another entry.
    world.push_legacy(
        "sig", (payload, {**second, "dev.sigstore.cosign/bundle": first["dev.sigstore.cosign/bundle"]})
    )
    result = world.verify(signature_rule(keyless()))
    assert codes(result) == ["signature-invalid"]
    assert "log entry" in messages(result)


# --- the evidence a verification carries ----------------------------------------------------------


def test_evidence_names_the_artifact_who_signed_it_and_the_signer_it_satisfies(world: World) -> None:
    referrer = world.sign_bundle(world.identity(**github_actions_extensions()))
    world.sign_legacy(world.identity(subject=EVIL))
    result = world.verify(signature_rule(keyless(), keyless(regexp=ACME_REGEXP), minimum=1))
    assert result.passed
    [requirement] = result.requirements
    assert (requirement.requirement, requirement.minimum, requirement.satisfied) == ("signatures", 1, 1)
    assert requirement.signers == (
        f"keyless {WORKFLOW} (issuer {GITHUB_ISSUER}, root test)",
        f"keyless ~/{ACME_REGEXP}/ (issuer {GITHUB_ISSUER}, root test)",
    )
    bundle, legacy = requirement.artifacts
    assert (bundle.kind, bundle.manifest, bundle.tag) == ("bundle", referrer, "")
    assert (bundle.verdict, bundle.satisfies) == ("satisfied", (1, 2))
    assert bundle.signer is not None
    assert (bundle.signer.subjects, bundle.signer.issuer) == ((WORKFLOW,), GITHUB_ISSUER)
    extensions = dict(bundle.signer.extensions)
    assert extensions["sourceRepositoryURI"] == "https://github.com/acme/app"
    assert extensions["sourceRepositoryDigest"] == "4d329c75e7ec1725f7c9ce917a8799d408d06be3"
    assert "githubWorkflowSHA" not in extensions  # only those naming the source and the build
    assert (legacy.kind, legacy.tag) == ("sig", legacy_tag(world.image.digest, "sig"))
    assert (legacy.verdict, legacy.satisfies) == ("other-signer", ())
    assert legacy.signer is not None and legacy.signer.subjects == (EVIL,)
    assert result.discovery is not None
    assert (result.discovery.bundles, result.discovery.signatures) == (1, 1)


def test_a_key_signers_evidence_names_the_key(world: World) -> None:
    world.sign_legacy_with_key(world.key("release"))
    result = world.verify(signature_rule(key_signer("release")))
    [artifact] = result.requirements[0].artifacts
    assert artifact.signer is not None
    assert (artifact.signer.key, artifact.signer.subjects, artifact.signer.describe()) == (
        "release",
        (),
        "key release",
    )
    assert artifact.signer.logged is not None  # its transparency-log entry was verified


def test_attestation_evidence_holds_the_fields_compared_and_the_provenance(world: World) -> None:
    predicate = slsa_provenance_v1(ref="refs/heads/feature", commit="c" * 40)
    world.attest_bundle(world.identity(), statement_v1(world.image.digest, SLSA_PROVENANCE_V1, predicate))
    result = world.verify(_slsa_rule())  # type: ignore[arg-type]
    assert codes(result) == ["provenance-mismatch"]
    assert result.provenance is None  # only a passing rule vouches for its provenance
    [artifact] = result.requirements[0].artifacts
    assert artifact.verdict == "predicate-mismatch"
    assert [(f.name, f.found, f.passed) for f in artifact.fields] == [
        ("builder id", "https://github.com/actions/runner/github-hosted", True),
        ("source repository", "github.com/acme/app", True),
        ("source ref", "refs/heads/feature", False),
    ]
    assert artifact.provenance is not None
    assert (artifact.provenance.ref, artifact.provenance.commit) == ("refs/heads/feature", "c" * 40)

    world.attest_bundle(
        world.identity(),
        statement_v1(world.image.digest, SLSA_PROVENANCE_V1, slsa_provenance_v1(commit="d" * 40)),
    )
    passed = world.verify(_slsa_rule())  # type: ignore[arg-type]
    assert passed.passed
    assert passed.provenance is not None
    assert (passed.provenance.repository, passed.provenance.ref, passed.provenance.commit) == (
        "github.com/acme/app",
        "refs/heads/main",
        "d" * 40,
    )
    assert passed.provenance.builder_id == "https://github.com/actions/runner/github-hosted"


def test_a_keyless_bundles_log_time_is_evidence_once_its_promise_verified(world: World) -> None:
    identity = world.identity()
    logged = identity.not_before + timedelta(minutes=2)
    statement = statement_v1(world.image.digest, SLSA_PROVENANCE_V1, slsa_provenance_v1())
    world.push_referrer(world.sigstore.bundle_dsse(identity, statement, integrated_time=logged))
    result = world.verify(_slsa_rule())  # type: ignore[arg-type]
    assert result.passed, result.findings
    [artifact] = result.requirements[0].artifacts
    assert artifact.signer is not None and artifact.signer.logged == logged.replace(microsecond=0)
    assert result.provenance is not None and result.provenance.attested == logged.replace(microsecond=0)
