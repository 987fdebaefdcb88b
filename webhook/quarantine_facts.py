"""The quarantine facts of one admitted digest: its registry markers and, for an index, what it lists.

For a digest the quarantine lists do not name already, :class:`QuarantineReader` finds out:

* the manifests it lists when it is an image index (:func:`webhook.registry.listing.listed_manifests`),
  so the decision can refuse an index any of whose platform manifests is quarantined;
* with registry markers on, the markers of the digest and of every listed manifest, read concurrently
  on a small pool within the admission's deadline: in the image's own repository first, then wherever
  a worker has seen one before (:mod:`webhook.seen_markers`), re-checked before it counts.

Every failure to read is a fact too (``marker_error``/``listing_error``): the decision fails closed.
"""

from __future__ import annotations

__all__ = ["QuarantineFacts", "QuarantineReader"]

import logging
from collections import deque
from concurrent.futures import Executor, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass, field, replace
from pathlib import Path

from webhook.deadline import Deadline
from webhook.decision import ImagePlan
from webhook.errors import RegistryError
from webhook.facts import Finding, ImageFacts, ListedManifest, RuleVerification
from webhook.images.reference import ImageRef
from webhook.policy.model import Policy, QuarantineEntry
from webhook.reasons import Reason
from webhook.registry.listing import listed_manifests
from webhook.registry.markers import read_marker
from webhook.registry.port import Registry
from webhook.seen_markers import SeenMarkers, Sighting

_logger = logging.getLogger(__name__)

# Pool threads that help one image read the markers of the manifests its index lists.
_HELPERS = 4


@dataclass(frozen=True, slots=True)
class QuarantineFacts:
    marker: QuarantineEntry | None = None
    marker_error: Finding | None = None
    listed: tuple[ListedManifest, ...] = ()
    listing_error: Finding | None = None

    def image_facts(self, digest: str, verifications: tuple[RuleVerification, ...] = ()) -> ImageFacts:
        """The facts of the image with ``digest``: these, and ``verifications`` when there are any."""
        return ImageFacts(
            digest=digest,
            marker=self.marker,
            marker_error=self.marker_error,
            listed=self.listed,
            listing_error=self.listing_error,
            verifications=verifications,
            quarantine_read=True,
        )


@dataclass(frozen=True, slots=True)
class QuarantineReader:
    policy: Policy
    registry: Registry
    seen: SeenMarkers
    # Helpers for reading markers; without a pool (a cache-only read) this thread reads them all.
    pool: Executor | None = field(repr=False)

    @classmethod
    def create(
        cls, policy: Policy, registry: Registry, *, seen_dir: Path | None, threads: int
    ) -> QuarantineReader:
        """A reader with its own pool for marker lookups (never a pool whose threads wait for them).

        Idle pool threads end when the reader is dropped (a policy reload builds a new one).
        """
        pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="imagegate-markers")
        return cls(policy, registry, SeenMarkers(seen_dir), pool)

    def read(self, plan: ImagePlan, ref: ImageRef, digest: str, *, deadline: Deadline) -> QuarantineFacts:
        if digest in self.policy.quarantined:
            return QuarantineFacts()  # the lists refuse it whatever else is found: no round trip
        listed: tuple[ListedManifest, ...] = ()
        listing_error: Finding | None = None
        if plan.check_listing:
            try:
                listed = listed_manifests(self.registry, ref, digest, deadline=deadline)
            except RegistryError as error:
                listing_error = Finding(
                    error.code, f"the manifests of this image could not be read: {error.user_message}"
                )
        if not plan.check_markers or any(m.digest in self.policy.quarantined for m in listed):
            return QuarantineFacts(listed=listed, listing_error=listing_error)

        markers = self._markers(ref, (digest, *(m.digest for m in listed)), deadline=deadline)
        top = markers[digest]
        marker = top if isinstance(top, QuarantineEntry) else None
        marker_error = (
            Finding(top.code, f"quarantine markers could not be read: {top.message}")
            if isinstance(top, Finding)
            else None
        )
        checked = []
        for manifest in listed:
            found = markers[manifest.digest]
            if isinstance(found, Finding):
                listing_error = listing_error or Finding(
                    found.code,
                    f"quarantine markers of {_describe(manifest)} could not be read: {found.message}",
                )
                found = None
            checked.append(replace(manifest, marker=found))
        if marker is not None and marker.source == "registry":
            # A marker on an index quarantines everything it lists, in every repository.
            for manifest in listed:
                self.seen.remember(Sighting(manifest.digest, ref.registry, ref.repository, digest))
        return QuarantineFacts(marker, marker_error, tuple(checked), listing_error)

    def _markers(
        self, ref: ImageRef, digests: tuple[str, ...], *, deadline: Deadline
    ) -> dict[str, QuarantineEntry | Finding | None]:
        """The marker (or why it could not be read) of each digest.

        This thread works through the digests and up to :data:`_HELPERS` pool threads help: one image
        never queues more than that on the shared pool, and it progresses even while the pool is busy
        with other admissions.
        """
        todo = deque(digests)
        results: dict[str, QuarantineEntry | Finding | None] = {}

        def work() -> None:
            while not deadline.expired():
                try:
                    digest = todo.popleft()
                except IndexError:
                    return
                results[digest] = self._read_one(ref, digest, deadline=deadline)

        pool = self.pool
        helpers = [] if pool is None else [pool.submit(work) for _ in range(min(_HELPERS, len(digests) - 1))]
        work()
        # Nothing is left to take: helpers that have not started are not needed; wait for the others.
        running = [helper for helper in helpers if not helper.cancel()]
        wait_futures(running, timeout=deadline.remaining())
        late = Finding(Reason.REGISTRY_ERROR, "no answer from the registry within the admission deadline")
        # A copy: a helper still waiting for the registry may write into ``results`` after this returns.
        return {digest: results[digest] if digest in results else late for digest in digests}

    def _read_one(
        self, ref: ImageRef, digest: str, *, deadline: Deadline
    ) -> QuarantineEntry | Finding | None:
        try:
            return self._marker(ref, digest, deadline=deadline)
        except RegistryError as error:
            return Finding(error.code, error.user_message)
        except Exception as error:  # fail closed with a reason, never an escaping error in a helper
            _logger.error("reading the quarantine markers of %s failed", digest, exc_info=error)
            return Finding(Reason.REGISTRY_ERROR, f"unexpected {type(error).__name__}")

    def _marker(self, ref: ImageRef, digest: str, *, deadline: Deadline) -> QuarantineEntry | None:
        """The marker of ``digest`` in ``ref``'s repository, else one seen elsewhere that still exists.

        Raises:
            RegistryError: a repository could not be read (callers fail closed).
        """
        here = Sighting(digest, ref.registry, ref.repository, digest)
        entry = read_marker(self.registry, ref, digest, deadline=deadline)
        if entry is not None:
            self.seen.remember(here)
            return entry
        for sighting in self.seen.sightings(digest):
            if sighting == here:
                self.seen.forget(here)  # this repository's marker is gone
                continue
            try:
                still = read_marker(self.registry, sighting.repo, sighting.subject, deadline=deadline)
            except RegistryError as error:
                raise RegistryError(
                    f"a quarantine marker was seen on {sighting.describe()} and could not be checked "
                    f"again: {error.user_message}",
                    code=error.code,
                ) from None
            if still is None:
                self.seen.forget(sighting)
                continue
            return replace(still, digest=digest, source=f"registry marker on {sighting.describe()}")
        return None


def _describe(manifest: ListedManifest) -> str:
    platform = f"platform {manifest.platform} " if manifest.platform else ""
    return f"{platform}manifest {manifest.digest}"
