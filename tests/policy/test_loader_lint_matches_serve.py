"""``imagegate lint`` and the serving path judge the files a policy names alike.

A policy that lints clean must load where ``serve``, ``verify``, ``test`` and hot reload load it
(``build_services``), and one that they refuse must not lint clean: keys of every type and size,
trusted roots, registry CA and credentials files. Every policy of the repository (shipped policies,
examples, the deploy/ policies with their paths made local, test fixtures) is linted and loaded through
the serving path, and the two must agree.
"""

from __future__ import annotations

import base64
import json
import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import trustme
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa, x25519

from webhook.errors import ConfigError, PolicyProblem
from webhook.policy.loader import lint_file, load_policy
from webhook.reload import PolicyStore
from webhook.settings import Settings
from webhook.wiring import build_services, lint_policy_file

REPO = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).parent / "fixtures"
CONFORMANCE = REPO / "tests" / "verify" / "data" / "conformance"
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)

# key type -> (make a private key, whether imagegate accepts its public key)
KEYS: dict[str, tuple[Callable[[], Any], bool]] = {
    "ecdsa-p256": (lambda: ec.generate_private_key(ec.SECP256R1()), True),
    "ecdsa-p384": (lambda: ec.generate_private_key(ec.SECP384R1()), True),
    "ecdsa-p521": (lambda: ec.generate_private_key(ec.SECP521R1()), False),
    "ecdsa-secp256k1": (lambda: ec.generate_private_key(ec.SECP256K1()), False),
    "ecdsa-brainpoolp256r1": (lambda: ec.generate_private_key(ec.BrainpoolP256R1()), False),
    # weak on purpose: it must be refused
    "rsa-1024": (lambda: rsa.generate_private_key(public_exponent=65537, key_size=1024), False),  # noqa: S505
    "rsa-2047": (lambda: rsa.generate_private_key(public_exponent=65537, key_size=2047), False),  # noqa: S505
    "rsa-2048": (lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048), True),
    "rsa-3072": (lambda: rsa.generate_private_key(public_exponent=65537, key_size=3072), True),
    "rsa-4096": (lambda: rsa.generate_private_key(public_exponent=65537, key_size=4096), True),
    "ed25519": (ed25519.Ed25519PrivateKey.generate, True),
    "ed448": (ed448.Ed448PrivateKey.generate, False),
    "dsa-2048": (lambda: dsa.generate_private_key(key_size=2048), False),
    "x25519": (x25519.X25519PrivateKey.generate, False),
}


def _spki(private: Any, encoding: serialization.Encoding = serialization.Encoding.PEM) -> bytes:
    data: bytes = private.public_key().public_bytes(encoding, serialization.PublicFormat.SubjectPublicKeyInfo)
    return data


@pytest.fixture(scope="module")
def public_keys() -> dict[str, Any]:
    return {name: make() for name, (make, _) in KEYS.items()}


def _policy(directory: Path, *, spec: dict[str, Any], rules: list[dict[str, Any]] | None = None) -> Path:
    document = {
        "apiVersion": "imagegate.dev/v1alpha1",
        "kind": "ImagePolicy",
        "metadata": {"name": "agree"},
        "spec": {
            "registries": {"allow": ["ghcr.io"]},
            **spec,
            "rules": rules or [{"name": "a", "images": ["ghcr.io/a/**"]}],
        },
    }
    path = directory / "policy.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def _key_rule() -> list[dict[str, Any]]:
    return [{"name": "a", "images": ["ghcr.io/a/**"], "signatures": {"signers": [{"key": {"name": "k"}}]}}]


def _errors(problems: tuple[PolicyProblem, ...]) -> list[PolicyProblem]:
    return [p for p in problems if p.severity == "error"]


def _serves(path: Path) -> bool:
    try:
        build_services(load_policy(path, now=NOW).policy, settings=Settings())
    except ConfigError:
        return False
    return True


def _judged_alike(path: Path, accepted: bool) -> list[PolicyProblem]:
    """Lint and serve agree on ``path`` and on ``accepted``; returns lint's errors."""
    errors = _errors(lint_policy_file(path, now=NOW))
    assert (not errors) == accepted, "\n".join(map(str, errors)) or "lint accepted it"
    assert _serves(path) == accepted
    return errors


@pytest.mark.parametrize("form", ["file-pem", "file-der", "inline-pem"])
@pytest.mark.parametrize("kind", sorted(KEYS))
def test_lint_and_serve_judge_every_key_type_alike(
    tmp_path: Path, public_keys: dict[str, Any], kind: str, form: str
) -> None:
    private = public_keys[kind]
    if form == "inline-pem":
        key: dict[str, Any] = {"name": "k", "pem": _spki(private).decode()}
    else:
        encoding = serialization.Encoding.DER if form == "file-der" else serialization.Encoding.PEM
        (tmp_path / "k.pub").write_bytes(_spki(private, encoding))
        key = {"name": "k", "file": "k.pub"}
    path = _policy(tmp_path, spec={"trust": {"keys": [key]}}, rules=_key_rule())

    errors = _judged_alike(path, accepted=KEYS[kind][1])

    for error in errors:
        assert error.pointer in ("/spec/trust/keys/0/file", "/spec/trust/keys/0/pem"), error
        assert error.line > 0 and error.hint, error


def _root_without(*fields: str) -> bytes:
    document = json.loads((REPO / "deploy" / "base" / "trust" / "trusted_root.json").read_text())
    for name in fields:
        document.pop(name)
    return json.dumps(document).encode()


def _bad_ca_bytes() -> bytes:
    document = json.loads((REPO / "deploy" / "base" / "trust" / "trusted_root.json").read_text())
    document["certificateAuthorities"][0]["certChain"]["certificates"][0]["rawBytes"] = base64.b64encode(
        b"not a certificate"
    ).decode()
    return json.dumps(document).encode()


ROOTS: dict[str, tuple[Callable[[], bytes], bool]] = {
    "public-good": (lambda: (REPO / "deploy" / "base" / "trust" / "trusted_root.json").read_bytes(), True),
    # Only a timestamp authority: imagegate needs Fulcio CAs and CT logs from a root.
    "tsa-only": (
        lambda: (
            CONFORMANCE / "sigstore-go" / "testing-data" / "trusted-roots" / "public-key-validity.json"
        ).read_bytes(),
        False,
    ),
    "no-ct-logs": (lambda: _root_without("ctlogs"), False),
    "no-tlogs": (lambda: _root_without("tlogs"), False),
    "certificate-not-der": (_bad_ca_bytes, False),
}


@pytest.mark.parametrize("case", sorted(ROOTS))
def test_lint_and_serve_judge_trusted_roots_alike(tmp_path: Path, case: str) -> None:
    make, accepted = ROOTS[case]
    (tmp_path / "root.json").write_bytes(make())
    keyless = {"keyless": {"root": "r", "issuer": "https://issuer.example", "subject": "me@example.com"}}
    path = _policy(
        tmp_path,
        spec={"trust": {"roots": [{"name": "r", "file": "root.json"}]}},
        rules=[{"name": "a", "images": ["ghcr.io/a/**"], "signatures": {"signers": [keyless]}}],
    )

    errors = _judged_alike(path, accepted)

    assert all(e.pointer == "/spec/trust/roots/0/file" and e.line > 0 for e in errors), errors


def _auth(text: str) -> dict[str, Any]:
    return {"auths": {"ghcr.io": {"auth": base64.b64encode(text.encode()).decode()}}}


CREDENTIALS: dict[str, tuple[object, bool]] = {
    "auth": (_auth("robot:s3cret"), True),
    "username-password": ({"auths": {"ghcr.io": {"username": "robot", "password": "s3cret"}}}, True),
    "entry-without-credentials": ({"auths": {"ghcr.io": {"email": "x@example.com"}}}, True),
    "empty": ({"auths": {}}, True),
    "auth-not-base64": ({"auths": {"ghcr.io": {"auth": "!!not base64!!"}}}, False),
    "auth-without-colon": (_auth("robot"), False),
    "entry-not-an-object": ({"auths": {"ghcr.io": "robot:s3cret"}}, False),
    "password-without-username": ({"auths": {"ghcr.io": {"password": "s3cret"}}}, False),
    "no-auths": ({"credHelpers": {}}, False),
    "over-one-mebibyte": ({"auths": {}, "padding": "x" * (1024 * 1024)}, False),
}


@pytest.mark.parametrize("case", sorted(CREDENTIALS))
def test_lint_and_serve_judge_credentials_alike(tmp_path: Path, case: str) -> None:
    document, accepted = CREDENTIALS[case]
    (tmp_path / "config.json").write_text(json.dumps(document))
    path = _policy(tmp_path, spec={"registries": {"allow": ["ghcr.io"], "credentialsFile": "config.json"}})

    errors = _judged_alike(path, accepted)

    for error in errors:
        assert error.pointer == "/spec/registries/credentialsFile", error
        assert "s3cret" not in error.message and "robot" not in error.message


CAS: dict[str, tuple[Callable[[], bytes], bool]] = {
    "ca": (lambda: trustme.CA().cert_pem.bytes(), True),
    "two-cas": (lambda: trustme.CA().cert_pem.bytes() + trustme.CA().cert_pem.bytes(), True),
    "der": (lambda: _der(trustme.CA().cert_pem.bytes()), False),
    "no-certificate": (lambda: b"hello\n", False),
    "truncated-certificate": (
        lambda: trustme.CA().cert_pem.bytes()[:300] + b"\n-----END CERTIFICATE-----\n",
        False,
    ),
}


def _der(pem: bytes) -> bytes:
    from cryptography import x509

    return x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)


@pytest.mark.parametrize("case", sorted(CAS))
def test_lint_and_serve_judge_registry_ca_files_alike(tmp_path: Path, case: str) -> None:
    make, accepted = CAS[case]
    (tmp_path / "ca.pem").write_bytes(make())
    path = _policy(tmp_path, spec={"registries": {"allow": ["ghcr.io"], "caFile": "ca.pem"}})

    errors = _judged_alike(path, accepted)

    assert all(e.pointer == "/spec/registries/caFile" for e in errors), errors


def _repository_policies() -> list[Path]:
    """Every ImagePolicy file of the repository (deploy/base/policy.yaml is linted as the pod sees it)."""
    return [
        path
        for pattern in ("policies/**/*.yaml", "tests/**/fixtures/**/*.yaml", "deploy/**/policy.yaml")
        for path in sorted(REPO.glob(pattern))
        if "kind: ImagePolicy" in path.read_text()
    ]


def _as_the_pod_sees_it(path: Path, directory: Path) -> Path:
    """deploy/ policies name /etc/imagegate/ paths: lay out the files the pod mounts in ``directory``."""
    if "/etc/imagegate/" not in path.read_text():
        return path
    mounted = directory / "etc-imagegate"
    for base in (REPO / "deploy" / "base", path.parent):
        for part in ("trust", "quarantine", "registry"):
            if (base / part).is_dir():
                shutil.copytree(base / part, mounted / part, dirs_exist_ok=True)
    deployed = mounted / "policy.yaml"
    deployed.write_text(path.read_text().replace("/etc/imagegate/", f"{mounted}/"))
    return deployed


def _served(path: Path) -> bool:
    """Whether the serving path takes the policy: loaded and built as a worker loads it (hot reload too)."""
    store: PolicyStore[object] = PolicyStore(
        path,
        build=lambda policy: build_services(policy, settings=Settings()),
        interval=0.0,
        clock=lambda: NOW,
    )
    try:
        store.load()
    except ConfigError:
        return False
    return True


POLICIES = _repository_policies()


def test_every_policy_of_the_repository_is_covered() -> None:
    # The shipped policies, the examples, the deploy/ policy and the fixtures at least.
    assert len(POLICIES) >= 65
    assert REPO / "deploy" / "base" / "policy.yaml" in POLICIES


@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: str(p.relative_to(REPO)))
def test_lint_and_serve_agree_on_every_policy_of_the_repository(tmp_path: Path, policy: Path) -> None:
    path = _as_the_pod_sees_it(policy, tmp_path)
    linted = _errors(lint_policy_file(path, now=NOW))  # what `imagegate lint` reports
    # The loader alone (no adapters built): it must already refuse what serving refuses, except what
    # only sigstore's reading of a trusted root finds (fixtures marked `found-by: serving`).
    loader_only = _errors(lint_file(path, now=NOW))

    served = _served(path)

    assert served == (not linted), "\n".join(map(str, linted)) or f"{policy} lints clean but is not served"
    if "# found-by: serving" not in policy.read_text():
        assert served == (not loader_only), "\n".join(map(str, loader_only)) or "the loader alone accepts it"


def test_the_serving_path_uses_the_files_as_the_loader_read_them(tmp_path: Path) -> None:
    # Every kind of file a policy names, copied where the policy finds them.
    shutil.copytree(FIXTURES / "trust", tmp_path / "trust")
    shutil.copytree(FIXTURES / "quarantine", tmp_path / "quarantine")
    shutil.copytree(FIXTURES / "valid", tmp_path / "valid")
    path = tmp_path / "valid" / "every-referenced-file.yaml"
    policy = load_policy(path, now=NOW).policy
    root = (tmp_path / "trust" / "trusted_root.json").read_bytes()
    assert policy.trust.roots[0].material.data == root

    # Replaced after the load: what serves is what was read, checked and fingerprinted.
    for name in ("trusted_root.json", "release.pub", "registry-ca.pem", "dockerconfig.json"):
        (tmp_path / "trust" / name).write_text("not what was loaded")
    (tmp_path / "quarantine" / "valid.yaml").unlink()
    services = build_services(policy, settings=Settings())

    trust = services.gatherer.verifier.inner.trust
    assert trust.fingerprint == policy.fingerprint
    assert set(trust.roots) == {"public-good"} and set(trust.keys) == {"release", "ed25519", "p384"}
    assert len(policy.quarantined) == 2
