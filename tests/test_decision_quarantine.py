"""Quarantine in the pure decision core: every manifest an index lists, lists and markers, wherever seen."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from webhook.admission.workloads import ImageSlot
from webhook.decision import ImageDecision, evaluate, plan_image
from webhook.facts import Finding, ImageFacts, ListedManifest
from webhook.policy.model import Policy, QuarantineEntry, QuarantineSettings, Registries, Rule, Tags

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
INDEX, AMD64, ARM64, INNER, OTHER = ("sha256:" + c * 64 for c in "abcde")
LISTED = (ListedManifest(AMD64, "linux/amd64", INDEX), ListedManifest(ARM64, "linux/arm64", INDEX))
BARE = Policy(
    name="q",
    source="p.yaml",
    registries=Registries(allow=("ghcr.io",)),
    tags=Tags(resolve=True, deny=("latest",)),
    rules=(Rule(name="acme", images=("ghcr.io/acme/**",)),),
)
MARKERS = replace(BARE, quarantine=QuarantineSettings(registry_markers=True))


def listing(digest: str, reason: str = "CVE-1", **extra: str | tuple[str, ...]) -> Policy:
    entry = QuarantineEntry(digest=digest, reason=reason, source="/etc/imagegate/q.yaml", **extra)  # type: ignore[arg-type]
    return replace(BARE, quarantined={digest: entry})


def decide(image: str, *, policy: Policy, facts: ImageFacts) -> ImageDecision:
    slot = ImageSlot(pointer="/spec/containers/0/image", location="containers", name="app", image=image)
    decision = evaluate(
        [slot], policy=policy, namespace="prod", facts={image: facts}, now=NOW, stage="mutate"
    )
    return decision.images[0]


def reasons(decision: ImageDecision) -> list[str]:
    return [f"[{finding.code}] {finding.message}" for finding, _ in decision.failures]


@pytest.mark.parametrize(
    ("policy", "expected"),
    [(BARE, False), (MARKERS, True), (listing(OTHER), True)],
)
def test_what_an_index_lists_is_read_when_a_quarantine_could_name_it(policy: Policy, expected: bool) -> None:
    for image in ("ghcr.io/acme/app:1", f"ghcr.io/acme/app@{INDEX}"):
        plan = plan_image(image, policy=policy, namespace="prod", now=NOW, stage="mutate")
        assert plan.check_listing is expected
        assert plan.needs_facts is (expected or plan.resolve)
    ungoverned = plan_image(
        f"ghcr.io/other/app@{INDEX}", policy=policy, namespace="prod", now=NOW, stage="mutate"
    )
    assert not ungoverned.check_listing


def test_a_quarantined_platform_manifest_denies_the_tag_of_its_index_and_says_which() -> None:
    decision = decide(
        "ghcr.io/acme/app:1",
        policy=listing(AMD64),
        facts=ImageFacts(quarantine_read=True, digest=INDEX, listed=LISTED),
    )
    assert decision.outcome == "quarantined"
    assert decision.pin is None
    assert reasons(decision) == [
        f"[quarantined] platform linux/amd64 manifest {AMD64} listed by this index is quarantined: "
        '"CVE-1" (q.yaml)'
    ]


def test_a_manifest_listed_by_a_nested_index_or_without_platform_is_named_so() -> None:
    listed = (ListedManifest(INNER, "", INDEX), ListedManifest(AMD64, "", INNER))
    decision = decide(
        f"ghcr.io/acme/app@{INDEX}",
        policy=listing(AMD64),
        facts=ImageFacts(quarantine_read=True, listed=listed),
    )
    assert reasons(decision) == [
        f"[quarantined] manifest {AMD64} listed by index {INNER} within this index is quarantined: "
        '"CVE-1" (q.yaml)'
    ]


def test_a_marker_on_a_listed_manifest_denies_only_with_markers_on() -> None:
    marker = QuarantineEntry(digest=ARM64, reason="bad arm build", source="registry")
    listed = (LISTED[0], replace(LISTED[1], marker=marker))
    facts = ImageFacts(quarantine_read=True, digest=INDEX, listed=listed)
    assert reasons(decide("ghcr.io/acme/app:1", policy=MARKERS, facts=facts)) == [
        f"[quarantined] platform linux/arm64 manifest {ARM64} listed by this index is quarantined: "
        '"bad arm build" '
        "(registry marker)"
    ]
    assert decide("ghcr.io/acme/app:1", policy=listing(OTHER), facts=facts).outcome == "admitted"
    # A marker about another digest says nothing about this manifest.
    stray = (replace(LISTED[1], marker=replace(marker, digest=OTHER)),)
    assert decide(
        "ghcr.io/acme/app:1",
        policy=MARKERS,
        facts=ImageFacts(quarantine_read=True, digest=INDEX, listed=stray),
    ).outcome == ("admitted")


def test_a_manifest_recorded_for_an_index_says_so_when_pinned_on_its_own() -> None:
    policy = listing(AMD64, indexes=(INDEX,), platform="linux/amd64")
    expected = f'[quarantined] digest is quarantined: "CVE-1" (q.yaml; platform linux/amd64 of index {INDEX})'
    for image in (f"ghcr.io/acme/app@{AMD64}", f"ghcr.io/acme/app:1@{AMD64}"):
        assert reasons(decide(image, policy=policy, facts=ImageFacts(quarantine_read=True))) == [expected]
    # Ungoverned images are not fetched, but a pinned digest is still looked up in the lists.
    assert reasons(
        decide(f"ghcr.io/other/app@{AMD64}", policy=policy, facts=ImageFacts(quarantine_read=True))
    ) == [expected]


def test_a_marker_seen_in_another_repository_names_it() -> None:
    marker = QuarantineEntry(
        digest=AMD64, reason="bad build", source="registry marker on ghcr.io/acme/app", indexes=(INDEX,)
    )
    decision = decide(
        f"ghcr.io/acme/copy@{AMD64}", policy=MARKERS, facts=ImageFacts(quarantine_read=True, marker=marker)
    )
    assert reasons(decision) == [
        '[quarantined] digest is quarantined: "bad build" '
        f"(registry marker on ghcr.io/acme/app; manifest of index {INDEX})"
    ]


def test_what_could_not_be_read_fails_closed_unless_a_quarantine_is_certain() -> None:
    error = Finding("registry-error", "the manifests of this image could not be read: HTTP 503")
    facts = ImageFacts(quarantine_read=True, digest=INDEX, listed=LISTED[:1], listing_error=error)
    denied = decide("ghcr.io/acme/app:1", policy=listing(OTHER), facts=facts)
    assert reasons(denied) == [
        "[registry-error] the manifests of this image could not be read: HTTP 503 (rule acme)"
    ]
    assert denied.pin is None
    # A quarantined manifest that was read is the clearer answer.
    assert decide("ghcr.io/acme/app:1", policy=listing(AMD64), facts=facts).outcome == "quarantined"
    # Without any quarantine that could name a listed manifest, nothing was read and nothing fails.
    assert decide("ghcr.io/acme/app:1", policy=BARE, facts=facts).outcome == "admitted"
