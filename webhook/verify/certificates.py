"""Fulcio signing certificates against a pinned trusted root, inside the root's validity windows.

A trusted root bounds each Fulcio CA and CT log key with ``validFor``: when Sigstore rotates one, the
old one gets an ``end``, and what it vouches for afterwards must not count. sigstore-python's
``Verifier`` builds the chain and checks the SCT with every CA and CT key of the root, retired ones
included, so both cosign paths check the certificate here: legacy layers (:mod:`webhook.verify.legacy`)
as their only certificate check, Sigstore bundles (:mod:`webhook.verify.bundles`) after the
``Verifier`` accepted them. In order:

1. at every verified signing time (the Rekor integrated time, a TSA time), the leaf chains to one of the
   root's CA chains whose window holds that time, and the leaf was valid then (the certificates a
   bundle or layer carries are ignored: only those of the pinned root are trust anchors). For a bundle
   the ``Verifier`` accepted, the chain it built is reused where the root's CA certificate that issued
   the leaf is known by name; it is built again where it is not;
2. an embedded precertificate SCT is signed by a CT log key of the root whose window holds the SCT's
   timestamp;
3. the leaf has KeyUsage digitalSignature and EKU codeSigning.

Every failure is :class:`~webhook.errors.VerificationFailed` (``signature-invalid``).
"""

from __future__ import annotations

__all__ = ["check_issuable_at", "verify_certificate"]

import hashlib
import struct
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ExtendedKeyUsage, ExtensionNotFound, KeyUsage
from cryptography.x509.certificate_transparency import LogEntryType, SignedCertificateTimestamp
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.verification import Criticality, ExtensionPolicy, PolicyBuilder, Store
from cryptography.x509.verification import VerificationError as X509VerificationError

from webhook.verify.evidence import signature_invalid
from webhook.verify.signatures import verify_signature
from webhook.verify.trust import LogKey, RootMaterial, issuer_key

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def verify_certificate(
    leaf: x509.Certificate, *, root: RootMaterial, times: Sequence[datetime], chained: bool = False
) -> None:
    """Check the Fulcio ``leaf`` against ``root`` at each of ``times`` (see the module docstring).

    Args:
        chained: ``root``'s ``Verifier`` accepted ``leaf`` at each of ``times`` (a bundle). Its chain
            then ends at the CA certificate bearing the leaf's issuer name: where exactly one of the
            root's CAs has it (:attr:`~webhook.verify.trust.RootMaterial.issuers`), that CA's window
            is all that is left to check; the chain is built again only otherwise (one signature
            check fewer per bundle, the costliest step).

    Raises:
        VerificationFailed: ``signature-invalid`` naming the failed step.
    """
    if not times:
        raise signature_invalid("no verified time to check the signing certificate at")
    chain: list[x509.Certificate] = []
    for when in times:
        known = _issuer_in_window(leaf, root=root, when=when) if chained else None
        chain = known if known is not None else _verify_chain(leaf, root=root, when=when)
    _verify_sct(leaf, chain, ct_keys=root.ct_keys)
    _verify_leaf_profile(leaf)


def check_issuable_at(root: RootMaterial, when: datetime) -> None:
    """Whether ``root`` could have certified a signature at ``when``: one of its Fulcio CAs and one of its
    CT log keys were inside their ``validFor`` windows then (the windows :func:`verify_certificate` holds
    a real certificate to). For a signature declared rather than made (hermetic policy tests).

    Raises:
        VerificationFailed: ``signature-invalid`` naming the part of the root that was not valid.
    """
    if not any(authority.valid_at(when) for authority in root.authorities):
        raise signature_invalid(_no_chain(root, when, detail="no CA of the root was valid then"))
    if not any(log_key.valid_at(when) for log_key in root.ct_keys):
        raise signature_invalid(
            f"no CT log key of trust root {root.name!r} was valid at {when.isoformat()} to sign the "
            "certificate's SCT"
        )


def _no_chain(root: RootMaterial, when: datetime, *, detail: str) -> str:
    return f"certificate does not chain to trust root {root.name!r} at {when.isoformat()}: {detail}"


def _issuer_in_window(
    leaf: x509.Certificate, *, root: RootMaterial, when: datetime
) -> list[x509.Certificate] | None:
    """The chain the ``Verifier`` built for ``leaf`` when its issuer's CA was valid at ``when``; None
    when that is not known (then :func:`_verify_chain` decides, and words any refusal)."""
    found = root.issuers.get(issuer_key(leaf.issuer))
    if found is None:
        return None
    authority, issuer = found
    return [issuer] if authority.valid_at(when) else None


def _verify_chain(leaf: x509.Certificate, *, root: RootMaterial, when: datetime) -> list[x509.Certificate]:
    # As sigstore's Verifier: WebPKI profile with the client-auth EKU check relaxed (Fulcio leaves
    # carry codeSigning), trust anchors = the pinned root's certificates only.
    ca_policy = ExtensionPolicy.webpki_defaults_ca().may_be_present(
        ExtendedKeyUsage, Criticality.NON_CRITICAL, None
    )
    ee_policy = ExtensionPolicy.webpki_defaults_ee().may_be_present(
        ExtendedKeyUsage, Criticality.NON_CRITICAL, None
    )
    reasons: list[str] = []
    for authority in root.authorities:
        if not authority.valid_at(when):
            continue
        verifier = (
            PolicyBuilder()
            .store(Store(list(authority.certificates)))
            .time(when)
            .extension_policies(ca_policy=ca_policy, ee_policy=ee_policy)
            .build_client_verifier()
        )
        try:
            return list(verifier.verify(leaf, []).chain[1:])
        except (X509VerificationError, x509.UnsupportedGeneralNameType) as error:
            reasons.append(str(error))
    detail = "; ".join(reasons) if reasons else "no CA of the root was valid then"
    raise signature_invalid(_no_chain(root, when, detail=detail))


def _verify_sct(
    leaf: x509.Certificate, chain: list[x509.Certificate], *, ct_keys: tuple[LogKey, ...]
) -> None:
    try:
        scts = leaf.extensions.get_extension_for_class(x509.PrecertificateSignedCertificateTimestamps).value
    except ExtensionNotFound:
        raise signature_invalid("certificate has no embedded SCT") from None
    if not chain:
        raise signature_invalid("certificate chain is empty")
    issuer = chain[0]
    if _is_precertificate_issuer(issuer) and len(chain) > 1:
        issuer = chain[1]
    issuer_key_hash = hashlib.sha256(
        issuer.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    ).digest()
    for sct in scts:
        if _sct_verifies(sct, leaf, issuer_key_hash=issuer_key_hash, ct_keys=ct_keys):
            return
    raise signature_invalid("no embedded SCT is signed by a CT log key of the trust root")


def _sct_verifies(
    sct: SignedCertificateTimestamp,
    leaf: x509.Certificate,
    *,
    issuer_key_hash: bytes,
    ct_keys: tuple[LogKey, ...],
) -> bool:
    if sct.entry_type != LogEntryType.PRE_CERTIFICATE or not isinstance(
        sct.signature_hash_algorithm, hashes.SHA256
    ):
        return False
    timestamp = sct.timestamp.replace(tzinfo=UTC)
    tbs = leaf.tbs_precertificate_bytes
    extensions = sct.extension_bytes
    # RFC 6962 §3.2 digitally-signed struct for a precert entry.
    data = (
        struct.pack("!BBQH", sct.version.value, 0, (timestamp - _EPOCH) // timedelta(milliseconds=1), 1)
        + issuer_key_hash
        + len(tbs).to_bytes(3, "big")
        + tbs
        + struct.pack("!H", len(extensions))
        + extensions
    )
    for log_key in ct_keys:
        if log_key.key_id != sct.log_id or not log_key.valid_at(timestamp):
            continue
        if verify_signature(log_key.public_key, sct.signature, data):
            return True
    return False


def _verify_leaf_profile(leaf: x509.Certificate) -> None:
    try:
        usage = leaf.extensions.get_extension_for_class(KeyUsage).value
        extended = leaf.extensions.get_extension_for_class(ExtendedKeyUsage).value
    except ExtensionNotFound as error:
        raise signature_invalid(f"signing certificate lacks {error.oid.dotted_string}") from None
    if not usage.digital_signature:
        raise signature_invalid("signing certificate's key usage is not digitalSignature")
    if ExtendedKeyUsageOID.CODE_SIGNING not in extended:
        raise signature_invalid("signing certificate's extended key usage is not codeSigning")


def _is_precertificate_issuer(issuer: x509.Certificate) -> bool:
    try:
        usage = issuer.extensions.get_extension_for_class(ExtendedKeyUsage).value
    except ExtensionNotFound:
        return False
    return ExtendedKeyUsageOID.CERTIFICATE_TRANSPARENCY in usage
