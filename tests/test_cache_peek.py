"""SingleFlightCache.peek: the cached answer or MISSING, never a load and never a wait; hits counted apart."""

from __future__ import annotations

import threading
import time

import pytest

from webhook.cache import MISSING, SingleFlightCache


class Boom(Exception):
    pass


def _cache(lookups: list[tuple[str, bool]], **options: float) -> SingleFlightCache[str]:
    return SingleFlightCache(
        name="test",
        maxsize=8,
        ttl=options.get("ttl", 60.0),
        failure_ttl=options.get("failure_ttl", 60.0),
        cache_errors=(Boom,),
        on_lookup=lambda name, hit: lookups.append((name, hit)),
    )


def test_a_missing_key_is_missing_and_not_counted() -> None:
    lookups: list[tuple[str, bool]] = []
    cache = _cache(lookups)
    assert cache.peek("k") is MISSING
    assert (cache.stats.hits, cache.stats.misses, lookups) == (0, 0, [])


def test_a_cached_value_is_returned_and_counted_only_when_used() -> None:
    lookups: list[tuple[str, bool]] = []
    cache = _cache(lookups)
    assert cache.get_or_load("k", lambda: "v") == "v"
    assert lookups == [("test", False)]
    assert cache.peek("k") == "v"
    assert cache.stats.hits == 0 and lookups == [("test", False)]
    cache.count_hit()
    assert cache.stats.hits == 1 and lookups == [("test", False), ("test", True)]


def test_a_cached_failure_is_raised() -> None:
    cache = _cache([])
    with pytest.raises(Boom):
        cache.get_or_load("k", lambda: (_ for _ in ()).throw(Boom("down")))
    with pytest.raises(Boom, match="down"):
        cache.peek("k")


def test_an_expired_entry_is_missing() -> None:
    cache = _cache([], ttl=0.05)
    cache.get_or_load("k", lambda: "v")
    time.sleep(0.1)
    assert cache.peek("k") is MISSING


def test_a_load_in_progress_is_not_waited_for() -> None:
    cache = _cache([])
    started, release = threading.Event(), threading.Event()

    def slow() -> str:
        started.set()
        release.wait(5)
        return "v"

    loader = threading.Thread(target=lambda: cache.get_or_load("k", slow))
    loader.start()
    try:
        assert started.wait(5)
        assert cache.peek("k") is MISSING
        assert loader.is_alive()  # answered while the load was still in progress
    finally:
        release.set()
        loader.join(5)
    assert cache.peek("k") == "v"
