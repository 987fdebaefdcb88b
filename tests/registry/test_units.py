"""Pure parts of the registry package: credentials, challenges, descriptors, settings, and the
OCI 1.1 referrers API (paged) played by a scripted server, since docker-registry 2.8 lacks it."""

from __future__ import annotations

import base64
import json
import socket
from datetime import UTC, datetime
from pathlib import Path

import pytest
import trustme

from tests.support.registry import FaultRequest, FaultServer, http_response
from webhook.deadline import Deadline
from webhook.errors import ConfigError, RegistryError
from webhook.images.reference import ImageRef
from webhook.policy.loader import load_policy
from webhook.registry import Descriptor, DockerCredentials, Manifest, RegistryClient, RegistrySettings
from webhook.registry.auth import parse_challenge
from webhook.registry.credentials import normalise_registry_key
from webhook.registry.port import fallback_tag, sha256_digest
from webhook.registry.transport import origin

SECRET = "pa55-w0rd-XYZ"


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    ("key", "host"),
    [
        ("https://index.docker.io/v1/", "docker.io"),
        ("registry-1.docker.io", "docker.io"),
        ("ghcr.io", "ghcr.io"),
        ("https://GHCR.io/v2/", "ghcr.io"),
        ("http://127.0.0.1:5000/v2/", "127.0.0.1:5000"),
        ("127.0.0.1:5000", "127.0.0.1:5000"),
    ],
)
def test_dockerconfig_keys_name_registry_hosts(key: str, host: str) -> None:
    assert normalise_registry_key(key) == host


def test_dockerconfig_auth_and_username_password_forms() -> None:
    creds = DockerCredentials.from_json(
        {
            "auths": {
                "https://index.docker.io/v1/": {"auth": _b64(f"hubuser:{SECRET}")},
                "ghcr.io": {"username": "gh", "password": SECRET},
                "quay.io": {"email": "only@example.com"},
            }
        }
    )
    hub = creds.for_registry("docker.io")
    assert hub is not None
    assert (hub.username, hub.password) == ("hubuser", SECRET)
    assert hub.header() == "Basic " + _b64(f"hubuser:{SECRET}")
    gh = creds.for_registry("GHCR.IO")
    assert gh is not None
    assert gh.username == "gh"
    assert creds.for_registry("quay.io") is None
    assert creds.for_registry("ghcr.io:443") is None  # exact host:port
    for text in (repr(creds), str(creds), repr(hub), str(gh)):
        assert SECRET not in text
        assert "hubuser" not in text
    assert "ghcr.io" in repr(creds)


@pytest.mark.parametrize(
    "document",
    [
        {"auths": {"ghcr.io": {"auth": "!!!" + SECRET}}},
        {"auths": {"ghcr.io": {"auth": _b64(SECRET)}}},  # no colon
        {"auths": {"ghcr.io": {"username": "u"}}},
        {"auths": ["ghcr.io"]},
        [],
    ],
)
def test_malformed_dockerconfig_is_a_config_error_without_secrets(document: object) -> None:
    with pytest.raises(ConfigError) as caught:
        DockerCredentials.from_json(document, source="pull-secret.json")
    assert SECRET not in caught.value.user_message
    assert "pull-secret.json" in caught.value.user_message


def test_dockerconfig_file_errors_do_not_quote_the_file(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text('{"auths": {"ghcr.io": {"auth": "' + SECRET + '"')
    with pytest.raises(ConfigError) as caught:
        DockerCredentials.from_file(path)
    assert SECRET not in str(caught.value)
    with pytest.raises(ConfigError, match="cannot read"):
        DockerCredentials.from_file(tmp_path / "missing.json")


def test_settings_from_policy_carry_what_the_policy_read(tmp_path: Path) -> None:
    trustme.CA().cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    (tmp_path / "creds.json").write_text(
        json.dumps({"auths": {"r.example": {"username": "u", "password": "p"}}})
    )
    (tmp_path / "policy.yaml").write_text(
        "apiVersion: imagegate.dev/v1alpha1\nkind: ImagePolicy\nmetadata: {name: p}\nspec:\n"
        "  registries: {allow: [r.example, Docker.io, '127.0.0.1:5000'], insecure: ['127.0.0.1:5000'],\n"
        "               caFile: ca.pem, credentialsFile: creds.json}\n"
    )
    policy = load_policy(tmp_path / "policy.yaml", now=datetime.now(UTC)).policy
    ca = (tmp_path / "ca.pem").read_bytes()
    # The policy carries the files as it read them: settings and clients never open them again.
    (tmp_path / "ca.pem").unlink()
    (tmp_path / "creds.json").unlink()
    settings = RegistrySettings.from_policy(policy)
    assert settings.allow == frozenset({"r.example", "docker.io", "127.0.0.1:5000"})
    assert settings.insecure == frozenset({"127.0.0.1:5000"})
    assert settings.ca_file == tmp_path / "ca.pem"
    assert settings.ca is not None and settings.ca.data == ca
    assert settings.credentials.for_registry("r.example") is not None
    assert (settings.connect_timeout, settings.read_timeout) == (2.0, 5.0)
    assert (settings.manifest_max_bytes, settings.blob_max_bytes) == (4 * 1024 * 1024, 8 * 1024 * 1024)
    RegistryClient(settings).close()


@pytest.mark.parametrize("bad", [["ghcr.io/acme"], ["user@ghcr.io"], [""], "ghcr.io"])
def test_settings_reject_malformed_hosts(bad: object) -> None:
    with pytest.raises(ConfigError):
        RegistrySettings(allow=bad)  # type: ignore[arg-type]


def test_bad_ca_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "ca.pem"
    path.write_text("-----BEGIN CERTIFICATE-----\nnot a cert\n-----END CERTIFICATE-----\n")
    with pytest.raises(ConfigError, match="cannot load registry CA file"):
        RegistryClient(RegistrySettings(ca_file=path))


@pytest.mark.parametrize(
    ("header", "scheme", "params"),
    [
        (
            'Bearer realm="https://auth.example/token",service="reg",scope="repository:a/b:pull,push"',
            "bearer",
            {"realm": "https://auth.example/token", "service": "reg", "scope": "repository:a/b:pull,push"},
        ),
        ('Basic realm="Registry Realm"', "basic", {"realm": "Registry Realm"}),
        ("bearer realm=https://x/t, service=reg", "bearer", {"realm": "https://x/t", "service": "reg"}),
        ('Bearer realm="a\\"b"', "bearer", {"realm": 'a"b'}),
    ],
)
def test_parse_challenge(header: str, scheme: str, params: dict[str, str]) -> None:
    challenge = parse_challenge(header)
    assert challenge is not None
    assert challenge.scheme == scheme
    assert dict(challenge.params) == params


def test_unknown_challenge_scheme_is_ignored() -> None:
    assert parse_challenge("Negotiate abc") is None
    assert parse_challenge("") is None


def test_descriptor_parsing_skips_malformed_entries() -> None:
    good = {
        "mediaType": "m",
        "digest": "sha256:" + "a" * 64,
        "size": 3,
        "artifactType": "t",
        "annotations": {"k": "v"},
    }
    parsed = Descriptor.from_json(good)
    assert parsed is not None
    assert parsed.to_json() == good
    for bad in (
        {**good, "digest": "sha512:" + "a" * 128},
        {**good, "size": -1},
        {**good, "size": True},
        {**good, "artifactType": 3},
        "not an object",
    ):
        assert Descriptor.from_json(bad) is None


def test_manifest_json_and_fallback_tag() -> None:
    body = b'{"schemaVersion":2}'
    assert Manifest(sha256_digest(body), "m", body).json() == {"schemaVersion": 2}
    with pytest.raises(RegistryError, match="not valid JSON"):
        Manifest("sha256:" + "0" * 64, "m", b"{").json()
    assert fallback_tag("sha256:" + "ab" * 32) == "sha256-" + "ab" * 32
    with pytest.raises(RegistryError):
        fallback_tag("sha256:ABC")


def test_invalid_references_are_refused_before_any_request() -> None:
    with RegistryClient(RegistrySettings(allow=frozenset({"r.example"}))) as client:
        repo = ImageRef.parse("r.example/a/b")
        with pytest.raises(RegistryError, match="invalid tag or digest"):
            client.resolve(repo, "../../etc", deadline=Deadline.after(1))
        with pytest.raises(RegistryError, match="invalid digest"):
            client.blob(repo, "sha256:xyz", deadline=Deadline.after(1), max_bytes=1)


def test_observer_sees_every_call_with_its_registry_and_outcome() -> None:
    seen: list[tuple[str, str | None, str | None]] = []
    settings = RegistrySettings(allow=frozenset({"r.example", "docker.io"}))
    observer = lambda op, registry, seconds, code: seen.append((op, registry, code))  # noqa: E731
    with RegistryClient(settings, observer=observer) as client:
        with pytest.raises(RegistryError):
            client.resolve(ImageRef.parse("other.example/a"), "v1", deadline=Deadline.after(1))
        with pytest.raises(RegistryError):
            client.resolve(ImageRef.parse("r.example/a"), "../x", deadline=Deadline.after(1))
        with pytest.raises(RegistryError):
            client.blob(ImageRef.parse("nginx"), "sha256:xyz", deadline=Deadline.after(1), max_bytes=1)
    # A host the allowlist does not name is reported as None: the label stays bounded by the allowlist.
    assert seen == [
        ("resolve", None, "registry-not-allowed"),
        ("resolve", "r.example", "registry-error"),
        ("blob", "docker.io", "registry-error"),
    ]


# --- the OCI 1.1 referrers API, as a scripted server ---------------------------------------------


def _referrers_server(
    subject: str, pages: list[list[dict[str, object]]], *, next_host: str | None = None
) -> FaultServer:
    def behaviour(request: FaultRequest, sock: socket.socket, stopping: object) -> None:
        path, _, query = request.path.partition("?")
        if path != f"/v2/demo/app/referrers/{subject}":
            sock.sendall(http_response(404, {}))
            return
        page = int(query.split("page=")[1]) if "page=" in query else 0
        body = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.index.v1+json",
                "manifests": pages[page],
            }
        ).encode()
        headers = {"Content-Type": "application/vnd.oci.image.index.v1+json"}
        if page + 1 < len(pages):
            base = f"http://{next_host}" if next_host else ""
            headers["Link"] = f'<{base}/v2/demo/app/referrers/{subject}?page={page + 1}>; rel="next"'
        sock.sendall(http_response(200, headers, body))

    return FaultServer(behaviour)  # type: ignore[arg-type]


def _entry(n: int, artifact_type: str) -> dict[str, object]:
    return {
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": sha256_digest(b"%d" % n),
        "size": n,
        "artifactType": artifact_type,
    }


def test_referrers_api_pages_are_followed_and_filtered() -> None:
    subject = sha256_digest(b"subject")
    pages = [[_entry(1, "a"), _entry(2, "b")], [_entry(3, "a")], [_entry(4, "b")]]
    with _referrers_server(subject, pages) as server:
        settings = RegistrySettings(allow=frozenset({server.host}), insecure=frozenset({server.host}))
        with RegistryClient(settings) as client:
            repo = ImageRef.parse(server.ref())
            found = client.referrers(repo, subject, deadline=Deadline.after(2))
            assert [d.size for d in found] == [1, 2, 3, 4]
            only = client.referrers(repo, subject, deadline=Deadline.after(2), artifact_type="a")
            assert [d.size for d in only] == [1, 3]
            assert "artifactType=a" in server.requests[-3].path
        capped = RegistrySettings(
            allow=frozenset({server.host}), insecure=frozenset({server.host}), referrers_max_pages=2
        )
        with RegistryClient(capped) as client, pytest.raises(RegistryError, match="more than 2 pages"):
            client.referrers(ImageRef.parse(server.ref()), subject, deadline=Deadline.after(2))


def test_referrers_page_on_another_host_is_refused() -> None:
    subject = sha256_digest(b"subject")
    with _referrers_server(subject, [[_entry(1, "a")], [_entry(2, "a")]], next_host="127.0.0.1:1") as server:
        settings = RegistrySettings(allow=frozenset({server.host}), insecure=frozenset({server.host}))
        with RegistryClient(settings) as client, pytest.raises(RegistryError, match="another host"):
            client.referrers(ImageRef.parse(server.ref()), subject, deadline=Deadline.after(2))


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        # A default port written out is the same origin (RFC 6454): a registry whose Link or Location
        # header spells it is not refused as "another host", nor does it lose its credentials.
        ("https://reg.example:443/v2/a/referrers/x?n=1", "https://reg.example/v2/a/referrers/x", True),
        ("http://127.0.0.1:80/v2/", "http://127.0.0.1/v2/b", True),
        ("https://Reg.Example/v2/", "https://reg.example/v2/", True),
        ("https://reg.example:8443/v2/", "https://reg.example/v2/", False),
        ("http://reg.example:443/v2/", "https://reg.example/v2/", False),
        ("https://reg.example:80/v2/", "http://reg.example:80/v2/", False),
        ("https://reg.example/v2/", "https://other.example/v2/", False),
    ],
)
def test_one_origin_for_redirects_pages_uploads_and_challenges(a: str, b: str, same: bool) -> None:
    assert (origin(a) == origin(b)) is same
