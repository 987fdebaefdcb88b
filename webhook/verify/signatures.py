"""Public keys and raw signatures: the key types imagegate accepts and the one signature verifier.

sigstore-python verifies only certificate (keyless) bundles, so what ``cosign sign --key`` and
``cosign attest --key`` produce, cosign's legacy layers, Rekor's promises and the SCTs of Fulcio
certificates are verified with :func:`verify_signature` and ``cryptography`` alone.

Algorithms (what cosign and the DSSE reference produce):

* ECDSA P-256 with SHA-256; ECDSA P-384 with SHA-384 **or SHA-256** (cosign hashes with SHA-256 whatever
  the curve unless told otherwise, so both are accepted for P-384); signatures DER-encoded or raw
  ``r || s`` (IEEE P1363, used by the DSSE test vectors and by KMS-backed signers such as Google's);
* Ed25519 (over the message itself; it cannot verify a message signature given only a digest);
* RSA (at least 2048 bits) PKCS#1 v1.5 or PSS (MGF1, any salt length), both with SHA-256.
"""

from __future__ import annotations

__all__ = ["KeyObject", "PublicKey", "load_public_key", "verify_prehashed", "verify_signature"]

import hashlib
from dataclasses import dataclass, field
from datetime import datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa, utils
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from webhook.errors import ConfigError
from webhook.policy import material

KeyObject = material.KeyObject


@dataclass(frozen=True, slots=True)
class PublicKey:
    """A public key accepted for verification (type and size checked by :func:`load_public_key`).

    Attributes:
        name: where it came from (policy key name, or ``tlog <url>`` for a log key); used in messages.
        key: the ``cryptography`` key object.
        spki_der: its DER SubjectPublicKeyInfo; two keys are the same key exactly when these are equal.
        valid_from, valid_until: validity of a transparency-log key (from a trusted root), else None.
    """

    name: str
    key: KeyObject = field(compare=False, hash=False, repr=False)
    spki_der: bytes = field(repr=False)
    valid_from: datetime | None = None
    valid_until: datetime | None = None

    @property
    def key_id(self) -> str:
        """sha256 of the DER SubjectPublicKeyInfo, lower-case hex (Rekor's log id)."""
        return hashlib.sha256(self.spki_der).hexdigest()

    @property
    def algorithm(self) -> str:
        """``ecdsa-p256``, ``ecdsa-p384``, ``ed25519`` or ``rsa-<bits>``."""
        key = self.key
        if isinstance(key, ec.EllipticCurvePublicKey):
            return "ecdsa-p256" if isinstance(key.curve, ec.SECP256R1) else "ecdsa-p384"
        if isinstance(key, ed25519.Ed25519PublicKey):
            return "ed25519"
        return f"rsa-{key.key_size}"


def load_public_key(pem: bytes, *, name: str) -> PublicKey:
    """Load a PEM (or DER) SubjectPublicKeyInfo: ECDSA P-256/P-384, Ed25519 or RSA >= 2048 bits.

    The rules are :func:`webhook.policy.material.public_key`'s, the ones ``imagegate lint`` applies.

    Raises:
        ConfigError: the data is not a public key, or its type or size is not accepted.
    """
    try:
        key = material.public_key(pem)
    except material.MaterialError as error:
        raise ConfigError(f"key {name!r}: {error.message}") from None
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return PublicKey(name=name, key=key, spki_der=der)


def verify_signature(key: PublicKey | PublicKeyTypes, signature: bytes, data: bytes) -> bool:
    """Whether ``signature`` is ``key``'s signature over ``data`` (algorithms in the module docstring).

    The one signature verifier: bundles, DSSE envelopes, legacy layers, Rekor SETs and the SCTs of
    Fulcio certificates all check with it. ``key`` is a loaded :class:`PublicKey` or a ``cryptography``
    key (a trusted root's CT log key); a key of another type verifies nothing. Never raises for a bad or
    malformed signature: it answers False.
    """
    public = key.key if isinstance(key, PublicKey) else key
    if isinstance(public, ed25519.Ed25519PublicKey):
        try:
            public.verify(signature, data)
        except InvalidSignature:
            return False
        return True
    if isinstance(public, ec.EllipticCurvePublicKey):
        algorithms: tuple[hashes.HashAlgorithm, ...] = (hashes.SHA256(),)
        if isinstance(public.curve, ec.SECP384R1):
            algorithms = (hashes.SHA384(), hashes.SHA256())
        return any(_verify_ecdsa(public, signature, data, algorithm) for algorithm in algorithms)
    if isinstance(public, rsa.RSAPublicKey):
        return _verify_rsa(public, signature, data, hashes.SHA256())
    return False


def verify_prehashed(key: PublicKey, signature: bytes, digest: bytes) -> bool:
    """Whether ``signature`` signs the message whose SHA-256 is ``digest`` (message-signature bundles)."""
    public = key.key
    if len(digest) != hashlib.sha256().digest_size or isinstance(public, ed25519.Ed25519PublicKey):
        return False
    prehashed = utils.Prehashed(hashes.SHA256())
    if isinstance(public, ec.EllipticCurvePublicKey):
        return _verify_ecdsa(public, signature, digest, prehashed)
    return _verify_rsa(public, signature, digest, prehashed)


def _verify_ecdsa(
    public: ec.EllipticCurvePublicKey,
    signature: bytes,
    data: bytes,
    algorithm: hashes.HashAlgorithm | utils.Prehashed,
) -> bool:
    for candidate in _ecdsa_encodings(public, signature):
        try:
            public.verify(candidate, data, ec.ECDSA(algorithm))
        except InvalidSignature:
            continue
        return True
    return False


def _ecdsa_encodings(public: ec.EllipticCurvePublicKey, signature: bytes) -> list[bytes]:
    """The DER signature as given, plus its DER form when it is a raw ``r || s`` of the curve's size."""
    candidates = [signature]
    size = (public.curve.key_size + 7) // 8
    if len(signature) == 2 * size:
        r = int.from_bytes(signature[:size], "big")
        s = int.from_bytes(signature[size:], "big")
        candidates.append(utils.encode_dss_signature(r, s))
    return candidates


def _verify_rsa(
    public: rsa.RSAPublicKey, signature: bytes, data: bytes, algorithm: hashes.HashAlgorithm | utils.Prehashed
) -> bool:
    schemes: tuple[padding.AsymmetricPadding, ...] = (
        padding.PKCS1v15(),
        padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.AUTO),
    )
    for scheme in schemes:
        try:
            public.verify(signature, data, scheme, algorithm)
        except (InvalidSignature, ValueError):
            continue
        return True
    return False
