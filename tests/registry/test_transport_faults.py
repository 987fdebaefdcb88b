"""Broken and hostile registries: every fault ends in a clear RegistryError within the deadline.

Deadlines are small (about 2 s) so the suite stays fast. The elapsed-time checks are generous
bounds on deadline enforcement (the property under test), not performance measurements.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from tests.support.oci import sha256
from tests.support.registry import (
    FaultRequest,
    FaultServer,
    RegistryServer,
    dripping_server,
    hanging_server,
    http_response,
    listening_socket,
    oversized_server,
    redirect_server,
    refused_address,
    status_server,
    untrusted_tls_server,
    wrong_digest_server,
)
from webhook.deadline import Deadline
from webhook.errors import RegistryError
from webhook.images.reference import ImageRef
from webhook.registry import RegistryClient, RegistrySettings
from webhook.registry.credentials import BasicCredentials, DockerCredentials

BUDGET = 2.0
# Scheduling slack on a loaded 2-core CI machine; far below what an unenforced deadline would take.
SLACK = 1.5


def settings_for(*hosts: str, tls: bool = False, **overrides: object) -> RegistrySettings:
    values: dict[str, object] = {
        "allow": frozenset(hosts),
        "insecure": frozenset() if tls else frozenset(hosts),
        "connect_timeout": 1.0,
        "read_timeout": 5.0,
        "backoff": 0.05,
    }
    values.update(overrides)
    return RegistrySettings(**values)  # type: ignore[arg-type]


def fails_within_deadline(call: Callable[[Deadline], object], budget: float = BUDGET) -> RegistryError:
    deadline = Deadline.after(budget)
    started = time.monotonic()
    with pytest.raises(RegistryError) as caught:
        call(deadline)
    assert time.monotonic() - started < budget + SLACK
    return caught.value


@pytest.mark.registry
def test_stopped_registry_is_connection_refused(registry_factory: Callable[..., RegistryServer]) -> None:
    server = registry_factory("plain")
    server.pusher().push_image("demo/app", "v1")
    server.stop()
    with RegistryClient(server.settings()) as client:
        error = fails_within_deadline(
            lambda d: client.resolve(ImageRef.parse(server.ref("demo/app")), "v1", deadline=d)
        )
    assert error.code == "registry-error"
    assert f"HEAD http://{server.host}/v2/demo/app/manifests/v1: connection refused" in error.user_message


def test_port_without_listener_is_connection_refused() -> None:
    host = refused_address()
    with RegistryClient(settings_for(host)) as client:
        error = fails_within_deadline(
            lambda d: client.resolve(ImageRef.parse(f"{host}/demo/app"), "v1", deadline=d)
        )
    assert "connection refused" in error.user_message


def test_server_that_never_answers_times_out_at_the_deadline() -> None:
    with hanging_server() as server, RegistryClient(settings_for(server.host)) as client:
        error = fails_within_deadline(
            lambda d: client.resolve(ImageRef.parse(server.ref()), "v1", deadline=d)
        )
    assert "timed out" in error.user_message
    assert server.host in error.user_message


@pytest.mark.parametrize("phase", ["headers", "body"])
def test_slow_drip_is_cut_off_at_the_deadline(phase: str) -> None:
    # One byte per 0.1 s never trips a 5 s read timeout: only the deadline can stop it.
    with (
        dripping_server(phase=phase, interval=0.1) as server,
        RegistryClient(settings_for(server.host)) as client,
    ):
        error = fails_within_deadline(
            lambda d: client.manifest(ImageRef.parse(server.ref()), "v1", deadline=d), budget=1.5
        )
    assert "timed out" in error.user_message


def test_server_error_is_retried_then_reported() -> None:
    with status_server(500) as server, RegistryClient(settings_for(server.host, max_attempts=3)) as client:
        error = fails_within_deadline(
            lambda d: client.resolve(ImageRef.parse(server.ref()), "v1", deadline=d)
        )
        assert len(server.requests) == 3
    # HEAD answers have no body, so no registry error code to quote.
    assert "HTTP 500 Internal Server Error (gave up after 3 attempts)" in error.user_message


def test_429_with_retry_after_seconds_is_honoured_while_the_deadline_allows() -> None:
    with status_server(429, {"Retry-After": "1"}) as server:
        with RegistryClient(settings_for(server.host, max_attempts=2)) as client:
            started = time.monotonic()
            error = fails_within_deadline(
                lambda d: client.resolve(ImageRef.parse(server.ref()), "v1", deadline=d), budget=3.0
            )
            waited = time.monotonic() - started
        assert len(server.requests) == 2
    assert waited >= 1.0  # the second attempt came after Retry-After
    assert "HTTP 429 Too Many Requests" in error.user_message


@pytest.mark.parametrize("form", ["seconds", "http-date"])
def test_429_retry_after_beyond_the_deadline_fails_at_once(form: str) -> None:
    # Built when the test runs, not at collection: a date made minutes earlier may already be past.
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=300), usegmt=True)
    retry_after = "30" if form == "seconds" else later
    with status_server(429, {"Retry-After": retry_after}) as server:
        with RegistryClient(settings_for(server.host)) as client:
            error = fails_within_deadline(
                lambda d: client.resolve(ImageRef.parse(server.ref()), "v1", deadline=d)
            )
        assert len(server.requests) == 1
    assert "HTTP 429 Too Many Requests" in error.user_message
    assert "would pass the deadline" in error.user_message


def test_retry_after_http_date_in_the_past_retries_immediately() -> None:
    past = format_datetime(datetime.now(UTC) - timedelta(seconds=60), usegmt=True)
    with status_server(503, {"Retry-After": past}) as server:
        with RegistryClient(settings_for(server.host, max_attempts=3)) as client:
            error = fails_within_deadline(
                lambda d: client.resolve(ImageRef.parse(server.ref()), "v1", deadline=d)
            )
        assert len(server.requests) == 3
    assert "HTTP 503 Service Unavailable" in error.user_message


def test_wrong_docker_content_digest_is_a_digest_mismatch() -> None:
    with wrong_digest_server() as server, RegistryClient(settings_for(server.host)) as client:
        repo = ImageRef.parse(server.ref())
        error = fails_within_deadline(lambda d: client.resolve(repo, "v1", deadline=d))
        assert error.code == "digest-mismatch"
        assert "does not match the content" in error.user_message
        # Asked by digest, content that does not hash to it is refused too.
        asked = "sha256:" + "1" * 64
        error = fails_within_deadline(lambda d: client.manifest(repo, asked, deadline=d))
    assert error.code == "digest-mismatch"


def test_declared_oversized_manifest_is_refused_up_front() -> None:
    with oversized_server(5 * 1024 * 1024) as server, RegistryClient(settings_for(server.host)) as client:
        error = fails_within_deadline(
            lambda d: client.manifest(ImageRef.parse(server.ref()), "v1", deadline=d)
        )
    assert "response of 5242880 bytes exceeds the limit of 4194304 bytes" in error.user_message


def test_undeclared_oversized_manifest_is_cut_at_the_cap() -> None:
    with oversized_server(1024 * 1024, declare_length=False) as server:
        settings = settings_for(server.host, manifest_max_bytes=64 * 1024)
        with RegistryClient(settings) as client:
            error = fails_within_deadline(
                lambda d: client.manifest(ImageRef.parse(server.ref()), "v1", deadline=d)
            )
    assert "response exceeds the limit of 65536 bytes" in error.user_message


def test_manifest_redirects_are_not_followed() -> None:
    with listening_socket() as (elsewhere, sock), redirect_server(f"http://{elsewhere}/v2/") as server:
        with RegistryClient(settings_for(server.host)) as client:
            error = fails_within_deadline(
                lambda d: client.manifest(ImageRef.parse(server.ref()), "v1", deadline=d)
            )
        with pytest.raises(BlockingIOError):
            sock.accept()
    assert "HTTP 307" in error.user_message


def test_blob_redirect_to_plain_http_host_not_in_insecure_is_refused() -> None:
    digest = sha256(b"blob")
    with listening_socket() as (elsewhere, sock), redirect_server(f"http://{elsewhere}/blob") as server:
        with RegistryClient(settings_for(server.host)) as client:
            error = fails_within_deadline(
                lambda d: client.blob(ImageRef.parse(server.ref()), digest, deadline=d, max_bytes=1024)
            )
        with pytest.raises(BlockingIOError):
            sock.accept()
    assert error.code == "registry-not-allowed"
    assert f"refusing redirect to http://{elsewhere}" in error.user_message


def _blob_server(content: bytes) -> FaultServer:
    def behaviour(request: FaultRequest, sock: socket.socket, stopping: object) -> None:
        sock.sendall(http_response(200, {"Content-Type": "application/octet-stream"}, content))

    return FaultServer(behaviour)  # type: ignore[arg-type]


def _authenticating_redirector(location: str) -> FaultServer:
    def behaviour(request: FaultRequest, sock: socket.socket, stopping: object) -> None:
        if "authorization" not in request.headers:
            sock.sendall(http_response(401, {"WWW-Authenticate": 'Basic realm="test"'}))
        else:
            sock.sendall(http_response(307, {"Location": location}))

    return FaultServer(behaviour)  # type: ignore[arg-type]


def test_blob_redirect_is_followed_verified_and_never_carries_credentials() -> None:
    content = b"signature bundle bytes"
    with _blob_server(content) as storage, _authenticating_redirector(f"http://{storage.host}/b") as server:
        credentials = DockerCredentials(
            by_host={server.host: BasicCredentials("alice", "pw-not-for-storage")}
        )
        # The storage host is reachable over HTTP (insecure) but deliberately not in the allowlist.
        settings = settings_for(
            server.host, insecure=frozenset({server.host, storage.host}), credentials=credentials
        )
        with RegistryClient(settings) as client:
            blob = client.blob(
                ImageRef.parse(server.ref()), sha256(content), deadline=Deadline.after(BUDGET), max_bytes=1024
            )
            assert blob == content
            # Same redirect, content that does not match the digest asked for: refused.
            error = fails_within_deadline(
                lambda d: client.blob(
                    ImageRef.parse(server.ref()), sha256(b"other"), deadline=d, max_bytes=1024
                )
            )
    assert error.code == "digest-mismatch"
    assert any("authorization" in r.headers for r in server.requests)
    assert storage.requests
    assert all("authorization" not in r.headers for r in storage.requests)


def test_untrusted_certificate_is_a_clear_tls_error() -> None:
    with untrusted_tls_server() as server, RegistryClient(settings_for(server.host, tls=True)) as client:
        error = fails_within_deadline(
            lambda d: client.resolve(ImageRef.parse(server.ref()), "v1", deadline=d)
        )
    assert "certificate verify failed: unable to get local issuer certificate" in error.user_message


@pytest.mark.registry
def test_tls_registry_with_its_ca_works_and_without_it_fails(tls_registry: RegistryServer) -> None:
    image = tls_registry.pusher().push_image("demo/ca", "v1")
    repo = ImageRef.parse(tls_registry.ref("demo/ca"))
    with RegistryClient(tls_registry.settings()) as client:
        assert client.resolve(repo, "v1", deadline=Deadline.after(BUDGET)) == image.digest
    with RegistryClient(tls_registry.settings(ca_file=None)) as client:
        error = fails_within_deadline(lambda d: client.resolve(repo, "v1", deadline=d))
    assert "certificate verify failed" in error.user_message


def test_keep_alive_connections_are_reused() -> None:
    digest = sha256(b"manifest")

    def behaviour(request: FaultRequest, sock: socket.socket, stopping: object) -> None:
        sock.sendall(http_response(200, {"Docker-Content-Digest": digest}))

    with FaultServer(behaviour) as server, RegistryClient(settings_for(server.host)) as client:  # type: ignore[arg-type]
        for _ in range(5):
            assert (
                client.resolve(ImageRef.parse(server.ref()), "v1", deadline=Deadline.after(BUDGET)) == digest
            )
        assert (server.connections, len(server.requests)) == (1, 5)
