"""Third-party Sigstore conformance data through imagegate's admission path.

Every case of ``data/conformance/cases.json`` with a bundle (copied from sigstore-conformance,
sigstore-go, slsa-verifier, cosign and sigstore-python; see ``data/conformance/README.md``) is admitted
as a cluster would admit an image signed or attested that way (``tests.support.conformance``): the
bundle stored as cosign v3 stores it, as a referrer in a real registry; a policy requiring the case's
signer; a Pod pinned to the digest; and ``DryRun``'s /mutate then /validate, which run discovery and
``ImageVerifier`` exactly as the server does.

Each case must end as upstream expects, except the ``EXCEPTIONS`` (always stricter: refused where
upstream accepts, with why), and every refusal must carry the reason code ``REFUSED`` lists, so a case
cannot quietly start failing for a new reason. The number of cases is pinned, so none can vanish.
The real cosign-saved legacy attestation (no bundle) is checked at the end, through the legacy
verifier and through discovery and ``ImageVerifier``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.support.conformance import DATA, POLICY_REFUSED, admit, cases
from tests.support.memory_registry import InMemoryRegistry
from tests.support.registry import RegistryServer
from webhook.deadline import Deadline
from webhook.errors import VerificationFailed
from webhook.images.reference import ImageRef
from webhook.policy.material import TrustedRootMaterial
from webhook.policy.model import (
    AttestationRequirement,
    KeylessSigner,
    Policy,
    Rule,
    SlsaCheck,
    Trust,
    TrustRoot,
)
from webhook.verify.discovery import LegacyLayer, discover
from webhook.verify.identity import SignerPolicy
from webhook.verify.legacy import verify_legacy_keyless
from webhook.verify.trust import TrustMaterial
from webhook.verify.verifier import ImageVerifier

pytestmark = [pytest.mark.registry, pytest.mark.sigstore]

CASES: list[dict[str, Any]] = cases()
BUNDLE_CASES = [case for case in CASES if case["bundle"]]
GITHUB = "https://token.actions.githubusercontent.com"

# Upstream accepts these, admission refuses them (fail closed; REFUSED says with which code). The
# sigstore-python 4.5.1 limits: if one starts to agree with upstream, its case fails and the table shrinks.
EXCEPTIONS: dict[str, str] = {
    "conformance/intoto-with-custom-trust-root": (
        "intoto/0.0.2 log entry: sigstore-python 4.5.1 accepts the integrated time only for dsse and "
        "hashedrekord 0.0.1 entries"
    ),
    "conformance/trust-root-tsa-validity-end-inclusive": (
        "TSA quirk: sigstore-python treats the TSA validFor.end as exclusive, upstream as inclusive"
    ),
    "sigstore-go/examples/bundle-provenance": "about a sha512 digest: images are named by sha256 digests",
    "sigstore-go/examples/bundle-publish": "about a sha512 digest: images are named by sha256 digests",
    "sigstore-go/testing-data/sigstore.js@2.0.0-provenance": (
        "about a sha512 digest: images are named by sha256 digests"
    ),
    "sigstore-go/testing-data/dsse": "about a sha512 digest: images are named by sha256 digests",
    "sigstore-go/testing-data/othername": (
        "its trusted root's CA subject has no commonName, which sigstore-python refuses to parse"
    ),
    "slsa-verifier/gha-bundle/valid": (
        "a statement without a predicate type, which no attestation requirement can name (and a v0.1 "
        "bundle without inclusion proof, intoto/0.0.2)"
    ),
    "slsa-verifier/gha-bundle/attestation": "v0.1 bundle without inclusion proof (SET only), intoto/0.0.2",
}

# How admission refuses every case it refuses (upstream failures and EXCEPTIONS alike): the reason code
# of the denial, or POLICY_REFUSED when serve refuses the policy itself (its trust material).
REFUSED: dict[str, str] = {
    "conformance/bundle-empty-certificate-chain_fail": "signature-invalid",
    "conformance/bundle-from-wrong-instance_fail": "signature-invalid",
    "conformance/bundle-invalid-base64-signature_fail": "signature-invalid",
    "conformance/bundle-malformed-json_fail": "signature-invalid",
    "conformance/bundle-negative-log-index_fail": "signature-invalid",
    "conformance/bundle-unknown-version_fail": "signature-invalid",
    "conformance/bundle-with-root-cert_fail": "signature-invalid",
    "conformance/checkpoint-bad-keyhint_fail": "signature-invalid",
    "conformance/checkpoint-wrong-roothash_fail": "signature-invalid",
    "conformance/dsse-invalid-sig_fail": "attestation-invalid",
    "conformance/dsse-mismatch-envelope_fail": "attestation-invalid",
    "conformance/dsse-mismatch-sig_fail": "attestation-invalid",
    "conformance/inclusion-proof-corrupted-hash_fail": "signature-invalid",
    "conformance/incorrect-public-key_fail": "signature-invalid",
    "conformance/integrated-time-in-future_fail": "signature-invalid",
    "conformance/intoto-expired-certificate_fail": "attestation-invalid",
    "conformance/intoto-log-entry-mismatch_fail": "attestation-invalid",
    "conformance/intoto-missing-inclusion-proof_fail": "attestation-invalid",
    "conformance/intoto-set-outside-signing-cert-validity_fail": "attestation-invalid",
    "conformance/intoto-tsa-timestamp-outside-cert-validity_fail": "attestation-invalid",
    "conformance/intoto-with-custom-trust-root": "attestation-invalid",
    "conformance/invalid-checkpoint-signature_fail": "signature-invalid",
    "conformance/invalid-ct-key_fail": "signature-invalid",
    "conformance/invalid-inclusion-proof_fail": "signature-invalid",
    "conformance/managed-key-no-key_fail": "signature-invalid",
    "conformance/managed-key-wrong-key_fail": "policy-refused",  # the key file is not a PEM key
    "conformance/message-digest-mismatch_fail": "signature-invalid",
    "conformance/rekor2-checkpoint-missing-log-signature_fail": "signature-invalid",
    "conformance/rekor2-checkpoint-missing-origin_fail": "signature-invalid",
    "conformance/rekor2-checkpoint-missing-root-hash_fail": "signature-invalid",
    "conformance/rekor2-checkpoint-missing-size_fail": "signature-invalid",
    "conformance/rekor2-checkpoint-no-matching-signature_fail": "signature-invalid",
    "conformance/rekor2-dsse-invalid-sig_fail": "attestation-invalid",
    "conformance/rekor2-dsse-mismatch-envelope_fail": "attestation-invalid",
    "conformance/rekor2-dsse-mismatch-sig_fail": "attestation-invalid",
    "conformance/rekor2-no-inclusion-proof_fail": "signature-invalid",
    "conformance/rekor2-no-timestamp_fail": "signature-invalid",
    "conformance/rekor2-timestamp-outside-trust-root-tsa-validity_fail": "signature-invalid",
    "conformance/rekor2-timestamp-outside-tsa-cert-validity_fail": "signature-invalid",
    "conformance/rekor2-timestamp-payload-mismatch_fail": "signature-invalid",
    "conformance/rekor2-timestamp-untrusted-tsa-with-embedded-cert_fail": "signature-invalid",
    "conformance/rekor2-timestamp-untrusted-tsa-without-embedded-cert_fail": "signature-invalid",
    "conformance/rekor2-timestamp-with-incorrect-time_fail": "signature-invalid",
    "conformance/set-invalid-signature_fail": "signature-invalid",
    "conformance/signature-mismatch_fail": "signature-invalid",
    "conformance/trust-root-tlog-missing-validity-start_fail": "policy-refused",  # serve refuses the root
    "conformance/trust-root-tsa-validity-end-inclusive": "signature-invalid",
    "conformance/wrong-hashedrekord-artifact_fail": "signature-invalid",
    "conformance/wrong-hashedrekord-cert-and-sig_fail": "signature-invalid",
    "conformance/wrong-hashedrekord-entry_fail": "signature-invalid",
    "conformance/wrong-material_fail": "signature-invalid",
    "sigstore-go/examples/bundle-provenance": "invalid-reference",
    "sigstore-go/examples/bundle-publish": "invalid-reference",
    "sigstore-go/testing-data/dsse": "invalid-reference",
    "sigstore-go/testing-data/dsse-2sigs": "invalid-reference",  # about a sha512 digest
    "sigstore-go/testing-data/othername": "policy-refused",
    "sigstore-go/testing-data/public-key-validity": "signature-invalid",  # no log entry: requireTlog
    "sigstore-go/testing-data/sigstore.js@2.0.0-provenance": "invalid-reference",
    "sigstore-python/bundle_v3.txt-vs-production": "signature-invalid",
    "slsa-verifier/gha-bundle/attestation": "attestation-invalid",
    "slsa-verifier/gha-bundle/invalid-dsse-sig": "attestation-invalid",
    "slsa-verifier/gha-bundle/invalid-set": "attestation-invalid",
    "slsa-verifier/gha-bundle/mismatch-tlog": "attestation-invalid",
    "slsa-verifier/gha-bundle/valid": "unsigned",
}


@pytest.mark.parametrize("case", BUNDLE_CASES, ids=[case["id"] for case in BUNDLE_CASES])
def test_conformance_case(case: dict[str, Any], plain_registry: RegistryServer, tmp_path: Path) -> None:
    admission = admit(case, registry=plain_registry, directory=tmp_path)
    if case["expected"] == "ok" and case["id"] not in EXCEPTIONS:
        assert admission.allowed, f"{case['id']}: upstream accepts it, admission refused: {admission.message}"
    else:
        expected = REFUSED[case["id"]]
        assert admission.outcome == expected, (
            f"{case['id']}: expected {expected}, got {admission.outcome}: {admission.message}"
        )


def test_every_case_is_counted_and_every_refusal_has_its_reason() -> None:
    assert len(CASES) == 89
    assert len(BUNDLE_CASES) == 88
    refused = {case["id"] for case in BUNDLE_CASES if case["expected"] == "fail"} | set(EXCEPTIONS)
    assert set(REFUSED) == refused
    assert len(REFUSED) == 64  # so 24 cases are admitted
    assert POLICY_REFUSED in REFUSED.values()


def test_exceptions_are_real_cases_that_disagree_with_upstream() -> None:
    by_id = {case["id"]: case for case in CASES}
    for case_id in EXCEPTIONS:
        assert case_id in by_id
        # Only ever stricter than upstream: an exception never admits what upstream refuses.
        assert by_id[case_id]["expected"] == "ok"


def _case(case_id: str) -> dict[str, Any]:
    return next(case for case in CASES if case["id"] == case_id)


@pytest.mark.parametrize("case_id", ["slsa-verifier/gha-bundle/valid-v0.3", "cosign/oci-attestation"])
def test_real_provenance_bundles_verify_with_true_identity_only(
    case_id: str, plain_registry: RegistryServer, tmp_path: Path
) -> None:
    case = _case(case_id)
    assert admit(case, registry=plain_registry, directory=tmp_path / "true").allowed
    wrong_subject = {
        **case,
        "identity": "https://github.com/evil/app/.github/workflows/x.yml@refs/heads/main",
    }
    wrong_issuer = {**case, "issuer": "https://accounts.google.com"}
    # The same bundle stored as a referrer of another image: a replay.
    other_digest = {**case, "digest": "sha256:" + "0" * 64}
    for name, variant, code in (
        ("subject", wrong_subject, "identity-mismatch"),
        ("issuer", wrong_issuer, "identity-mismatch"),
        ("digest", other_digest, "attestation-invalid"),
    ):
        admission = admit(variant, registry=plain_registry, directory=tmp_path / name)
        assert admission.outcome == code, admission.message


def test_real_github_actions_provenance_carries_its_source_repository(
    plain_registry: RegistryServer, tmp_path: Path
) -> None:
    case = _case("slsa-verifier/gha-bundle/valid-v0.3")
    assert case["issuer"] == GITHUB
    source = {
        **case,
        "extensions": {"sourceRepositoryURI": "https://github.com/slsa-framework/example-package"},
    }
    admission = admit(source, registry=plain_registry, directory=tmp_path / "source")
    assert admission.allowed, admission.message
    wrong = {**case, "extensions": {"sourceRepositoryURI": "https://github.com/evil/x"}}
    admission = admit(wrong, registry=plain_registry, directory=tmp_path / "wrong")
    assert admission.outcome == "identity-mismatch", admission.message
    assert "https://slsa.dev/provenance/v0.2" in admission.message


# --- the real legacy cosign attestation (cosign save layout) ------------------------------------------

LAYOUT = DATA / "slsa-verifier" / "oci-layout-generic-container-v2.1.0"
LEGACY = _case("slsa-verifier/oci-layout-generic-container-v2.1.0")


def _blob(digest: str) -> bytes:
    return (LAYOUT / "blobs" / "sha256" / digest.split(":", 1)[1]).read_bytes()


def _legacy_layers(annotations_patch: dict[str, str] | None = None) -> list[LegacyLayer]:
    index = json.loads((LAYOUT / "index.json").read_text())
    atts = next(m for m in index["manifests"] if m["annotations"]["kind"] == "dev.cosignproject.cosign/atts")
    manifest = json.loads(_blob(atts["digest"]))
    return [
        LegacyLayer(
            kind="att",
            tag="sha256-" + LEGACY["digest"].split(":", 1)[1] + ".att",
            manifest=atts["digest"],
            layer=layer["digest"],
            media_type=layer["mediaType"],
            content=_blob(layer["digest"]),
            annotations=tuple({**layer["annotations"], **(annotations_patch or {})}.items()),
        )
        for layer in manifest["layers"]
    ]


def _root(file: Path) -> Any:
    trust = TrustMaterial.from_policy(
        Policy(
            name="legacy",
            source="cases.json",
            trust=Trust(roots=(TrustRoot(name="case", material=TrustedRootMaterial.read(file)),)),
        )
    )
    root = trust.root("case")
    assert root is not None
    return root


def _production_root() -> Any:
    return _root(DATA / LEGACY["trusted_root"])


@pytest.mark.usefixtures("offline")
def test_real_legacy_attestation_verifies_offline() -> None:
    layers = _legacy_layers()
    assert len(layers) == 1
    signed = verify_legacy_keyless(layers[0], root=_production_root())
    assert signed.integrated_time == datetime(2025, 2, 25, 21, 58, 7, tzinfo=UTC)
    assert signed.certificate is not None
    assert SignerPolicy(
        KeylessSigner(root="case", issuer=LEGACY["issuer"], subject=LEGACY["identity"])
    ).matches(signed.certificate)
    wrong = KeylessSigner(
        root="case", issuer=LEGACY["issuer"], subject=LEGACY["identity"].replace("v2.1.0", "v2.0.0")
    )
    assert not SignerPolicy(wrong).matches(signed.certificate)
    statement = signed.statement()
    assert statement.predicate_type == "https://slsa.dev/provenance/v0.2"
    assert statement.covers(LEGACY["digest"])


@pytest.mark.usefixtures("offline")
def test_real_legacy_attestation_with_altered_integrated_time_fails() -> None:
    layer = _legacy_layers()[0]
    bundle = json.loads(layer.annotation("dev.sigstore.cosign/bundle") or "")
    bundle["Payload"]["integratedTime"] += 1
    altered = _legacy_layers({"dev.sigstore.cosign/bundle": json.dumps(bundle)})[0]
    with pytest.raises(VerificationFailed) as failure:
        verify_legacy_keyless(altered, root=_production_root())
    assert failure.value.code == "signature-invalid"
    assert "SET" in failure.value.user_message


@pytest.mark.usefixtures("offline")
def test_real_legacy_attestation_against_another_root_fails(tmp_path: Path) -> None:
    from tests.support.fake_sigstore import FakeSigstore

    fake = FakeSigstore.create(tmp_path)
    with pytest.raises(VerificationFailed):
        verify_legacy_keyless(_legacy_layers()[0], root=_root(fake.trusted_root_path))


def _legacy_registry() -> tuple[InMemoryRegistry, ImageRef]:
    """The cosign-saved image in a registry, as cosign pushed it: the index, its .att tag and blobs."""
    registry = InMemoryRegistry()
    ref = ImageRef.parse(
        "ghcr.io/slsa-framework/example-package.verifier-e2e.all.tag.main.default.slsa3:main"
    )
    index = json.loads((LAYOUT / "index.json").read_text())
    for path in (LAYOUT / "blobs" / "sha256").iterdir():
        registry.put_blob(ref, path.read_bytes())
    for entry in index["manifests"]:
        kind = entry["annotations"]["kind"]
        tag = (
            "main"
            if kind == "dev.cosignproject.cosign/imageIndex"
            else "sha256-" + LEGACY["digest"].split(":", 1)[1] + ".att"
        )
        registry.put_manifest(ref, _blob(entry["digest"]), entry["mediaType"], tag)
    return registry, ref


@pytest.mark.usefixtures("offline")
def test_real_legacy_attestation_through_discovery_and_the_verifier() -> None:
    registry, ref = _legacy_registry()
    digest = registry.resolve(ref, "main", deadline=Deadline.after(5))
    assert digest == LEGACY["digest"]
    artifacts = discover(registry, ref, digest, deadline=Deadline.after(5))
    assert len(artifacts.attestations) == 1
    trust = TrustMaterial.from_policy(
        Policy(
            name="real",
            source="x",
            trust=Trust(
                roots=(TrustRoot("public-good", TrustedRootMaterial.read(DATA / LEGACY["trusted_root"])),)
            ),
        )
    )
    signer = KeylessSigner(root="public-good", issuer=LEGACY["issuer"], subject=LEGACY["identity"])

    def rule(check: SlsaCheck, who: KeylessSigner = signer) -> Rule:
        requirement = AttestationRequirement(
            predicate_type="https://slsa.dev/provenance/v0.2", signers=(who,), slsa=check
        )
        return Rule(name="real", images=("ghcr.io/**",), attestations=(requirement,))

    verifier = ImageVerifier(trust)
    good = SlsaCheck(
        builder_ids=(LEGACY["identity"],),
        source_repositories=("github.com/slsa-framework/example-package",),
        source_refs=("refs/heads/main",),
    )
    now = datetime.now(UTC)
    result = verifier.verify_rule(rule=rule(good), image=ref, digest=digest, artifacts=artifacts, now=now)
    assert result.passed, result.findings
    wrong_source = SlsaCheck(source_repositories=("github.com/evil/example-package",))
    result = verifier.verify_rule(
        rule=rule(wrong_source), image=ref, digest=digest, artifacts=artifacts, now=now
    )
    assert [f.code for f in result.findings] == ["provenance-mismatch"]
    wrong_identity = KeylessSigner(
        root="public-good", issuer=LEGACY["issuer"], subject=LEGACY["identity"] + "x"
    )
    result = verifier.verify_rule(
        rule=rule(good, wrong_identity), image=ref, digest=digest, artifacts=artifacts, now=now
    )
    assert [f.code for f in result.findings] == ["identity-mismatch"]
    # BuildKit's own unsigned provenance (inside the index) is not a signed attestation.
    unsigned = verifier.verify_rule(
        rule=Rule(
            name="sig",
            images=("ghcr.io/**",),
            attestations=(AttestationRequirement("https://slsa.dev/provenance/v1", (signer,)),),
        ),
        image=ref,
        digest=digest,
        artifacts=artifacts,
        now=now,
    )
    assert [f.code for f in unsigned.findings] == ["attestation-missing"]
