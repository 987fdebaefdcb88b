"""Authentication against real registries: Basic (htpasswd), Bearer tokens, private repositories, secrecy."""

from __future__ import annotations

import base64
import json
import logging
from pathlib import Path

import pytest

from tests.support.registry import PASSWORD, USERNAME, RegistryServer
from webhook.deadline import Deadline
from webhook.errors import RegistryError
from webhook.images.reference import ImageRef
from webhook.registry import DockerCredentials, RegistryClient

pytestmark = pytest.mark.registry


def _secrets() -> list[str]:
    basic = base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()
    wrong = base64.b64encode(f"{USERNAME}:wrong-{PASSWORD}".encode()).decode()
    return [PASSWORD, basic, wrong]


def _assert_no_secret(text: str) -> None:
    for secret in _secrets():
        assert secret not in text


def _dockerconfig(tmp_path: Path, host: str, *, password: str = PASSWORD, key: str | None = None) -> Path:
    path = tmp_path / "config.json"
    entry = {"auth": base64.b64encode(f"{USERNAME}:{password}".encode()).decode()}
    path.write_text(json.dumps({"auths": {key or host: entry}}))
    return path


@pytest.mark.parametrize("key_style", ["{host}", "https://{host}", "http://{host}/v2/"])
def test_private_repository_with_credentials_from_a_dockerconfigjson_file(
    token_registry: RegistryServer, tmp_path: Path, deadline: Deadline, key_style: str
) -> None:
    image = token_registry.pusher().push_image("private/app", "v1")
    config = _dockerconfig(tmp_path, token_registry.host, key=key_style.format(host=token_registry.host))
    settings = token_registry.settings(credentials=DockerCredentials.from_file(config))
    with RegistryClient(settings) as client:
        assert (
            client.resolve(ImageRef.parse(token_registry.ref("private/app")), "v1", deadline=deadline)
            == image.digest
        )


def test_private_repository_without_credentials_is_refused(
    token_registry: RegistryServer, deadline: Deadline
) -> None:
    token_registry.pusher().push_image("private/app", "v1")
    with RegistryClient(token_registry.settings(with_credentials=False)) as client:
        with pytest.raises(RegistryError) as caught:
            client.resolve(ImageRef.parse(token_registry.ref("private/app")), "v1", deadline=deadline)
    message = caught.value.user_message
    assert "HTTP 401" in message
    assert "anonymous access was not accepted" in message


def test_public_repository_anonymously_through_the_token_flow(
    token_registry: RegistryServer, deadline: Deadline
) -> None:
    image = token_registry.pusher().push_image("demo/public", "v1")
    with RegistryClient(token_registry.settings(with_credentials=False)) as client:
        assert (
            client.resolve(ImageRef.parse(token_registry.ref("demo/public")), "v1", deadline=deadline)
            == image.digest
        )


def test_tokens_are_cached_per_repository_scope(token_registry: RegistryServer, deadline: Deadline) -> None:
    pusher = token_registry.pusher()
    first, second = pusher.push_image("demo/cached", "a"), pusher.push_image("demo/cached", "b")
    assert token_registry.token_server is not None
    with RegistryClient(token_registry.settings()) as client:
        repo = ImageRef.parse(token_registry.ref("demo/cached"))
        before = token_registry.token_server.count()
        assert client.resolve(repo, "a", deadline=deadline) == first.digest
        assert client.resolve(repo, "b", deadline=deadline) == second.digest
        client.manifest(repo, first.digest, deadline=deadline)
        assert token_registry.token_server.count() - before == 1
        with pytest.raises(RegistryError):
            client.resolve(ImageRef.parse(token_registry.ref("demo/other")), "missing", deadline=deadline)
        # another repository is another scope: one more token
        assert token_registry.token_server.count() - before == 2
    scopes = [scopes for _, scopes in token_registry.token_server.requests[-2:]]
    assert scopes == [["repository:demo/cached:pull"], ["repository:demo/other:pull"]]


def test_token_realm_outside_the_allowlist_is_not_contacted(
    token_registry: RegistryServer, deadline: Deadline
) -> None:
    assert token_registry.token_server is not None
    before = token_registry.token_server.count()
    settings = token_registry.settings(allow=frozenset({token_registry.host}))
    with RegistryClient(settings) as client:
        with pytest.raises(RegistryError) as caught:
            client.resolve(ImageRef.parse(token_registry.ref("demo/app")), "v1", deadline=deadline)
    assert caught.value.code == "registry-not-allowed"
    assert f"token realm https://{token_registry.token_server.address}" in caught.value.user_message
    assert token_registry.token_server.count() == before


def test_basic_auth_with_credentials(tls_registry: RegistryServer, deadline: Deadline) -> None:
    image = tls_registry.pusher().push_image("demo/basic", "v1")
    with RegistryClient(tls_registry.settings()) as client:
        assert (
            client.resolve(ImageRef.parse(tls_registry.ref("demo/basic")), "v1", deadline=deadline)
            == image.digest
        )


def test_basic_auth_without_credentials_says_what_is_missing(
    tls_registry: RegistryServer, deadline: Deadline
) -> None:
    with RegistryClient(tls_registry.settings(with_credentials=False)) as client:
        with pytest.raises(RegistryError) as caught:
            client.resolve(ImageRef.parse(tls_registry.ref("demo/basic")), "v1", deadline=deadline)
    assert "requires credentials and registries.credentialsFile has none" in caught.value.user_message


@pytest.mark.parametrize("mode", ["tls", "token"])
def test_wrong_password_never_shows_up_in_errors_or_logs(
    request: pytest.FixtureRequest,
    mode: str,
    tmp_path: Path,
    deadline: Deadline,
    caplog: pytest.LogCaptureFixture,
) -> None:
    server: RegistryServer = request.getfixturevalue(f"{mode}_registry")
    config = _dockerconfig(tmp_path, server.host, password=f"wrong-{PASSWORD}")
    caplog.set_level(logging.DEBUG)
    with RegistryClient(server.settings(credentials=DockerCredentials.from_file(config))) as client:
        with pytest.raises(RegistryError) as caught:
            client.resolve(ImageRef.parse(server.ref("demo/app")), "v1", deadline=deadline)
        assert "wrong" not in repr(client.settings)
    error = caught.value
    assert "HTTP 401" in error.user_message
    assert "credentials" in error.user_message
    _assert_no_secret(f"{error} {error.user_message} {error.details} {error!r}")
    assert caplog.records, "DEBUG logging should have recorded the exchange"
    _assert_no_secret(caplog.text)


def test_successful_exchange_logs_no_secrets_or_tokens(
    token_registry: RegistryServer, deadline: Deadline, caplog: pytest.LogCaptureFixture
) -> None:
    token_registry.pusher().push_image("private/logged", "v1")
    caplog.set_level(logging.DEBUG)
    with RegistryClient(token_registry.settings()) as client:
        client.resolve(ImageRef.parse(token_registry.ref("private/logged")), "v1", deadline=deadline)
    assert "token" in caplog.text  # the exchange is logged...
    _assert_no_secret(caplog.text)
    assert "Bearer" not in caplog.text  # ...but never the token itself
    assert "eyJ" not in caplog.text  # the start of every JWT
