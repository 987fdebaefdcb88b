"""Signer identities: sigstore verification policies for keyless signers, and what a certificate says.

A :class:`~webhook.policy.model.KeylessSigner` becomes a sigstore ``VerificationPolicy``:

* the OIDC issuer compares exactly, against the Fulcio issuer extension ``1.3.6.1.4.1.57264.1.8``
  (DER UTF8String) or the older ``1.3.6.1.4.1.57264.1.1`` (raw bytes); Fulcio writes both with one value;
* ``subject`` compares exactly against the SAN e-mail addresses, URIs and Sigstore OtherName, with
  sigstore's ``Identity`` semantics;
* ``subjectRegExp`` must match a whole SAN (``re.fullmatch``), so an unanchored expression never
  accepts a longer identity (``https://github.com/acme/app`` does not match ``.../acme/app-evil``);
* every extension named in the signer compares exactly, through sigstore's Fulcio-extension policies.

:class:`CertIdentity` is what a certificate actually carries, so findings can say expected vs found.
"""

from __future__ import annotations

__all__ = [
    "EXTENSIONS",
    "CertIdentity",
    "SignerPolicy",
]

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat import asn1
from cryptography.x509 import (
    ExtensionNotFound,
    ObjectIdentifier,
    OtherName,
    RFC822Name,
    SubjectAlternativeName,
    UniformResourceIdentifier,
)
from sigstore.errors import VerificationError
from sigstore.verify import policy as sp

from webhook.formats import FULCIO_EXTENSIONS
from webhook.policy.model import KeylessSigner

_logger = logging.getLogger(__name__)

_FULCIO = "1.3.6.1.4.1.57264.1."
_ISSUER_V1 = ObjectIdentifier(_FULCIO + "1")
_ISSUER_V2 = ObjectIdentifier(_FULCIO + "8")
_OTHERNAME = ObjectIdentifier(_FULCIO + "7")

# sigstore's policy class for every Fulcio extension it knows, by OID.
_POLICY_CLASSES: Mapping[str, type[sp._SingleX509ExtPolicy]] = {
    cls.oid.dotted_string: cls
    for cls in vars(sp).values()
    if isinstance(cls, type) and issubclass(cls, sp._SingleX509ExtPolicy) and getattr(cls, "oid", None)
}
# Policy-file extension names (webhook.formats) -> sigstore policy class. The GitHub-specific 1.2-1.6
# extensions hold raw bytes; the 1.9+ ones hold DER UTF8Strings. A name sigstore lacks fails at import.
EXTENSIONS: Mapping[str, type[sp._SingleX509ExtPolicy]] = {
    name: _POLICY_CLASSES[oid] for name, oid in FULCIO_EXTENSIONS.items()
}

# Extensions worth showing in a finding, in the order shown.
_SHOWN = ("sourceRepositoryURI", "sourceRepositoryRef", "buildSignerURI")


@dataclass(frozen=True, slots=True)
class CertIdentity:
    """What a signing certificate says about its holder (read, not verified, by this class).

    Attributes:
        sans: SAN e-mails, URIs and Sigstore OtherName values, in certificate order.
        issuer: the OIDC issuer (extension 1.8, else 1.1), or None.
        extensions: the Fulcio extensions present, as (policy-file name, value) pairs.
    """

    sans: tuple[str, ...]
    issuer: str | None
    extensions: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_certificate(cls, cert: x509.Certificate) -> CertIdentity:
        extensions: list[tuple[str, str]] = []
        for name, policy_class in EXTENSIONS.items():
            value = _extension_value(
                cert, policy_class.oid, der=issubclass(policy_class, sp._SingleX509ExtPolicyV2)
            )
            if value is not None:
                extensions.append((name, value))
        issuer = _extension_value(cert, _ISSUER_V2, der=True)
        if issuer is None:
            issuer = _extension_value(cert, _ISSUER_V1, der=False)
        return cls(sans=_sans(cert), issuer=issuer, extensions=tuple(extensions))

    def extension(self, name: str) -> str | None:
        return next((value for key, value in self.extensions if key == name), None)

    def describe(self) -> str:
        who = ", ".join(self.sans) if self.sans else "(no SAN)"
        text = f"{who} issuer {self.issuer or '(none)'}"
        shown = [f"{name}={value}" for name in _SHOWN if (value := self.extension(name)) is not None]
        if shown:
            text += f" ({', '.join(shown)})"
        return text


class SignerPolicy:
    """The sigstore ``VerificationPolicy`` of one keyless signer (see the module docstring).

    ``verify(cert)`` raises ``sigstore.errors.VerificationError`` naming what did not match;
    ``matches(cert)`` is the boolean form.

    Raises (constructor):
        ValueError: an unknown extension name or an invalid regular expression.
    """

    def __init__(self, signer: KeylessSigner) -> None:
        if (signer.subject is None) == (signer.subject_regexp is None):
            raise ValueError("a keyless signer needs exactly one of subject and subjectRegExp")
        self.signer = signer
        self._issuer = sp.AnyOf([sp.OIDCIssuerV2(signer.issuer), sp.OIDCIssuer(signer.issuer)])
        self._subject: sp.Identity | None = None
        self._pattern: re.Pattern[str] | None = None
        if signer.subject is not None:
            self._subject = sp.Identity(identity=signer.subject)
        else:
            try:
                self._pattern = re.compile(signer.subject_regexp or "")
            except re.error as error:
                raise ValueError(f"invalid subjectRegExp {signer.subject_regexp!r}: {error}") from error
        extension_policies: list[sp._SingleX509ExtPolicy] = []
        for name, value in signer.extensions:
            policy_class = EXTENSIONS.get(name)
            if policy_class is None:
                raise ValueError(
                    f"unknown certificate extension {name!r} (known: {', '.join(sorted(EXTENSIONS))})"
                )
            extension_policies.append(policy_class(value))
        self._extensions = tuple(extension_policies)

    def verify(self, cert: x509.Certificate) -> None:
        try:
            self._issuer.verify(cert)
        except (VerificationError, ValueError, TypeError):
            found = CertIdentity.from_certificate(cert).issuer
            raise VerificationError(f"issuer {found or '(none)'} is not {self.signer.issuer}") from None
        if self._subject is not None:
            try:
                self._subject.verify(cert)
            except (VerificationError, ExtensionNotFound, ValueError):
                # sigstore compares an OtherName SAN as raw DER (and raises UnicodeDecodeError when the
                # DER length is two bytes, i.e. a name of 128 bytes or more); compare decoded values.
                if self.signer.subject in _sans(cert):
                    return self._verify_extensions(cert)
                raise VerificationError(
                    f"subject {', '.join(_sans(cert)) or '(no SAN)'} is not {self.signer.subject}"
                ) from None
        elif self._pattern is not None:
            sans = _sans(cert)
            if not any(self._pattern.fullmatch(san) for san in sans):
                raise VerificationError(
                    f"subject {', '.join(sans) or '(no SAN)'} does not match ~/{self.signer.subject_regexp}/"
                )
        self._verify_extensions(cert)

    def _verify_extensions(self, cert: x509.Certificate) -> None:
        for policy in self._extensions:
            try:
                policy.verify(cert)
            except (ValueError, TypeError, UnicodeDecodeError) as error:
                # A malformed extension value is a mismatch, not a crash.
                raise VerificationError(
                    f"certificate extension {policy.oid.dotted_string} is malformed: {error}"
                ) from None

    def matches(self, cert: x509.Certificate) -> bool:
        try:
            self.verify(cert)
        except VerificationError as error:
            _logger.debug("identity policy %s rejected the certificate: %s", self.signer.describe(), error)
            return False
        return True

    def failure(self, cert: x509.Certificate) -> str | None:
        """Why ``cert`` does not satisfy this signer, or None when it does."""
        try:
            self.verify(cert)
        except VerificationError as error:
            return str(error)
        return None


def _sans(cert: x509.Certificate) -> tuple[str, ...]:
    try:
        san = cert.extensions.get_extension_for_class(SubjectAlternativeName).value
    except ExtensionNotFound:
        return ()
    values: list[str] = list(san.get_values_for_type(RFC822Name))
    values.extend(san.get_values_for_type(UniformResourceIdentifier))
    for other in san.get_values_for_type(OtherName):
        if other.type_id == _OTHERNAME:
            values.append(_decode_utf8(other.value))
    return tuple(values)


def _extension_value(cert: x509.Certificate, oid: ObjectIdentifier, *, der: bool) -> str | None:
    try:
        extension = cert.extensions.get_extension_for_oid(oid).value
    except ExtensionNotFound:
        return None
    raw = getattr(extension, "value", b"")
    if not isinstance(raw, bytes):
        return None
    return _decode_utf8(raw) if der else raw.decode("utf-8", "replace")


def _decode_utf8(raw: bytes) -> str:
    # Fulcio's 1.8+ extensions and the OtherName SAN are DER UTF8Strings; show raw bytes if not.
    try:
        return str(asn1.decode_der(str, raw))
    except (ValueError, TypeError):
        return raw.decode("utf-8", "replace")
