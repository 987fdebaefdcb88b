"""CachedVerifier.cached_only: verify_image from the cache alone, misses remembered, hits counted once."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.support.verify_world import (
    World,
    codes,
    fixture_world,  # noqa: F401 - pytest fixture
    keyless,
    signature_rule,
)
from webhook.deadline import Deadline
from webhook.policy.model import Rule
from webhook.verify.cached import CachedVerifier
from webhook.verify.verifier import ImageVerifier

pytestmark = [pytest.mark.usefixtures("offline"), pytest.mark.sigstore]


def _cached(world: World, lookups: list[tuple[str, bool]], **options: float) -> CachedVerifier:
    return CachedVerifier(
        ImageVerifier(world.trust()),
        on_lookup=lambda name, hit: lookups.append((name, hit)),
        **options,  # type: ignore[arg-type]
    )


def _verify(world: World, cached: CachedVerifier, *rules: Rule):  # type: ignore[no-untyped-def]
    """verify_image of the world's image: the full lookup, or the cache-only answer of a view."""
    return cached.verify_image(
        registry=world.registry,
        image=world.ref,
        digest=world.image.digest,
        rules=rules,
        deadline=Deadline.after(10),
        now=datetime.now(UTC),
    )


def test_cached_results_are_answered_without_discovery_and_counted_once_used(world: World) -> None:
    world.sign_bundle(world.identity())
    lookups: list[tuple[str, bool]] = []
    cached = _cached(world, lookups)
    rules = (signature_rule(keyless(), name="a"), Rule(name="plain", images=("**",)))
    early = cached.cached_only()
    assert [codes(r) for r in _verify(world, early, *rules)] == [["registry-error"]]  # a placeholder
    assert early.missed and lookups == [] and world.registry.calls == []
    verified = _verify(world, cached, *rules)
    calls, counted = list(world.registry.calls), list(lookups)
    view = cached.cached_only()
    assert _verify(world, view, *rules) == verified
    assert not view.missed and not cached.missed
    assert world.registry.calls == calls
    assert lookups == counted and cached.stats.hits == 0
    view.count_hits()
    view.count_hits()
    assert lookups[len(counted) :] == [("verification", True)]
    assert cached.stats.hits == 1


def test_one_rule_missing_is_a_miss(world: World) -> None:
    world.sign_bundle(world.identity())
    lookups: list[tuple[str, bool]] = []
    cached = _cached(world, lookups)
    first, second = signature_rule(keyless(), name="a"), signature_rule(keyless(), name="b")
    _verify(world, cached, first)
    calls = list(world.registry.calls)
    view = cached.cached_only()
    answered = _verify(world, view, first, second)
    assert view.missed and answered[0].passed and codes(answered[1]) == ["registry-error"]
    assert world.registry.calls == calls


def test_a_cached_failure_is_answered(world: World) -> None:
    cached = _cached(world, [], failure_ttl=3600.0)
    rule = signature_rule(keyless())
    [failed] = _verify(world, cached, rule)
    assert codes(failed) == ["unsigned"]
    view = cached.cached_only()
    assert _verify(world, view, rule) == (failed,) and not view.missed
