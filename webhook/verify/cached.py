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

On a miss, discovery looks at one artifact format first and at the other only when the first does not
settle the rule (:class:`_Lookups`): Sigstore bundles (the referrers) first, legacy ``.sig``/``.att``
tags after; in a repository where the last image's artifacts were all legacy, the other way round. A
part no requirement of the rule reads (``.att`` for a rule without attestations, ``.sig`` for one
without signatures) is not looked up at all.

Why skipping never changes a decision: a requirement passes when at least ``minimum`` of its signers
are each satisfied by an artifact signed with a key of its own (a matching in the bipartite graph of
signers and artifacts), and whether one artifact satisfies one signer depends on that artifact alone.
More artifacts only add edges, so a rule that passes on the artifacts of the first format passes on
those of both: the verdict (pass, no findings) is the one a full discovery gives. A rule that does not
pass is verified again on every part it reads, exactly as without skipping, so its reason codes are
those of a full discovery too. What skipping does change: the explanation (the artifacts not looked
at are not listed; a discovery note says so), and a registry failure in a lookup that was not needed
is never met (the image is admitted on the artifacts that settle it, instead of failing closed on a
lookup whose answer could not have changed the verdict).

Each artifact's cryptographic check starts on the thread that fetched it, as soon as its content is in
(:meth:`ImageVerifier.preverify`), for the roots and keys of the rules that missed the cache: the
first bundle is verified while the second is still on its way. The rules are then judged on those
results, which are the ones judging would have computed.
"""

from __future__ import annotations

__all__ = ["CachedVerifier", "rule_fingerprint"]

import functools
import hashlib
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime

from cachetools import LRUCache

from webhook.cache import MISSING, CacheOnlyLedger, CacheOnlyView, CacheStats, SingleFlightCache
from webhook.deadline import Deadline
from webhook.errors import RegistryError
from webhook.facts import Finding, RuleVerification
from webhook.fanout import FanOut
from webhook.images.reference import ImageRef
from webhook.policy.model import Rule, Signer
from webhook.reasons import Reason
from webhook.verify.discovery import (
    BUNDLES,
    LEGACY_ATTESTATIONS,
    LEGACY_SIGNATURES,
    PART_NAMES,
    Artifacts,
    ArtifactSource,
    BundleArtifact,
    LegacyLayer,
    Part,
    discover,
)
from webhook.verify.verifier import ImageVerifier, Preverified

_logger = logging.getLogger(__name__)

_BUNDLE_FORMAT: frozenset[Part] = frozenset({BUNDLES})
_LEGACY_FORMAT: frozenset[Part] = frozenset({LEGACY_SIGNATURES, LEGACY_ATTESTATIONS})


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


class CachedVerifier(CacheOnlyView):
    """An :class:`~webhook.verify.verifier.ImageVerifier` behind a single-flight TTL cache.

    ``fingerprint`` is the trust part of the key (default: ``inner.trust.fingerprint``, the policy's).
    ``fanout`` runs discovery's independent lookups concurrently (without it, one after the other).
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
        fanout: FanOut | None = None,
    ) -> None:
        self.inner = inner
        self._fanout = fanout
        # Per repository, the format looked at first (absent: the bundles).
        self._legacy_first: LRUCache[tuple[str, str], bool] = LRUCache(maxsize=1024)
        self._order_lock = threading.Lock()
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
        self._cache_only: CacheOnlyLedger | None = None

    @property
    def stats(self) -> CacheStats:
        return self._cache.stats

    def clear(self) -> None:
        self._cache.clear()

    def key(self, *, rule: Rule, image: ImageRef, digest: str) -> tuple[str, str, str, str]:
        return (image.name, digest, rule_fingerprint(rule), self.fingerprint)

    def holds(self, *, rules: Sequence[Rule], image: ImageRef, digest: str) -> bool:
        """Whether every rule of ``rules`` that needs verification has its result cached (no lookups)."""
        return all(
            self._cache.holds(self.key(rule=rule, image=image, digest=digest))
            for rule in rules
            if rule.needs_verification
        )

    def cached_only(self) -> CachedVerifier:
        """A view of this verifier that answers from its cache only, for one caller.

        :meth:`verify_image` then never discovers, verifies or waits for a verification in progress:
        a rule whose result is not cached sets :attr:`missed` (its answer is a placeholder, to be
        discarded). Hits are counted only by :meth:`count_hits`, once the caller has used the answers.
        """
        # A shallow copy made by hand: one is made per image of an admission, copy.copy is 5x slower.
        view = object.__new__(type(self))
        view.__dict__.update(self.__dict__)
        view._cache_only = CacheOnlyLedger()
        return view

    def _from_cache(
        self, view: CacheOnlyLedger, *, image: ImageRef, digest: str, rules: Sequence[Rule]
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
                view.hits.append(self._cache)
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
        """Verify every rule of ``rules`` that needs verification, looking each part up at most once.

        Discovery runs only when some rule misses the cache, and then each part (referrers, ``.sig``,
        ``.att``) at most once for all of them, only as far as the rules need (module docstring). A
        :class:`~webhook.errors.RegistryError` during discovery becomes a finding for each rule that
        needed the lookup. Never raises for verification or registry failures.
        """
        if self._cache_only is not None:
            return self._from_cache(self._cache_only, image=image, digest=digest, rules=rules)
        key = (image.registry, image.repository)
        with self._order_lock:
            legacy_first = self._legacy_first.get(key, False)
        wanted = [rule for rule in rules if rule.needs_verification]
        preverified = Preverified()
        missed = [
            rule for rule in wanted if not self._cache.holds(self.key(rule=rule, image=image, digest=digest))
        ]
        lookups = _Lookups(
            registry=registry,
            image=image,
            digest=digest,
            deadline=deadline,
            fanout=self._fanout,
            first=_LEGACY_FORMAT if legacy_first else _BUNDLE_FORMAT,
            on_found=_Ahead(self.inner, missed, digest=digest, now=now, into=preverified),
        )
        results = tuple(
            self._verify_cached(
                rule=rule, image=image, digest=digest, lookups=lookups, now=now, preverified=preverified
            )
            for rule in wanted
        )
        learned = lookups.learned_order()
        if learned is not None and learned != legacy_first:
            with self._order_lock:
                self._legacy_first[key] = learned
        return results

    def _verify_cached(
        self,
        *,
        rule: Rule,
        image: ImageRef,
        digest: str,
        lookups: _Lookups,
        now: datetime,
        preverified: Preverified,
    ) -> RuleVerification:
        needed = _parts_read_by(rule)

        def judge(found: Artifacts) -> RuleVerification:
            return self.inner.verify_rule(
                rule=rule,
                image=image,
                digest=digest,
                artifacts=lookups.explained(found, needed),
                now=now,
                preverified=preverified,
            )

        def load() -> RuleVerification:
            try:
                found = lookups.artifacts(needed & lookups.first or needed)
                result = judge(found)
                if not result.passed and not needed <= found.searched:
                    result = judge(lookups.artifacts(needed))
            except RegistryError as error:
                raise _UncachedResult(_registry_failure(rule, digest, error)) from None
            if not result.passed:
                raise _FailedResult(result)
            return result

        try:
            return self._cache.get_or_load(self.key(rule=rule, image=image, digest=digest), load)
        except (_FailedResult, _UncachedResult) as carried:
            return carried.result


class _Ahead:
    """Starts the cryptographic check of each artifact discovery finds, with the signers that judge it.

    A bundle is judged by every signer of the rules (signatures and attestations alike), a legacy
    ``.sig`` layer by the signature signers, a ``.att`` layer by the attestation signers: exactly the
    pairs :meth:`ImageVerifier.verify_rule` checks.
    """

    def __init__(
        self, inner: ImageVerifier, rules: Sequence[Rule], *, digest: str, now: datetime, into: Preverified
    ) -> None:
        self._inner = inner
        self._digest = digest
        self._now = now
        self._into = into
        signature_signers: list[Signer] = []
        attestation_signers: list[Signer] = []
        for rule in rules:
            if rule.signatures is not None:
                signature_signers.extend(rule.signatures.signers)
            for attestation in rule.attestations:
                attestation_signers.extend(attestation.signers)
        self._signature = tuple(signature_signers)
        self._attestation = tuple(attestation_signers)

    def __call__(self, artifact: BundleArtifact | LegacyLayer) -> None:
        if isinstance(artifact, BundleArtifact):
            signers = (*self._signature, *self._attestation)
        elif artifact.kind == "sig":
            signers = self._signature
        else:
            signers = self._attestation
        self._inner.preverify(artifact, signers=signers, digest=self._digest, now=self._now, into=self._into)


def _parts_read_by(rule: Rule) -> frozenset[Part]:
    """The parts whose artifacts the rule's requirements can use (bundles serve both kinds)."""
    parts = {BUNDLES}
    if rule.signatures is not None:
        parts.add(LEGACY_SIGNATURES)
    if rule.attestations:
        parts.add(LEGACY_ATTESTATIONS)
    return frozenset(parts)


class _Lookups:
    """One image's discovery for one ``verify_image`` call: each part looked up at most once, on demand.

    A failed lookup is not retried for the next rule of the same admission.
    """

    def __init__(
        self,
        *,
        registry: ArtifactSource,
        image: ImageRef,
        digest: str,
        deadline: Deadline,
        fanout: FanOut | None,
        first: frozenset[Part],
        on_found: Callable[[BundleArtifact | LegacyLayer], None],
    ) -> None:
        self._registry = registry
        self._image = image
        self._digest = digest
        self._deadline = deadline
        self._fanout = fanout
        self.first = first
        self._on_found = on_found
        self._found: Artifacts | None = None
        self._failure: RegistryError | None = None

    def artifacts(self, parts: frozenset[Part]) -> Artifacts:
        """What ``parts`` hold (and whatever else was looked up already), looking up the missing ones.

        Raises:
            RegistryError: a lookup failed (now or for an earlier rule).
        """
        if self._failure is not None:
            raise self._failure
        if self._found is not None and parts <= self._found.searched:
            return self._found
        missing = parts - self._found.searched if self._found is not None else parts
        try:
            found = discover(
                self._registry,
                self._image,
                self._digest,
                deadline=self._deadline,
                parts=frozenset(missing),
                fanout=self._fanout,
                on_found=self._on_found,
            )
        except RegistryError as error:
            self._failure = error
            raise
        except TimeoutError:
            self._failure = RegistryError(
                f"cannot look up signatures for {self._digest}: the registry did not answer every "
                "lookup within the admission deadline",
                code=Reason.REGISTRY_ERROR,
            )
            raise self._failure from None
        except ValueError as error:
            self._failure = RegistryError(
                f"cannot look up signatures for {self._digest}: {error}", code=Reason.REGISTRY_ERROR
            )
            raise self._failure from None
        except Exception as error:
            # A defect in a registry adapter must not escape as a 500: fail closed, uncached.
            _logger.exception("discovery for %s@%s failed unexpectedly", self._image.name, self._digest)
            self._failure = RegistryError(
                f"cannot look up signatures for {self._digest}: unexpected {type(error).__name__}",
                code=Reason.REGISTRY_ERROR,
            )
            raise self._failure from None
        self._found = found if self._found is None else self._found.merged(found)
        return self._found

    def explained(self, found: Artifacts, needed: frozenset[Part]) -> Artifacts:
        """``found`` with a note on each part the rule could read that was not looked up, and why."""
        unread = [
            part for part in (BUNDLES, LEGACY_SIGNATURES, LEGACY_ATTESTATIONS) if part not in found.searched
        ]
        notes = []
        skipped = [PART_NAMES[part] for part in unread if part in needed]
        if skipped:
            notes.append(
                f"{' and '.join(skipped)} not looked up: they are read only when the artifacts found "
                "do not satisfy the rule"
            )
        unneeded = [PART_NAMES[part] for part in unread if part not in needed]
        if unneeded:
            notes.append(f"{' and '.join(unneeded)} not looked up: no requirement of the rule reads it")
        return replace(found, notes=(*found.notes, *notes)) if notes else found

    def learned_order(self) -> bool | None:
        """Whether to look at the legacy tags first next time in this repository (None: no news).

        Only a discovery that looked at both formats and found artifacts in one of them teaches.
        """
        found = self._found
        if found is None or not (found.searched & _BUNDLE_FORMAT and found.searched & _LEGACY_FORMAT):
            return None
        bundles = found.found_in(BUNDLES) > 0
        legacy = any(found.found_in(part) > 0 for part in _LEGACY_FORMAT if part in found.searched)
        return legacy if bundles != legacy else None


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
