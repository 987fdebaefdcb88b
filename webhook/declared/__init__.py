"""The declared-facts world of hermetic policy tests: admission with the registry and crypto replaced.

``imagegate test`` (without ``--live``) admits each case through the server's admission path
(:class:`webhook.dryrun.DryRun`: plan, gather facts, decide, mutate then validate) with the adapters
:func:`declared_runtime` builds from a suite's declarations:

* the registry is a :class:`~webhook.declared.registry.DeclaredRegistry` holding what the suite
  declares, stored as the real tools store it (tags, manifests and indexes, bundle referrers,
  quarantine markers and their fallback indexes);
* the cryptographic step of :class:`~webhook.verify.verifier.ImageVerifier` is
  :class:`~webhook.declared.crypto.DeclaredCrypto`;
* the policy gets the suite's ``quarantine`` entries as one more quarantine list.

Everything else is what the webhook runs: :class:`~webhook.wiring.Gatherer`, resolution, index
listing, :class:`~webhook.quarantine_facts.QuarantineReader` and the markers it reads, discovery, the
verification cache and every policy check of the verifier (identity matching, k-of-n over distinct
signing keys, statement parsing and subject binding, the SLSA, verification summary and vulnerability
predicate checks), then the decision core.
"""

from __future__ import annotations

__all__ = ["DeclaredGatherer", "declared_runtime"]

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from webhook.deadline import Deadline
from webhook.decision import ImagePlan
from webhook.declared.crypto import DeclaredCrypto
from webhook.declared.registry import DeclaredRegistry
from webhook.facts import ImageFacts
from webhook.policy.model import Policy
from webhook.policy.suite import DeclaredWorld, with_declared_quarantine
from webhook.quarantine_facts import QuarantineReader
from webhook.registry.settings import RegistrySettings
from webhook.settings import Settings
from webhook.verify.cached import CachedVerifier
from webhook.verify.trust import TrustMaterial
from webhook.verify.verifier import ImageVerifier
from webhook.wiring import Gatherer


class DeclaredGatherer:
    """The fact gatherer over a declared world; :meth:`reset` starts the world afresh.

    A fresh world has the declared content only: no marker seen in another repository (the webhook
    remembers those, :mod:`webhook.seen_markers`), nothing cached. ``imagegate test`` resets it before
    every case, so no case depends on what an earlier one admitted.
    """

    def __init__(self, build: Callable[[], Gatherer]) -> None:
        self._build = build
        self._current = build()

    def reset(self) -> None:
        self._current = self._build()

    def __call__(self, plan: ImagePlan, *, deadline: Deadline, now: datetime) -> ImageFacts:
        return self._current(plan, deadline=deadline, now=now)


def declared_runtime(
    policy: Policy, *, world: DeclaredWorld, source: Path, settings: Settings, now: datetime
) -> tuple[Policy, DeclaredGatherer]:
    """The policy with the declared quarantine entries, and the fact gatherer over the declared world.

    ``source`` names the suite (the declared quarantine list's source); certificates and markers
    without a time of their own are dated ``now``. Raises ConfigError for unusable trust material.
    """
    policy = with_declared_quarantine(policy, world, source=source)
    trust = TrustMaterial.from_policy(policy)
    return policy, DeclaredGatherer(
        lambda: _gatherer(policy, world=world, trust=trust, settings=settings, now=now)
    )


def _gatherer(
    policy: Policy, *, world: DeclaredWorld, trust: TrustMaterial, settings: Settings, now: datetime
) -> Gatherer:
    registry = DeclaredRegistry.build(
        world, allowed=RegistrySettings.from_policy(policy).host_allowed, now=now
    )
    verifier = CachedVerifier(
        ImageVerifier(trust, crypto=DeclaredCrypto(trust, registry.evidence)),
        ttl=0.0,
        failure_ttl=0.0,
        fingerprint=policy.fingerprint,
    )
    quarantine = QuarantineReader.create(policy, registry, seen_dir=None, threads=settings.fetch_threads)
    return Gatherer(policy, registry, verifier, quarantine)
