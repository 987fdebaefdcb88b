"""Concurrent requests to a registry nobody has contacted yet: one challenge, one token per scope.

The first request to a host learns how it authenticates; requests made meanwhile wait for it, each
within its own deadline, and make their own attempt when it failed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from tests.support.registry import RegistryServer
from tests.support.registry_proxy import RegistryProxy
from webhook.deadline import Deadline
from webhook.errors import RegistryError
from webhook.images.reference import ImageRef
from webhook.registry import RegistryClient
from webhook.registry.transport import DeadlineExceeded

pytestmark = pytest.mark.registry


def _together(calls: list[Callable[[], object]]) -> list[object]:
    """Run ``calls`` in threads started at the same moment; each result, or the exception it raised."""
    start = threading.Barrier(len(calls))
    results: list[object] = [None] * len(calls)

    def run(index: int) -> None:
        start.wait(5)
        try:
            results[index] = calls[index]()
        except Exception as error:
            results[index] = error

    threads = [threading.Thread(target=run, args=(n,)) for n in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


def test_a_first_contact_costs_one_401_and_one_token_per_scope(token_registry: RegistryServer) -> None:
    assert token_registry.token_server is not None
    pusher = token_registry.pusher()
    images = {repo: pusher.push_image(repo, "v1") for repo in ("team/first", "team/second")}
    pusher.close()
    tokens = token_registry.token_server.count()
    token_registry.requests()  # synchronise with the access log
    before = len(token_registry.access_log.entries())
    with RegistryClient(token_registry.settings()) as client:
        calls: list[Callable[[], object]] = [
            lambda repo=repo, digest=image.digest: client.manifest(
                ImageRef.parse(token_registry.ref(repo)), digest, deadline=Deadline.after(10)
            )
            for repo, image in images.items()
            for _ in range(6)
        ]
        results = _together(calls)
    assert not [result for result in results if isinstance(result, Exception)], results
    token_registry.requests()
    logged = [
        line for line in token_registry.access_log.entries()[before:] if line.path.startswith("/v2/team/")
    ]
    unauthorized = sum(1 for line in logged if line.status == 401)
    assert unauthorized == 1, logged
    assert token_registry.token_server.count() - tokens == 2
    assert sorted(s for _, scopes in token_registry.token_server.requests[tokens:] for s in scopes) == [
        "repository:team/first:pull",
        "repository:team/second:pull",
    ]


def test_when_the_first_request_runs_out_of_time_a_waiting_one_makes_its_own_attempt(
    plain_registry: RegistryServer,
) -> None:
    pusher = plain_registry.pusher()
    stuck, fine = pusher.push_image("team/stuck", "v1"), pusher.push_image("team/fine", "v1")
    pusher.close()
    with RegistryProxy(plain_registry.host) as proxy:
        proxy.stall("/v2/team/stuck/")
        settings = plain_registry.settings(allow=frozenset({proxy.host}), insecure=frozenset({proxy.host}))
        with RegistryClient(settings) as client:
            outcome: dict[str, object] = {}

            def first() -> None:
                try:
                    client.manifest(
                        ImageRef.parse(f"{proxy.host}/team/stuck"), stuck.digest, deadline=Deadline.after(1.0)
                    )
                except RegistryError as error:
                    outcome["first"] = error

            leader = threading.Thread(target=first)
            leader.start()
            while not proxy.request_lines:  # the first request is at the host, held there
                time.sleep(0.01)
            started = time.monotonic()
            found = client.manifest(
                ImageRef.parse(f"{proxy.host}/team/fine"), fine.digest, deadline=Deadline.after(10)
            )
            waited = time.monotonic() - started
            leader.join(10)
            proxy.release()
    assert found.digest == fine.digest
    assert waited < 2.0  # it waited for the first request's deadline, not for its own
    assert isinstance(outcome["first"], DeadlineExceeded)


def test_a_waiting_request_gives_up_at_its_own_deadline(plain_registry: RegistryServer) -> None:
    pusher = plain_registry.pusher()
    stuck, other = pusher.push_image("team/stuck2", "v1"), pusher.push_image("team/other2", "v1")
    pusher.close()
    with RegistryProxy(plain_registry.host) as proxy:
        proxy.stall("/v2/team/stuck2/")
        settings = plain_registry.settings(allow=frozenset({proxy.host}), insecure=frozenset({proxy.host}))
        with RegistryClient(settings) as client:
            leader = threading.Thread(
                target=lambda: client.manifest(
                    ImageRef.parse(f"{proxy.host}/team/stuck2"), stuck.digest, deadline=Deadline.after(5.0)
                )
            )
            leader.start()
            while not proxy.request_lines:
                time.sleep(0.01)
            started = time.monotonic()
            with pytest.raises(DeadlineExceeded, match="waiting for the first request"):
                client.manifest(
                    ImageRef.parse(f"{proxy.host}/team/other2"), other.digest, deadline=Deadline.after(0.5)
                )
            assert time.monotonic() - started < 1.5  # not the first request's 5 s
            proxy.release()
            leader.join(10)  # released, the first request is answered
