"""Trust material, built once per policy load: pinned Sigstore trusted roots and public keys.

Every ``trust.roots`` entry is read from its ``trusted_root.json`` with ``TrustedRoot.from_file`` and gets
one sigstore ``Verifier``; TUF and the network are never used, so admission never depends on them and
a key rotation reaches the webhook only when operators update the file. The root's Fulcio CA chains,
CT log keys and Rekor keys are also kept for the legacy cosign path, which verifies offline without
sigstore's ``Verifier``. Every ``trust.keys`` entry becomes a public key.

Bad trust material is a :class:`~webhook.errors.ConfigError` naming the file and the cause, so a policy
with an unreadable root never becomes the loaded policy.
"""

from __future__ import annotations

__all__ = ["CertificateAuthority", "LogKey", "RootMaterial", "TrustMaterial", "load_root"]

import base64
import binascii
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pydantic
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.hazmat.primitives.serialization import load_der_public_key
from sigstore.errors import Error as SigstoreError
from sigstore.models import TrustedRoot
from sigstore.verify import Verifier

from webhook.errors import ConfigError
from webhook.policy.model import Policy, TrustKey, TrustRoot
from webhook.text import first_line
from webhook.times import parse_rfc3339
from webhook.verify.keys import tlog_keys_from_trusted_root
from webhook.verify.signatures import PublicKey, load_public_key

_logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LogKey:
    """A transparency-log or CT-log public key of a trusted root, with its validity window."""

    key_id: bytes
    public_key: PublicKeyTypes
    valid_from: datetime | None
    valid_until: datetime | None
    base_url: str = ""

    def valid_at(self, when: datetime) -> bool:
        if self.valid_from is not None and when < self.valid_from:
            return False
        return self.valid_until is None or when <= self.valid_until


@dataclass(frozen=True, slots=True)
class CertificateAuthority:
    """One Fulcio CA chain of a trusted root (leaf-most first) and the window it may issue in."""

    certificates: tuple[x509.Certificate, ...]
    valid_from: datetime | None
    valid_until: datetime | None

    def valid_at(self, when: datetime) -> bool:
        if self.valid_from is not None and when < self.valid_from:
            return False
        return self.valid_until is None or when <= self.valid_until


@dataclass(frozen=True, slots=True, eq=False)
class RootMaterial:
    """One pinned Sigstore instance.

    Attributes:
        verifier: sigstore-python's offline ``Verifier`` for bundles.
        authorities: Fulcio CA chains (legacy path).
        ct_keys: CT log keys that sign the SCTs embedded in Fulcio certificates (legacy path).
        tlog_keys: Rekor keys by log id (hex), as :mod:`webhook.verify.keys` takes them (legacy path).
    """

    name: str
    file: Path
    verifier: Verifier
    authorities: tuple[CertificateAuthority, ...]
    ct_keys: tuple[LogKey, ...]
    tlog_keys: Mapping[str, PublicKey]


@dataclass(frozen=True, slots=True, eq=False)
class TrustMaterial:
    """All trust material of one policy. ``fingerprint`` is the policy's (it covers these files)."""

    roots: Mapping[str, RootMaterial]
    keys: Mapping[str, PublicKey]
    fingerprint: str = ""

    @classmethod
    def from_policy(cls, policy: Policy) -> TrustMaterial:
        """Load every trust root and key named in ``policy.trust``.

        Raises:
            ConfigError: a file is missing or unreadable, or is not valid trust material.
        """
        roots = {root.name: load_root(root) for root in policy.trust.roots}
        public_keys = {key.name: _load_key(key) for key in policy.trust.keys}
        _logger.info("trust material loaded: %d root(s), %d key(s)", len(roots), len(public_keys))
        return cls(
            roots=MappingProxyType(roots), keys=MappingProxyType(public_keys), fingerprint=policy.fingerprint
        )

    def root(self, name: str) -> RootMaterial | None:
        return self.roots.get(name)

    def key(self, name: str) -> PublicKey | None:
        return self.keys.get(name)

    def all_tlog_keys(self) -> Mapping[str, PublicKey]:
        """The Rekor keys of every trusted root, by log id (key-signed artifacts are checked against them)."""
        merged: dict[str, PublicKey] = {}
        for root in self.roots.values():
            merged.update(root.tlog_keys)
        return MappingProxyType(merged)


def load_root(root: TrustRoot) -> RootMaterial:
    """Load one trusted root as the server uses it (``imagegate lint`` checks roots with this too).

    Raises:
        ConfigError: the file cannot be read, or is not a trusted root imagegate can verify with.
    """
    path = Path(root.file)
    try:
        trusted_root = TrustedRoot.from_file(str(path))
        verifier = Verifier(trusted_root=trusted_root)
        document = json.loads(path.read_bytes())
        authorities = tuple(_authority(item) for item in document.get("certificateAuthorities") or ())
        ct_keys = tuple(_log_key(item) for item in document.get("ctlogs") or ())
        tlog_keys = tlog_keys_from_trusted_root(path)
    except ConfigError as error:
        raise ConfigError(f"trust root {root.name!r}: {error.user_message}", details=error.details) from error
    except OSError as error:
        raise ConfigError(
            f"trust root {root.name!r}: cannot read {path}: {error.strerror or error}"
        ) from error
    except (
        pydantic.ValidationError,
        SigstoreError,
        ValueError,
        KeyError,
        TypeError,
        binascii.Error,
    ) as error:
        raise ConfigError(
            f"trust root {root.name!r}: {path} is not a valid trusted_root.json: {first_line(error)}"
        ) from error
    if not authorities:
        raise ConfigError(f"trust root {root.name!r}: {path} has no Fulcio certificate authorities")
    if not ct_keys:
        raise ConfigError(f"trust root {root.name!r}: {path} has no CT log keys")
    return RootMaterial(
        name=root.name,
        file=path,
        verifier=verifier,
        authorities=authorities,
        ct_keys=ct_keys,
        tlog_keys=MappingProxyType(tlog_keys),
    )


def _load_key(key: TrustKey) -> PublicKey:
    where = str(key.file) if key.file is not None else "inline pem"
    try:
        pem = Path(key.file).read_bytes() if key.file is not None else (key.pem or "").encode()
        return load_public_key(pem, name=key.name)
    except OSError as error:
        raise ConfigError(
            f"trust key {key.name!r}: cannot read {where}: {error.strerror or error}"
        ) from error
    except ConfigError as error:
        raise ConfigError(f"{error.user_message} ({where})", details=error.details) from error


def _authority(item: Mapping[str, Any]) -> CertificateAuthority:
    certificates = tuple(
        x509.load_der_x509_certificate(base64.b64decode(cert["rawBytes"], validate=True))
        for cert in item["certChain"]["certificates"]
    )
    start, end = _window(item.get("validFor"))
    return CertificateAuthority(certificates=certificates, valid_from=start, valid_until=end)


def _log_key(item: Mapping[str, Any]) -> LogKey:
    public_key = item["publicKey"]
    start, end = _window(public_key.get("validFor"))
    return LogKey(
        key_id=base64.b64decode(item["logId"]["keyId"], validate=True),
        public_key=load_der_public_key(base64.b64decode(public_key["rawBytes"], validate=True)),
        valid_from=start,
        valid_until=end,
        base_url=str(item.get("baseUrl", "")),
    )


def _window(valid_for: object) -> tuple[datetime | None, datetime | None]:
    if not isinstance(valid_for, dict):
        return None, None
    start = valid_for.get("start")
    end = valid_for.get("end")
    return (parse_rfc3339(start) if start else None, parse_rfc3339(end) if end else None)
