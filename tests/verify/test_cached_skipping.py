"""CachedVerifier looks at one artifact format first: skipping the other never changes a decision.

Each case stores signatures and attestations in one format, the other or both, valid or not, and
checks that ``verify_image`` (which skips what the rules cannot need) gives every rule exactly the
result, findings included, that the verifier gives on a full discovery (every part looked up): with the
Sigstore bundles looked at first, and with the legacy tags first (the order a repository whose images
carry legacy artifacts teaches). The lookups made show that the skipping happened.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from tests.support.fake_sigstore import SLSA_PROVENANCE_V1, slsa_provenance_v1, statement_v1
from tests.support.memory_registry import InMemoryRegistry
from tests.support.verify_world import (
    EVIL,
    World,
    attestation_rule,
    fixture_world,  # noqa: F401 - pytest fixture
    key_signer,
    keyless,
    requirement,
    signature_rule,
    signed_and_attested_rule,
)
from webhook.deadline import Deadline
from webhook.errors import RegistryError
from webhook.facts import RuleVerification
from webhook.images.reference import ImageRef
from webhook.policy.model import Rule
from webhook.reasons import Reason
from webhook.verify.cached import CachedVerifier
from webhook.verify.discovery import discover
from webhook.verify.verifier import ImageVerifier

pytestmark = [pytest.mark.usefixtures("offline"), pytest.mark.sigstore]

SIGNED = signature_rule(keyless(), name="signed")
TWO_KEYS = signature_rule(key_signer("a"), key_signer("b"), minimum=2, name="two-keys")
PROVENANCE = attestation_rule(requirement(SLSA_PROVENANCE_V1, [keyless()]), name="provenance")
BOTH = signed_and_attested_rule()
RULES = (SIGNED, TWO_KEYS, PROVENANCE, BOTH)


def _provenance(world: World, digest: str | None = None) -> dict[str, object]:
    return statement_v1(digest or world.image.digest, SLSA_PROVENANCE_V1, slsa_provenance_v1())


# Each case stores artifacts for world.image; the comment says which rules pass.
CASES: dict[str, Callable[[World], None]] = {
    # nothing passes: no artifact at all
    "nothing": lambda w: None,
    # signed, provenance and both pass on the bundles alone
    "bundles only": lambda w: (
        w.sign_bundle(w.identity()),
        w.attest_bundle(w.identity(), _provenance(w)),
    ),
    # the same on the legacy tags alone
    "legacy only": lambda w: (
        w.sign_legacy(w.identity()),
        w.attest_legacy(w.identity(), _provenance(w)),
    ),
    # signed-and-attested needs the signature from the bundles and the attestation from the .att tag
    "signature in a bundle, attestation legacy": lambda w: (
        w.sign_bundle(w.identity()),
        w.attest_legacy(w.identity(), _provenance(w)),
    ),
    "signature legacy, attestation in a bundle": lambda w: (
        w.sign_legacy(w.identity()),
        w.attest_bundle(w.identity(), _provenance(w)),
    ),
    # two-keys: key a signed a bundle, key b a legacy signature: only both formats together pass
    "k-of-n across formats": lambda w: (
        w.sign_bundle_with_key(w.key("a")),
        w.sign_legacy_with_key(w.key("b")),
    ),
    # two-keys passes on the bundles alone; the legacy signature by key a adds nothing
    "k-of-n in bundles, a duplicate legacy": lambda w: (
        w.sign_bundle_with_key(w.key("a")),
        w.sign_bundle_with_key(w.key("b")),
        w.sign_legacy_with_key(w.key("a")),
    ),
    # the bundle is signed by someone else: the legacy signature rescues signed
    "invalid bundle, valid legacy": lambda w: (
        w.sign_bundle(w.identity(subject=EVIL)),
        w.sign_legacy(w.identity()),
    ),
    # the bundle signs another digest (a replay): the legacy signature rescues signed
    "replayed bundle, valid legacy": lambda w: (
        w.sign_bundle(w.identity(), signed="sha256:" + "1" * 64),
        w.sign_legacy(w.identity()),
    ),
    # a valid bundle next to a legacy signature by someone else: signed passes on the bundle
    "valid bundle, invalid legacy": lambda w: (
        w.sign_bundle(w.identity()),
        w.sign_legacy(w.identity(subject=EVIL)),
    ),
    # nothing valid in either format: the reason codes must be those of the full discovery
    "invalid in both formats": lambda w: (
        w.sign_bundle(w.identity(subject=EVIL)),
        w.sign_legacy(w.identity(), signed="sha256:" + "2" * 64),
        w.attest_bundle(w.identity(subject=EVIL), _provenance(w)),
        w.attest_legacy(w.identity(), _provenance(w, "sha256:" + "3" * 64)),
    ),
    # an attestation of another type in the bundles, the wanted one legacy
    "wrong predicate in a bundle, provenance legacy": lambda w: (
        w.attest_bundle(w.identity(), statement_v1(w.image.digest, "https://example.com/other/v1", {})),
        w.attest_legacy(w.identity(), _provenance(w)),
    ),
}


def _summary(results: tuple[RuleVerification, ...] | list[RuleVerification]) -> list[tuple[object, ...]]:
    return [(r.rule, r.passed, r.findings) for r in results]


def _full(world: World, rules: tuple[Rule, ...], digest: str) -> list[RuleVerification]:
    """What every rule gives on a full discovery (every part looked up), without any skipping."""
    artifacts = discover(world.registry, world.ref, digest, deadline=Deadline.after(10))
    verifier = ImageVerifier(world.trust())
    return [
        verifier.verify_rule(
            rule=rule, image=world.ref, digest=digest, artifacts=artifacts, now=datetime.now(UTC)
        )
        for rule in rules
    ]


def _verify(
    cached: CachedVerifier, world: World, rules: tuple[Rule, ...], digest: str
) -> tuple[RuleVerification, ...]:
    return cached.verify_image(
        registry=world.registry,
        image=world.ref,
        digest=digest,
        rules=rules,
        deadline=Deadline.after(10),
        now=datetime.now(UTC),
    )


def _legacy_first(world: World, cached: CachedVerifier) -> Callable[[], None]:
    """Teach ``cached`` to look at the legacy tags first in the repository; returns how to teach it again.

    Another image of the repository whose only artifact is legacy does it: its verification finds
    nothing in the bundles and a signature behind the .sig tag. A verification that finds only bundles
    teaches the other order back, so each verification of a case is preceded by a lesson.
    """
    other = world.registry.push_image(world.ref, "other", arch="arm64")
    world.sign_legacy(world.identity(), signed=other.digest, under=other.digest)

    def teach() -> None:
        assert all(r.passed for r in _verify(cached, world, (SIGNED,), other.digest))

    teach()
    world.registry.calls.clear()
    _verify(cached, world, (SIGNED,), "sha256:" + "4" * 64)  # nothing stored there: only the order shows
    first = world.registry.calls[0]
    assert first[0] == "manifest" and first[1].endswith(".sig"), world.registry.calls
    return teach


def _legacy_lookups(registry: InMemoryRegistry) -> list[str]:
    return [detail for op, detail in registry.calls if op == "manifest" and detail.endswith((".sig", ".att"))]


@pytest.mark.parametrize("order", ["bundles first", "legacy first"])
@pytest.mark.parametrize("case", list(CASES))
def test_skipping_gives_every_rule_the_result_of_a_full_discovery(
    world: World, case: str, order: str
) -> None:
    world.key("a"), world.key("b")  # the same trust in every case
    cached = CachedVerifier(ImageVerifier(world.trust()), ttl=0.0, failure_ttl=0.0)
    teach = _legacy_first(world, cached) if order == "legacy first" else lambda: None
    CASES[case](world)
    # Each rule alone (its own lookups), then all of them sharing one discovery.
    for rules in [(rule,) for rule in RULES] + [RULES]:
        teach()
        skipping = _verify(cached, world, rules, world.image.digest)
        assert _summary(skipping) == _summary(_full(world, rules, world.image.digest)), (case, order, rules)


def test_a_bundle_that_settles_the_rule_spares_the_legacy_lookups(world: World) -> None:
    world.sign_bundle(world.identity())
    world.attest_bundle(world.identity(), _provenance(world))
    cached = CachedVerifier(ImageVerifier(world.trust()))
    results = _verify(cached, world, (BOTH,), world.image.digest)
    assert [r.passed for r in results] == [True]
    assert _legacy_lookups(world.registry) == []
    discovery = results[0].discovery
    assert discovery is not None
    assert (
        "legacy .sig tag and legacy .att tag not looked up: they are read only when the "
        "artifacts found do not satisfy the rule" in discovery.notes
    )


def test_a_rule_the_bundles_do_not_settle_reads_the_legacy_tags_it_needs_and_no_other(world: World) -> None:
    world.sign_legacy(world.identity())
    cached = CachedVerifier(ImageVerifier(world.trust()))
    assert [r.passed for r in _verify(cached, world, (SIGNED,), world.image.digest)] == [True]
    assert [tag.rsplit(".", 1)[1] for tag in _legacy_lookups(world.registry)] == ["sig"]

    world.registry.calls.clear()
    fresh = CachedVerifier(ImageVerifier(world.trust()))
    assert [r.passed for r in _verify(fresh, world, (PROVENANCE,), world.image.digest)] == [False]
    assert [tag.rsplit(".", 1)[1] for tag in _legacy_lookups(world.registry)] == ["att"]


def test_every_part_is_looked_up_at_most_once_per_admission(world: World) -> None:
    world.sign_legacy(world.identity())
    cached = CachedVerifier(ImageVerifier(world.trust()))
    _verify(cached, world, RULES, world.image.digest)
    lookups = [call for call in world.registry.calls if call[0] in ("referrers", "manifest")]
    assert len(lookups) == len(set(lookups))
    assert sum(1 for op, _ in lookups if op == "referrers") == 1


class _LegacyTagsBroken(InMemoryRegistry):
    """Answers everything but the legacy tags, which fail as a registry failing would."""

    def manifest_if_exists(self, repo: ImageRef, tag: str, *, deadline: Deadline):  # type: ignore[no-untyped-def]
        if tag.endswith((".sig", ".att")):
            self.calls.append(("manifest", tag))
            raise RegistryError("HTTP 503 Service Unavailable", code=Reason.REGISTRY_ERROR)
        return super().manifest_if_exists(repo, tag, deadline=deadline)


def test_a_failing_lookup_counts_only_when_the_rule_needs_its_answer(world: World) -> None:
    broken = _LegacyTagsBroken()
    broken._repos = world.registry._repos  # the same content
    world.registry = broken
    cached = CachedVerifier(ImageVerifier(world.trust()))
    # Nothing in the bundles settles the rule: the legacy tags are needed, and their failure denies.
    assert [r.findings[0].code for r in _verify(cached, world, (SIGNED,), world.image.digest)] == [
        Reason.REGISTRY_ERROR
    ]
    # A bundle settles it: the failing lookup is never made (a full discovery would have failed).
    world.sign_bundle(world.identity())
    broken.calls.clear()
    assert [r.passed for r in _verify(cached, world, (SIGNED,), world.image.digest)] == [True]
    assert _legacy_lookups(broken) == []
