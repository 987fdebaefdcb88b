"""A caching, single-flight :class:`Registry` wrapper for the admission hot path.

What is cached and for how long follows from what can change:

* tag -> digest (``resolve``) and manifests fetched by tag: ``tag_ttl`` (tags move);
* manifests and blobs fetched by digest: immutable, kept until evicted (LRU);
* referrers of a digest and cosign's legacy ``sha256-<hex>.sig`` style tag lookups: ``referrers_ttl``
  (new signatures and quarantine markers appear at any time);
* registry failures: ``failure_ttl``, so a registry that is down is not hammered by every admission.
  Failures caused by the *caller's* deadline running out are not cached: they say nothing about the
  registry and must not fail other admissions (callers that waited for that round trip ask again
  while their own deadline allows).

Concurrent callers asking for the same uncached key share one registry round trip. Pushes and
deletes pass through and drop the entries they make stale.

:meth:`CachingRegistry.cached_only` gives a view that answers from the caches alone: it never goes to
the registry and never waits for another caller's round trip, so an admission whose every answer is
cached can be decided in its own thread (see :meth:`webhook.wiring.Gatherer.cached`).
"""

from __future__ import annotations

__all__ = ["CachingRegistry", "NotCached"]

import json
from collections.abc import Callable, Hashable
from typing import TypeVar

from webhook.cache import MISSING, CacheOnlyLedger, CacheOnlyView, SingleFlightCache
from webhook.deadline import Deadline
from webhook.errors import RegistryError
from webhook.images.reference import ImageRef
from webhook.reasons import Reason
from webhook.registry.port import Descriptor, Manifest, Registry, is_digest
from webhook.registry.transport import DeadlineExceeded

# Digest-addressed entries never go stale; they only leave the cache when evicted.
_IMMUTABLE_TTL = 365 * 24 * 3600.0

T = TypeVar("T")


class _Uncacheable(Exception):
    """Carries an error past SingleFlightCache without it being cached as a failure."""

    def __init__(self, error: RegistryError) -> None:
        super().__init__(error.user_message)
        self.error = error


class NotCached(RegistryError):
    """A :meth:`CachingRegistry.cached_only` view was asked for something its caches do not hold."""

    def __init__(self) -> None:
        super().__init__("not answered from the cache", code=Reason.REGISTRY_ERROR)


class CachingRegistry(CacheOnlyView):
    """Wraps ``inner`` (any :class:`Registry`) with TTL caches and single-flight loading.

    Args:
        tag_ttl: seconds a resolved tag (and a manifest fetched by tag) is reused.
        referrers_ttl: seconds referrer lists and ``manifest_if_exists`` answers are reused.
        failure_ttl: seconds a :class:`RegistryError` is replayed instead of asking again.
        maxsize: entries per cache (tags, manifests, referrers); blobs keep ``blob_maxsize``.
        on_lookup: ``on_lookup(cache_name, hit)`` for metrics; names are ``resolve``, ``manifest``,
            ``tag-manifest``, ``manifest-if-exists``, ``referrers``, ``blob``.
    """

    def __init__(
        self,
        inner: Registry,
        *,
        tag_ttl: float = 60.0,
        referrers_ttl: float = 30.0,
        failure_ttl: float = 5.0,
        maxsize: int = 4096,
        blob_maxsize: int = 256,
        on_lookup: Callable[[str, bool], None] | None = None,
    ) -> None:
        self._inner = inner

        def cache(name: str, ttl: float, size: int) -> SingleFlightCache[object]:
            return SingleFlightCache(
                name=name,
                maxsize=size,
                ttl=ttl,
                failure_ttl=failure_ttl,
                cache_errors=(RegistryError,),
                on_lookup=on_lookup,
            )

        self._tags = cache("resolve", tag_ttl, maxsize)
        self._tag_manifests = cache("tag-manifest", tag_ttl, maxsize)
        self._manifests = cache("manifest", _IMMUTABLE_TTL, maxsize)
        self._optional = cache("manifest-if-exists", referrers_ttl, maxsize)
        self._referrers = cache("referrers", referrers_ttl, maxsize)
        self._blobs = cache("blob", _IMMUTABLE_TTL, blob_maxsize)
        self._cache_only: _CacheOnly | None = None

    @property
    def inner(self) -> Registry:
        return self._inner

    def cached_only(self) -> CachingRegistry:
        """A view of this registry that answers from its caches only, for one caller.

        It shares the caches but never loads into them, never waits for a round trip in progress and
        never reaches the registry (writes included): a lookup the caches cannot answer now raises
        :class:`NotCached` and sets :attr:`missed`. A cached failure is replayed as usual. Hits are
        counted only by :meth:`count_hits`, once the caller has used the answers.
        """
        # A shallow copy made by hand: one is made per image of an admission, copy.copy is 5x slower.
        view = object.__new__(type(self))
        view.__dict__.update(self.__dict__)
        view._inner = _NO_REGISTRY
        view._cache_only = _CacheOnly()
        return view

    def _lookup(
        self,
        cache: SingleFlightCache[object],
        key: Hashable,
        load: Callable[[], T],
        kind: type[T],
        *,
        deadline: Deadline,
    ) -> T:
        if self._cache_only is not None:
            return self._cache_only.peek(cache, key, kind)
        return _get(cache, key, load, kind, deadline=deadline)

    def clear(self) -> None:
        for cache in (
            self._tags,
            self._tag_manifests,
            self._manifests,
            self._optional,
            self._referrers,
            self._blobs,
        ):
            cache.clear()

    # --- reads -----------------------------------------------------------------------------------

    def resolve(self, repo: ImageRef, reference: str, *, deadline: Deadline) -> str:
        key = (repo.registry, repo.repository, reference)
        return self._lookup(
            self._tags,
            key,
            lambda: self._inner.resolve(repo, reference, deadline=deadline),
            str,
            deadline=deadline,
        )

    def manifest(self, repo: ImageRef, reference: str, *, deadline: Deadline) -> Manifest:
        key = (repo.registry, repo.repository, reference)
        cache = self._manifests if is_digest(reference) else self._tag_manifests
        return self._lookup(
            cache,
            key,
            lambda: self._inner.manifest(repo, reference, deadline=deadline),
            Manifest,
            deadline=deadline,
        )

    def manifest_if_exists(self, repo: ImageRef, tag: str, *, deadline: Deadline) -> Manifest | None:
        key = (repo.registry, repo.repository, tag)
        value = self._lookup(
            self._optional,
            key,
            lambda: _Maybe(self._inner.manifest_if_exists(repo, tag, deadline=deadline)),
            _Maybe,
            deadline=deadline,
        )
        return value.manifest

    def blob(self, repo: ImageRef, digest: str, *, deadline: Deadline, max_bytes: int) -> bytes:
        key = (repo.registry, repo.repository, digest, max_bytes)
        return self._lookup(
            self._blobs,
            key,
            lambda: self._inner.blob(repo, digest, deadline=deadline, max_bytes=max_bytes),
            bytes,
            deadline=deadline,
        )

    def referrers(
        self, repo: ImageRef, digest: str, *, deadline: Deadline, artifact_type: str | None = None
    ) -> tuple[Descriptor, ...]:
        # One entry per subject (all artifact types), filtered here: a push can then drop exactly it.
        key = (repo.registry, repo.repository, digest)
        everything = self._lookup(
            self._referrers,
            key,
            lambda: self._inner.referrers(repo, digest, deadline=deadline),
            tuple,
            deadline=deadline,
        )
        descriptors: tuple[Descriptor, ...] = everything
        if artifact_type is None:
            return descriptors
        return tuple(d for d in descriptors if d.artifact_type == artifact_type)

    # --- writes ----------------------------------------------------------------------------------

    def push_blob(self, repo: ImageRef, data: bytes, *, deadline: Deadline) -> Descriptor:
        return self._inner.push_blob(repo, data, deadline=deadline)

    def push_manifest(
        self, repo: ImageRef, body: bytes, media_type: str, *, deadline: Deadline, tag: str | None = None
    ) -> str:
        digest = self._inner.push_manifest(repo, body, media_type, deadline=deadline, tag=tag)
        subject = _subject_digest(body)
        if subject is not None:
            self._referrers.invalidate((repo.registry, repo.repository, subject))
        if tag is not None:
            self._tags.invalidate((repo.registry, repo.repository, tag))
            self._tag_manifests.invalidate((repo.registry, repo.repository, tag))
            self._optional.invalidate((repo.registry, repo.repository, tag))
            if tag.startswith("sha256-"):
                # A referrers fallback index was rewritten.
                self._referrers.invalidate(
                    (repo.registry, repo.repository, "sha256:" + tag[len("sha256-") :])
                )
        return digest

    def delete_manifest(self, repo: ImageRef, digest: str, *, deadline: Deadline) -> None:
        self._inner.delete_manifest(repo, digest, deadline=deadline)
        # The subject of the deleted manifest is unknown here (and deletes are rare): drop all
        # referrer lists, and every tag that might have pointed at it.
        self._referrers.clear()
        self._optional.clear()
        self._tags.clear()
        self._tag_manifests.clear()


class _CacheOnly(CacheOnlyLedger):
    """The ledger of one :meth:`CachingRegistry.cached_only` view, and how it reads a cache."""

    __slots__ = ()

    def peek(self, cache: SingleFlightCache[object], key: Hashable, kind: type[T]) -> T:
        try:
            value = cache.peek(key)
        except RegistryError:
            self.hits.append(cache)  # a cached failure is an answer too
            raise
        if value is MISSING:
            self.missed = True
            raise NotCached
        self.hits.append(cache)
        if not isinstance(value, kind):  # pragma: no cover - a key reused for another kind is a bug here
            raise TypeError(f"cache {cache.name} holds {type(value).__name__}, expected {kind.__name__}")
        return value


class _NoRegistry:
    """The registry behind a cached-only view: every call is a miss, nothing goes out."""

    def resolve(self, repo: ImageRef, reference: str, *, deadline: Deadline) -> str:
        raise NotCached

    def manifest(self, repo: ImageRef, reference: str, *, deadline: Deadline) -> Manifest:
        raise NotCached

    def manifest_if_exists(self, repo: ImageRef, tag: str, *, deadline: Deadline) -> Manifest | None:
        raise NotCached

    def blob(self, repo: ImageRef, digest: str, *, deadline: Deadline, max_bytes: int) -> bytes:
        raise NotCached

    def referrers(
        self, repo: ImageRef, digest: str, *, deadline: Deadline, artifact_type: str | None = None
    ) -> tuple[Descriptor, ...]:
        raise NotCached

    def push_blob(self, repo: ImageRef, data: bytes, *, deadline: Deadline) -> Descriptor:
        raise NotCached

    def push_manifest(
        self, repo: ImageRef, body: bytes, media_type: str, *, deadline: Deadline, tag: str | None = None
    ) -> str:
        raise NotCached

    def delete_manifest(self, repo: ImageRef, digest: str, *, deadline: Deadline) -> None:
        raise NotCached


_NO_REGISTRY: Registry = _NoRegistry()


class _Maybe:
    __slots__ = ("manifest",)

    def __init__(self, manifest: Manifest | None) -> None:
        self.manifest = manifest


def _get(
    cache: SingleFlightCache[object],
    key: Hashable,
    load: Callable[[], T],
    kind: type[T],
    *,
    deadline: Deadline,
) -> T:
    while True:
        ran = False

        def guarded() -> object:
            nonlocal ran
            ran = True
            try:
                return load()
            except DeadlineExceeded as error:
                raise _Uncacheable(error) from None

        try:
            value = cache.get_or_load(key, guarded, wait=deadline.remaining())
            break
        except TimeoutError:
            # Waiting on a round trip another admission leads must not outlast our own deadline.
            raise DeadlineExceeded(
                "deadline exceeded while waiting for the registry's answer to another request"
            ) from None
        except _Uncacheable as carrier:
            # A caller that waited for another's round trip is not bound by that caller's deadline:
            # while its own allows, it asks again (leading a new round trip or joining one).
            if ran or deadline.expired():
                raise carrier.error from None
    if not isinstance(value, kind):  # pragma: no cover - a key reused for another kind is a bug here
        raise TypeError(f"cache {cache.name} holds {type(value).__name__}, expected {kind.__name__}")
    return value


def _subject_digest(body: bytes) -> str | None:
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    subject = document.get("subject") if isinstance(document, dict) else None
    digest = subject.get("digest") if isinstance(subject, dict) else None
    return digest if isinstance(digest, str) and is_digest(digest) else None
