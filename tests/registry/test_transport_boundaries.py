"""Edges of the network boundary: deadlines inside bodies, hostile headers and redirects, referrer caps,
and what the cache may (not) share between callers.

Deadlines are small so the suite stays fast; elapsed-time checks are generous bounds on deadline
enforcement (the property under test), not performance measurements.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC

import pytest

from tests.support.oci import sha256
from tests.support.registry import FaultRequest, FaultServer, http_response, status_server
from webhook.deadline import Deadline
from webhook.errors import RegistryError
from webhook.images.reference import ImageRef
from webhook.registry import CachingRegistry, Descriptor, Manifest, RegistryClient, RegistrySettings
from webhook.registry.credentials import BasicCredentials, DockerCredentials
from webhook.registry.markers import (
    ANNOTATION_REASON,
    ANNOTATION_SINCE,
    QUARANTINE_ARTIFACT_TYPE,
    list_markers,
)
from webhook.registry.port import MEDIA_OCI_INDEX, MEDIA_OCI_MANIFEST
from webhook.registry.transport import DeadlineExceeded

SLACK = 1.5
INDEX_HEADERS = {"Content-Type": MEDIA_OCI_INDEX}


def settings_for(*hosts: str, **overrides: object) -> RegistrySettings:
    values: dict[str, object] = {
        "allow": frozenset(hosts),
        "insecure": frozenset(hosts),
        "connect_timeout": 1.0,
        "read_timeout": 5.0,
        "backoff": 0.05,
    }
    values.update(overrides)
    return RegistrySettings(**values)  # type: ignore[arg-type]


def scripted(behaviour: Callable[[FaultRequest, socket.socket, threading.Event], None]) -> FaultServer:
    return FaultServer(behaviour)


# --- deadlines -----------------------------------------------------------------------------------


def test_body_that_stalls_shortly_before_the_deadline_is_cut_at_the_deadline() -> None:
    # Bytes arrive steadily until shortly before the deadline, then nothing: one blocking read would
    # otherwise wait a whole read timeout (taken from the budget left when the request started).
    budget, drip_for = 3.0, 2.4

    def behaviour(request: FaultRequest, sock: socket.socket, stopping: threading.Event) -> None:
        head = http_response(200, {"Content-Type": MEDIA_OCI_MANIFEST, "Content-Length": "100000"})
        sock.sendall(head)
        until = time.monotonic() + drip_for
        while time.monotonic() < until:
            if stopping.wait(0.1):
                return
            sock.sendall(b" ")
        stopping.wait(30)

    with scripted(behaviour) as server, RegistryClient(settings_for(server.host)) as client:
        started = time.monotonic()
        with pytest.raises(RegistryError) as caught:
            client.manifest(ImageRef.parse(server.ref()), "v1", deadline=Deadline.after(budget))
        elapsed = time.monotonic() - started
    assert "timed out" in caught.value.user_message
    assert elapsed < budget + SLACK


def test_unparseable_retry_after_is_a_plain_registry_error() -> None:
    # "\xb2" (superscript two) passes str.isdigit() but is no number.
    with (
        status_server(503, {"Retry-After": "\xb2"}) as server,
        RegistryClient(settings_for(server.host, max_attempts=2)) as client,
    ):
        with pytest.raises(RegistryError) as caught:
            client.resolve(ImageRef.parse(server.ref()), "v1", deadline=Deadline.after(3.0))
        assert len(server.requests) == 2
    assert "HTTP 503 Service Unavailable" in caught.value.user_message


# --- credentials and redirects ---------------------------------------------------------------------


def test_a_401_from_a_blob_redirect_target_sends_no_credentials_anywhere() -> None:
    content = b"blob"
    token_requests: list[FaultRequest] = []

    def realm(request: FaultRequest, sock: socket.socket, stopping: threading.Event) -> None:
        token_requests.append(request)
        sock.sendall(http_response(200, {"Content-Type": "application/json"}, b'{"token": "t0k3n"}'))

    with scripted(realm) as token_server:

        def storage(request: FaultRequest, sock: socket.socket, stopping: threading.Event) -> None:
            challenge = f'Bearer realm="http://{token_server.host}/token",service="s"'
            sock.sendall(http_response(401, {"WWW-Authenticate": challenge}))

        with scripted(storage) as storage_server:

            def registry(request: FaultRequest, sock: socket.socket, stopping: threading.Event) -> None:
                sock.sendall(http_response(307, {"Location": f"http://{storage_server.host}/b"}))

            with scripted(registry) as server:
                credentials = DockerCredentials(by_host={server.host: BasicCredentials("alice", "s3cret")})
                # The token host is allowed (as a realm of some registry may be); the storage host is not.
                settings = settings_for(
                    server.host,
                    token_server.host,
                    insecure=frozenset({server.host, storage_server.host, token_server.host}),
                    credentials=credentials,
                )
                with RegistryClient(settings) as client, pytest.raises(RegistryError) as caught:
                    client.blob(
                        ImageRef.parse(server.ref()),
                        sha256(content),
                        deadline=Deadline.after(3.0),
                        max_bytes=64,
                    )
                assert all("authorization" not in r.headers for r in storage_server.requests)
    assert token_requests == []
    assert "HTTP 401" in caught.value.user_message


# --- referrers -------------------------------------------------------------------------------------


def _entry(n: int) -> dict[str, object]:
    return {"mediaType": MEDIA_OCI_MANIFEST, "digest": sha256(b"%d" % n), "size": n, "artifactType": "a"}


def test_referrers_entry_cap_counts_every_page() -> None:
    subject = sha256(b"subject")
    pages = [[_entry(1), _entry(2)], [_entry(3), _entry(4)]]

    def behaviour(request: FaultRequest, sock: socket.socket, stopping: threading.Event) -> None:
        page = 1 if "page=1" in request.path else 0
        body = json.dumps({"schemaVersion": 2, "mediaType": MEDIA_OCI_INDEX, "manifests": pages[page]})
        headers = dict(INDEX_HEADERS)
        if page == 0:
            headers["Link"] = f'</v2/demo/app/referrers/{subject}?page=1>; rel="next"'
        sock.sendall(http_response(200, headers, body.encode()))

    with scripted(behaviour) as server:
        with RegistryClient(settings_for(server.host, referrers_max_entries=3)) as client:
            with pytest.raises(RegistryError, match="more than 3 referrers"):
                client.referrers(ImageRef.parse(server.ref()), subject, deadline=Deadline.after(3.0))
        with RegistryClient(settings_for(server.host, referrers_max_entries=4)) as client:
            found = client.referrers(ImageRef.parse(server.ref()), subject, deadline=Deadline.after(3.0))
    assert [d.size for d in found] == [1, 2, 3, 4]


@pytest.mark.parametrize("where", ["api", "fallback"])
@pytest.mark.parametrize("body", [b"[]", b"null", b'"manifests"'])
def test_referrers_index_that_is_not_a_json_object_is_an_error(where: str, body: bytes) -> None:
    # Read as "no referrers", a garbled index would hide quarantine markers: fail closed.
    subject = sha256(b"subject")

    def behaviour(request: FaultRequest, sock: socket.socket, stopping: threading.Event) -> None:
        if "/referrers/" in request.path and where == "fallback":
            sock.sendall(http_response(404, {}))
        else:
            sock.sendall(http_response(200, INDEX_HEADERS, body))

    with scripted(behaviour) as server, RegistryClient(settings_for(server.host)) as client:
        with pytest.raises(RegistryError, match="not a JSON object"):
            client.referrers(ImageRef.parse(server.ref()), subject, deadline=Deadline.after(3.0))


# --- the cache -------------------------------------------------------------------------------------


class _ScriptedRegistry:
    """An in-memory Registry whose ``resolve`` runs the given function (other calls are unused)."""

    def __init__(self, resolve: Callable[[int], str]) -> None:
        self._resolve = resolve
        self.calls = 0
        self._lock = threading.Lock()

    def resolve(self, repo: ImageRef, reference: str, *, deadline: Deadline) -> str:
        with self._lock:
            self.calls += 1
            call = self.calls
        return self._resolve(call)

    def manifest(self, repo: ImageRef, reference: str, *, deadline: Deadline) -> Manifest:
        raise NotImplementedError

    def manifest_if_exists(self, repo: ImageRef, tag: str, *, deadline: Deadline) -> Manifest | None:
        raise NotImplementedError

    def blob(self, repo: ImageRef, digest: str, *, deadline: Deadline, max_bytes: int) -> bytes:
        raise NotImplementedError

    def referrers(
        self, repo: ImageRef, digest: str, *, deadline: Deadline, artifact_type: str | None = None
    ) -> tuple[Descriptor, ...]:
        raise NotImplementedError

    def push_blob(self, repo: ImageRef, data: bytes, *, deadline: Deadline) -> Descriptor:
        raise NotImplementedError

    def push_manifest(
        self, repo: ImageRef, body: bytes, media_type: str, *, deadline: Deadline, tag: str | None = None
    ) -> str:
        raise NotImplementedError

    def delete_manifest(self, repo: ImageRef, digest: str, *, deadline: Deadline) -> None:
        raise NotImplementedError


def test_a_waiting_caller_is_not_failed_by_the_deadline_of_the_caller_it_waited_for() -> None:
    digest = sha256(b"manifest")
    leader_inside = threading.Event()
    follower_waiting = threading.Event()

    def resolve(call: int) -> str:
        if call == 1:
            leader_inside.set()
            follower_waiting.wait(5)
            raise DeadlineExceeded("HEAD .../manifests/v1: timed out: the deadline passed")
        return digest

    inner = _ScriptedRegistry(resolve)
    misses: list[bool] = []

    def on_lookup(name: str, hit: bool) -> None:
        misses.append(hit)
        if misses.count(False) == 2:
            follower_waiting.set()

    cached = CachingRegistry(inner, failure_ttl=60.0, on_lookup=on_lookup)
    repo = ImageRef.parse("r.example/demo/app")
    outcome: dict[str, object] = {}

    def leader() -> None:
        try:
            cached.resolve(repo, "v1", deadline=Deadline.after(0.5))
        except RegistryError as error:
            outcome["leader"] = error

    thread = threading.Thread(target=leader)
    thread.start()
    assert leader_inside.wait(5)
    # This caller joins the leader's round trip and has plenty of time of its own.
    outcome["follower"] = cached.resolve(repo, "v1", deadline=Deadline.after(10.0))
    thread.join(5)
    assert isinstance(outcome["leader"], DeadlineExceeded)
    assert outcome["follower"] == digest
    assert inner.calls == 2


def test_a_retry_cut_short_by_one_callers_deadline_is_not_replayed_to_others() -> None:
    with status_server(503) as server:
        settings = settings_for(server.host, max_attempts=3, backoff=0.5)
        with RegistryClient(settings) as client:
            cached = CachingRegistry(client, failure_ttl=60.0)
            repo = ImageRef.parse(server.ref())
            with pytest.raises(RegistryError, match="would pass the deadline"):
                cached.resolve(repo, "v1", deadline=Deadline.after(0.3))
            assert len(server.requests) == 1
            # A caller with time for the retries asks the registry itself.
            with pytest.raises(RegistryError, match="gave up after 3 attempts"):
                cached.resolve(repo, "v1", deadline=Deadline.after(5.0))
            assert len(server.requests) == 4


# --- quarantine markers ----------------------------------------------------------------------------


class _MarkerRegistry(_ScriptedRegistry):
    def __init__(self, descriptors: tuple[Descriptor, ...]) -> None:
        super().__init__(lambda call: "")
        self._descriptors = descriptors

    def referrers(
        self, repo: ImageRef, digest: str, *, deadline: Deadline, artifact_type: str | None = None
    ) -> tuple[Descriptor, ...]:
        return tuple(d for d in self._descriptors if artifact_type in (None, d.artifact_type))


@pytest.mark.parametrize("since", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"])
def test_marker_times_out_of_the_utc_range_are_dropped(since: str) -> None:
    subject = sha256(b"subject")
    marker = Descriptor(
        media_type=MEDIA_OCI_MANIFEST,
        digest=sha256(b"marker"),
        size=2,
        artifact_type=QUARANTINE_ARTIFACT_TYPE,
        annotations={ANNOTATION_REASON: "CVE", ANNOTATION_SINCE: since},
    )
    found = list_markers(
        _MarkerRegistry((marker,)), ImageRef.parse("r.example/demo/app"), subject, deadline=Deadline.after(1)
    )
    assert len(found) == 1
    entry = found[0].entry
    assert entry.reason == "CVE"
    # Whatever is kept must be printable in UTC (the CLI lists markers that way).
    assert entry.since is None or entry.since.astimezone(UTC).tzinfo is not None
