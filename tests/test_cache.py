"""SingleFlightCache: one load per key however many ask, bounded waits, failures cached briefly."""

from __future__ import annotations

import threading

import pytest

from webhook.cache import SingleFlightCache
from webhook.errors import RegistryError
from webhook.reasons import Reason


def test_concurrent_callers_share_one_load() -> None:
    cache: SingleFlightCache[str] = SingleFlightCache(name="t", maxsize=8, ttl=60)
    started, release = threading.Event(), threading.Event()
    loads: list[int] = []

    def load() -> str:
        loads.append(1)
        started.set()
        release.wait(5)
        return "value"

    results: list[str] = []
    threads = [
        threading.Thread(target=lambda: results.append(cache.get_or_load("k", load))) for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    started.wait(5)
    release.set()
    for thread in threads:
        thread.join(5)
    assert results == ["value"] * 8
    assert loads == [1]
    assert cache.get_or_load("k", lambda: "other") == "value"  # cached now


def test_a_waiting_caller_gives_up_after_its_wait() -> None:
    cache: SingleFlightCache[str] = SingleFlightCache(name="t", maxsize=8, ttl=60)
    started, release = threading.Event(), threading.Event()

    def slow() -> str:
        started.set()
        release.wait(5)
        return "late"

    leader = threading.Thread(target=lambda: cache.get_or_load("k", slow))
    leader.start()
    started.wait(5)
    try:
        with pytest.raises(TimeoutError):
            cache.get_or_load("k", lambda: "never called", wait=0.05)
    finally:
        release.set()
        leader.join(5)
    assert cache.get_or_load("k", lambda: "unused") == "late"


def test_cached_failures_are_replayed_without_growing_tracebacks() -> None:
    cache: SingleFlightCache[str] = SingleFlightCache(
        name="t", maxsize=8, ttl=60, failure_ttl=60, cache_errors=(RegistryError,)
    )
    calls: list[int] = []

    def fail() -> str:
        calls.append(1)
        raise RegistryError("registry down", code=Reason.REGISTRY_ERROR)

    depths = []
    for _ in range(4):
        with pytest.raises(RegistryError) as caught:
            cache.get_or_load("k", fail)
        depth, tb = 0, caught.value.__traceback__
        while tb is not None:
            depth, tb = depth + 1, tb.tb_next
        depths.append(depth)
    assert calls == [1]
    assert depths[1] == depths[3]  # replaying does not accumulate frames


def test_uncached_errors_are_not_remembered_and_zero_ttl_disables_caching() -> None:
    cache: SingleFlightCache[str] = SingleFlightCache(name="t", maxsize=8, ttl=0)
    with pytest.raises(ValueError, match="boom"):
        cache.get_or_load("k", lambda: (_ for _ in ()).throw(ValueError("boom")))
    assert cache.get_or_load("k", lambda: "a") == "a"
    assert cache.get_or_load("k", lambda: "b") == "b"
    assert len(cache) == 0
