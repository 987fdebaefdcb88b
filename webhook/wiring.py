"""Wiring: the adapters built for one loaded policy, and the fact gatherer the service calls.

Built once per policy (re)load, never per request: registry client with its caches, trust material
with one sigstore Verifier per trusted root, the verification cache, and the pool on which one
image's independent lookups run concurrently (:mod:`webhook.fanout`).
"""

from __future__ import annotations

__all__ = [
    "Gatherer",
    "RuntimeAdapter",
    "Services",
    "build_services",
    "check_services",
    "lint_policy_file",
    "serving_problems",
    "trust_root_problems",
]

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from webhook.deadline import Deadline
from webhook.decision import ImagePlan, quarantine_finding
from webhook.errors import ConfigError, PolicyProblem, RegistryError
from webhook.facts import Finding, ImageFacts, RuleVerification
from webhook.fanout import FanOut
from webhook.policy.loader import lint_file
from webhook.policy.model import Policy
from webhook.quarantine_facts import QuarantineReader
from webhook.registry.cached import CachingRegistry
from webhook.registry.client import RegistryClient
from webhook.registry.port import Registry
from webhook.registry.settings import RegistrySettings
from webhook.registry.transport import DeadlineExceeded
from webhook.seen_markers import SeenMarkers
from webhook.settings import Settings
from webhook.verify.cached import CachedVerifier
from webhook.verify.trust import TrustMaterial, load_root
from webhook.verify.verifier import ImageVerifier

if TYPE_CHECKING:
    from webhook.metrics import Metrics
    from webhook.reload import PolicyStore


# Seconds the gatherer waits past an image's deadline for a verification that runs on the pool.
_GRACE = 0.1


@dataclass(frozen=True, slots=True)
class Gatherer:
    """Finds the facts an :class:`~webhook.decision.ImagePlan` asks for (the service's FactGatherer).

    For a digest whose verification is not cached, the signatures and attestations are looked up
    while the quarantine facts are read (their round trips do not depend on each other, and the
    referrers listing both need is one cached lookup): a first-seen image costs the longer of the two
    chains, not their sum. ``fanout`` runs that; without one, they run one after the other.
    """

    policy: Policy
    registry: Registry
    verifier: CachedVerifier
    quarantine: QuarantineReader
    fanout: FanOut = field(default_factory=lambda: FanOut(None))

    def __call__(self, plan: ImagePlan, *, deadline: Deadline, now: datetime) -> ImageFacts:
        ref = plan.ref
        if ref is None:
            return ImageFacts()
        digest = plan.digest
        if plan.resolve:
            try:
                digest = self.registry.resolve(ref, ref.effective_tag or "latest", deadline=deadline)
            except RegistryError as error:
                return ImageFacts(gathering_error=Finding(error.code, error.user_message))
        if digest is None:
            return ImageFacts()

        def verify() -> tuple[RuleVerification, ...]:
            return self.verifier.verify_image(
                registry=self.registry,
                image=ref,
                digest=digest,
                rules=plan.verify_rules,
                deadline=deadline,
                now=now,
            )

        ahead = (
            self.fanout.start(verify)
            if plan.verify_rules
            and digest not in self.policy.quarantined
            and not self.verifier.holds(rules=plan.verify_rules, image=ref, digest=digest)
            else None
        )
        quarantine = self.quarantine.read(plan, ref, digest, deadline=deadline)
        facts = quarantine.image_facts(digest)
        # A digest the decision refuses (or fails closed on) for its quarantine needs no signatures.
        if (
            not plan.verify_rules
            or quarantine_finding(plan, policy=self.policy, digest=digest, facts=facts) is not None
        ):
            if ahead is not None:
                ahead.cancel()  # a lookup already under way ends on its own, within the deadline
            return facts
        if ahead is None:
            return quarantine.image_facts(digest, verify())
        try:
            # Its lookups end at the deadline, failed: a moment more lets their finding, which names
            # the lookup, be the answer (the service waits that long: webhook.service._FETCH_MARGIN).
            verifications = ahead.result(deadline=Deadline(deadline.expires_at + _GRACE))
        except TimeoutError:
            raise DeadlineExceeded(
                "no answer from the registry within the admission deadline (signatures and attestations)"
            ) from None
        return quarantine.image_facts(digest, verifications)

    def cached(self, plan: ImagePlan, *, deadline: Deadline, now: datetime) -> ImageFacts | None:
        """The facts of ``plan`` when the caches hold all of them, found in this thread; else None.

        The same steps as a call, against cache-only views of the registry and the verification cache
        (:meth:`CachingRegistry.cached_only`, :meth:`CachedVerifier.cached_only`): nothing goes to a
        registry and nothing waits for another admission's lookup, so the service need not hand the
        image to a pool thread. None when one answer was not cached; then nothing was counted as a hit.
        """
        if not isinstance(self.registry, CachingRegistry):
            return None
        registry = self.registry.cached_only()
        verifier = self.verifier.cached_only()
        # Built directly, not with dataclasses.replace (twice as slow): this runs for every image.
        alone = Gatherer(
            policy=self.policy,
            registry=registry,
            verifier=verifier,
            quarantine=QuarantineReader(
                policy=self.quarantine.policy, registry=registry, seen=self.quarantine.seen, pool=None
            ),
        )
        facts = alone(plan, deadline=deadline, now=now)
        if registry.missed or verifier.missed:
            return None
        registry.count_hits()
        verifier.count_hits()
        return facts


@dataclass(frozen=True, slots=True)
class Services:
    gatherer: Gatherer


def build_services(policy: Policy, *, settings: Settings, metrics: Metrics | None = None) -> Services:
    """Build the adapters for ``policy``. Raises ConfigError for unusable trust material or settings."""
    client = RegistryClient(
        # A host without the referrers API is not probed again while a referrers list may be cached.
        replace(RegistrySettings.from_policy(policy), referrers_api_ttl=settings.referrers_ttl),
        observer=metrics.registry_request if metrics is not None else None,
    )
    registry = CachingRegistry(
        client,
        tag_ttl=settings.tag_ttl,
        referrers_ttl=settings.referrers_ttl,
        failure_ttl=settings.failure_ttl,
        maxsize=settings.cache_size,
        on_lookup=metrics.cache_lookup if metrics is not None else None,
    )
    # One pool per policy load for the lookups of all admissions; every fan-out's caller takes part
    # (webhook.fanout), so a busy pool slows lookups down but never blocks them, and asks it for at
    # most fetches_per_request threads. Idle threads end when a reload drops the services.
    pool = ThreadPoolExecutor(max_workers=settings.fetch_threads, thread_name_prefix="imagegate-lookups")
    fanout = FanOut(pool, helpers=settings.fetches_per_request)
    verifier = CachedVerifier(
        ImageVerifier(TrustMaterial.from_policy(policy)),
        ttl=settings.verify_ttl,
        failure_ttl=settings.verify_failure_ttl,
        maxsize=settings.cache_size,
        fingerprint=policy.fingerprint,
        on_lookup=metrics.cache_lookup if metrics is not None else None,
        fanout=fanout,
    )
    quarantine = QuarantineReader(policy, registry, SeenMarkers(settings.seen_markers_dir), pool)
    return Services(Gatherer(policy, registry, verifier, quarantine, fanout))


def check_services(policy: Policy, *, settings: Settings) -> None:
    """Build the adapters once, for their checks only (``imagegate serve`` before starting workers)."""
    build_services(policy, settings=settings)


def trust_root_problems(policy: Policy) -> Iterator[tuple[str, str, str]]:
    """Each trusted root as sigstore reads it, from the bytes the policy carries (the pure loader judged
    the rest of it already: CAs, CT and Rekor keys)."""
    for index, root in enumerate(policy.trust.roots):
        try:
            load_root(root)
        except ConfigError as error:
            yield (
                f"/spec/trust/roots/{index}/file",
                error.user_message,
                "use a Sigstore trusted_root.json (from Sigstore's TUF repository, or your instance's)",
            )


def serving_problems(policy: Policy) -> Iterator[tuple[str, str, str]]:
    """What the serving path refuses in a policy the loader accepted: ``(pointer, message, hint)``.

    The trusted roots (:func:`trust_root_problems`), then the adapters built as ``serve`` builds them,
    so ``imagegate lint`` never passes a policy that would not load. Every file the policy names was
    read and checked by the loader already (webhook.policy.material); the adapters use what it carries.
    """
    problems = list(trust_root_problems(policy))
    if problems:
        yield from problems
        return
    try:
        build_services(policy, settings=Settings())
    except ConfigError as error:
        yield "", f"the policy cannot be served: {error.user_message}", "fix what the message names"


def lint_policy_file(
    path: str | Path,
    *,
    now: datetime,
    locate: Callable[[Path], Path] | None = None,
    raw: bytes | None = None,
) -> tuple[PolicyProblem, ...]:
    """What ``imagegate lint`` reports for ``path``: the loader's checks and :func:`serving_problems`.

    ``locate`` and ``raw`` are :func:`webhook.policy.loader.lint_file`'s (``imagegate lint --root``,
    ``imagegate lint -``): the policy built names the files it located, and the serving path reads those.
    """
    return lint_file(path, now=now, locate=locate, serve_check=serving_problems, raw=raw)


class RuntimeAdapter:
    """Adapts a :class:`~webhook.reload.PolicyStore` to the service's RuntimeSource."""

    def __init__(self, store: PolicyStore[Services]) -> None:
        self._store = store

    def current(self) -> tuple[Policy, Gatherer] | None:
        runtime = self._store.current()
        if runtime is None:
            return None
        return runtime.policy, runtime.services.gatherer
