"""The files a policy names, read once and checked: public keys, trusted roots, a registry CA, credentials.

One module judges each kind of file, for every reader: the policy loader (``imagegate lint`` and every
load) builds these values, the policy model carries them (:class:`webhook.policy.model.TrustKey`,
:class:`~webhook.policy.model.TrustRoot`, :class:`~webhook.policy.model.Registries`), and the adapters
(:mod:`webhook.verify.trust`, the registry transport and credentials) use what they carry instead of
opening the paths again. So a policy that lints clean loads, a file the server would refuse never lints
clean, and the bytes hashed into the policy fingerprint are the bytes verified with.

Each value keeps the exact bytes read (``data``) and their parsed form: a key object, an SSL context,
the credentials, a trusted root's Fulcio CAs, CT log keys and Rekor keys. A trusted root is also read by
sigstore, which the pure core may not import: :mod:`webhook.verify.trust` builds sigstore's model from
the same ``data`` (sigstore's view of the file is checked when the adapters are built, which ``lint``
does too).

Every validator raises :class:`MaterialError` with a message (never quoting a secret) and a fix hint.
"""

from __future__ import annotations

__all__ = [
    "MAX_CREDENTIALS_BYTES",
    "MAX_FILE_BYTES",
    "CaMaterial",
    "CertificateAuthority",
    "CredentialsMaterial",
    "KeyMaterial",
    "KeyObject",
    "LogKey",
    "MaterialError",
    "RekorKey",
    "TrustedRootMaterial",
    "docker_config",
    "docker_config_entries",
    "public_key",
    "read_bounded",
    "registry_ca",
]

import base64
import binascii
import hashlib
import json
import logging
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

_logger = logging.getLogger(__name__)

KeyObject = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | rsa.RSAPublicKey

MAX_CREDENTIALS_BYTES = 1024 * 1024
# Far above any policy, list, key or trusted root; a cap keeps a wrong path (a device, a huge log)
# from being read whole.
MAX_FILE_BYTES = 32 * 1024 * 1024
_MIN_RSA_BITS = 2048
# The curves imagegate verifies signatures for (cosign's defaults); see webhook.verify.keys.
_CURVES = {"secp256r1": "P-256", "secp384r1": "P-384"}
_KEY_HINT = (
    "give a PEM public key (-----BEGIN PUBLIC KEY-----): ECDSA P-256 or P-384, RSA of at least 2048 bits, "
    "or Ed25519"
)
_CA_HINT = "give a PEM file with the registry CA certificate(s) (-----BEGIN CERTIFICATE-----)"
_ROOT_HINT = "use a Sigstore trusted_root.json (from Sigstore's TUF repository, or your instance's)"
_TRUSTED_ROOT_MEDIA_TYPE = "application/vnd.dev.sigstore.trustedroot"
_CREDENTIALS_HINT = (
    'give a dockerconfigjson file: {"auths": {"registry.example.com": {"auth": "<base64 of user:password>"}}}'
)


class MaterialError(ValueError):
    """A file a policy names is not what it must be. ``message`` says what, ``hint`` how to fix it."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


def read_bounded(source: Path | BinaryIO, *, limit: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of ``source``, a file or an open binary stream (standard input), read once.

    Raises:
        OSError: it cannot be read, or it is larger than ``limit`` bytes.
    """
    if isinstance(source, Path):
        with source.open("rb") as handle:
            data = handle.read(limit + 1)
    else:
        data = source.read(limit + 1)
    if len(data) > limit:
        raise OSError(0, f"larger than {limit // (1024 * 1024)} MiB")
    return data


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


# -- checked values ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class KeyMaterial:
    """A public key as read: from ``path``, or written inline in the policy (``path`` None).

    Attributes:
        data: the PEM (or DER) bytes checked.
        key: the ``cryptography`` key (an accepted type and size, see :func:`public_key`).
        spki_der: its DER SubjectPublicKeyInfo; two keys are the same key exactly when these are equal.
    """

    data: bytes = field(repr=False)
    key: KeyObject = field(repr=False)
    spki_der: bytes = field(repr=False)
    path: Path | None = None

    @classmethod
    def parse(cls, data: bytes, *, path: Path | None = None) -> KeyMaterial:
        """Raises MaterialError: see :func:`public_key`."""
        key = public_key(data)
        der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        return cls(data=data, key=key, spki_der=der, path=path)

    @classmethod
    def read(cls, path: Path) -> KeyMaterial:
        """Raises OSError or MaterialError."""
        return cls.parse(read_bounded(path), path=path)


@dataclass(frozen=True, slots=True, eq=False)
class CaMaterial:
    """A registry CA file as read: PEM certificates TLS can use (checked by :func:`registry_ca`)."""

    data: bytes = field(repr=False)
    path: Path | None = None

    @classmethod
    def parse(cls, data: bytes, *, path: Path | None = None) -> CaMaterial:
        """Raises MaterialError: see :func:`registry_ca`."""
        registry_ca(data)
        return cls(data=data, path=path)

    @classmethod
    def read(cls, path: Path) -> CaMaterial:
        """Raises OSError or MaterialError."""
        return cls.parse(read_bounded(path), path=path)

    def context(self) -> ssl.SSLContext:
        """A new TLS context trusting the system store and these CAs (the HTTP client adjusts the
        context it is given, so each client gets its own)."""
        return registry_ca(self.data)


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class CredentialsMaterial:
    """A dockerconfigjson file as read: ``(auths key, username, password)`` per entry. Never printed."""

    entries: tuple[tuple[str, str, str], ...]
    path: Path | None = None

    def __repr__(self) -> str:
        return f"CredentialsMaterial({len(self.entries)} entries from {self.path})"

    @classmethod
    def parse(cls, data: bytes, *, path: Path | None = None) -> CredentialsMaterial:
        """Raises MaterialError: see :func:`docker_config`."""
        return cls(entries=docker_config(data), path=path)

    @classmethod
    def read(cls, path: Path) -> CredentialsMaterial:
        """Raises OSError or MaterialError (also when it is too large: :func:`docker_config` says so)."""
        with path.open("rb") as handle:
            return cls.parse(handle.read(MAX_CREDENTIALS_BYTES + 1), path=path)


@dataclass(frozen=True, slots=True)
class LogKey:
    """A transparency-log or CT-log public key of a trusted root, with its validity window."""

    key_id: bytes
    public_key: PublicKeyTypes
    valid_from: datetime | None
    valid_until: datetime | None
    base_url: str = ""

    def valid_at(self, when: datetime) -> bool:
        return _within(self.valid_from, self.valid_until, when)


@dataclass(frozen=True, slots=True)
class CertificateAuthority:
    """One Fulcio CA chain of a trusted root (leaf-most first) and the window it may issue in."""

    certificates: tuple[x509.Certificate, ...]
    valid_from: datetime | None
    valid_until: datetime | None

    def valid_at(self, when: datetime) -> bool:
        return _within(self.valid_from, self.valid_until, when)


@dataclass(frozen=True, slots=True)
class RekorKey:
    """A Rekor (transparency log) key of a trusted root, of a type imagegate verifies with.

    ``log_id`` is the hex of the root's ``logId.keyId``; ``name`` is ``tlog <baseUrl>`` for messages.
    """

    log_id: str
    name: str
    key: KeyObject = field(repr=False, compare=False)
    spki_der: bytes = field(repr=False)
    valid_from: datetime | None
    valid_until: datetime | None


@dataclass(frozen=True, slots=True, eq=False)
class TrustedRootMaterial:
    """A Sigstore ``trusted_root.json`` as read, with what imagegate itself verifies with.

    Attributes:
        data: the bytes checked (sigstore's own model is built from them, in :mod:`webhook.verify.trust`).
        authorities: the Fulcio CA chains (at least one).
        ct_keys: the CT log keys that sign the SCTs of Fulcio certificates (at least one).
        rekor_keys: the Rekor keys; keys of a type imagegate does not verify with are left out, with a
            warning in the log.
    """

    data: bytes = field(repr=False)
    authorities: tuple[CertificateAuthority, ...] = field(repr=False)
    ct_keys: tuple[LogKey, ...] = field(repr=False)
    rekor_keys: tuple[RekorKey, ...] = field(repr=False)
    path: Path | None = None

    @classmethod
    def parse(cls, data: bytes, *, path: Path | None = None) -> TrustedRootMaterial:
        """Raises MaterialError: not a Sigstore trusted root, or one without CAs or log keys."""
        try:
            document = json.loads(data)
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise MaterialError("is not JSON", _ROOT_HINT) from None
        media_type = document.get("mediaType") if isinstance(document, dict) else None
        if not isinstance(media_type, str) or not media_type.startswith(_TRUSTED_ROOT_MEDIA_TYPE):
            raise MaterialError(f"is not a Sigstore trusted root (mediaType {media_type!r})", _ROOT_HINT)
        assert isinstance(document, dict)  # noqa: S101 - narrowed by the media type check
        authorities = tuple(
            _part(_authority, item, f"certificateAuthorities[{index}]")
            for index, item in enumerate(_list(document, "certificateAuthorities"))
        )
        ct_keys = tuple(
            _part(_log_key, item, f"ctlogs[{index}]") for index, item in enumerate(_list(document, "ctlogs"))
        )
        if not authorities:
            raise MaterialError("has no Fulcio certificate authorities", _ROOT_HINT)
        if not ct_keys:
            raise MaterialError("has no CT log keys", _ROOT_HINT)
        tlogs = document.get("tlogs")
        if not isinstance(tlogs, list):
            raise MaterialError("has no tlogs list", _ROOT_HINT)
        found = (_part(_rekor_key, item, f"tlogs[{index}]", index) for index, item in enumerate(tlogs))
        rekor_keys = tuple(key for key in found if key is not None)
        return cls(data=data, authorities=authorities, ct_keys=ct_keys, rekor_keys=rekor_keys, path=path)

    @classmethod
    def read(cls, path: Path) -> TrustedRootMaterial:
        """Raises OSError or MaterialError."""
        return cls.parse(read_bounded(path), path=path)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def _within(start: datetime | None, end: datetime | None, when: datetime) -> bool:
    """Whether ``when`` is inside a validity window (``end`` included, as sigstore counts it)."""
    return (start is None or start <= when) and (end is None or when <= end)


def _list(document: Mapping[str, Any], name: str) -> list[Any]:
    value = document.get(name)
    if value is None:
        return []
    if not isinstance(value, list):
        raise MaterialError(f"is not a valid trusted_root.json: {name} is not a list", _ROOT_HINT)
    return value


def _part(read: Any, item: object, where: str, *args: object) -> Any:
    """``read(item)``, with any malformation reported as a problem of the part at ``where``."""
    if not isinstance(item, Mapping):
        raise MaterialError(f"is not a valid trusted_root.json: {where} is not an object", _ROOT_HINT)
    try:
        return read(item, *args)
    except MaterialError as error:
        raise MaterialError(
            f"is not a valid trusted_root.json: {where}: {error.message}", _ROOT_HINT
        ) from None
    except (KeyError, TypeError, ValueError, binascii.Error, UnsupportedAlgorithm) as error:
        reason = f"{error!s}".strip().splitlines()[0] if str(error).strip() else type(error).__name__
        if isinstance(error, KeyError):
            reason = f"{error.args[0]} is missing"
        raise MaterialError(f"is not a valid trusted_root.json: {where}: {reason}", _ROOT_HINT) from None


def _authority(item: Mapping[str, Any]) -> CertificateAuthority:
    certificates = tuple(
        x509.load_der_x509_certificate(base64.b64decode(cert["rawBytes"], validate=True))
        for cert in item["certChain"]["certificates"]
    )
    start, end = _window(item.get("validFor"))
    return CertificateAuthority(certificates=certificates, valid_from=start, valid_until=end)


def _log_key(item: Mapping[str, Any]) -> LogKey:
    public = item["publicKey"]
    start, end = _window(public.get("validFor"))
    return LogKey(
        key_id=base64.b64decode(item["logId"]["keyId"], validate=True),
        public_key=serialization.load_der_public_key(base64.b64decode(public["rawBytes"], validate=True)),
        valid_from=start,
        valid_until=end,
        base_url=str(item.get("baseUrl", "")),
    )


def _rekor_key(item: Mapping[str, Any], index: int) -> RekorKey | None:
    public = item.get("publicKey")
    log_id = item.get("logId")
    public = public if isinstance(public, Mapping) else {}
    try:
        der = base64.b64decode(str(public.get("rawBytes", "")), validate=True)
        key_id = base64.b64decode(
            str(log_id.get("keyId", "") if isinstance(log_id, Mapping) else ""), validate=True
        )
    except (binascii.Error, ValueError):
        raise MaterialError("publicKey.rawBytes or logId.keyId is not base64", _ROOT_HINT) from None
    if not der or not key_id:
        raise MaterialError("publicKey.rawBytes or logId.keyId is missing", _ROOT_HINT)
    name = f"tlog {item.get('baseUrl', index)}"
    start, end = _window(public.get("validFor"))
    try:
        key = public_key(der)
    except MaterialError as error:
        _logger.warning("trusted root tlogs[%d] (%s): skipped: %s", index, name, error.message)
        return None
    spki = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return RekorKey(log_id=key_id.hex(), name=name, key=key, spki_der=spki, valid_from=start, valid_until=end)


def _window(valid_for: object) -> tuple[datetime | None, datetime | None]:
    if not isinstance(valid_for, Mapping):
        return None, None
    start, end = valid_for.get("start"), valid_for.get("end")
    return (_timestamp(start) if start else None, _timestamp(end) if end else None)


def _timestamp(value: object) -> datetime:
    if not isinstance(value, str):
        raise MaterialError(f"validity time {value!r} is not a string", _ROOT_HINT)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise MaterialError(f"validity time {value!r} is not RFC 3339", _ROOT_HINT) from None
    if parsed.tzinfo is None:
        raise MaterialError(f"validity time {value!r} has no time zone", _ROOT_HINT)
    return parsed
