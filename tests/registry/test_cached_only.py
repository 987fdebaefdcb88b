"""CachingRegistry.cached_only: answers from the caches alone, never a registry call, never a wait."""

from __future__ import annotations

import threading

import pytest

from tests.support.memory_registry import InMemoryRegistry
from webhook.deadline import Deadline
from webhook.errors import RegistryError
from webhook.images.reference import ImageRef
from webhook.registry.cached import CachingRegistry, NotCached

REPO = ImageRef.parse("ghcr.io/acme/app")


def _deadline() -> Deadline:
    return Deadline.after(5.0)


def _caching(registry: InMemoryRegistry, lookups: list[tuple[str, bool]] | None = None) -> CachingRegistry:
    return CachingRegistry(
        registry, on_lookup=(lambda name, hit: lookups.append((name, hit))) if lookups is not None else None
    )


def test_cached_answers_come_from_the_caches_and_count_once_used() -> None:
    registry = InMemoryRegistry()
    image = registry.push_image(REPO, "v1")
    lookups: list[tuple[str, bool]] = []
    caching = _caching(registry, lookups)
    digest = caching.resolve(REPO, "v1", deadline=_deadline())
    manifest = caching.manifest(REPO, image.digest, deadline=_deadline())
    config = manifest.json()["config"]["digest"]
    blob = caching.blob(REPO, config, deadline=_deadline(), max_bytes=1024)
    referrers = caching.referrers(REPO, image.digest, deadline=_deadline())
    absent = caching.manifest_if_exists(REPO, "sha256-none.sig", deadline=_deadline())
    calls, counted = list(registry.calls), list(lookups)

    view = caching.cached_only()
    assert view.resolve(REPO, "v1", deadline=_deadline()) == digest == image.digest
    assert view.manifest(REPO, image.digest, deadline=_deadline()) == manifest
    assert view.blob(REPO, config, deadline=_deadline(), max_bytes=1024) == blob
    assert view.referrers(REPO, image.digest, deadline=_deadline()) == referrers
    assert view.manifest_if_exists(REPO, "sha256-none.sig", deadline=_deadline()) is absent is None
    assert not view.missed
    assert registry.calls == calls  # nothing went to the registry
    assert lookups == counted  # not counted yet
    view.count_hits()
    assert lookups[len(counted) :] == [
        ("resolve", True),
        ("manifest", True),
        ("blob", True),
        ("referrers", True),
        ("manifest-if-exists", True),
    ]
    view.count_hits()
    assert len(lookups) == len(counted) + 5  # once


def test_a_miss_raises_not_cached_and_leaves_the_cache_to_the_real_lookup() -> None:
    registry = InMemoryRegistry()
    image = registry.push_image(REPO, "v1")
    lookups: list[tuple[str, bool]] = []
    caching = _caching(registry, lookups)
    view = caching.cached_only()
    with pytest.raises(NotCached):
        view.resolve(REPO, "v1", deadline=_deadline())
    assert view.missed and not caching.missed
    assert registry.calls == [] and lookups == []
    # The view loaded nothing: the real lookup goes to the registry and counts its miss.
    assert caching.resolve(REPO, "v1", deadline=_deadline()) == image.digest
    assert registry.calls == [("manifest", "v1")] and lookups == [("resolve", False)]
    assert caching.cached_only().resolve(REPO, "v1", deadline=_deadline()) == image.digest


def test_a_cached_failure_is_replayed_as_an_answer() -> None:
    registry = InMemoryRegistry()
    registry.fail.add("referrers")
    caching = _caching(registry)
    digest = "sha256:" + "1" * 64
    with pytest.raises(RegistryError, match="injected failure"):
        caching.referrers(REPO, digest, deadline=_deadline())
    view = caching.cached_only()
    with pytest.raises(RegistryError, match="injected failure") as raised:
        view.referrers(REPO, digest, deadline=_deadline())
    assert not isinstance(raised.value, NotCached)
    assert not view.missed and registry.calls == [("referrers", digest)]


def test_writes_through_the_view_reach_no_registry() -> None:
    registry = InMemoryRegistry()
    image = registry.push_image(REPO, "v1")
    view = _caching(registry).cached_only()
    with pytest.raises(NotCached):
        view.push_blob(REPO, b"new", deadline=_deadline())
    with pytest.raises(NotCached):
        view.push_manifest(REPO, b"{}", "application/json", deadline=_deadline(), tag="v2")
    with pytest.raises(NotCached):
        view.delete_manifest(REPO, image.digest, deadline=_deadline())
    assert registry.resolve(REPO, "v1", deadline=_deadline()) == image.digest
    assert "v2" not in registry.repo(REPO).tags


class _Slow(InMemoryRegistry):
    def __init__(self) -> None:
        super().__init__()
        self.entered, self.release = threading.Event(), threading.Event()

    def resolve(self, repo: ImageRef, reference: str, *, deadline: Deadline) -> str:
        self.entered.set()
        self.release.wait(5)
        return super().resolve(repo, reference, deadline=deadline)


def test_a_lookup_in_progress_is_a_miss_not_a_wait() -> None:
    registry = _Slow()
    registry.push_image(REPO, "v1")
    caching = _caching(registry)
    loader = threading.Thread(target=lambda: caching.resolve(REPO, "v1", deadline=_deadline()))
    loader.start()
    try:
        assert registry.entered.wait(5)
        view = caching.cached_only()
        with pytest.raises(NotCached):
            view.resolve(REPO, "v1", deadline=_deadline())
        assert view.missed
        assert loader.is_alive()  # answered while the round trip was still in progress
    finally:
        registry.release.set()
        loader.join(5)
