"""What a public key, a registry CA file or a registry credentials file must be: one validator each.

The policy loader (``imagegate lint``, and every load) and the adapters that use these files
(:mod:`webhook.verify.keys`, the registry transport and credentials) call the same function, so a
policy that lints clean loads, and a file the server would refuse never lints clean. Trusted roots
need sigstore to be judged fully; :func:`webhook.wiring.serving_problems` adds that check to lint.

Every validator raises :class:`MaterialError` with a message (never quoting a secret) and a fix hint.
"""

from __future__ import annotations

__all__ = [
    "MAX_CREDENTIALS_BYTES",
    "KeyObject",
    "MaterialError",
    "docker_config",
    "docker_config_entries",
    "public_key",
    "registry_ca",
]

import base64
import binascii
import json
import ssl
from collections.abc import Mapping

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

KeyObject = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | rsa.RSAPublicKey

MAX_CREDENTIALS_BYTES = 1024 * 1024
_MIN_RSA_BITS = 2048
# The curves imagegate verifies signatures for (cosign's defaults); see webhook.verify.keys.
_CURVES = {"secp256r1": "P-256", "secp384r1": "P-384"}
_KEY_HINT = (
    "give a PEM public key (-----BEGIN PUBLIC KEY-----): ECDSA P-256 or P-384, RSA of at least 2048 bits, "
    "or Ed25519"
)
_CA_HINT = "give a PEM file with the registry CA certificate(s) (-----BEGIN CERTIFICATE-----)"
_CREDENTIALS_HINT = (
    'give a dockerconfigjson file: {"auths": {"registry.example.com": {"auth": "<base64 of user:password>"}}}'
)


class MaterialError(ValueError):
    """A file a policy names is not what it must be. ``message`` says what, ``hint`` how to fix it."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


def public_key(data: bytes) -> KeyObject:
    """The public key in ``data``: a PEM (or DER) SubjectPublicKeyInfo of an accepted type and size.

    Accepted: ECDSA P-256 and P-384, RSA of at least 2048 bits, Ed25519.

    Raises:
        MaterialError: not a public key, or one of another type, curve or size.
    """
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            key = serialization.load_pem_public_key(data)
        else:
            key = serialization.load_der_public_key(data)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        extra = " (it is a certificate; give its public key)" if b"CERTIFICATE-----" in data else ""
        raise MaterialError("is not a PEM public key" + extra, _KEY_HINT) from None
    if isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.name not in _CURVES:
            raise MaterialError(
                f"ECDSA curve {key.curve.name} is not accepted (use P-256 or P-384)", _KEY_HINT
            )
        return key
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < _MIN_RSA_BITS:
            raise MaterialError(
                f"RSA key of {key.key_size} bits is too small (at least {_MIN_RSA_BITS})", _KEY_HINT
            )
        return key
    if isinstance(key, ed25519.Ed25519PublicKey):
        return key
    raise MaterialError(f"{type(key).__name__} is not accepted", _KEY_HINT)


def registry_ca(data: bytes) -> ssl.SSLContext:
    """The TLS context registries are reached with: the system trust store plus the CAs in ``data``.

    Raises:
        MaterialError: ``data`` holds no PEM certificate, or one that TLS cannot use.
    """
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        raise MaterialError("is not a PEM file (it holds non-text bytes)", _CA_HINT) from None
    if "-----BEGIN CERTIFICATE-----" not in text:
        raise MaterialError("holds no PEM certificate", _CA_HINT)
    context = ssl.create_default_context()
    try:
        context.load_verify_locations(cadata=text)
    except (ssl.SSLError, ValueError) as error:
        raise MaterialError(f"holds a certificate TLS cannot use ({error})", _CA_HINT) from None
    return context


def docker_config(data: bytes) -> tuple[tuple[str, str, str], ...]:
    """The credentials of a dockerconfigjson file: ``(auths key, username, password)`` per entry.

    Raises:
        MaterialError: too large, not JSON, or not of the dockerconfigjson shape.
    """
    if len(data) > MAX_CREDENTIALS_BYTES:
        raise MaterialError(f"is larger than {MAX_CREDENTIALS_BYTES} bytes", _CREDENTIALS_HINT)
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError):
        # The JSON error text quotes the document, which holds secrets: say only that it is not JSON.
        raise MaterialError("is not valid JSON", _CREDENTIALS_HINT) from None
    return docker_config_entries(document)


def docker_config_entries(document: object) -> tuple[tuple[str, str, str], ...]:
    """:func:`docker_config` of a decoded document. Entries without credentials (e.g. only an email)
    grant nothing and are left out.

    Raises:
        MaterialError: the document is not of the dockerconfigjson shape.
    """
    if not isinstance(document, Mapping):
        raise MaterialError("is not a JSON object", _CREDENTIALS_HINT)
    auths = document.get("auths")
    if not isinstance(auths, Mapping):
        raise MaterialError("has no 'auths' object keyed by registry host", _CREDENTIALS_HINT)
    entries: list[tuple[str, str, str]] = []
    for key, entry in auths.items():
        if not isinstance(entry, Mapping):
            raise MaterialError(f"/auths/{key}: each entry must be an object", _CREDENTIALS_HINT)
        found = _credentials(entry, where=f"/auths/{key}")
        if found is not None:
            entries.append((str(key), *found))
    return tuple(entries)


def _credentials(entry: Mapping[str, object], *, where: str) -> tuple[str, str] | None:
    username, password = entry.get("username"), entry.get("password")
    auth = entry.get("auth")
    if isinstance(username, str) and isinstance(password, str) and username:
        return username, password
    if isinstance(auth, str) and auth:
        try:
            decoded = base64.b64decode(auth, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            decoded = ""
        user, sep, secret = decoded.partition(":")
        if not sep or not user:
            raise MaterialError(f"{where}/auth is not base64 of 'username:password'", _CREDENTIALS_HINT)
        return user, secret
    if username is not None or password is not None or auth is not None:
        raise MaterialError(
            f"{where}: needs 'auth' or both 'username' and 'password' as strings", _CREDENTIALS_HINT
        )
    return None
