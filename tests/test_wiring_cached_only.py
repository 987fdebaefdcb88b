"""Gatherer.cached: a repeat admission's facts from the caches alone, equal to what a full lookup finds."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.support.memory_registry import InMemoryRegistry
from tests.support.verify_world import (
    IMAGE,
    World,
    fixture_world,  # noqa: F401 - pytest fixture
    keyless,
    signature_rule,
)
from webhook.deadline import Deadline
from webhook.decision import ImagePlan, plan_image, quarantine_finding
from webhook.images.reference import ImageRef
from webhook.policy.model import Policy, QuarantineSettings, Registries, Rule
from webhook.quarantine_facts import QuarantineReader
from webhook.reasons import Reason
from webhook.registry.cached import CachingRegistry
from webhook.registry.markers import add_marker
from webhook.seen_markers import SeenMarkers, Sighting
from webhook.verify.cached import CachedVerifier
from webhook.verify.trust import TrustMaterial
from webhook.verify.verifier import ImageVerifier
from webhook.wiring import Gatherer

pytestmark = [pytest.mark.usefixtures("offline"), pytest.mark.sigstore]

HOST = IMAGE.split("/", 1)[0]


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=4) as executor:
        yield executor


def _policy(world: World) -> Policy:
    return replace(
        world.policy(),
        registries=Registries(allow=(HOST,)),
        quarantine=QuarantineSettings(registry_markers=True),
        rules=(
            replace(signature_rule(keyless()), images=(f"{HOST}/acme/**",)),
            Rule(name="plain", images=(f"{HOST}/plain/**",)),
        ),
    )


def _gatherer(world: World, policy: Policy, pool: ThreadPoolExecutor, seen: Path) -> Gatherer:
    caching = CachingRegistry(world.registry)
    verifier = CachedVerifier(
        ImageVerifier(TrustMaterial.from_policy(policy)), fingerprint=policy.fingerprint
    )
    return Gatherer(policy, caching, verifier, QuarantineReader(policy, caching, SeenMarkers(seen), pool))


def _plan(image: str, policy: Policy) -> ImagePlan:
    return plan_image(image, policy=policy, namespace="prod", now=datetime.now(UTC), stage="mutate")


def _both(gatherer: Gatherer, plan: ImagePlan, registry: InMemoryRegistry):  # type: ignore[no-untyped-def]
    """None before a full lookup; after it, the cache-only answer, which must reach no registry."""
    assert gatherer.cached(plan, deadline=Deadline.after(5), now=datetime.now(UTC)) is None
    full = gatherer(plan, deadline=Deadline.after(5), now=datetime.now(UTC))
    calls = list(registry.calls)
    cached = gatherer.cached(plan, deadline=Deadline.after(5), now=datetime.now(UTC))
    assert registry.calls == calls
    assert cached == full
    return full


def test_a_signed_pinned_image(world: World, pool: ThreadPoolExecutor, tmp_path: Path) -> None:
    world.sign_bundle(world.identity())
    policy = _policy(world)
    plan = _plan(f"{IMAGE}@{world.image.digest}", policy)
    assert plan.verify_rules and plan.check_markers and plan.check_listing
    facts = _both(_gatherer(world, policy, pool, tmp_path), plan, world.registry)
    assert facts.digest == world.image.digest
    assert [v.passed for v in facts.verifications] == [True]


def test_a_tag_resolved_to_an_unsigned_digest(world: World, pool: ThreadPoolExecutor, tmp_path: Path) -> None:
    policy = _policy(world)
    plan = _plan(f"{IMAGE}:v1", policy)
    assert plan.resolve
    facts = _both(_gatherer(world, policy, pool, tmp_path), plan, world.registry)
    assert facts.digest == world.image.digest
    assert [f.code for v in facts.verifications for f in v.findings] == [Reason.UNSIGNED]


def test_an_index_with_a_quarantined_platform_manifest(
    world: World, pool: ThreadPoolExecutor, tmp_path: Path
) -> None:
    repo = ImageRef.parse(f"{HOST}/plain/multi")
    amd64 = world.registry.push_image(repo, None, arch="amd64")
    arm64 = world.registry.push_image(repo, None, arch="arm64")
    index = world.registry.push_index(repo, "v1", [(amd64, "amd64"), (arm64, "arm64")])
    add_marker(world.registry, repo, arm64.digest, reason="bad build", deadline=Deadline.after(5))
    policy = _policy(world)
    plan = _plan(f"{repo.name}@{index.digest}", policy)
    facts = _both(_gatherer(world, policy, pool, tmp_path), plan, world.registry)
    assert [m.digest for m in facts.listed] == [amd64.digest, arm64.digest]
    finding = quarantine_finding(plan, policy=policy, digest=index.digest, facts=facts)
    assert finding is not None and finding.code == Reason.QUARANTINED


def test_a_cached_registry_failure_is_answered_alike(
    world: World, pool: ThreadPoolExecutor, tmp_path: Path
) -> None:
    world.registry.fail.add("referrers")
    policy = _policy(world)
    plan = _plan(f"{IMAGE}@{world.image.digest}", policy)
    facts = _both(_gatherer(world, policy, pool, tmp_path), plan, world.registry)
    assert facts.marker_error is not None and "injected failure" in facts.marker_error.message


def test_without_a_caching_registry_nothing_is_answered(
    world: World, pool: ThreadPoolExecutor, tmp_path: Path
) -> None:
    policy = _policy(world)
    caching = _gatherer(world, policy, pool, tmp_path)
    bare = replace(caching, registry=world.registry)
    plan = _plan(f"{HOST}/plain/app@{world.image.digest}", policy)
    bare(plan, deadline=Deadline.after(5), now=datetime.now(UTC))
    assert bare.cached(plan, deadline=Deadline.after(5), now=datetime.now(UTC)) is None


def test_a_marker_seen_elsewhere_after_the_caches_filled_is_not_answered_away(
    world: World, pool: ThreadPoolExecutor, tmp_path: Path
) -> None:
    here, mirror = ImageRef.parse(f"{HOST}/plain/app"), ImageRef.parse(f"{HOST}/plain/mirror")
    image = world.registry.push_image(here, "v1", arch="s390x")
    assert world.registry.push_image(mirror, "v1", arch="s390x").digest == image.digest
    policy = _policy(world)
    gatherer = _gatherer(world, policy, pool, tmp_path)
    plan = _plan(f"{here.name}@{image.digest}", policy)
    assert _both(gatherer, plan, world.registry).marker is None
    # Another worker finds a marker on the mirror and records the sighting in the shared directory.
    add_marker(world.registry, mirror, image.digest, reason="bad build", deadline=Deadline.after(5))
    SeenMarkers(tmp_path).remember(Sighting(image.digest, mirror.registry, mirror.repository, image.digest))
    # The sightings are read afresh: the mirror's marker is not cached, so the caches cannot answer.
    assert gatherer.cached(plan, deadline=Deadline.after(5), now=datetime.now(UTC)) is None
    full = gatherer(plan, deadline=Deadline.after(5), now=datetime.now(UTC))
    assert full.marker is not None and "plain/mirror" in full.marker.source
    assert gatherer.cached(plan, deadline=Deadline.after(5), now=datetime.now(UTC)) == full
