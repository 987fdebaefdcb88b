"""CachingRegistry against a real registry: TTLs, moving tags, single-flight, failures, invalidation."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from tests.support.registry import RegistryServer, hanging_server
from webhook.deadline import Deadline
from webhook.errors import RegistryError
from webhook.images.reference import ImageRef
from webhook.registry import CachingRegistry, RegistryClient, RegistrySettings
from webhook.registry.markers import add_marker, read_marker

pytestmark = pytest.mark.registry


@pytest.fixture
def client(plain_registry: RegistryServer) -> Iterator[RegistryClient]:
    with RegistryClient(plain_registry.settings()) as instance:
        yield instance


def test_moving_tag_is_seen_after_the_tag_ttl(
    plain_registry: RegistryServer, client: RegistryClient, deadline: Deadline
) -> None:
    pusher = plain_registry.pusher()
    old = pusher.push_image("demo/moving", "stable", content=b"old")
    new = pusher.push_image("demo/moving", None, content=b"new")
    cached = CachingRegistry(client, tag_ttl=0.5)
    repo = ImageRef.parse(plain_registry.ref("demo/moving"))
    assert cached.resolve(repo, "stable", deadline=deadline) == old.digest
    pusher.retag("demo/moving", new.digest, "stable")
    assert client.resolve(repo, "stable", deadline=deadline) == new.digest  # the registry moved on...
    assert cached.resolve(repo, "stable", deadline=deadline) == old.digest  # ...the cache not yet
    time.sleep(0.6)
    assert cached.resolve(repo, "stable", deadline=deadline) == new.digest


def test_concurrent_resolves_of_one_tag_make_one_registry_request(
    plain_registry: RegistryServer, client: RegistryClient
) -> None:
    image = plain_registry.pusher().push_image("demo/single-flight", "hot")
    cached = CachingRegistry(client)
    repo = ImageRef.parse(plain_registry.ref("demo/single-flight"))
    before = plain_registry.requests(method="HEAD", path=r"^/v2/demo/single-flight/manifests/hot$")
    start = threading.Barrier(16)
    results: list[str] = []
    errors: list[BaseException] = []

    def admit() -> None:
        start.wait()
        try:
            results.append(cached.resolve(repo, "hot", deadline=Deadline.after(10.0)))
        except BaseException as error:  # collected and asserted below
            errors.append(error)

    threads = [threading.Thread(target=admit) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert not errors
    assert results == [image.digest] * 16
    after = plain_registry.requests(method="HEAD", path=r"^/v2/demo/single-flight/manifests/hot$")
    assert after - before == 1


def test_failures_are_cached_for_the_failure_ttl(
    plain_registry: RegistryServer, client: RegistryClient, deadline: Deadline
) -> None:
    lookups: list[tuple[str, bool]] = []
    cached = CachingRegistry(client, failure_ttl=0.5, on_lookup=lambda name, hit: lookups.append((name, hit)))
    repo = ImageRef.parse(plain_registry.ref("demo/late"))
    with pytest.raises(RegistryError, match="not found"):
        cached.resolve(repo, "soon", deadline=deadline)
    image = plain_registry.pusher().push_image("demo/late", "soon")
    with pytest.raises(RegistryError, match="not found"):
        cached.resolve(repo, "soon", deadline=deadline)  # replayed, not asked again
    assert plain_registry.requests(method="HEAD", path=r"^/v2/demo/late/manifests/soon$") == 1
    time.sleep(0.6)
    assert cached.resolve(repo, "soon", deadline=deadline) == image.digest
    assert lookups == [("resolve", False), ("resolve", True), ("resolve", False)]


def test_a_callers_spent_deadline_is_not_cached_as_a_registry_failure() -> None:
    with hanging_server() as server:
        settings = RegistrySettings(allow=frozenset({server.host}), insecure=frozenset({server.host}))
        with RegistryClient(settings) as client:
            cached = CachingRegistry(client, failure_ttl=60.0)
            repo = ImageRef.parse(server.ref())
            for _ in range(2):
                with pytest.raises(RegistryError, match="timed out"):
                    cached.resolve(repo, "v1", deadline=Deadline.after(0.4))
        assert len(server.requests) == 2


def test_manifests_by_digest_are_cached_and_by_tag_expire(
    plain_registry: RegistryServer, client: RegistryClient, deadline: Deadline
) -> None:
    image = plain_registry.pusher().push_image("demo/immutable", "t")
    cached = CachingRegistry(client, tag_ttl=0.0)
    repo = ImageRef.parse(plain_registry.ref("demo/immutable"))
    path = rf"^/v2/demo/immutable/manifests/{image.digest}$"
    for _ in range(3):
        assert cached.manifest(repo, image.digest, deadline=deadline).body == image.body
    assert plain_registry.requests(method="GET", path=path) == 1
    for _ in range(2):
        assert cached.manifest(repo, "t", deadline=deadline).digest == image.digest
    assert plain_registry.requests(method="GET", path=r"^/v2/demo/immutable/manifests/t$") == 2


def test_markers_written_through_the_cache_are_seen_at_once(
    plain_registry: RegistryServer, client: RegistryClient, deadline: Deadline
) -> None:
    image = plain_registry.pusher().push_image("demo/invalidate", "v1")
    cached = CachingRegistry(client, referrers_ttl=300.0)
    repo = ImageRef.parse(plain_registry.ref("demo/invalidate"))
    assert read_marker(cached, repo, image.digest, deadline=deadline) is None
    assert read_marker(cached, repo, image.digest, deadline=deadline) is None  # cached empty answer
    add_marker(cached, repo, image.digest, reason="CVE-2026-0001", by="sec", deadline=deadline)
    entry = read_marker(cached, repo, image.digest, deadline=deadline)
    assert entry is not None
    assert (entry.digest, entry.reason, entry.by, entry.source) == (
        image.digest,
        "CVE-2026-0001",
        "sec",
        "registry",
    )
