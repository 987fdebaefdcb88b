"""The pure decision core: one table row per step of webhook.decision's docstring, plus modes."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from webhook.admission.workloads import ImageSlot
from webhook.decision import evaluate, plan_image, running_slots
from webhook.facts import Finding, ImageFacts, RuleVerification
from webhook.policy.material import KeyMaterial
from webhook.policy.model import (
    Exemption,
    KeySigner,
    Policy,
    QuarantineEntry,
    QuarantineSettings,
    Registries,
    Rule,
    SignatureRequirement,
    Tags,
    Trust,
    TrustKey,
)
from webhook.reasons import ALLOWED_OUTCOMES

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
SIGNED = SignatureRequirement(signers=(KeySigner("release"),))
# A policy's signers name its trust keys (the decision core never reads the key itself).
RELEASE = ec.generate_private_key(ec.SECP256R1()).public_key()
RELEASE_KEY = TrustKey(
    "release",
    KeyMaterial.parse(
        RELEASE.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    ),
)

POLICY = Policy(
    name="test",
    source="policy.yaml",
    mode="enforce",
    unmatched="deny",
    registries=Registries(allow=("ghcr.io", "docker.io", "127.0.0.1:5000")),
    tags=Tags(resolve=True, deny=("latest",)),
    trust=Trust(keys=(RELEASE_KEY,)),
    quarantine=QuarantineSettings(registry_markers=True),
    exemptions=(
        Exemption(
            images=(f"ghcr.io/acme/tool@{D1}",),
            namespaces=("ops-*",),
            expires=NOW + timedelta(days=1),
            reason="INC-1",
        ),
        Exemption(
            images=("ghcr.io/acme/old",), namespaces=("*",), expires=NOW - timedelta(days=1), reason="gone"
        ),
    ),
    rules=(
        Rule(name="acme", images=("ghcr.io/acme/**",)),
        Rule(name="acme-signed", images=("ghcr.io/acme/signed/**",), signatures=SIGNED),
        Rule(
            name="dev", images=("ghcr.io/acme/dev/**",), namespaces=("dev-*",), mode="warn", signatures=SIGNED
        ),
        Rule(name="audited", images=("ghcr.io/acme/audited/**",), mode="audit", signatures=SIGNED),
        Rule(name="local", images=("127.0.0.1:5000/**",)),
    ),
    quarantined={D2: QuarantineEntry(digest=D2, reason="CVE-1", source="q.yaml")},
)


def slot(image: str, name: str = "app") -> ImageSlot:
    return ImageSlot(pointer="/spec/containers/0/image", location="containers", name=name, image=image)


def decide(
    image: str, *, policy: Policy = POLICY, facts: ImageFacts | None = None, ns: str = "prod", stage="mutate"
):  # type: ignore[no-untyped-def]
    decision = evaluate(
        [slot(image)],
        policy=policy,
        namespace=ns,
        # No facts given: the image's facts were gathered and found nothing (no marker, no listing).
        facts={image: facts or ImageFacts(quarantine_read=True)},
        now=NOW,
        stage=stage,
    )
    return decision, decision.images[0]


def passed(rule: str, digest: str = D1) -> RuleVerification:
    return RuleVerification(rule=rule, digest=digest)


@pytest.mark.parametrize(
    ("image", "outcome", "fragment"),
    [
        ("ghcr.io/ACME/app:1", "invalid-reference", "lowercase"),
        ("quay.io/acme/app@" + D1, "registry-not-allowed", 'registry "quay.io"'),
        ("127.0.0.1:5001/app@" + D1, "registry-not-allowed", "127.0.0.1:5001"),
        ("ghcr.io/acme/app:latest", "tag-denied", 'tag "latest" is mutable'),
        ("ghcr.io/acme/app", "tag-denied", "no tag means latest"),
        ("ghcr.io/other/app@" + D1, "unmatched", "no rule of policy test"),
        ("ghcr.io/acme/app@" + D2, "quarantined", '"CVE-1" (q.yaml)'),
        ("ghcr.io/acme/old@" + D1, "admitted", ""),  # expired exemption is ignored, rule acme applies
    ],
)
def test_policy_wide_checks(image: str, outcome: str, fragment: str) -> None:
    decision, image_decision = decide(image, stage="validate")
    assert image_decision.outcome == outcome
    if outcome == "admitted":
        assert decision.allowed and not image_decision.failures
    else:
        assert not decision.allowed
        assert fragment in decision.denials[0]
        assert f"[{outcome}]" in decision.denials[0]


def test_message_format_names_location_image_code_and_rule() -> None:
    decision, _ = decide("ghcr.io/acme/app:latest")
    assert decision.denials == (
        'container "app" image "ghcr.io/acme/app:latest": [tag-denied] '
        'tag "latest" is mutable and not allowed (rule acme)',
    )


def test_exemption_beats_every_other_check_only_in_its_namespaces() -> None:
    image = f"ghcr.io/acme/tool@{D1}"
    decision, d = decide(image, ns="ops-7")
    assert d.outcome == "exempted" and d.exemption is not None and d.exemption.reason == "INC-1"
    assert decision.allowed
    # Another digest of the same name is not exempted.
    _, other = decide(f"ghcr.io/acme/tool@{D2}", ns="ops-7")
    assert other.outcome == "quarantined"
    _, elsewhere = decide(image, ns="prod")
    assert elsewhere.outcome == "admitted"


def test_denied_tag_wins_over_not_pinned() -> None:
    _, d = decide("ghcr.io/acme/app:latest", stage="validate")
    assert d.outcome == "tag-denied"


def test_mutate_pins_the_resolved_digest_keeping_the_written_name() -> None:
    decision, d = decide("ghcr.io/acme/app:1.0", facts=ImageFacts(quarantine_read=True, digest=D1))
    assert d.outcome == "admitted" and d.digest == D1
    assert decision.pins == ((d.slot, f"ghcr.io/acme/app:1.0@{D1}"),)


def test_validate_denies_unpinned_governed_tag() -> None:
    decision, d = decide("ghcr.io/acme/app:1.0", stage="validate")
    assert d.outcome == "not-pinned"
    assert not decision.pins


def test_unpinned_with_resolution_off_is_judged_as_is() -> None:
    policy = replace(POLICY, tags=Tags(resolve=False, deny=("latest",)))
    decision, d = decide("ghcr.io/acme/app:1.0", policy=policy, stage="validate")
    assert d.outcome == "admitted" and decision.allowed and not decision.pins
    _, signed = decide("ghcr.io/acme/signed/app:1.0", policy=policy, stage="validate")
    assert signed.outcome == "unsigned"
    assert "digests only" in signed.failures[0][0].message


def test_resolution_failure_and_missing_facts_deny() -> None:
    failed = ImageFacts(quarantine_read=True, gathering_error=Finding("registry-error", "connection refused"))
    decision, d = decide("ghcr.io/acme/app:1.0", facts=failed)
    assert d.outcome == "registry-error" and "connection refused (rule acme)" in decision.denials[0]
    _, missing = decide("ghcr.io/acme/app:1.0")
    assert missing.outcome == "registry-error"
    mismatch = ImageFacts(
        quarantine_read=True, gathering_error=Finding("digest-mismatch", "manifest digest differs")
    )
    assert decide("ghcr.io/acme/app:1.0", facts=mismatch)[1].outcome == "digest-mismatch"


def test_quarantine_by_resolved_digest_and_by_registry_marker() -> None:
    _, by_file = decide("ghcr.io/acme/app:1.0", facts=ImageFacts(quarantine_read=True, digest=D2))
    assert by_file.outcome == "quarantined"
    marker = QuarantineEntry(digest=D1, reason="bad build", source="registry")
    decision, by_marker = decide(
        "ghcr.io/acme/app:1.0", facts=ImageFacts(quarantine_read=True, digest=D1, marker=marker)
    )
    assert by_marker.outcome == "quarantined" and "bad build" in decision.denials[0]
    unreadable = ImageFacts(
        quarantine_read=True, digest=D1, marker_error=Finding("registry-error", "markers unreadable")
    )
    assert decide("ghcr.io/acme/app:1.0", facts=unreadable)[1].outcome == "registry-error"


def test_marker_for_another_digest_does_not_quarantine() -> None:
    marker = QuarantineEntry(digest=D2, reason="other", source="registry")
    _, d = decide(f"ghcr.io/acme/app@{D1}", facts=ImageFacts(quarantine_read=True, marker=marker))
    assert d.outcome == "admitted"


def test_signature_requirement_without_result_is_unsigned_never_allowed() -> None:
    decision, d = decide(f"ghcr.io/acme/signed/app@{D1}")
    assert d.outcome == "unsigned" and not decision.allowed


def test_verification_result_must_be_for_the_admitted_digest() -> None:
    stale = ImageFacts(quarantine_read=True, verifications=(passed("acme-signed", digest=D2),))
    assert decide(f"ghcr.io/acme/signed/app@{D1}", facts=stale)[1].outcome == "unsigned"
    ok = ImageFacts(quarantine_read=True, verifications=(passed("acme-signed"),))
    decision, d = decide(f"ghcr.io/acme/signed/app@{D1}", facts=ok)
    assert d.outcome == "verified" and d.rules == ("acme", "acme-signed") and decision.allowed


def test_all_rule_findings_are_reported_with_their_rule() -> None:
    findings = (
        Finding("identity-mismatch", "expected A, found B"),
        Finding("attestation-missing", "no SLSA"),
    )
    facts = ImageFacts(quarantine_read=True, verifications=(RuleVerification("acme-signed", D1, findings),))
    decision, d = decide(f"ghcr.io/acme/signed/app@{D1}", facts=facts)
    assert d.outcome == "identity-mismatch"
    assert decision.denials == (
        f'container "app" image "ghcr.io/acme/signed/app@{D1}": [identity-mismatch] expected A, found B '
        "(rule acme-signed); [attestation-missing] no SLSA (rule acme-signed)",
    )


def test_rule_modes_warn_and_audit() -> None:
    decision, d = decide(f"ghcr.io/acme/dev/app@{D1}", ns="dev-1")
    assert decision.allowed and d.outcome == "unsigned"
    assert len(decision.warnings) == 1 and "[unsigned]" in decision.warnings[0]
    decision, d = decide(f"ghcr.io/acme/audited/app@{D1}")
    assert decision.allowed and not decision.warnings
    assert "[unsigned]" in decision.audit_lines[0]


@pytest.mark.parametrize(
    ("mode", "allowed", "warned", "audited"),
    [("enforce", False, 0, 0), ("warn", True, 1, 0), ("audit", True, 0, 1)],
)
def test_policy_mode_applies_to_policy_wide_checks(
    mode: str, allowed: bool, warned: int, audited: int
) -> None:
    policy = replace(POLICY, mode=mode)  # type: ignore[arg-type]
    decision, _ = decide("ghcr.io/acme/app:latest", policy=policy)
    assert decision.allowed is allowed
    assert len(decision.warnings) == warned and len(decision.audit_lines) == audited


@pytest.mark.parametrize(
    ("unmatched", "allowed", "outcome", "warned"),
    [
        ("deny", False, "unmatched", 0),
        ("allow", True, "unmatched-allowed", 0),
        ("warn", True, "unmatched-allowed", 1),
    ],
)
def test_unmatched_handling(unmatched: str, allowed: bool, outcome: str, warned: int) -> None:
    policy = replace(POLICY, unmatched=unmatched)  # type: ignore[arg-type]
    decision, d = decide(f"ghcr.io/other/app@{D1}", policy=policy)
    assert (decision.allowed, d.outcome, len(decision.warnings)) == (allowed, outcome, warned)


def test_unmatched_images_need_no_facts_but_quarantine_lists_still_apply() -> None:
    policy = replace(POLICY, unmatched="allow")
    plan = plan_image("ghcr.io/other/app:1.0", policy=policy, namespace="x", now=NOW, stage="mutate")
    assert not plan.needs_facts
    assert decide(f"ghcr.io/other/app@{D2}", policy=policy)[1].outcome == "quarantined"


def test_plan_asks_only_for_what_is_needed() -> None:
    plan = plan_image("ghcr.io/acme/signed/app:1", policy=POLICY, namespace="x", now=NOW, stage="mutate")
    assert plan.resolve and plan.check_markers and [r.name for r in plan.verify_rules] == ["acme-signed"]
    pinned = plan_image(f"ghcr.io/acme/app@{D1}", policy=POLICY, namespace="x", now=NOW, stage="validate")
    assert not pinned.resolve and pinned.digest == D1 and pinned.check_markers and not pinned.verify_rules
    denied = plan_image("quay.io/x:1", policy=POLICY, namespace="x", now=NOW, stage="mutate")
    assert not denied.needs_facts


def test_same_image_in_two_slots_is_planned_once_and_decided_twice() -> None:
    image = "ghcr.io/acme/app:latest"
    decision = evaluate(
        [slot(image, "a"), slot(image, "b")], policy=POLICY, namespace="x", facts={}, now=NOW, stage="mutate"
    )
    assert [d.slot.name for d in decision.images] == ["a", "b"]
    assert len(decision.denials) == 2


@pytest.mark.parametrize("breaker", ["\n", "\r", "\u2028", "\x85", "\x1e"])
def test_text_from_a_registry_cannot_forge_lines_of_the_answer(breaker: str) -> None:
    # A quarantine marker's reason is whatever the registry's annotation says.
    reason = f'bad{breaker}container "x" image "ghcr.io/acme/app@{D1}": [verified] fine'
    marker = QuarantineEntry(digest=D1, reason=reason, source="registry")
    decision, d = decide(f"ghcr.io/acme/app@{D1}", facts=ImageFacts(quarantine_read=True, marker=marker))
    assert d.outcome == "quarantined"
    assert len(decision.denials) == 1
    assert len(decision.denials[0].splitlines()) == 1


def test_one_slot_cannot_blow_up_its_line() -> None:
    image = "ghcr.io/acme/app:" + "x" * 100_000
    long_name = ImageSlot(
        pointer="/spec/containers/0/image", location="containers", name="n" * 100_000, image=image
    )
    decision = evaluate([long_name], policy=POLICY, namespace="x", facts={}, now=NOW, stage="mutate")
    assert decision.images[0].outcome == "invalid-reference"
    assert len(decision.denials) == 1 and len(decision.denials[0]) < 2000
    assert "(100017 characters)" in decision.denials[0]
    huge = Finding("attestation-invalid", "y" * 100_000)
    facts = ImageFacts(quarantine_read=True, verifications=(RuleVerification("acme-signed", D1, (huge,)),))
    decision, _ = decide(f"ghcr.io/acme/signed/app@{D1}", facts=facts)
    assert len(decision.denials[0]) < 3000


@pytest.mark.parametrize("glob", ["registry.acme.com*/debug/**", "*/debug/miner", "**/debug/miner"])
def test_an_exemption_never_opens_a_registry_the_allowlist_refuses(glob: str) -> None:
    exemption = Exemption(images=(glob,), namespaces=("*",), expires=NOW + timedelta(days=1), reason="INC-9")
    policy = replace(POLICY, registries=Registries(allow=("registry.acme.com",)), exemptions=(exemption,))
    decision, d = decide("registry.acme.com.attacker.io/debug/miner:latest", policy=policy)
    assert d.outcome == "registry-not-allowed" and d.exemption is None and not decision.allowed
    # Inside the allowlist the same exemption applies, and it is still checked before the denied tag.
    decision, d = decide("registry.acme.com/debug/miner:latest", policy=policy)
    assert d.outcome == "exempted" and decision.allowed


# --- mode precedence: image-wide failures belong to the strictest mode of the governing rules ---------

REFUSED = ImageFacts(quarantine_read=True, gathering_error=Finding("registry-error", "tag 1.0 not found"))
IMAGE_WIDE_FAILURES = [
    pytest.param("ghcr.io/acme/app:1.0", REFUSED, "mutate", "registry-error", id="resolution"),
    pytest.param(
        "ghcr.io/acme/app:1.0", ImageFacts(quarantine_read=True), "mutate", "registry-error", id="no-digest"
    ),
    pytest.param(
        "ghcr.io/acme/app:1.0",
        ImageFacts(quarantine_read=True, gathering_error=Finding("digest-mismatch", "content differs")),
        "mutate",
        "digest-mismatch",
        id="digest-mismatch",
    ),
    pytest.param("ghcr.io/acme/app:1.0", None, "validate", "not-pinned", id="not-pinned"),
    pytest.param(f"ghcr.io/acme/app@{D2}", None, "validate", "quarantined", id="quarantine-list"),
    pytest.param(
        f"ghcr.io/acme/app@{D1}",
        ImageFacts(quarantine_read=True, marker=QuarantineEntry(digest=D1, reason="bad", source="registry")),
        "validate",
        "quarantined",
        id="quarantine-marker",
    ),
    pytest.param(
        f"ghcr.io/acme/app@{D1}",
        ImageFacts(quarantine_read=True, marker_error=Finding("registry-error", "markers unreadable")),
        "validate",
        "registry-error",
        id="markers-unreadable",
    ),
]


def _governed(spec_mode: str, *rule_modes: str | None) -> Policy:
    rules = tuple(
        Rule(name=f"r{i}", images=("ghcr.io/acme/**",), mode=mode)  # type: ignore[arg-type]
        for i, mode in enumerate(rule_modes)
    )
    return replace(POLICY, mode=spec_mode, rules=rules)  # type: ignore[arg-type]


@pytest.mark.parametrize(("image", "facts", "stage", "code"), IMAGE_WIDE_FAILURES)
def test_an_enforce_rule_denies_image_wide_failures_under_a_warn_policy(
    image: str, facts: ImageFacts | None, stage: str, code: str
) -> None:
    decision, d = decide(image, policy=_governed("warn", "enforce"), facts=facts, stage=stage)
    assert d.outcome == code
    assert not decision.allowed and f"[{code}]" in decision.denials[0] and not decision.warnings


@pytest.mark.parametrize(("image", "facts", "stage", "code"), IMAGE_WIDE_FAILURES)
def test_warn_rules_alone_only_warn_about_image_wide_failures_under_an_enforce_policy(
    image: str, facts: ImageFacts | None, stage: str, code: str
) -> None:
    decision, d = decide(image, policy=_governed("enforce", "warn", "warn"), facts=facts, stage=stage)
    assert d.outcome == code
    assert decision.allowed and f"[{code}]" in decision.warnings[0] and not decision.denials


@pytest.mark.parametrize(
    ("spec_mode", "rule_modes", "expected"),
    [
        ("enforce", ("warn", "audit"), "warn"),
        ("enforce", ("audit",), "audit"),
        ("enforce", ("warn", None), "enforce"),  # a rule without a mode has spec.mode
        ("warn", ("audit", None), "warn"),
        ("audit", ("audit", None), "audit"),
        ("audit", ("warn", "enforce"), "enforce"),
    ],
)
def test_image_wide_failures_take_the_strictest_mode_of_the_governing_rules(
    spec_mode: str, rule_modes: tuple[str | None, ...], expected: str
) -> None:
    decision, d = decide("ghcr.io/acme/app:1.0", policy=_governed(spec_mode, *rule_modes), facts=REFUSED)
    assert [m for _, m in d.failures] == [expected]
    assert decision.allowed is (expected != "enforce")


@pytest.mark.parametrize("spec_mode", ["warn", "audit"])
def test_checks_before_rule_matching_belong_to_the_policy_mode(spec_mode: str) -> None:
    policy = _governed(spec_mode, "enforce")
    for image in ("ghcr.io/acme/app:latest", "quay.io/acme/app:1.0", "ghcr.io/acme/App:1.0"):
        decision, d = decide(image, policy=policy)
        assert decision.allowed and [m for _, m in d.failures] == [spec_mode], image


def test_each_rule_requirement_failure_keeps_its_own_rule_mode() -> None:
    rules = (
        Rule(name="strict", images=("ghcr.io/acme/**",), mode="enforce", signatures=SIGNED),
        Rule(name="lenient", images=("ghcr.io/acme/**",), mode="warn", signatures=SIGNED),
    )
    policy = replace(POLICY, mode="audit", rules=rules)
    facts = ImageFacts(
        quarantine_read=True,
        verifications=(
            RuleVerification("strict", D1),
            RuleVerification("lenient", D1, (Finding("identity-mismatch", "expected A, found B"),)),
        ),
    )
    decision, d = decide(f"ghcr.io/acme/app@{D1}", policy=policy, facts=facts)
    assert decision.allowed and [(f.code, m) for f, m in d.failures] == [("identity-mismatch", "warn")]


def test_the_failure_that_decides_comes_first_and_names_the_outcome_mode_and_rule() -> None:
    # A warn rule fails before an enforce rule does: the image is denied by the enforce failure, so that
    # one is its outcome, its mode and its rule (metrics and the audit line count what denied it).
    rules = (
        Rule(name="lenient", images=("ghcr.io/acme/**",), mode="warn", signatures=SIGNED),
        Rule(name="strict", images=("ghcr.io/acme/**",), mode="enforce", signatures=SIGNED),
        Rule(name="strict-too", images=("ghcr.io/acme/**",), mode="enforce", signatures=SIGNED),
    )
    policy = replace(POLICY, mode="audit", rules=rules)
    facts = ImageFacts(
        quarantine_read=True,
        verifications=(
            RuleVerification("lenient", D1, (Finding("unsigned", "no signature"),)),
            RuleVerification("strict", D1, (Finding("identity-mismatch", "expected A, found B"),)),
            RuleVerification("strict-too", D1, (Finding("signature-invalid", "bad"),)),
        ),
    )
    decision, d = decide(f"ghcr.io/acme/app@{D1}", policy=policy, facts=facts)
    assert not decision.allowed
    assert (d.outcome, d.mode, d.rule) == ("identity-mismatch", "enforce", "strict")
    assert [(f.code, m) for f, m in d.failures] == [
        ("identity-mismatch", "enforce"),
        ("unsigned", "warn"),
        ("signature-invalid", "enforce"),
    ]
    # An UPDATE that keeps the image running turns enforce into warn: the mode says what was applied.
    running = evaluate(
        [slot(f"ghcr.io/acme/app@{D1}")],
        policy=policy,
        namespace="prod",
        facts={f"ghcr.io/acme/app@{D1}": facts},
        now=NOW,
        stage="validate",
        running=frozenset({"/spec/containers/0/image"}),
    ).images[0]
    assert (running.outcome, running.mode, running.rule) == ("identity-mismatch", "warn", "strict")


@pytest.mark.parametrize(
    ("image", "facts", "spec_mode", "rule_modes", "expected"),
    [
        # failures about the image as a whole: the first governing rule of the strictest mode
        (
            "ghcr.io/acme/app:1.0",
            REFUSED,
            "enforce",
            ("warn", "audit", "warn"),
            ("registry-error", "warn", "r0"),
        ),
        (
            "ghcr.io/acme/app:1.0",
            REFUSED,
            "warn",
            ("audit", "enforce", "enforce"),
            ("registry-error", "enforce", "r1"),
        ),
        # passing: the same rule, no mode
        (f"ghcr.io/acme/app@{D1}", None, "enforce", ("audit", "warn"), ("admitted", None, "r1")),
        # checks before matching, unmatched images and exemptions belong to spec: no rule
        ("ghcr.io/acme/app:latest", None, "warn", ("enforce",), ("tag-denied", "warn", None)),
        ("quay.io/acme/app:1.0", None, "audit", ("enforce",), ("registry-not-allowed", "audit", None)),
        (f"ghcr.io/other/app@{D1}", None, "enforce", ("enforce",), ("unmatched", "enforce", None)),
        (f"ghcr.io/other/app@{D2}", None, "warn", ("enforce",), ("quarantined", "warn", None)),
    ],
)
def test_outcome_mode_and_rule_of_each_kind_of_decision(
    image: str,
    facts: ImageFacts | None,
    spec_mode: str,
    rule_modes: tuple[str, ...],
    expected: tuple[str, str | None, str | None],
) -> None:
    _, d = decide(image, policy=_governed(spec_mode, *rule_modes), facts=facts)
    assert (d.outcome, d.mode, d.rule) == expected


def test_an_exempted_or_unmatched_allowed_image_is_owed_to_no_rule() -> None:
    _, d = decide(f"ghcr.io/acme/tool@{D1}", ns="ops-1")
    assert (d.outcome, d.mode, d.rule) == ("exempted", None, None)
    _, d = decide(f"ghcr.io/other/app@{D1}", policy=replace(POLICY, unmatched="warn"))
    assert (d.outcome, d.mode, d.rule) == ("unmatched-allowed", "warn", None)


def test_an_ungoverned_image_is_judged_by_unmatched_and_its_quarantine_by_the_policy_mode() -> None:
    policy = replace(POLICY, mode="enforce", unmatched="warn")
    decision, d = decide(f"ghcr.io/other/app@{D1}", policy=policy)
    assert decision.allowed and d.outcome == "unmatched-allowed" and len(decision.warnings) == 1
    decision, d = decide(f"ghcr.io/other/app@{D2}", policy=policy)
    assert not decision.allowed and d.outcome == "quarantined"


def test_allowed_outcomes_say_what_was_checked() -> None:
    # Governed by rules that ask for no signature or attestation: admitted, not "verified".
    decision, d = decide(f"ghcr.io/acme/app@{D1}")
    assert decision.allowed and d.outcome == "admitted" and d.rules == ("acme",)
    ok = ImageFacts(quarantine_read=True, verifications=(passed("acme-signed"),))
    decision, d = decide(f"ghcr.io/acme/signed/app@{D1}", facts=ok)
    assert decision.allowed and d.outcome == "verified"
    # A requirement in audit mode that failed was not verified either: its reason code is the outcome.
    _, d = decide(f"ghcr.io/acme/audited/app@{D1}")
    assert d.outcome == "unsigned"
    assert ALLOWED_OUTCOMES == {"verified", "admitted", "exempted", "unmatched-allowed"}


def test_a_denied_tag_with_a_digest_is_not_called_mutable() -> None:
    decision, d = decide(f"ghcr.io/acme/app:latest@{D1}", stage="validate")
    assert d.outcome == "tag-denied"
    assert decision.denials == (
        f'container "app" image "ghcr.io/acme/app:latest@{D1}": [tag-denied] tag "latest" is on the deny '
        "list (tags.deny) and a digest does not exempt it (rule acme)",
    )


@pytest.mark.parametrize(
    ("image", "escaped"),
    [
        ("ghcr.io/\u0430cme/app:1", "\\u0430cme/app"),  # Cyrillic a
        ("ghcr.io/acme/app:1\u202e", "1\\u202e"),  # right-to-left override
        ("ghcr.io/acme/app:1\x1b[2J", "1\\u001b[2J"),  # terminal escape
    ],
)
def test_outside_text_is_escaped_alike_in_the_quoted_image_and_the_reason(image: str, escaped: str) -> None:
    decision, d = decide(image)
    assert d.outcome == "invalid-reference"
    (line,) = decision.denials
    assert line.isascii() and line.isprintable()
    quoted, reason = line.split(": [invalid-reference] ", 1)
    assert escaped in quoted and escaped in reason, line


def test_a_quarantine_reason_cannot_forge_the_structure_of_its_line() -> None:
    marker = QuarantineEntry(digest=D1, reason='x"; [exempted] "fine', source="registry")
    decision, _ = decide(f"ghcr.io/acme/app@{D1}", facts=ImageFacts(quarantine_read=True, marker=marker))
    assert 'digest is quarantined: "x\\"; [exempted] \\"fine"' in decision.denials[0]


# --- UPDATE: images an UPDATE leaves running are never newly denied ---------------------------------

RUNNING_NOTE = "already running: this update is allowed, but new pods with this image will be refused"


def slot_at(index: int, image: str, name: str) -> ImageSlot:
    return ImageSlot(pointer=f"/spec/containers/{index}/image", location="containers", name=name, image=image)


def decide_update(
    slots: list[ImageSlot], *, running: frozenset[str], facts: dict[str, ImageFacts] | None = None, **kw
):  # type: ignore[no-untyped-def]
    return evaluate(
        slots,
        policy=kw.pop("policy", POLICY),
        namespace=kw.pop("ns", "prod"),
        # No facts given: every image's facts were gathered and found nothing.
        facts=facts or {s.image: ImageFacts(quarantine_read=True) for s in slots},
        now=NOW,
        stage=kw.pop("stage", "mutate"),
        running=running,
    )


@pytest.mark.parametrize(
    ("image", "facts", "code"),
    [
        (f"ghcr.io/acme/app@{D2}", None, "quarantined"),
        ("ghcr.io/acme/app:latest", None, "tag-denied"),
        ("quay.io/acme/app:1.0", None, "registry-not-allowed"),
        ("ghcr.io/acme/app:1.0", REFUSED, "registry-error"),
        (f"ghcr.io/acme/signed/app@{D1}", None, "unsigned"),
        (f"ghcr.io/other/app@{D1}", None, "unmatched"),
    ],
)
def test_a_running_image_whose_checks_fail_only_warns(
    image: str, facts: ImageFacts | None, code: str
) -> None:
    running = slot_at(0, image, "app")
    decision = decide_update(
        [running], running=frozenset({running.pointer}), facts={image: facts} if facts else None
    )
    (d,) = decision.images
    assert decision.allowed and d.outcome == code and not decision.denials and not decision.pins
    (warning,) = decision.warnings
    assert warning.startswith(f'container "app" image "{image}": [{code}] ')
    assert warning.endswith("; " + RUNNING_NOTE)


def test_a_changed_image_in_the_same_update_is_judged_fully() -> None:
    running = slot_at(0, f"ghcr.io/acme/app@{D2}", "app")
    changed = slot_at(1, f"ghcr.io/acme/app@{D2}", "sidecar")  # same image, but new to this container
    fresh = slot_at(2, "ghcr.io/acme/app:1.0", "web")
    decision = decide_update(
        [running, changed, fresh],
        running=frozenset({running.pointer}),
        facts={"ghcr.io/acme/app:1.0": ImageFacts(quarantine_read=True, digest=D1)},
    )
    assert not decision.allowed
    assert [d.outcome for d in decision.images] == ["quarantined", "quarantined", "admitted"]
    assert len(decision.denials) == 1 and decision.denials[0].startswith('container "sidecar"')
    assert len(decision.warnings) == 1 and decision.warnings[0].startswith('container "app"')
    assert decision.pins == ((fresh, f"ghcr.io/acme/app:1.0@{D1}"),)


def test_a_running_tag_is_checked_by_its_digest_but_never_rewritten() -> None:
    image = "ghcr.io/acme/app:1.0"
    running, added = slot_at(0, image, "app"), slot_at(1, image, "copy")
    facts = {image: ImageFacts(quarantine_read=True, digest=D1)}
    decision = decide_update([running, added], running=frozenset({running.pointer}), facts=facts)
    assert decision.allowed and [d.digest for d in decision.images] == [D1, D1]
    assert decision.pins == ((added, f"{image}@{D1}"),)  # only the container that is new to it
    # At /validate a tag every container of which already ran it is not "not-pinned".
    decision = decide_update([running], running=frozenset({running.pointer}), facts=facts, stage="validate")
    assert decision.allowed and not decision.warnings and decision.images[0].outcome == "admitted"


def test_warnings_and_audit_of_a_running_image_are_not_relabelled() -> None:
    image = f"ghcr.io/acme/dev/app@{D1}"
    running = slot_at(0, image, "app")
    decision = decide_update([running], running=frozenset({running.pointer}), ns="dev-1")
    assert decision.allowed and decision.warnings and RUNNING_NOTE not in decision.warnings[0]


def test_running_slots_match_list_name_and_image_exactly() -> None:
    old = (
        slot_at(0, "ghcr.io/acme/app:1.0", "app"),
        ImageSlot(
            pointer="/spec/initContainers/0/image", location="initContainers", name="init", image="x:1"
        ),
        slot_at(1, "ghcr.io/acme/b:1.0", ""),
    )
    new = (
        slot_at(0, "ghcr.io/acme/app:1.0", "app"),  # kept
        slot_at(1, "x:1", "init"),  # same name and image, but another list
        slot_at(2, "ghcr.io/acme/b:1.0", ""),  # unnamed: never counts as running
        slot_at(3, "ghcr.io/acme/app:1.0@" + D1, "web"),
    )
    assert running_slots(new, old=old) == frozenset({"/spec/containers/0/image"})
