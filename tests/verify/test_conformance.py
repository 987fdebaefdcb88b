"""Third-party Sigstore conformance data through imagegate's own adapters (trust, bundles, keys, legacy).

Every case of ``data/conformance/cases.json`` (copied from sigstore-conformance, sigstore-go,
slsa-verifier, cosign and sigstore-python; see ``data/conformance/README.md``) is run offline:

* trust material through :class:`TrustMaterial` (a root or key it refuses fails the case);
* keyless bundles through :func:`bundles.verify_bundle` with an identity policy built from the case's
  identity and issuer, against the case's artifact or digest;
* key bundles through :func:`bundles.verify_key_bundle` (``requireTlog``), the signed digest or
  statement subject compared with the case's artifact or digest.

Each case must end in its upstream expected outcome, or in the outcome listed in ``EXCEPTIONS`` with
the reason. The exceptions are sigstore-python 4.5.1 limits: if one of them starts to agree with
upstream, its test fails and the table must shrink.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.support.memory_registry import InMemoryRegistry
from webhook.deadline import Deadline
from webhook.errors import ConfigError, VerificationFailed
from webhook.images.reference import ImageRef
from webhook.policy.model import (
    AttestationRequirement,
    KeylessSigner,
    Policy,
    Rule,
    SlsaCheck,
    Trust,
    TrustKey,
    TrustRoot,
)
from webhook.verify.bundles import statement_covers, verify_bundle, verify_key_bundle
from webhook.verify.discovery import LegacyLayer, discover
from webhook.verify.identity import SignerPolicy
from webhook.verify.legacy import verify_legacy_keyless
from webhook.verify.trust import TrustMaterial
from webhook.verify.verifier import ImageVerifier

pytestmark = [pytest.mark.usefixtures("offline"), pytest.mark.sigstore]

DATA = Path(__file__).parent / "data" / "conformance"
CASES: list[dict[str, Any]] = json.loads((DATA / "cases.json").read_text())["cases"]
BUNDLE_CASES = [case for case in CASES if case["bundle"]]
GITHUB = "https://token.actions.githubusercontent.com"

# Documented disagreements with upstream: case id -> (our outcome, why). All are sigstore-python
# 4.5.1 limits that fail closed (a bundle upstream accepts is refused), except none the other way.
EXCEPTIONS: dict[str, tuple[str, str]] = {
    "conformance/intoto-with-custom-trust-root": (
        "fail",
        "intoto/0.0.2 log entry: sigstore-python 4.5.1 accepts the integrated time only for dsse and "
        "hashedrekord 0.0.1 entries",
    ),
    "conformance/trust-root-tsa-validity-end-inclusive": (
        "fail",
        "TSA quirk: sigstore-python treats the TSA validFor.end as exclusive, upstream as inclusive",
    ),
    "sigstore-go/examples/bundle-provenance": (
        "fail",
        "v0.1 bundle without inclusion proof (SET only) and an intoto/0.0.2 entry",
    ),
    "sigstore-go/testing-data/sigstore.js@2.0.0-provenance": ("fail", "intoto/0.0.2 log entry"),
    "sigstore-go/testing-data/dsse": ("fail", "v0.1 bundle without inclusion proof, intoto/0.0.2 entry"),
    "sigstore-go/testing-data/othername": (
        "fail",
        "its trusted root's CA subject has no commonName, which sigstore-python refuses to parse",
    ),
    "slsa-verifier/gha-bundle/valid": (
        "fail",
        "v0.1 bundle without inclusion proof (SET only), intoto/0.0.2",
    ),
    "slsa-verifier/gha-bundle/attestation": (
        "fail",
        "v0.1 bundle without inclusion proof (SET only), intoto/0.0.2",
    ),
}


def _trust(case: dict[str, Any]) -> TrustMaterial:
    keys = (TrustKey(name="case", file=DATA / case["key"]),) if case["key"] else ()
    roots = (TrustRoot(name="case", file=DATA / case["trusted_root"]),)
    return TrustMaterial.from_policy(
        Policy(name=case["id"], source="cases.json", trust=Trust(roots=roots, keys=keys))
    )


def _run(case: dict[str, Any]) -> tuple[str, str]:
    """(``ok`` | ``fail``, detail) for one case through imagegate's adapters."""
    content = (DATA / case["bundle"]).read_bytes()
    artifact = (DATA / case["artifact"]).read_bytes() if case["artifact"] else None
    digest = case.get("digest")
    if artifact is not None:
        digest = "sha256:" + hashlib.sha256(artifact).hexdigest()
    try:
        trust = _trust(case)
        if case["key"]:
            key = trust.key("case")
            assert key is not None
            signed = verify_key_bundle(
                content, key=key, key_name="case", tlog_keys=trust.all_tlog_keys(), require_tlog=True
            )
            if digest is not None:
                if signed.payload_type is None:
                    if signed.message_digest != digest:
                        return "fail", f"signs {signed.message_digest}, expected {digest}"
                elif not statement_covers(signed.statement(), digest):
                    return "fail", f"statement is not about {digest}"
            return "ok", f"key-signed, {signed.payload_type or 'message signature'}"
        root = trust.root("case")
        assert root is not None
        signer = KeylessSigner(root="case", issuer=case["issuer"], subject=case["identity"])
        signed = verify_bundle(content, verifier=root.verifier, policy=SignerPolicy(signer), digest=digest)
        return "ok", f"{signed.payload_type or 'message signature'} by {signed.signer_description()}"
    except ConfigError as error:
        return "fail", f"trust material refused: {error.user_message}"
    except VerificationFailed as error:
        return "fail", f"[{error.code}] {error.user_message}"


@pytest.mark.parametrize("case", BUNDLE_CASES, ids=[case["id"] for case in BUNDLE_CASES])
def test_conformance_case(case: dict[str, Any]) -> None:
    outcome, detail = _run(case)
    expected, why = EXCEPTIONS.get(case["id"], (case["expected"], ""))
    assert outcome == expected, f"{case['id']}: got {outcome} ({detail}); expected {expected} {why}".strip()


def test_exceptions_are_real_cases_that_disagree_with_upstream() -> None:
    by_id = {case["id"]: case for case in CASES}
    for case_id, (outcome, _why) in EXCEPTIONS.items():
        assert case_id in by_id
        assert by_id[case_id]["expected"] != outcome
        # Only ever stricter than upstream: an exception never accepts what upstream refuses.
        assert outcome == "fail"


def _case(case_id: str) -> dict[str, Any]:
    return next(case for case in CASES if case["id"] == case_id)


@pytest.mark.parametrize("case_id", ["slsa-verifier/gha-bundle/valid-v0.3", "cosign/oci-attestation"])
def test_real_provenance_bundles_verify_with_true_identity_only(case_id: str) -> None:
    case = _case(case_id)
    assert _run(case)[0] == "ok"
    wrong_subject = {
        **case,
        "identity": "https://github.com/evil/app/.github/workflows/x.yml@refs/heads/main",
    }
    wrong_issuer = {**case, "issuer": "https://accounts.google.com"}
    other_digest = {**case, "digest": "sha256:" + "0" * 64}
    for variant, code in (
        (wrong_subject, "identity-mismatch"),
        (wrong_issuer, "identity-mismatch"),
        (other_digest, "attestation-invalid"),
    ):
        outcome, detail = _run(variant)
        assert outcome == "fail"
        assert detail.startswith(f"[{code}]"), detail


def test_real_github_actions_provenance_carries_its_source_repository() -> None:
    case = _case("slsa-verifier/gha-bundle/valid-v0.3")
    root = _trust(case).root("case")
    assert root is not None
    signer = KeylessSigner(
        root="case",
        issuer=GITHUB,
        subject=case["identity"],
        extensions=(("sourceRepositoryURI", "https://github.com/slsa-framework/example-package"),),
    )
    content = (DATA / case["bundle"]).read_bytes()
    signed = verify_bundle(
        content, verifier=root.verifier, policy=SignerPolicy(signer), digest=case["digest"]
    )
    assert signed.statement().predicate_type == "https://slsa.dev/provenance/v0.2"
    wrong = KeylessSigner(
        root="case",
        issuer=GITHUB,
        subject=case["identity"],
        extensions=(("sourceRepositoryURI", "https://github.com/evil/x"),),
    )
    with pytest.raises(VerificationFailed) as failure:
        verify_bundle(content, verifier=root.verifier, policy=SignerPolicy(wrong), digest=case["digest"])
    assert failure.value.code == "identity-mismatch"


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


def _production_root() -> Any:
    root = _trust({"key": None, "trusted_root": LEGACY["trusted_root"], "id": "legacy"}).root("case")
    assert root is not None
    return root


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


def test_real_legacy_attestation_with_altered_integrated_time_fails() -> None:
    layer = _legacy_layers()[0]
    bundle = json.loads(layer.annotation("dev.sigstore.cosign/bundle") or "")
    bundle["Payload"]["integratedTime"] += 1
    altered = _legacy_layers({"dev.sigstore.cosign/bundle": json.dumps(bundle)})[0]
    with pytest.raises(VerificationFailed) as failure:
        verify_legacy_keyless(altered, root=_production_root())
    assert failure.value.code == "signature-invalid"
    assert "SET" in failure.value.user_message


def test_real_legacy_attestation_against_another_root_fails(tmp_path: Path) -> None:
    from tests.support.fake_sigstore import FakeSigstore

    fake = FakeSigstore.create(tmp_path)
    root = _trust({"key": None, "trusted_root": str(fake.trusted_root_path), "id": "fake"}).root("case")
    assert root is not None
    with pytest.raises(VerificationFailed):
        verify_legacy_keyless(_legacy_layers()[0], root=root)


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
            trust=Trust(roots=(TrustRoot("public-good", DATA / LEGACY["trusted_root"]),)),
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
