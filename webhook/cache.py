"""Bounded TTL caches with single-flight loading, shared by the registry and verification adapters.

Caches live in one worker process; each gunicorn worker has its own. That is sound because every
key names immutable content (a digest) or carries a short TTL (a tag), plus the policy fingerprint
where the answer depends on policy.
"""

from __future__ import annotations

__all__ = ["MISSING", "CacheOnlyLedger", "CacheOnlyView", "CacheStats", "Missing", "SingleFlightCache"]

import enum
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, Final, Generic, TypeVar

from cachetools import TLRUCache

V = TypeVar("V")


class Missing(enum.Enum):
    """What :meth:`SingleFlightCache.peek` returns for a key it does not hold."""

    MISSING = enum.auto()


MISSING: Final = Missing.MISSING


@dataclass(slots=True)
class CacheStats:
    hits: int = 0
    misses: int = 0


class _Failure:
    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


class _Call:
    __slots__ = ("done", "error", "value")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: object = None
        self.error: BaseException | None = None


class SingleFlightCache(Generic[V]):
    """A size-bounded cache whose entries expire after ``ttl`` seconds (``failure_ttl`` for errors).

    ``get_or_load(key, load)`` returns the cached value, or calls ``load`` once however many threads
    ask for the same missing key at the same time: the others wait for that one call (at most
    ``wait`` seconds each, then :class:`TimeoutError`). Errors of the
    types in ``cache_errors`` are cached for ``failure_ttl`` and re-raised; other errors are not cached.
    A ``ttl`` of 0 disables caching (single-flight still applies).
    """

    def __init__(
        self,
        *,
        name: str,
        maxsize: int,
        ttl: float,
        failure_ttl: float = 0.0,
        cache_errors: tuple[type[BaseException], ...] = (),
        on_lookup: Callable[[str, bool], None] | None = None,
    ) -> None:
        self.name = name
        self._ttl = ttl
        self._failure_ttl = failure_ttl
        self._cache_errors = cache_errors
        self._cache: TLRUCache[Hashable, object] = TLRUCache(
            maxsize=maxsize, ttu=self._ttu, timer=time.monotonic
        )
        self._lock = threading.Lock()
        self._inflight: dict[Hashable, _Call] = {}
        self._on_lookup = on_lookup
        self.stats = CacheStats()

    def _ttu(self, _key: Hashable, value: object, now: float) -> float:
        return now + (self._failure_ttl if isinstance(value, _Failure) else self._ttl)

    def get_or_load(self, key: Hashable, load: Callable[[], V], *, wait: float | None = None) -> V:
        with self._lock:
            cached = self._cache.get(key, MISSING)
            if cached is not MISSING:
                self.stats.hits += 1
                self._report(hit=True)
                return self._unwrap(cached)
            call = self._inflight.get(key)
            leader = call is None
            if call is None:
                call = _Call()
                self._inflight[key] = call
            self.stats.misses += 1
        self._report(hit=False)
        if not leader:
            if not call.done.wait(wait):
                raise TimeoutError(f"gave up waiting for the {self.name} lookup of another request")
            if call.error is not None:
                raise call.error
            return call.value  # type: ignore[return-value]
        try:
            value = load()
        except BaseException as error:
            call.error = error
            with self._lock:
                if isinstance(error, self._cache_errors) and self._failure_ttl > 0:
                    self._cache[key] = _Failure(error)
                del self._inflight[key]
            call.done.set()
            raise
        call.value = value
        with self._lock:
            if self._ttl > 0:
                self._cache[key] = value
            del self._inflight[key]
        call.done.set()
        return value

    def holds(self, key: Hashable) -> bool:
        """Whether ``key`` has an unexpired entry (a value or a cached failure); not counted as a lookup."""
        with self._lock:
            return key in self._cache

    def peek(self, key: Hashable) -> V | Missing:
        """The cached value of ``key`` (a cached error is raised, as by ``get_or_load``), else MISSING.

        Never loads and never waits for a load in progress. Counts nothing: a caller that used the
        value calls :meth:`count_hit`; after a miss it asks :meth:`get_or_load`, which counts.
        """
        with self._lock:
            cached = self._cache.get(key, MISSING)
        if cached is MISSING:
            return MISSING
        return self._unwrap(cached)

    def count_hit(self) -> None:
        """Count a hit of :meth:`peek` whose value was used."""
        with self._lock:
            self.stats.hits += 1
        self._report(hit=True)

    def invalidate(self, key: Hashable) -> None:
        with self._lock:
            self._cache.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._cache.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._cache)

    def _report(self, *, hit: bool) -> None:
        if self._on_lookup is not None:
            self._on_lookup(self.name, hit)

    @staticmethod
    def _unwrap(cached: object) -> V:
        if isinstance(cached, _Failure):
            # Drop the stored traceback: re-raising the same object would grow it on every replay.
            raise cached.error.with_traceback(None)
        return cached  # type: ignore[return-value]


class CacheOnlyLedger:
    """What one cache-only view of a caching adapter saw: whether it asked for something its caches did
    not hold (``missed``), and which caches answered it (``hits``, one entry per answer). A view's hits
    are counted only by :meth:`count_hits`, once its caller has used the answers."""

    __slots__ = ("hits", "missed")

    def __init__(self) -> None:
        self.missed = False
        self.hits: list[SingleFlightCache[Any]] = []

    def count_hits(self) -> None:
        """Count the recorded hits on their caches, once."""
        hits, self.hits = self.hits, []
        for cache in hits:
            cache.count_hit()


class CacheOnlyView:
    """What a caching adapter's cache-only view offers its caller: ``_cache_only`` is the view's ledger
    (None on the adapter itself)."""

    _cache_only: CacheOnlyLedger | None = None

    @property
    def missed(self) -> bool:
        """Whether this cache-only view was asked for something its caches did not hold."""
        return self._cache_only is not None and self._cache_only.missed

    def count_hits(self) -> None:
        """Count the cache hits that answered this cache-only view (once)."""
        if self._cache_only is not None:
            self._cache_only.count_hits()
