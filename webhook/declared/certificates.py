"""Signing certificates for declared keyless identities, so identity matching runs on real X.509.

A declared keyless signature becomes a certificate with what Fulcio writes into one: the identity as
a SAN (a URI when it has a scheme, an e-mail address when it has an ``@``, else Sigstore's OtherName),
the OIDC issuer in extensions 1.3.6.1.4.1.57264.1.1 (raw) and 1.8 (DER UTF8String), and every declared
Fulcio extension in its own encoding (1.2 to 1.6 raw bytes, 1.9 and later DER UTF8Strings, as
:data:`webhook.formats.FULCIO_EXTENSIONS` says). The verifier then applies the policy's identity checks
(:class:`webhook.verify.identity.SignerPolicy`, sigstore's own extension policies) to it exactly as to a
certificate a real Verifier accepted.

The certificate chains to nothing and proves nothing: the cryptography it would take part in is what
a hermetic test replaces. Each declared signature gets its own certificate (a Fulcio certificate is
issued per signing session), so k-of-n counts two declared keyless signatures as two signing keys.
"""

from __future__ import annotations

__all__ = ["CertificateFactory"]

import threading
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat import asn1
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from webhook.formats import FULCIO_EXTENSIONS
from webhook.policy.suite import DeclaredIdentity

_FULCIO = "1.3.6.1.4.1.57264.1."
_ISSUER_V1 = x509.ObjectIdentifier(_FULCIO + "1")
_ISSUER_V2 = x509.ObjectIdentifier(_FULCIO + "8")
_OTHERNAME = x509.ObjectIdentifier(_FULCIO + "7")
# Fulcio's leaf certificates are valid for ten minutes.
_VALIDITY = timedelta(minutes=10)


class CertificateFactory:
    """Issues the certificates of declared identities; one key pair serves all (nothing verifies them)."""

    def __init__(self) -> None:
        self._key = ec.generate_private_key(ec.SECP256R1())
        self._lock = threading.Lock()
        self._serial = 0

    def issue(self, identity: DeclaredIdentity, *, not_before: datetime) -> x509.Certificate:
        with self._lock:
            self._serial += 1
            serial = self._serial
        issuer = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "imagegate declared facts (no CA)")])
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([]))
            .issuer_name(issuer)
            .public_key(self._key.public_key())
            .serial_number(serial)
            .not_valid_before(not_before)
            .not_valid_after(not_before + _VALIDITY)
            # Fulcio leaves have an empty subject: the identity is the (critical) SAN.
            .add_extension(x509.SubjectAlternativeName([_san(identity.subject)]), critical=True)
        )
        issuers = ((_ISSUER_V1, identity.issuer.encode()), (_ISSUER_V2, asn1.encode_der(identity.issuer)))
        for issuer_oid, encoded in issuers:
            builder = builder.add_extension(x509.UnrecognizedExtension(issuer_oid, encoded), critical=False)
        for name, value in identity.extensions:
            oid = FULCIO_EXTENSIONS[name]
            builder = builder.add_extension(
                x509.UnrecognizedExtension(x509.ObjectIdentifier(oid), _encoded(oid, value)), critical=False
            )
        return builder.sign(self._key, hashes.SHA256())


def _san(subject: str) -> x509.GeneralName:
    if "://" in subject:
        return x509.UniformResourceIdentifier(subject)
    if "@" in subject:
        return x509.RFC822Name(subject)
    return x509.OtherName(_OTHERNAME, asn1.encode_der(subject))


def _encoded(oid: str, value: str) -> bytes:
    # 1.2-1.6 (GitHub-specific, deprecated) hold the raw bytes; 1.8 and later a DER UTF8String.
    return asn1.encode_der(value) if int(oid.rsplit(".", 1)[1]) >= 8 else value.encode()
