"""`imagegate certs`: its CA and serving certificate pass a real TLS handshake, as the API server makes it."""

from __future__ import annotations

import base64
import contextlib
import datetime
import socket
import ssl
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from tests.support.deploy import DEPLOY, KUBERNETES_VERSIONS

NS = "imagegate"
NAME = "imagegate"
SANS = [NAME, f"{NAME}.{NS}", f"{NAME}.{NS}.svc", f"{NAME}.{NS}.svc.cluster.local"]


def certs(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    from webhook.cli import main

    code = main(["certs", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def generate(capsys: pytest.CaptureFixture[str], out: Path, *extra: str) -> str:
    code, stdout, stderr = certs(capsys, "--namespace", NS, "--service", NAME, "--out", str(out), *extra)
    assert code == 0, stderr
    return stdout


@contextlib.contextmanager
def tls_server(cert: Path, key: Path) -> Iterator[tuple[int, list[BaseException]]]:
    """A TLS server on 127.0.0.1 that answers one line per connection with b"ok"."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    port = listener.getsockname()[1]
    errors: list[BaseException] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                raw, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            raw.settimeout(10)
            try:
                with context.wrap_socket(raw, server_side=True) as conn:
                    conn.recv(16)
                    conn.sendall(b"ok")
            except (ssl.SSLError, OSError) as error:
                errors.append(error)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield port, errors
    finally:
        stop.set()
        thread.join(timeout=10)
        listener.close()


def only_ca_context(cafile: Path) -> ssl.SSLContext:
    # ssl.create_default_context(cafile=...) would also load the machine's default CAs when SSL_CERT_FILE
    # is set; the API server trusts the caBundle alone, so the client here does too.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cafile=str(cafile))
    return context


def connect(port: int, *, cafile: Path, server_hostname: str) -> bytes:
    context = only_ca_context(cafile)
    assert context.check_hostname
    assert context.verify_mode == ssl.CERT_REQUIRED
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=server_hostname) as conn,
    ):
        conn.sendall(b"hello\n")
        return conn.recv(16)


@pytest.fixture
def issued(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[Path, str]:
    out = tmp_path / "certs"
    return out, generate(capsys, out)


# --- the handshake ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("hostname", SANS)
def test_handshake_verifies_with_the_emitted_ca(issued: tuple[Path, str], hostname: str) -> None:
    out, _ = issued
    with tls_server(out / "tls.crt", out / "tls.key") as (port, errors):
        assert connect(port, cafile=out / "ca.crt", server_hostname=hostname) == b"ok"
    assert not errors


def test_handshake_fails_for_another_hostname(issued: tuple[Path, str]) -> None:
    out, _ = issued
    with tls_server(out / "tls.crt", out / "tls.key") as (port, _errors):
        with pytest.raises(ssl.SSLCertVerificationError, match="match"):
            connect(port, cafile=out / "ca.crt", server_hostname=f"other.{NS}.svc")


def test_handshake_fails_against_another_ca(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    generate(capsys, first)
    generate(capsys, second)
    with tls_server(first / "tls.crt", first / "tls.key") as (port, _errors):
        with pytest.raises(ssl.SSLCertVerificationError):
            connect(port, cafile=second / "ca.crt", server_hostname=f"{NAME}.{NS}.svc")


def test_ca_bundle_decodes_to_the_ca(issued: tuple[Path, str], tmp_path: Path) -> None:
    out, stdout = issued
    bundle = base64.b64decode(stdout.strip(), validate=True)
    assert bundle == (out / "ca.crt").read_bytes()
    # The bundle is what the API server trusts: a handshake verified by it alone must succeed.
    bundle_file = tmp_path / "bundle.pem"
    bundle_file.write_bytes(bundle)
    with tls_server(out / "tls.crt", out / "tls.key") as (port, _errors):
        assert connect(port, cafile=bundle_file, server_hostname=f"{NAME}.{NS}.svc") == b"ok"


# --- what was issued -----------------------------------------------------------------------------------


def test_serving_certificate_profile(issued: tuple[Path, str]) -> None:
    out, _ = issued
    cert = x509.load_pem_x509_certificate((out / "tls.crt").read_bytes())
    ca = x509.load_pem_x509_certificate((out / "ca.crt").read_bytes())
    key = cert.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey)
    assert isinstance(key.curve, ec.SECP256R1)
    assert (
        cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
            x509.DNSName
        )
        == SANS
    )
    assert list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.SERVER_AUTH
    ]
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature
    assert not usage.key_cert_sign
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert cert.issuer == ca.subject
    cert.verify_directly_issued_by(ca)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    assert ca.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
    lifetime = cert.not_valid_after_utc - datetime.datetime.now(datetime.UTC)
    assert datetime.timedelta(days=364) < lifetime <= datetime.timedelta(days=365)


def test_days_sets_the_validity(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "short"
    generate(capsys, out, "--days", "30")
    cert = x509.load_pem_x509_certificate((out / "tls.crt").read_bytes())
    lifetime = cert.not_valid_after_utc - datetime.datetime.now(datetime.UTC)
    assert datetime.timedelta(days=29) < lifetime <= datetime.timedelta(days=30)


def test_private_material_is_owner_only(issued: tuple[Path, str]) -> None:
    out, _ = issued
    for name in ("tls.key", "secret.yaml"):
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o600, name
    assert b"PRIVATE KEY" not in (out / "ca.crt").read_bytes()
    assert not list(out.glob("ca.key*")), "the CA key is not kept"


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_secret_manifest_is_a_valid_tls_secret(issued: tuple[Path, str], version: str) -> None:
    out, _ = issued
    secret = yaml.safe_load((out / "secret.yaml").read_text())
    kubernetes_validate.validate(secret, version, strict=True)
    assert secret["type"] == "kubernetes.io/tls"
    assert secret["metadata"] == {**secret["metadata"], "name": "imagegate-tls", "namespace": NS}
    for key in ("tls.crt", "tls.key", "ca.crt"):
        assert base64.b64decode(secret["data"][key]) == (out / key).read_bytes()


def test_patches_carry_the_bundle_for_both_configurations(issued: tuple[Path, str]) -> None:
    from webhook.cli.certs import MUTATING_WEBHOOK_NAME, VALIDATING_WEBHOOK_NAME

    out, stdout = issued
    component = yaml.safe_load((out / "kustomization.yaml").read_text())
    assert component["kind"] == "Component"
    patches = [yaml.safe_load((out / p["path"]).read_text()) for p in component["patches"]]
    assert {p["kind"] for p in patches} == {"MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"}
    names = {h["name"] for p in patches for h in p["webhooks"]}
    assert names == {MUTATING_WEBHOOK_NAME, VALIDATING_WEBHOOK_NAME}
    assert {h["clientConfig"]["caBundle"] for p in patches for h in p["webhooks"]} == {stdout.strip()}


def test_webhook_names_match_the_base() -> None:
    from webhook.cli.certs import MUTATING_WEBHOOK_NAME, VALIDATING_WEBHOOK_NAME

    base = DEPLOY / "base"
    mutating = yaml.safe_load((base / "mutatingwebhookconfiguration.yaml").read_text())
    validating = yaml.safe_load((base / "validatingwebhookconfiguration.yaml").read_text())
    assert [h["name"] for h in mutating["webhooks"]] == [MUTATING_WEBHOOK_NAME]
    assert [h["name"] for h in validating["webhooks"]] == [VALIDATING_WEBHOOK_NAME]


# --- rotation and refusals -------------------------------------------------------------------------------


def test_rotation_bundle_trusts_old_and_new_certificates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "certs"
    generate(capsys, out)
    old = tmp_path / "old"
    old.mkdir()
    for name in ("ca.crt", "tls.crt", "tls.key"):
        (old / name).write_bytes((out / name).read_bytes())
    # The documented rotation: regenerate in place, still trusting the CA being replaced.
    stdout = generate(capsys, out, "--force", "--extra-ca", str(out / "ca.crt"))
    assert (out / "ca.crt").read_bytes() != (old / "ca.crt").read_bytes()
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(base64.b64decode(stdout.strip()))
    assert bundle.read_bytes() == (out / "ca.crt").read_bytes() + (old / "ca.crt").read_bytes()
    # During the switch a pod may still present the old certificate, or already the new one.
    for serving in (old, out):
        with tls_server(serving / "tls.crt", serving / "tls.key") as (port, _errors):
            assert connect(port, cafile=bundle, server_hostname=f"{NAME}.{NS}.svc") == b"ok"


def test_refuses_to_overwrite_a_key_without_force(
    issued: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    out, _ = issued
    before = (out / "tls.key").read_bytes()
    code, stdout, stderr = certs(capsys, "--namespace", NS, "--service", NAME, "--out", str(out))
    assert code == 2
    assert "--force" in stderr
    assert stdout == ""
    assert (out / "tls.key").read_bytes() == before


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--namespace", "Bad_NS", "--service", NAME], "--namespace"),
        (["--namespace", NS, "--service", "svc.with.dots"], "--service"),
        (["--namespace", NS, "--service", NAME, "--days", "0"], "--days"),
        (["--namespace", NS, "--service", NAME, "--secret-name", "Not Valid"], "--secret-name"),
        # A trailing newline is not part of a DNS name (a `$` anchor would let it through).
        (["--namespace", NS + "\n", "--service", NAME], "--namespace"),
        (["--namespace", NS, "--service", NAME + "\n"], "--service"),
        (
            ["--namespace", NS, "--service", NAME, "--webhook-configuration", "imagegate\n"],
            "--webhook-configuration",
        ),
    ],
)
def test_rejects_invalid_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, stdout, stderr = certs(capsys, *argv, "--out", str(tmp_path / "out"))
    assert code == 2
    assert message in stderr
    assert stdout == ""
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("content", ["junk", "serving-cert"])
def test_rejects_an_extra_ca_that_is_not_a_ca_certificate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], issued: tuple[Path, str], content: str
) -> None:
    extra = tmp_path / "extra.pem"
    if content == "junk":
        extra.write_text("not a certificate\n")
    else:
        extra.write_bytes((issued[0] / "tls.crt").read_bytes())  # a leaf, e.g. tls.crt passed by mistake
    code, stdout, stderr = certs(
        capsys, "--namespace", NS, "--service", NAME, "--out", str(tmp_path / "out"), "--extra-ca", str(extra)
    )
    assert code == 2
    assert "--extra-ca" in stderr
    assert stdout == ""
    assert not (tmp_path / "out").exists()
