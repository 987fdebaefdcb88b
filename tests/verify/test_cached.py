"""CachedVerifier: one discovery per image, success and failure TTLs, registry errors, single flight."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest

from tests.support.verify_world import (
    IMAGE,
    World,
    codes,
    fixture_world,  # noqa: F401 - pytest fixture
    keyless,
    signature_rule,
)
from webhook.deadline import Deadline
from webhook.images.reference import ImageRef
from webhook.policy.model import Rule
from webhook.verify.cached import CachedVerifier, rule_fingerprint
from webhook.verify.verifier import ImageVerifier

pytestmark = [pytest.mark.usefixtures("offline"), pytest.mark.sigstore]


def _cached(world: World, **options: float) -> CachedVerifier:
    return CachedVerifier(ImageVerifier(world.trust()), **options)  # type: ignore[arg-type]


def _verify(world: World, cached: CachedVerifier, *rules: Rule, image: ImageRef | None = None):  # type: ignore[no-untyped-def]
    return cached.verify_image(
        registry=world.registry,
        image=image or world.ref,
        digest=world.image.digest,
        rules=rules,
        deadline=Deadline.after(10),
        now=datetime.now(UTC),
    )


def _discoveries(world: World) -> int:
    return sum(1 for operation, _ in world.registry.calls if operation == "referrers")


def test_one_discovery_for_all_rules_and_none_on_a_hit(world: World) -> None:
    world.sign_bundle(world.identity())
    cached = _cached(world)
    rules = (
        signature_rule(keyless(), name="a"),
        signature_rule(keyless(regexp=r"^https://github\.com/acme/.+$"), name="b"),
    )
    first = _verify(world, cached, *rules)
    assert [r.rule for r in first] == ["a", "b"]
    assert all(r.passed for r in first)
    assert _discoveries(world) == 1
    second = _verify(world, cached, *rules)
    assert second == first
    assert _discoveries(world) == 1
    assert cached.stats.hits == 2


def test_rules_without_requirements_are_skipped(world: World) -> None:
    plain = Rule(name="plain", images=("**",))
    assert _verify(world, _cached(world), plain) == ()
    assert _discoveries(world) == 0


def test_failures_are_cached_only_for_failure_ttl(world: World) -> None:
    rule = signature_rule(keyless())
    sticky = _cached(world, failure_ttl=3600.0)
    fresh = _cached(world, failure_ttl=0.0)
    assert codes(_verify(world, sticky, rule)[0]) == ["unsigned"]
    assert codes(_verify(world, fresh, rule)[0]) == ["unsigned"]
    world.sign_bundle(world.identity())
    assert codes(_verify(world, sticky, rule)[0]) == ["unsigned"]
    assert _verify(world, fresh, rule)[0].passed


def test_successes_are_cached_for_ttl(world: World) -> None:
    rule = signature_rule(keyless())
    referrer = world.sign_bundle(world.identity())
    kept = _cached(world, ttl=3600.0)
    uncached = _cached(world, ttl=0.0)
    assert _verify(world, kept, rule)[0].passed
    world.registry.repo(world.ref).manifests.pop(referrer)
    assert _verify(world, kept, rule)[0].passed
    assert codes(_verify(world, uncached, rule)[0]) == ["unsigned"]


def test_registry_errors_become_findings_and_are_not_cached(world: World) -> None:
    world.sign_bundle(world.identity())
    cached = _cached(world, failure_ttl=3600.0)
    rules = (signature_rule(keyless(), name="a"), signature_rule(keyless(), name="b"))
    world.registry.fail.add("referrers")
    results = _verify(world, cached, *rules)
    assert [codes(r) for r in results] == [["registry-error"], ["registry-error"]]
    assert "could not look up signatures" in results[0].findings[0].message
    assert _discoveries(world) == 1  # the failed discovery is not retried for rule b
    world.registry.fail.clear()
    assert all(r.passed for r in _verify(world, cached, *rules))


def test_key_includes_image_name_rule_and_trust(world: World) -> None:
    world.sign_bundle(world.identity())
    cached = _cached(world)
    rule = signature_rule(keyless())
    assert _verify(world, cached, rule)[0].passed
    elsewhere = ImageRef.parse(IMAGE + "-mirror:v1")
    # Same digest in another repository: its signatures are looked up there (none).
    assert codes(_verify(world, cached, rule, image=elsewhere)[0]) == ["unsigned"]
    other_rule = signature_rule(keyless(issuer="https://accounts.google.com"))
    assert codes(_verify(world, cached, other_rule)[0]) == ["identity-mismatch"]
    assert rule_fingerprint(rule) != rule_fingerprint(other_rule)
    assert cached.key(rule=rule, image=world.ref, digest=world.image.digest)[3] == world.trust().fingerprint
    other_trust = CachedVerifier(ImageVerifier(world.trust()), fingerprint="another policy")
    assert other_trust.key(rule=rule, image=world.ref, digest=world.image.digest)[3] == "another policy"


def test_concurrent_misses_share_one_verification(world: World) -> None:
    world.sign_bundle(world.identity())
    cached = _cached(world)
    release = threading.Event()
    original = world.registry.referrers

    def slow_referrers(*args, **kwargs):  # type: ignore[no-untyped-def]
        release.wait(30)
        return original(*args, **kwargs)

    world.registry.referrers = slow_referrers  # type: ignore[method-assign]
    results: list[object] = []
    threads = [
        threading.Thread(target=lambda: results.append(_verify(world, cached, signature_rule(keyless()))))
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    while cached.stats.misses < 4:  # every thread is now either loading or waiting for the loader
        threading.Event().wait(0.005)
    release.set()
    for thread in threads:
        thread.join(30)
    assert len(results) == 4
    assert all(result == results[0] for result in results)
    assert sum(1 for operation, _ in world.registry.calls if operation == "manifest") == 3  # one discovery


class _BrokenReferrers:
    """The registry port with a defect: ``referrers`` raises something that is not a RegistryError."""

    def __init__(self, world: World) -> None:
        self._registry = world.registry
        self.manifest = world.registry.manifest
        self.manifest_if_exists = world.registry.manifest_if_exists
        self.blob = world.registry.blob

    def referrers(self, *args: object, **kwargs: object) -> tuple[object, ...]:
        raise KeyError("manifests")


def test_an_unexpected_discovery_error_is_a_finding_and_not_cached(world: World) -> None:
    world.sign_bundle(world.identity())
    cached = _cached(world)
    rule = signature_rule(keyless())
    broken = cached.verify_image(
        registry=_BrokenReferrers(world),  # type: ignore[arg-type]
        image=world.ref,
        digest=world.image.digest,
        rules=(rule,),
        deadline=Deadline.after(10),
        now=datetime.now(UTC),
    )
    assert [codes(r) for r in broken] == [["registry-error"]]
    assert "KeyError" in broken[0].findings[0].message
    assert all(r.passed for r in _verify(world, cached, rule))
