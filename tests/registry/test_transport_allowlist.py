"""The host allowlist: nothing outside it is ever contacted, proven with listening sockets."""

from __future__ import annotations

import socket

import pytest

from tests.support.registry import FaultRequest, FaultServer, http_response, listening_socket
from webhook.deadline import Deadline
from webhook.errors import RegistryError
from webhook.images.reference import ImageRef
from webhook.registry import RegistryClient, RegistrySettings


def assert_nothing_connected(sock: socket.socket) -> None:
    with pytest.raises(BlockingIOError):
        sock.accept()


@pytest.mark.parametrize(
    "call",
    [
        "resolve",
        "manifest",
        "manifest_if_exists",
        "blob",
        "referrers",
        "push_blob",
        "push_manifest",
        "delete",
    ],
)
def test_host_outside_the_allowlist_is_refused_before_any_connection(call: str) -> None:
    digest = "sha256:" + "a" * 64
    with listening_socket() as (host, sock):
        settings = RegistrySettings(allow=frozenset({"ghcr.io"}), insecure=frozenset({host}))
        repo = ImageRef.parse(f"{host}/demo/app:v1")
        deadline = Deadline.after(2.0)
        calls = {
            "resolve": lambda c: c.resolve(repo, "v1", deadline=deadline),
            "manifest": lambda c: c.manifest(repo, digest, deadline=deadline),
            "manifest_if_exists": lambda c: c.manifest_if_exists(repo, "v1", deadline=deadline),
            "blob": lambda c: c.blob(repo, digest, deadline=deadline, max_bytes=10),
            "referrers": lambda c: c.referrers(repo, digest, deadline=deadline),
            "push_blob": lambda c: c.push_blob(repo, b"x", deadline=deadline),
            "push_manifest": lambda c: c.push_manifest(repo, b"{}", "application/json", deadline=deadline),
            "delete": lambda c: c.delete_manifest(repo, digest, deadline=deadline),
        }
        with RegistryClient(settings) as client, pytest.raises(RegistryError) as caught:
            calls[call](client)
        assert_nothing_connected(sock)
    assert caught.value.code == "registry-not-allowed"
    assert f"registry host {host} is not in registries.allow" in caught.value.user_message


def test_allow_entries_compare_host_and_port_exactly() -> None:
    with listening_socket() as (host, sock):
        bare_host = host.split(":")[0]
        settings = RegistrySettings(allow=frozenset({bare_host}), insecure=frozenset({bare_host, host}))
        with RegistryClient(settings) as client, pytest.raises(RegistryError) as caught:
            client.resolve(ImageRef.parse(f"{host}/demo/app"), "v1", deadline=Deadline.after(2.0))
        assert_nothing_connected(sock)
    assert caught.value.code == "registry-not-allowed"


def test_token_realm_over_plain_http_is_refused_unless_insecure() -> None:
    with listening_socket() as (realm_host, sock):

        def behaviour(request: FaultRequest, conn: socket.socket, stopping: object) -> None:
            challenge = (
                f'Bearer realm="http://{realm_host}/token",service="x",scope="repository:demo/app:pull"'
            )
            conn.sendall(http_response(401, {"WWW-Authenticate": challenge}))

        with FaultServer(behaviour) as server:  # type: ignore[arg-type]
            # The realm host is allowed, but plain HTTP is only for hosts in ``insecure``.
            settings = RegistrySettings(
                allow=frozenset({server.host, realm_host}), insecure=frozenset({server.host})
            )
            with RegistryClient(settings) as client, pytest.raises(RegistryError) as caught:
                client.resolve(ImageRef.parse(server.ref()), "v1", deadline=Deadline.after(2.0))
        assert_nothing_connected(sock)
    assert caught.value.code == "registry-not-allowed"
    assert f"token realm http://{realm_host}" in caught.value.user_message
    assert "plain HTTP only for hosts in registries.insecure" in caught.value.user_message


def test_docker_hub_spellings() -> None:
    hub = RegistrySettings(allow=frozenset({"index.docker.io"}))
    assert hub.allow == frozenset({"docker.io"})
    for host in ("docker.io", "registry-1.docker.io", "index.docker.io", "auth.docker.io"):
        assert hub.host_allowed(host)
    assert not hub.host_allowed("evil.docker.io")
    assert ImageRef.parse("nginx:1.25").api_host == "registry-1.docker.io"
    # The token service alone does not open the registry.
    token_only = RegistrySettings(allow=frozenset({"auth.docker.io"}))
    assert not token_only.host_allowed("registry-1.docker.io")
    assert token_only.host_allowed("auth.docker.io")


def test_plain_http_is_only_for_insecure_hosts() -> None:
    settings = RegistrySettings(
        allow=frozenset({"a.example", "b.example:5000"}), insecure=frozenset({"b.example:5000"})
    )
    assert settings.scheme_for("a.example") == "https"
    assert settings.scheme_for("b.example:5000") == "http"
    assert settings.url_allowed("https://a.example/v2/")
    assert not settings.url_allowed("http://a.example/v2/")
    assert settings.url_allowed("http://b.example:5000/v2/")
    assert not settings.url_allowed("https://user:pw@a.example/v2/")
    assert not settings.url_allowed("https://c.example/v2/")
