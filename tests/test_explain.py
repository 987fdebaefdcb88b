"""Explanations of decisions (pure): every check with its outcome and evidence, as text and JSON, bounded."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.support.fake_sigstore import generate_key
from webhook.admission.workloads import ImageSlot
from webhook.decision import evaluate, plan_image, running_slots
from webhook.explain import (
    ImageExplanation,
    audit_explanation,
    explain_image,
    explanation_json,
    explanation_lines,
)
from webhook.facts import (
    ArtifactCheck,
    Discovery,
    FieldCheck,
    Finding,
    ImageFacts,
    ListedManifest,
    Provenance,
    RequirementCheck,
    RuleVerification,
    SignerEvidence,
)
from webhook.policy.material import KeyMaterial
from webhook.policy.model import (
    Exemption,
    KeySigner,
    Policy,
    QuarantineEntry,
    QuarantineList,
    QuarantineSettings,
    Registries,
    Rule,
    SignatureRequirement,
    Tags,
    Trust,
    TrustKey,
)
from webhook.reasons import Reason

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
AMD64 = "sha256:" + "a" * 64
ARM64 = "sha256:" + "b" * 64
SIGNED = SignatureRequirement(signers=(KeySigner("release"),))
WORKFLOW = "https://github.com/acme/app/.github/workflows/release.yml@refs/tags/v1.0.0"
ISSUER = "https://token.actions.githubusercontent.com"

_LISTED = QuarantineEntry(digest=D2, reason="CVE-2026-1", source="/etc/imagegate/quarantine.yaml")
_PEM = generate_key("ecdsa-p256").public_pem
POLICY = Policy(
    name="test",
    source="policy.yaml",
    trust=Trust(keys=(TrustKey("release", KeyMaterial.parse(_PEM)),)),
    registries=Registries(allow=("ghcr.io",)),
    tags=Tags(resolve=True, deny=("latest",)),
    quarantine=QuarantineSettings(
        lists=(QuarantineList(Path("/etc/imagegate/quarantine.yaml"), b"", (_LISTED,)),),
        registry_markers=True,
    ),
    exemptions=(
        Exemption(
            images=("ghcr.io/acme/old",), namespaces=("*",), expires=NOW - timedelta(days=1), reason="INC-7"
        ),
    ),
    rules=(
        Rule(name="acme-signed", images=("ghcr.io/acme/**",), namespaces=("prod",), signatures=SIGNED),
        Rule(name="dev", images=("ghcr.io/acme/**",), namespaces=("dev-*",), mode="warn", signatures=SIGNED),
        Rule(name="tools", images=("ghcr.io/tools/**",)),
    ),
    quarantined={
        D2: QuarantineEntry(digest=D2, reason="CVE-2026-1", source="/etc/imagegate/quarantine.yaml")
    },
)


def _slot(image: str) -> ImageSlot:
    return ImageSlot(pointer="/spec/containers/0/image", location="containers", name="app", image=image)


def _explain(
    image: str,
    facts: ImageFacts | None = None,
    *,
    namespace: str = "prod",
    policy: Policy = POLICY,
    running: bool = False,
) -> ImageExplanation:
    slot = _slot(image)
    stage = "mutate"
    plan = plan_image(image, policy=policy, namespace=namespace, now=NOW, stage=stage, unchanged=running)
    pointers = running_slots([slot], old=[slot]) if running else frozenset()
    decision = evaluate(
        [slot],
        policy=policy,
        namespace=namespace,
        facts={image: facts or ImageFacts()},
        now=NOW,
        stage=stage,
        plans={image: plan},
        running=pointers,
    )
    return explain_image(decision.images[0], plan=plan, facts=facts, policy=policy, namespace=namespace)


def _checks(explanation: ImageExplanation) -> list[tuple[str, str]]:
    return [(check.name, check.outcome) for check in explanation.checks]


def _signature_evidence(*, passed: bool) -> RuleVerification:
    signer = SignerEvidence(
        subjects=(WORKFLOW,),
        issuer=ISSUER,
        extensions=(
            ("sourceRepositoryURI", "https://github.com/acme/app"),
            ("sourceRepositoryRef", "refs/tags/v1.0.0"),
        ),
        logged=NOW - timedelta(hours=1),
    )
    artifact = ArtifactCheck(
        artifact="bundle sha256:cd34 (referrer sha256:ab12)",
        kind="bundle",
        manifest="sha256:" + "e" * 64,
        verdict="satisfied" if passed else "other-signer",
        detail="valid signature by keyless ...",
        signer=signer,
        satisfies=(1,) if passed else (),
    )
    finding = Finding(Reason.IDENTITY_MISMATCH, "expected #1 key release, found keyless " + WORKFLOW)
    requirement = RequirementCheck(
        requirement="signatures",
        signers=("key release",),
        minimum=1,
        satisfied=1 if passed else 0,
        artifacts=(artifact,),
        findings=() if passed else (finding,),
    )
    return RuleVerification(
        rule="acme-signed",
        digest=D1,
        findings=requirement.findings,
        requirements=(requirement,),
        discovery=Discovery(bundles=1, notes=("referrer sha256:ffff skipped: not a JSON manifest",)),
    )


def test_a_verified_image_shows_every_step_in_the_decisions_order() -> None:
    explanation = _explain(
        "ghcr.io/acme/app:v1",
        ImageFacts(digest=D1, quarantine_read=True, verifications=(_signature_evidence(passed=True),)),
    )
    assert explanation.outcome == "verified" and explanation.status == "allowed"
    assert _checks(explanation) == [
        ("reference", "passed"),
        ("registry", "passed"),
        ("exemption", "passed"),
        ("tag", "passed"),
        ("rules", "passed"),
        ("digest", "passed"),
        ("quarantine", "passed"),
        ("rule acme-signed", "passed"),
    ]
    text = "\n".join(explanation_lines(explanation))
    assert f"digest: tag v1 resolved to {D1}, pinned to ghcr.io/acme/app:v1@{D1}" in text
    assert "bundle sha256:cd34 (referrer sha256:ab12): satisfies signer #1" in text
    assert f"signed by keyless {WORKFLOW} issuer {ISSUER}" in text
    assert "sourceRepositoryURI=https://github.com/acme/app, sourceRepositoryRef=refs/tags/v1.0.0" in text
    assert "discovery note: referrer sha256:ffff skipped: not a JSON manifest" in text


def test_the_rules_that_govern_and_the_namespace_scoped_ones_that_do_not_say_why() -> None:
    explanation = _explain(
        "ghcr.io/acme/app:v1",
        ImageFacts(digest=D1, quarantine_read=True, verifications=(_signature_evidence(passed=True),)),
    )
    governing = [(m.rule, m.governs, m.why) for m in explanation.rules]
    assert governing == [
        ("acme-signed", True, ""),
        ("dev", False, 'namespace "prod" matches none of namespaces [dev-*]'),
    ]  # tools: its images do not match, and another rule governs: not worth a line
    text = "\n".join(explanation_lines(explanation))
    assert "rule acme-signed (enforce) matches; requires signatures" in text
    assert 'rule dev (warn) does not match: namespace "prod" matches none of namespaces [dev-*]' in text


def test_an_ungoverned_image_lists_every_rule_and_why_it_does_not_apply() -> None:
    explanation = _explain("ghcr.io/other/app:v1")
    assert explanation.outcome == "unmatched"
    assert _checks(explanation)[-1] == ("rules", "failed")
    assert explanation.checks[-1].finding == Finding(
        Reason.UNMATCHED, "no rule of policy test governs this image"
    )
    assert [m.why for m in explanation.rules] == [
        "ghcr.io/other/app matches none of images [ghcr.io/acme/**]",
        "ghcr.io/other/app matches none of images [ghcr.io/acme/**]",
        "ghcr.io/other/app matches none of images [ghcr.io/tools/**]",
    ]


def test_a_failed_signature_check_names_what_was_expected_and_what_was_found() -> None:
    explanation = _explain(
        "ghcr.io/acme/app:v1",
        ImageFacts(digest=D1, quarantine_read=True, verifications=(_signature_evidence(passed=False),)),
    )
    assert explanation.status == "denied"
    failed = explanation.checks[-1]
    assert (failed.name, failed.outcome, failed.mode) == ("rule acme-signed", "failed", "enforce")
    assert failed.finding is not None and failed.finding.code == Reason.IDENTITY_MISMATCH
    assert failed.finding.message.endswith("(rule acme-signed)")  # the decision's own finding
    text = "\n".join(explanation_lines(explanation))
    assert "rule acme-signed: FAILED (enforce) [identity-mismatch]: signatures" in text
    assert "signatures: FAILED (0 of minimum 1 signer(s) satisfied)" in text
    assert "signer #1: key release" in text
    assert "bundle sha256:cd34 (referrer sha256:ab12): other-signer: valid signature by keyless ..." in text


def test_quarantine_lookups_show_every_manifest_an_index_lists() -> None:
    facts = ImageFacts(
        digest=D1,
        quarantine_read=True,
        listed=(
            ListedManifest(AMD64, "linux/amd64", D1),
            ListedManifest(
                ARM64, "linux/arm64", D1, marker=QuarantineEntry(ARM64, "bad arm build", source="registry")
            ),
        ),
    )
    explanation = _explain("ghcr.io/acme/app:v1", facts)
    assert explanation.outcome == "quarantined"
    assert _checks(explanation)[-1] == ("quarantine", "failed")
    quarantine = explanation.quarantine
    assert quarantine is not None
    assert quarantine.lists == ("quarantine.yaml",) and quarantine.markers
    assert [(m.digest, m.platform, m.quarantined) for m in quarantine.listed] == [
        (AMD64, "linux/amd64", ""),
        (ARM64, "linux/arm64", "bad arm build (registry marker)"),
    ]
    text = "\n".join(explanation_lines(explanation))
    assert f"lists {AMD64} (linux/amd64): not quarantined" in text
    assert f"lists {ARM64} (linux/arm64): quarantined: bad arm build (registry marker)" in text


def test_a_quarantined_digest_names_its_list_by_file_name() -> None:
    explanation = _explain(f"ghcr.io/acme/app@{D2}")
    assert _checks(explanation)[-1] == ("quarantine", "failed")
    assert explanation.quarantine is not None
    assert explanation.quarantine.quarantined == "CVE-2026-1 (quarantine.yaml)"
    assert "/etc/imagegate" not in json.dumps(explanation_json(explanation))


def test_terminal_checks_end_the_explanation_where_the_decision_ends() -> None:
    # Rule matching is not reached, but the rules that match are still named.
    denied = _explain("ghcr.io/acme/app:latest")
    assert _checks(denied)[-2:] == [("tag", "failed"), ("rules", "skipped")]
    assert [m.rule for m in denied.rules if m.governs] == ["acme-signed"]
    assert _checks(_explain("evil.io/acme/app:v1"))[-2:] == [("registry", "failed"), ("rules", "skipped")]
    assert _checks(_explain("ghcr.io/acme/App:v1"))[-1] == ("reference", "failed")
    missing = _explain("ghcr.io/acme/app:v1", ImageFacts())
    assert _checks(missing)[-1] == ("digest", "failed")
    assert missing.checks[-1].finding is not None and missing.checks[-1].finding.code == Reason.REGISTRY_ERROR


def test_an_expired_exemption_is_named() -> None:
    explanation = _explain("ghcr.io/acme/old:v1", ImageFacts(digest=D1, quarantine_read=True))
    exemption = next(check for check in explanation.checks if check.name == "exemption")
    assert exemption.summary == "none applies (one for this image expired 2026-11-25T12:00:00Z: INC-7)"


def test_a_running_image_fails_in_warn_mode_and_says_so() -> None:
    explanation = _explain(
        "ghcr.io/acme/app:v1",
        ImageFacts(digest=D1, quarantine_read=True, verifications=(_signature_evidence(passed=False),)),
        running=True,
    )
    assert explanation.status == "warned" and explanation.running
    assert explanation.checks[-1].mode == "warn"
    assert explanation_lines(explanation)[-1].startswith("  note: already running")


def test_text_from_outside_is_escaped() -> None:
    evidence = _signature_evidence(passed=False)
    artifact = replace(evidence.requirements[0].artifacts[0], detail="evil\nFAKE LINE \u202e")
    requirement = replace(evidence.requirements[0], artifacts=(artifact,))
    explanation = _explain(
        "ghcr.io/acme/app:v1",
        ImageFacts(
            digest=D1, quarantine_read=True, verifications=(replace(evidence, requirements=(requirement,)),)
        ),
    )
    lines = explanation_lines(explanation)
    [line] = [line for line in lines if "evil" in line]
    assert line.endswith("other-signer: evil\\nFAKE LINE \\u202e")
    assert all("\n" not in line and "\u202e" not in line for line in lines)


def test_json_is_camel_case_leaves_out_what_is_absent_and_says_what_passed() -> None:
    provenance = Provenance(
        "https://slsa.dev/provenance/v1", builder_id="b", repository="github.com/acme/app", commit="c" * 40
    )
    evidence = _signature_evidence(passed=True)
    field = FieldCheck("source ref", "sourceRefs", ("refs/tags/v*",), "refs/tags/v1.0.0", "buildDefinition.x")
    artifact = replace(evidence.requirements[0].artifacts[0], fields=(field,), provenance=provenance)
    requirement = replace(evidence.requirements[0], artifacts=(artifact,))
    explanation = _explain(
        "ghcr.io/acme/app:v1",
        ImageFacts(
            digest=D1, quarantine_read=True, verifications=(replace(evidence, requirements=(requirement,)),)
        ),
    )
    document = json.loads(json.dumps(explanation_json(explanation)))
    assert document["outcome"] == "verified" and document["status"] == "allowed"
    assert document["checks"][0] == {
        "name": "reference",
        "outcome": "passed",
        "summary": "ghcr.io/acme/app:v1",
    }
    [verification] = document["verifications"]
    assert verification["passed"] is True and verification["discovery"]["bundles"] == 1
    [judged] = verification["requirements"]
    assert judged["passed"] is True and judged["satisfied"] == 1 and judged["minimum"] == 1
    [found] = judged["artifacts"]
    assert found["satisfies"] == [1] and found["manifest"] == "sha256:" + "e" * 64
    assert found["signer"] == {
        "subjects": [WORKFLOW],
        "issuer": ISSUER,
        "extensions": {
            "sourceRepositoryURI": "https://github.com/acme/app",
            "sourceRepositoryRef": "refs/tags/v1.0.0",
        },
        "logged": "2026-11-26T11:00:00Z",
    }
    assert found["fields"] == [
        {
            "name": "source ref",
            "policy": "sourceRefs",
            "expected": ["refs/tags/v*"],
            "found": "refs/tags/v1.0.0",
            "source": "buildDefinition.x",
            "passed": True,
        }
    ]
    assert found["provenance"] == {
        "predicateType": "https://slsa.dev/provenance/v1",
        "builderId": "b",
        "repository": "github.com/acme/app",
        "commit": "c" * 40,
    }
    assert "pin" in document and "running" in document and document["running"] is False


def test_the_audit_explanation_keeps_the_failed_checks_with_their_evidence() -> None:
    explanation = _explain(
        "ghcr.io/acme/app:v1",
        ImageFacts(digest=D1, quarantine_read=True, verifications=(_signature_evidence(passed=False),)),
    )
    record = audit_explanation(explanation)
    assert [check["name"] for check in record["checks"]] == ["rule acme-signed"]
    assert record["checks"][0]["finding"]["code"] == "identity-mismatch"
    [verification] = record["verifications"]
    [requirement] = verification["requirements"]
    assert requirement["artifacts"][0]["signer"]["subjects"] == [WORKFLOW]
    assert "truncated" not in record


def test_the_audit_explanation_is_bounded_however_large_the_evidence() -> None:
    evidence = _signature_evidence(passed=False)
    artifact = evidence.requirements[0].artifacts[0]
    many = tuple(replace(artifact, detail="x" * 5000, artifact=f"bundle {i}") for i in range(200))
    requirement = replace(evidence.requirements[0], artifacts=many)
    explanation = _explain(
        "ghcr.io/acme/app:v1",
        ImageFacts(
            digest=D1, quarantine_read=True, verifications=(replace(evidence, requirements=(requirement,)),)
        ),
    )
    for limit in (4096, 1500, 300):
        record = audit_explanation(explanation, limit=limit)
        assert len(json.dumps(record, separators=(",", ":"))) <= limit
        assert record["truncated"] is True
    # Cut down, it still names the failed check and its reason code.
    record = audit_explanation(explanation, limit=4096)
    assert "and 197 more" in json.dumps(record)
    assert audit_explanation(explanation, limit=300)["checks"][0]["code"] == "identity-mismatch"


def test_the_cut_down_audit_explanation_keeps_the_code_however_the_message_escapes() -> None:
    """A message of escaped hostile text (each backslash doubled again in JSON) is cut to fit, not dropped."""
    explanation = _explain("ghcr.io/acme/" + "\u0430" * 2000 + ":v1")
    [failed] = [check for check in explanation.checks if check.outcome == "failed"]
    assert failed.finding is not None and failed.finding.message.count("\\") > 50
    for limit in (1500, 300):
        record = audit_explanation(explanation, limit=limit)
        assert len(json.dumps(record, separators=(",", ":"))) <= limit
        [check] = record["checks"]
        said = check.get("finding", check)
        assert said["code"] == str(failed.finding.code) and said["message"]
