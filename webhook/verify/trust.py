"""Trust material, built once per policy load: pinned Sigstore trusted roots and public keys.

The policy carries every ``trust.roots`` file and ``trust.keys`` key as it was read and checked
(:mod:`webhook.policy.material`: the bytes, the Fulcio CA chains, CT and Rekor keys, the key objects);
nothing here opens a file. What the pure core may not do happens here: sigstore's own model of each
trusted root is built from the carried bytes, with one sigstore ``Verifier`` per root; TUF and the
network are never used, so admission never depends on them and a key rotation reaches the webhook only
when operators update the file. The CA chains, CT log keys and Rekor keys the policy carries serve the
legacy cosign path, which verifies offline without sigstore's ``Verifier``, and key-signed bundles.

A root sigstore refuses is a :class:`~webhook.errors.ConfigError` naming the root and the cause, so a
policy with such a root never becomes the loaded policy (``imagegate lint`` reports it too).
"""

from __future__ import annotations

__all__ = [
    "CertificateAuthority",
    "LogKey",
    "RootMaterial",
    "TrustMaterial",
    "issuer_key",
    "load_root",
    "tlog_keys",
]

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import pydantic
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sigstore.errors import Error as SigstoreError
from sigstore.models import TrustedRoot
from sigstore.verify import Verifier
from sigstore_models.trustroot import v1 as trustroot_v1

from webhook.errors import ConfigError
from webhook.policy.material import CertificateAuthority, LogKey, TrustedRootMaterial
from webhook.policy.model import Policy, TrustKey, TrustRoot
from webhook.text import first_line
from webhook.verify.signatures import PublicKey

_logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, eq=False)
class RootMaterial:
    """One pinned Sigstore instance.

    Attributes:
        verifier: sigstore-python's offline ``Verifier`` for bundles.
        authorities: Fulcio CA chains (legacy path).
        ct_keys: CT log keys that sign the SCTs embedded in Fulcio certificates (legacy path).
        tlog_keys: Rekor keys by log id (hex), as :mod:`webhook.verify.keys` takes them (legacy path).
        issuers: the CA certificates of ``authorities`` by subject (:func:`issuer_key`), for the subjects
            exactly one of them bears, and only when they are exactly the certificates ``verifier``
            chains to (else empty): a certificate the ``verifier`` accepted was issued by the one
            bearing its issuer's name.
    """

    name: str
    file: Path
    verifier: Verifier
    authorities: tuple[CertificateAuthority, ...]
    ct_keys: tuple[LogKey, ...]
    tlog_keys: Mapping[str, PublicKey]
    issuers: Mapping[str, tuple[CertificateAuthority, x509.Certificate]]


@dataclass(frozen=True, slots=True, eq=False)
class TrustMaterial:
    """All trust material of one policy. ``fingerprint`` is the policy's (it covers these files' bytes)."""

    roots: Mapping[str, RootMaterial]
    keys: Mapping[str, PublicKey]
    fingerprint: str = ""

    @classmethod
    def from_policy(cls, policy: Policy) -> TrustMaterial:
        """The trust material of every trust root and key ``policy`` carries.

        Raises:
            ConfigError: sigstore refuses a trusted root.
        """
        roots = {root.name: load_root(root) for root in policy.trust.roots}
        public_keys = {key.name: _public_key(key) for key in policy.trust.keys}
        _logger.info("trust material built: %d root(s), %d key(s)", len(roots), len(public_keys))
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
    """One trusted root as the server uses it (``imagegate lint`` and trust refresh check roots with it).

    sigstore's model is built from the bytes the policy carries (``TrustedRoot(inner)`` is the
    constructor ``TrustedRoot.from_file`` uses after reading the file; sigstore is pinned to 4.5.x).

    Raises:
        ConfigError: sigstore refuses the root.
    """
    try:
        verifier = Verifier(trusted_root=TrustedRoot(trustroot_v1.TrustedRoot.from_json(root.material.data)))
    except (pydantic.ValidationError, SigstoreError, ValueError, KeyError, TypeError) as error:
        raise ConfigError(
            f"trust root {root.name!r}: {root.file} is not a valid trusted_root.json: {first_line(error)}"
        ) from error
    return RootMaterial(
        name=root.name,
        file=root.file,
        verifier=verifier,
        authorities=root.material.authorities,
        ct_keys=root.material.ct_keys,
        tlog_keys=tlog_keys(root.material),
        issuers=_unique_issuers(root.material.authorities, verifier),
    )


def _unique_issuers(
    authorities: tuple[CertificateAuthority, ...], verifier: Verifier
) -> Mapping[str, tuple[CertificateAuthority, x509.Certificate]]:
    """:attr:`RootMaterial.issuers`: empty unless the ``verifier``'s trust anchors are exactly the
    certificates of ``authorities`` (sigstore 4.5 builds its chains on all of them, retired ones too)."""
    ours = [(authority, cert) for authority in authorities for cert in authority.certificates]
    anchors = {_der(cert) for cert in verifier._fulcio_certificate_chain}
    if {_der(cert) for _, cert in ours} != anchors:
        return MappingProxyType({})
    by_subject: dict[str, list[tuple[CertificateAuthority, x509.Certificate]]] = {}
    for authority, cert in ours:
        by_subject.setdefault(issuer_key(cert.subject), []).append((authority, cert))
    return MappingProxyType({key: found[0] for key, found in by_subject.items() if len(found) == 1})


def issuer_key(name: x509.Name) -> str:
    """``name`` folded as loosely as any name matching may compare names (case, spaces): certificates
    whose names a path builder might take for each other share a key, and so are never told apart."""
    return " ".join(name.rfc4514_string().casefold().split())


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def tlog_keys(root: TrustedRootMaterial) -> Mapping[str, PublicKey]:
    """The Rekor keys of ``root`` by log id (hex), as :mod:`webhook.verify.keys` takes them."""
    return MappingProxyType(
        {
            key.log_id: PublicKey(
                name=key.name,
                key=key.key,
                spki_der=key.spki_der,
                valid_from=key.valid_from,
                valid_until=key.valid_until,
            )
            for key in root.rekor_keys
        }
    )


def _public_key(key: TrustKey) -> PublicKey:
    return PublicKey(name=key.name, key=key.material.key, spki_der=key.material.spki_der)
