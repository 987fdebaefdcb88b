"""CachedVerifier starts each artifact's cryptographic check as soon as discovery has fetched it.

The check runs while other lookups are still under way (before the rules are judged), once per
artifact and trust root, and the rules are judged on those results: the same results, findings
included, as a verifier that does every check itself while judging.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.support.fake_sigstore import SLSA_PROVENANCE_V1, slsa_provenance_v1, statement_v1
from tests.support.verify_world import (
    EVIL,
    World,
    fixture_world,  # noqa: F401 - pytest fixture
    keyless,
    signature_rule,
    signed_and_attested_rule,
)
from webhook.deadline import Deadline
from webhook.fanout import FanOut
from webhook.policy.model import Rule, Signer
from webhook.verify.cached import CachedVerifier
from webhook.verify.discovery import BundleArtifact, LegacyLayer
from webhook.verify.verifier import ImageVerifier

pytestmark = [pytest.mark.usefixtures("offline"), pytest.mark.sigstore]

SIGNED = signature_rule(keyless(), name="signed")
BOTH = signed_and_attested_rule()


class _Recorder:
    """Counts the cryptographic checks, and whether a rule was being judged when each was made."""

    def __init__(self, verifier: ImageVerifier) -> None:
        self.calls: list[tuple[str, bool]] = []
        self.judging = False
        self._lock = threading.Lock()
        crypto, judge = verifier.crypto, verifier.verify_rule

        def verify(signer: Signer, candidate: BundleArtifact | LegacyLayer, **kwargs: Any) -> Any:
            with self._lock:
                self.calls.append((candidate.layer, self.judging))
            return crypto.verify(signer, candidate, **kwargs)

        def verify_rule(**kwargs: Any) -> Any:
            self.judging = True
            try:
                return judge(**kwargs)
            finally:
                self.judging = False

        verifier.crypto = type("Recording", (), {"verify": staticmethod(verify)})()
        verifier.verify_rule = verify_rule  # type: ignore[method-assign]


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=4) as executor:
        yield executor


def _verify(cached: CachedVerifier, world: World, rules: tuple[Rule, ...]) -> list[tuple[object, ...]]:
    results = cached.verify_image(
        registry=world.registry,
        image=world.ref,
        digest=world.image.digest,
        rules=rules,
        deadline=Deadline.after(10),
        now=datetime.now(UTC),
    )
    return [(r.rule, r.passed, r.findings) for r in results]


def test_each_bundle_is_checked_once_and_before_the_rules_are_judged(
    world: World, pool: ThreadPoolExecutor
) -> None:
    world.sign_bundle(world.identity())
    world.attest_bundle(
        world.identity(), statement_v1(world.image.digest, SLSA_PROVENANCE_V1, slsa_provenance_v1())
    )
    inner = ImageVerifier(world.trust())
    recorder = _Recorder(inner)
    cached = CachedVerifier(inner, ttl=0.0, failure_ttl=0.0, fanout=FanOut(pool))
    assert _verify(cached, world, (BOTH,)) == [("signed-and-attested", True, ())]
    # Two bundles, one trust root: two checks, both made while discovery ran, none while judging.
    assert len(recorder.calls) == 2
    assert {layer for layer, _ in recorder.calls} == {a.layer for a in world.discover().bundles}
    assert [judging for _, judging in recorder.calls] == [False, False]


def test_legacy_layers_are_checked_ahead_by_the_signers_that_judge_them(world: World) -> None:
    world.sign_legacy(world.identity())
    world.attest_legacy(
        world.identity(), statement_v1(world.image.digest, SLSA_PROVENANCE_V1, slsa_provenance_v1())
    )
    inner = ImageVerifier(world.trust())
    recorder = _Recorder(inner)
    cached = CachedVerifier(inner, ttl=0.0, failure_ttl=0.0)
    assert _verify(cached, world, (SIGNED,)) == [("signed", True, ())]
    # A signature rule reads the .sig tag only (its layer is checked ahead, once).
    assert [judging for _, judging in recorder.calls] == [False]


def test_an_unexpected_error_ahead_is_left_to_judging_which_checks_again(world: World) -> None:
    world.sign_bundle(world.identity())
    inner = ImageVerifier(world.trust())
    crypto = inner.crypto
    failures = {"left": 1}

    class Flaky:
        """The first check fails unexpectedly; every later one is the real check."""

        def verify(self, signer: Signer, candidate: BundleArtifact | LegacyLayer, **kwargs: Any) -> Any:
            if failures["left"]:
                failures["left"] -= 1
                raise RuntimeError("flaky")
            return crypto.verify(signer, candidate, **kwargs)

    inner.crypto = Flaky()
    cached = CachedVerifier(inner, ttl=0.0, failure_ttl=0.0)
    # Had the failure ahead been kept, the only signature would count as invalid.
    assert _verify(cached, world, (SIGNED,)) == [("signed", True, ())]
    assert failures["left"] == 0


@pytest.mark.parametrize(
    "store",
    ["stranger's key", "another identity", "another digest"],
)
def test_artifacts_that_fail_give_the_findings_of_judging_alone(world: World, store: str) -> None:
    if store == "stranger's key":
        world.sign_bundle_with_key(world.key("stranger"))  # its check fails ahead (VerificationFailed)
    elif store == "another identity":
        world.sign_bundle(world.identity(subject=EVIL))
    else:
        other = world.registry.push_image(world.ref, "other", arch="arm64")
        world.sign_bundle(world.identity(), signed=other.digest)
    judged_alone = ImageVerifier(world.trust()).verify_rule(
        rule=SIGNED,
        image=world.ref,
        digest=world.image.digest,
        artifacts=world.discover(),
        now=datetime.now(UTC),
    )
    assert not judged_alone.passed
    cached = CachedVerifier(ImageVerifier(world.trust()), ttl=0.0, failure_ttl=0.0)
    assert _verify(cached, world, (SIGNED,)) == [(judged_alone.rule, False, judged_alone.findings)]
