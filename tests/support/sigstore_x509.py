"""Builds the test Sigstore instance's certificates: a WebPKI-clean CA pair and Fulcio-style leaves with SCTs.

sigstore-python verifies the chain with `cryptography`'s WebPKI client verifier and always requires an
embedded *precertificate* SCT, so the shapes here are stricter than "any self-signed cert":

* CA certs carry a critical BasicConstraints, a critical KeyUsage with keyCertSign and an SKI; the
  intermediate also carries an AKI.
* Leaves have an empty subject, a critical SAN, KeyUsage digitalSignature, EKU codeSigning, SKI/AKI, the
  Fulcio OID extensions and, last, the SCT list extension.
* The SCT signs ``issuer_key_hash || u24 len || TBSCertificate-without-the-SCT-extension``; the leaf is built
  twice (without and with the SCT) and the TBS bytes are checked to be identical.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Mapping
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "FULCIO_EXTENSION_OIDS",
    "SCT_LIST_OID",
    "build_ca_pair",
    "build_leaf",
    "der_utf8_string",
    "fulcio_extension",
    "key_id",
]

_FULCIO = "1.3.6.1.4.1.57264.1."

# Fulcio's extension names (docs/oid-info.md), lower-cased for lookup, with (OID suffix, DER-encoded?).
# 1.1-1.6 hold raw bytes (the deprecated encoding); 1.8+ hold a DER UTF8String.
FULCIO_EXTENSION_OIDS: Mapping[str, tuple[str, bool]] = {
    "issuer": ("1", False),
    "githubworkflowtrigger": ("2", False),
    "githubworkflowsha": ("3", False),
    "githubworkflowname": ("4", False),
    "githubworkflowrepository": ("5", False),
    "githubworkflowref": ("6", False),
    "issuerv2": ("8", True),
    "buildsigneruri": ("9", True),
    "buildsignerdigest": ("10", True),
    "runnerenvironment": ("11", True),
    "sourcerepositoryuri": ("12", True),
    "sourcerepositorydigest": ("13", True),
    "sourcerepositoryref": ("14", True),
    "sourcerepositoryidentifier": ("15", True),
    "sourcerepositoryowneruri": ("16", True),
    "sourcerepositoryowneridentifier": ("17", True),
    "buildconfiguri": ("18", True),
    "buildconfigdigest": ("19", True),
    "buildtrigger": ("20", True),
    "runinvocationuri": ("21", True),
    "sourcerepositoryvisibilityatsigning": ("22", True),
    "sourcerepositoryvisibility": ("22", True),
}

SCT_LIST_OID = x509.ObjectIdentifier("1.3.6.1.4.1.11129.2.4.2")


def key_id(public_key: ec.EllipticCurvePublicKey) -> bytes:
    """RFC 6962 key id: sha256 over the DER SubjectPublicKeyInfo (Rekor log id, CT log id)."""
    spki = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(spki).digest()


def _der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def der_utf8_string(value: str) -> bytes:
    """DER UTF8String (tag 0x0C), the encoding Fulcio uses for extensions 1.8 and later."""
    raw = value.encode()
    return b"\x0c" + _der_length(len(raw)) + raw


def _der_octet_string(raw: bytes) -> bytes:
    return b"\x04" + _der_length(len(raw)) + raw


def fulcio_extension(name: str, value: str) -> x509.UnrecognizedExtension:
    """One Fulcio extension by its Fulcio name (any case) or full dotted OID, encoded as Fulcio does."""
    if name.startswith(_FULCIO):
        suffix = name[len(_FULCIO) :]
        der = int(suffix) >= 8
    else:
        try:
            suffix, der = FULCIO_EXTENSION_OIDS[name.lower()]
        except KeyError:
            known = ", ".join(sorted(FULCIO_EXTENSION_OIDS))
            raise ValueError(f"unknown Fulcio extension {name!r}; known (any case): {known}") from None
    payload = der_utf8_string(value) if der else value.encode()
    return x509.UnrecognizedExtension(x509.ObjectIdentifier(_FULCIO + suffix), payload)


def _signing_hash(key: ec.EllipticCurvePrivateKey) -> hashes.SHA256 | hashes.SHA384:
    return hashes.SHA384() if key.curve.key_size >= 384 else hashes.SHA256()


def build_ca_pair(
    *,
    name: str,
    root_key: ec.EllipticCurvePrivateKey,
    intermediate_key: ec.EllipticCurvePrivateKey,
    not_before: datetime,
    not_after: datetime,
) -> tuple[x509.Certificate, x509.Certificate]:
    """A self-signed root and a Fulcio-style intermediate under it (codeSigning EKU, pathLen 0)."""
    root_name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, name),
            x509.NameAttribute(NameOID.COMMON_NAME, f"{name} root"),
        ]
    )
    root_ski = x509.SubjectKeyIdentifier.from_public_key(root_key.public_key())
    root = (
        x509.CertificateBuilder()
        .subject_name(root_name)
        .issuer_name(root_name)
        .public_key(root_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
        .add_extension(_ca_key_usage(), critical=True)
        .add_extension(root_ski, critical=False)
        .sign(root_key, _signing_hash(root_key))
    )
    intermediate_name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, name),
            x509.NameAttribute(NameOID.COMMON_NAME, f"{name} intermediate"),
        ]
    )
    intermediate = (
        x509.CertificateBuilder()
        .subject_name(intermediate_name)
        .issuer_name(root_name)
        .public_key(intermediate_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_ca_key_usage(), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(intermediate_key.public_key()), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(root_ski), critical=False
        )
        .sign(root_key, _signing_hash(root_key))
    )
    return root, intermediate


def _ca_key_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=False,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )


def _san(subject: str) -> x509.GeneralName:
    # Fulcio puts e-mail identities in an RFC822 SAN and everything with a scheme in a URI SAN.
    if "://" in subject:
        return x509.UniformResourceIdentifier(subject)
    if "@" in subject:
        return x509.RFC822Name(subject)
    raise ValueError(f"subject {subject!r} is neither a URI nor an e-mail address")


def _sct_list(
    *, ct_key: ec.EllipticCurvePrivateKey, timestamp_ms: int, issuer_key_hash: bytes, tbs: bytes
) -> bytes:
    # RFC 6962 §3.2 digitally-signed struct for a precert entry (entry_type 1), no CT extensions.
    signed = (
        struct.pack("!BBQH", 0, 0, timestamp_ms, 1)
        + issuer_key_hash
        + len(tbs).to_bytes(3, "big")
        + tbs
        + struct.pack("!H", 0)
    )
    signature = ct_key.sign(signed, ec.ECDSA(hashes.SHA256()))
    sct = (
        struct.pack("!B", 0)
        + key_id(ct_key.public_key())
        + struct.pack("!QH", timestamp_ms, 0)
        # hash_algorithm sha256 (4), signature_algorithm ecdsa (3)
        + struct.pack("!BBH", 4, 3, len(signature))
        + signature
    )
    entries = struct.pack("!H", len(sct)) + sct
    return struct.pack("!H", len(entries)) + entries


def build_leaf(
    *,
    intermediate: x509.Certificate,
    intermediate_key: ec.EllipticCurvePrivateKey,
    public_key: ec.EllipticCurvePublicKey,
    subject: str,
    issuer: str,
    extensions: Mapping[str, str],
    not_before: datetime,
    not_after: datetime,
    ct_key: ec.EllipticCurvePrivateKey | None,
) -> x509.Certificate:
    """A Fulcio-style leaf; with `ct_key` it carries an embedded precertificate SCT signed by that key."""
    issuer_ski = intermediate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(intermediate.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(issuer_ski), critical=False
        )
        # Fulcio leaves have an empty subject, so the SAN must be critical (RFC 5280 §4.2.1.6).
        .add_extension(x509.SubjectAlternativeName([_san(subject)]), critical=True)
        .add_extension(fulcio_extension("issuer", issuer), critical=False)
        .add_extension(fulcio_extension("issuerV2", issuer), critical=False)
    )
    seen = {"1", "8"}
    for name, value in extensions.items():
        ext = fulcio_extension(name, value)
        suffix = ext.oid.dotted_string.rsplit(".", 1)[1]
        if suffix in seen:
            raise ValueError(f"Fulcio extension {name!r} given twice (the issuer is set by `issuer=`)")
        seen.add(suffix)
        builder = builder.add_extension(ext, critical=False)
    precert = builder.sign(intermediate_key, _signing_hash(intermediate_key))
    if ct_key is None:
        return precert
    tbs = precert.tbs_certificate_bytes
    sct_list = _sct_list(
        ct_key=ct_key,
        timestamp_ms=int(not_before.timestamp() * 1000),
        issuer_key_hash=key_id(intermediate_key.public_key()),
        tbs=tbs,
    )
    leaf = builder.add_extension(
        x509.UnrecognizedExtension(SCT_LIST_OID, _der_octet_string(sct_list)), critical=False
    ).sign(intermediate_key, _signing_hash(intermediate_key))
    # The SCT only verifies if removing its extension gives back exactly the TBS that was signed.
    if leaf.tbs_precertificate_bytes != tbs:
        raise AssertionError("precertificate TBS differs from the TBS the SCT signed")
    return leaf
