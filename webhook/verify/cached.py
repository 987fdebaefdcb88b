"""Verification results cached per (image, digest, rule, trust), with one discovery per image on a miss.

Signature verification is the expensive part of an admission (registry round trips, then
cryptography), and its answer depends only on immutable content: the digest, the artifacts stored for
it, the rule and the trust material. The key is ``(image name, digest, rule fingerprint, trust
fingerprint)``. The image name is part of the key because signatures live per repository and a
verification summary must name the admitted image. The trust fingerprint is the policy's
(``Policy.fingerprint``), so a policy or trust-root change starts from an empty cache.

* Successes are kept for ``ttl`` seconds (a signature pushed later cannot turn a pass into a failure,
  but time-bounded checks such as ``maxAge`` are re-evaluated only after ``ttl``).
* Failures are kept for ``failure_ttl`` seconds, so a freshly pushed signature is seen soon while a
  storm of admissions of an unsigned image costs one verification per ``failure_ttl``.
* Registry failures are never cached: they say nothing about the image.
* Concurrent admissions of the same key wait for one verification (single flight).
"""

from __future__ import annotations

__all__ = ["CachedVerifier", "rule_fingerprint"]

import functools
import hashlib
import logging
from collections.abc import Callable, Sequence
from datetime import datetime

from webhook.cache import MISSING, CacheStats, SingleFlightCache
from webhook.deadline import Deadline
from webhook.errors import RegistryError
from webhook.facts import Finding, RuleVerification
from webhook.images.reference import ImageRef
from webhook.policy.model import Rule
from webhook.reasons import Reason
from webhook.verify.discovery import Artifacts, ArtifactSource, discover
from webhook.verify.verifier import ImageVerifier

_logger = logging.getLogger(__name__)


class _FailedResult(Exception):
    """Carries a failed verification through the cache (cached for ``failure_ttl``)."""

    def __init__(self, result: RuleVerification) -> None:
        super().__init__(result.rule)
        self.result = result


class _UncachedResult(Exception):
    """Carries a result that must not be cached (registry failures) to every waiter."""

    def __init__(self, result: RuleVerification) -> None:
        super().__init__(result.rule)
        self.result = result


@functools.lru_cache(maxsize=1024)
def rule_fingerprint(rule: Rule) -> str:
    """A stable hash of everything in ``rule`` (its dataclass ``repr``)."""
    return hashlib.sha256(repr(rule).encode("utf-8")).hexdigest()


class CachedVerifier:
    """An :class:`~webhook.verify.verifier.ImageVerifier` behind a single-flight TTL cache.

    ``fingerprint`` is the trust part of the key (default: ``inner.trust.fingerprint``, the policy's).
    """

    def __init__(
        self,
        inner: ImageVerifier,
        *,
        ttl: float = 300.0,
        failure_ttl: float = 10.0,
        maxsize: int = 4096,
        fingerprint: str | None = None,
        on_lookup: Callable[[str, bool], None] | None = None,
    ) -> None:
        self.inner = inner
        # The policy's fingerprint covers its trust material; the trust material's copy is the default.
        self.fingerprint = fingerprint if fingerprint is not None else inner.trust.fingerprint
        self._cache: SingleFlightCache[RuleVerification] = SingleFlightCache(
            name="verification",
            maxsize=maxsize,
            ttl=ttl,
            failure_ttl=failure_ttl,
            cache_errors=(_FailedResult,),
            on_lookup=on_lookup,
        )
        self._cache_only: _CacheOnly | None = None

    @property
    def stats(self) -> CacheStats:
        return self._cache.stats

    def clear(self) -> None:
        self._cache.clear()

    def key(self, *, rule: Rule, image: ImageRef, digest: str) -> tuple[str, str, str, str]:
        return (image.name, digest, rule_fingerprint(rule), self.fingerprint)

    def verify_rule(
        self,
        *,
        rule: Rule,
        image: ImageRef,
        digest: str,
        artifacts: Callable[[], Artifacts],
        now: datetime,
    ) -> RuleVerification:
        """The cached result for ``rule``; on a miss, ``artifacts()`` is called and the rule verified.

        ``artifacts`` may raise :class:`~webhook.errors.RegistryError`: the result is then a
        ``registry-error`` finding, not cached.
        """

        def load() -> RuleVerification:
            try:
                found = artifacts()
            except RegistryError as error:
                raise _UncachedResult(_registry_failure(rule, digest, error)) from None
            result = self.inner.verify_rule(rule=rule, image=image, digest=digest, artifacts=found, now=now)
            if not result.passed:
                raise _FailedResult(result)
            return result

        try:
            return self._cache.get_or_load(self.key(rule=rule, image=image, digest=digest), load)
        except (_FailedResult, _UncachedResult) as carried:
            return carried.result

    def cached_only(self) -> CachedVerifier:
        """A view of this verifier that answers from its cache only, for one caller.

        :meth:`verify_image` then never discovers, verifies or waits for a verification in progress:
        a rule whose result is not cached sets :attr:`missed` (its answer is a placeholder, to be
        discarded). Hits are counted only by :meth:`count_hits`, once the caller has used the answers.
        """
        # A shallow copy made by hand: one is made per image of an admission, copy.copy is 5x slower.
        view = object.__new__(type(self))
        view.__dict__.update(self.__dict__)
        view._cache_only = _CacheOnly()
        return view

    @property
    def missed(self) -> bool:
        """Whether this :meth:`cached_only` view was asked for a result its cache did not hold."""
        return self._cache_only is not None and self._cache_only.missed

    def count_hits(self) -> None:
        """Count the cache hits that answered this :meth:`cached_only` view (once)."""
        if self._cache_only is not None:
            hits, self._cache_only.hits = self._cache_only.hits, 0
            for _ in range(hits):
                self._cache.count_hit()

    def _from_cache(
        self, view: _CacheOnly, *, image: ImageRef, digest: str, rules: Sequence[Rule]
    ) -> tuple[RuleVerification, ...]:
        found: list[RuleVerification] = []
        for rule in rules:
            if not rule.needs_verification:
                continue
            try:
                result = self._cache.peek(self.key(rule=rule, image=image, digest=digest))
            except _FailedResult as carried:
                result = carried.result
            if result is MISSING:
                view.missed = True
                result = _not_cached(rule, digest)
            else:
                view.hits += 1
            found.append(result)
        return tuple(found)

    def verify_image(
        self,
        *,
        registry: ArtifactSource,
        image: ImageRef,
        digest: str,
        rules: Sequence[Rule],
        deadline: Deadline,
        now: datetime,
    ) -> tuple[RuleVerification, ...]:
        """Verify every rule of ``rules`` that needs verification, discovering at most once.

        Discovery runs only when some rule misses the cache, and then once for all of them. A
        :class:`~webhook.errors.RegistryError` during discovery becomes a finding for each rule.
        Never raises for verification or registry failures.
        """
        if self._cache_only is not None:
            return self._from_cache(self._cache_only, image=image, digest=digest, rules=rules)
        memo: list[Artifacts] = []

        def artifacts() -> Artifacts:
            if not memo:
                memo.append(discover(registry, image, digest, deadline=deadline))
            return memo[0]

        failure: list[RegistryError] = []

        def remembered() -> Artifacts:
            # A discovery that failed once is not retried for the next rule of the same admission.
            if failure:
                raise failure[0]
            try:
                return artifacts()
            except RegistryError as error:
                failure.append(error)
                raise
            except ValueError as error:
                failure.append(
                    RegistryError(
                        f"cannot look up signatures for {digest}: {error}", code=Reason.REGISTRY_ERROR
                    )
                )
                raise failure[0] from None
            except Exception as error:
                # A defect in a registry adapter must not escape as a 500: fail closed, uncached.
                _logger.exception("discovery for %s@%s failed unexpectedly", image.name, digest)
                reason = f"unexpected {type(error).__name__}"
                failure.append(
                    RegistryError(
                        f"cannot look up signatures for {digest}: {reason}", code=Reason.REGISTRY_ERROR
                    )
                )
                raise failure[0] from None

        return tuple(
            self.verify_rule(rule=rule, image=image, digest=digest, artifacts=remembered, now=now)
            for rule in rules
            if rule.needs_verification
        )


class _CacheOnly:
    """The state of one :meth:`CachedVerifier.cached_only` view: did it miss, how many hits answered."""

    __slots__ = ("hits", "missed")

    def __init__(self) -> None:
        self.missed = False
        self.hits = 0


def _not_cached(rule: Rule, digest: str) -> RuleVerification:
    # A cache-only view's placeholder for a result it does not hold: its caller discards the answer.
    return RuleVerification(
        rule=rule.name,
        digest=digest,
        findings=(Finding(Reason.REGISTRY_ERROR, "not answered from the verification cache"),),
    )


def _registry_failure(rule: Rule, digest: str, error: RegistryError) -> RuleVerification:
    message = f"could not look up signatures and attestations for {digest}: {error.user_message}"
    _logger.info("rule %s: %s", rule.name, message)
    return RuleVerification(
        rule=rule.name, digest=digest, findings=(Finding(Reason.REGISTRY_ERROR, message),)
    )
