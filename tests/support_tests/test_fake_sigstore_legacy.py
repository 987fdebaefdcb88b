"""Checks by hand (with `cryptography` and RFC 8785) that the legacy cosign .sig/.att layers are well-formed.

sigstore-python cannot verify these SET-only layers, so each check here is written independently of the
producer: signatures over the exact layer bytes, the certificate chain up to the trusted root, the Rekor
body's consistency with the layer, and the SET over ``{body, integratedTime, logID, logIndex}``.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import rfc8785
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from sigstore.verify import policy

from tests.support.fake_sigstore import (
    ANNOTATION_BUNDLE,
    ANNOTATION_CERTIFICATE,
    ANNOTATION_CHAIN,
    ANNOTATION_PREDICATE_TYPE,
    ANNOTATION_SIGNATURE,
    IN_TOTO_PAYLOAD_TYPE,
    SLSA_PROVENANCE_V02,
    FakeSigstore,
    Identity,
    KeyKind,
    generate_key,
    other_digest,
    shift_legacy_integrated_time,
    slsa_provenance_v02,
    statement_v01,
)

__all__: list[str] = []

pytestmark = [pytest.mark.usefixtures("offline"), pytest.mark.sigstore]

_IMAGE = "ghcr.io/acme/app"
_DIGEST = "sha256:" + "cd" * 32


def _trusted_root(fs: FakeSigstore) -> dict[str, Any]:
    return dict(json.loads(fs.trusted_root_path.read_text()))


def _log_key(fs: FakeSigstore) -> ec.EllipticCurvePublicKey:
    der = base64.b64decode(_trusted_root(fs)["tlogs"][0]["publicKey"]["rawBytes"])
    key = serialization.load_der_public_key(der)
    assert isinstance(key, ec.EllipticCurvePublicKey)
    return key


def _verified_rekor_body(fs: FakeSigstore, annotations: dict[str, str]) -> dict[str, Any]:
    """Check the SET with the trusted root's log key and return the decoded Rekor entry body."""
    bundle = json.loads(annotations[ANNOTATION_BUNDLE])
    assert set(bundle) == {"SignedEntryTimestamp", "Payload"}
    payload = bundle["Payload"]
    assert set(payload) == {"body", "integratedTime", "logIndex", "logID"}
    assert isinstance(payload["integratedTime"], int)
    assert isinstance(payload["logIndex"], int)
    key = _log_key(fs)
    spki = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert payload["logID"] == hashlib.sha256(spki).hexdigest()
    signed = rfc8785.dumps({k: payload[k] for k in ("body", "integratedTime", "logID", "logIndex")})
    key.verify(base64.b64decode(bundle["SignedEntryTimestamp"]), signed, ec.ECDSA(hashes.SHA256()))
    return dict(json.loads(base64.b64decode(payload["body"])))


def _verified_leaf(fs: FakeSigstore, annotations: dict[str, str]) -> x509.Certificate:
    """Check leaf -> intermediate -> root against the trusted root's CA chain and return the leaf."""
    leaf = x509.load_pem_x509_certificate(annotations[ANNOTATION_CERTIFICATE].encode())
    intermediate, root = x509.load_pem_x509_certificates(annotations[ANNOTATION_CHAIN].encode())
    leaf.verify_directly_issued_by(intermediate)
    intermediate.verify_directly_issued_by(root)
    root.verify_directly_issued_by(root)
    trusted = _trusted_root(fs)["certificateAuthorities"][0]["certChain"]["certificates"]
    assert [base64.b64decode(c["rawBytes"]) for c in trusted] == [
        intermediate.public_bytes(serialization.Encoding.DER),
        root.public_bytes(serialization.Encoding.DER),
    ]
    return leaf


def _pae(payload_type: str, payload: bytes) -> bytes:
    return b"DSSEv1 %d %s %d %s" % (len(payload_type), payload_type.encode(), len(payload), payload)


def test_keyless_sig_layer_is_what_cosign_writes(
    sigstore_instance: FakeSigstore, github_identity: Identity
) -> None:
    payload, annotations = sigstore_instance.legacy_sig_layer(
        github_identity, image_name=_IMAGE, digest=_DIGEST
    )

    assert payload == (
        b'{"critical":{"identity":{"docker-reference":"ghcr.io/acme/app"},'
        b'"image":{"docker-manifest-digest":"' + _DIGEST.encode() + b'"},'
        b'"type":"cosign container image signature"},"optional":null}'
    )
    assert set(annotations) == {
        ANNOTATION_SIGNATURE,
        ANNOTATION_CERTIFICATE,
        ANNOTATION_CHAIN,
        ANNOTATION_BUNDLE,
    }
    leaf = _verified_leaf(sigstore_instance, annotations)
    signature = base64.b64decode(annotations[ANNOTATION_SIGNATURE])
    leaf_key = leaf.public_key()
    assert isinstance(leaf_key, ec.EllipticCurvePublicKey)
    leaf_key.verify(signature, payload, ec.ECDSA(hashes.SHA256()))
    policy.AllOf(
        [
            policy.Identity(identity=github_identity.subject, issuer=github_identity.issuer),
            policy.OIDCSourceRepositoryURI("https://github.com/acme/app"),
        ]
    ).verify(leaf)

    body = _verified_rekor_body(sigstore_instance, annotations)
    assert (body["apiVersion"], body["kind"]) == ("0.0.1", "hashedrekord")
    assert body["spec"]["data"]["hash"] == {
        "algorithm": "sha256",
        "value": hashlib.sha256(payload).hexdigest(),
    }
    assert body["spec"]["signature"]["content"] == annotations[ANNOTATION_SIGNATURE]
    assert base64.b64decode(body["spec"]["signature"]["publicKey"]["content"]) == leaf.public_bytes(
        serialization.Encoding.PEM
    )
    integrated = json.loads(annotations[ANNOTATION_BUNDLE])["Payload"]["integratedTime"]
    assert leaf.not_valid_before_utc.timestamp() <= integrated <= leaf.not_valid_after_utc.timestamp()


def test_sig_layer_carries_annotations_in_optional(
    sigstore_instance: FakeSigstore, github_identity: Identity
) -> None:
    payload, _ = sigstore_instance.legacy_sig_layer(
        github_identity, image_name=_IMAGE, digest=_DIGEST, annotations={"team": "web", "env": "prod"}
    )

    assert json.loads(payload)["optional"] == {"env": "prod", "team": "web"}


def test_keyless_att_layer_is_what_cosign_writes(
    sigstore_instance: FakeSigstore, github_identity: Identity
) -> None:
    statement = statement_v01(_DIGEST, SLSA_PROVENANCE_V02, slsa_provenance_v02())
    blob, annotations = sigstore_instance.legacy_att_layer(github_identity, statement)

    envelope = json.loads(blob)
    assert list(envelope) == ["payloadType", "payload", "signatures"]
    assert envelope["payloadType"] == IN_TOTO_PAYLOAD_TYPE
    payload = base64.b64decode(envelope["payload"])
    assert json.loads(payload) == statement
    assert annotations[ANNOTATION_SIGNATURE] == ""
    assert annotations[ANNOTATION_PREDICATE_TYPE] == SLSA_PROVENANCE_V02
    leaf = _verified_leaf(sigstore_instance, annotations)
    (signature,) = envelope["signatures"]
    assert signature["keyid"] == ""
    leaf_key = leaf.public_key()
    assert isinstance(leaf_key, ec.EllipticCurvePublicKey)
    leaf_key.verify(
        base64.b64decode(signature["sig"]), _pae(IN_TOTO_PAYLOAD_TYPE, payload), ec.ECDSA(hashes.SHA256())
    )

    body = _verified_rekor_body(sigstore_instance, annotations)
    assert (body["apiVersion"], body["kind"]) == ("0.0.1", "dsse")
    assert body["spec"]["envelopeHash"] == {"algorithm": "sha256", "value": hashlib.sha256(blob).hexdigest()}
    assert body["spec"]["payloadHash"] == {
        "algorithm": "sha256",
        "value": hashlib.sha256(payload).hexdigest(),
    }
    (entry_signature,) = body["spec"]["signatures"]
    assert entry_signature["signature"] == signature["sig"]
    assert base64.b64decode(entry_signature["verifier"]) == leaf.public_bytes(serialization.Encoding.PEM)


def test_shifted_integrated_time_breaks_the_set(
    sigstore_instance: FakeSigstore, github_identity: Identity
) -> None:
    _, annotations = sigstore_instance.legacy_sig_layer(github_identity, image_name=_IMAGE, digest=_DIGEST)

    with pytest.raises(InvalidSignature):
        _verified_rekor_body(sigstore_instance, shift_legacy_integrated_time(annotations))


def test_signature_of_one_layer_does_not_cover_another(
    sigstore_instance: FakeSigstore, github_identity: Identity
) -> None:
    elsewhere = other_digest(_DIGEST)
    assert elsewhere != _DIGEST
    assert elsewhere.startswith("sha256:")
    assert len(elsewhere) == len(_DIGEST)
    payload, _ = sigstore_instance.legacy_sig_layer(github_identity, image_name=_IMAGE, digest=_DIGEST)
    _, foreign = sigstore_instance.legacy_sig_layer(github_identity, image_name=_IMAGE, digest=elsewhere)
    leaf_key = x509.load_pem_x509_certificate(foreign[ANNOTATION_CERTIFICATE].encode()).public_key()
    assert isinstance(leaf_key, ec.EllipticCurvePublicKey)

    with pytest.raises(InvalidSignature):
        leaf_key.verify(base64.b64decode(foreign[ANNOTATION_SIGNATURE]), payload, ec.ECDSA(hashes.SHA256()))


def test_layers_from_another_instance_do_not_chain_to_this_root(
    sigstore_instance: FakeSigstore, github_identity: Identity, tmp_path: Path
) -> None:
    stranger = FakeSigstore.create(tmp_path / "stranger")
    impostor = stranger.issue_cert(subject=github_identity.subject, issuer=github_identity.issuer)
    _, annotations = stranger.legacy_sig_layer(impostor, image_name=_IMAGE, digest=_DIGEST)

    with pytest.raises(AssertionError):
        _verified_leaf(sigstore_instance, annotations)
    legacy = json.loads(annotations[ANNOTATION_BUNDLE])
    assert bytes.fromhex(legacy["Payload"]["logID"]) == stranger.log.log_id != sigstore_instance.log.log_id
    signed = rfc8785.dumps({k: legacy["Payload"][k] for k in ("body", "integratedTime", "logID", "logIndex")})
    with pytest.raises(InvalidSignature):
        _log_key(sigstore_instance).verify(
            base64.b64decode(legacy["SignedEntryTimestamp"]), signed, ec.ECDSA(hashes.SHA256())
        )


def _independent_verify(kind: KeyKind, public_pem: bytes, signature: bytes, data: bytes) -> None:
    """cosign's default verifier per key type, written without the fixture's SigningKey."""
    key = serialization.load_pem_public_key(public_pem)
    if kind == "ecdsa-p256":
        assert isinstance(key, ec.EllipticCurvePublicKey)
        assert key.curve.name == "secp256r1"
        key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
    elif kind == "ecdsa-p384":
        assert isinstance(key, ec.EllipticCurvePublicKey)
        assert key.curve.name == "secp384r1"
        key.verify(signature, data, ec.ECDSA(hashes.SHA384()))
    elif kind == "rsa":
        assert isinstance(key, rsa.RSAPublicKey)
        key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
    else:
        assert isinstance(key, ed25519.Ed25519PublicKey)
        key.verify(signature, data)


_KINDS: list[KeyKind] = ["ecdsa-p256", "ecdsa-p384", "ed25519", "rsa"]


@pytest.mark.parametrize("kind", _KINDS)
def test_key_signed_sig_layer(sigstore_instance: FakeSigstore, kind: KeyKind) -> None:
    key = generate_key(kind)
    payload, annotations = sigstore_instance.legacy_sig_layer_with_key(key, image_name=_IMAGE, digest=_DIGEST)

    assert set(annotations) == {ANNOTATION_SIGNATURE, ANNOTATION_BUNDLE}
    signature = base64.b64decode(annotations[ANNOTATION_SIGNATURE])
    _independent_verify(kind, key.public_pem, signature, payload)
    key.verify(signature, payload)
    body = _verified_rekor_body(sigstore_instance, annotations)
    assert body["kind"] == "hashedrekord"
    assert base64.b64decode(body["spec"]["signature"]["publicKey"]["content"]) == key.public_pem
    assert body["spec"]["data"]["hash"]["value"] == hashlib.new(key.hash_name, payload).hexdigest()
    with pytest.raises(InvalidSignature):
        _independent_verify(kind, key.public_pem, signature, payload.replace(b"acme", b"evil"))


@pytest.mark.parametrize("kind", _KINDS)
def test_key_signed_att_layer(sigstore_instance: FakeSigstore, kind: KeyKind) -> None:
    key = generate_key(kind)
    statement = statement_v01(_DIGEST, SLSA_PROVENANCE_V02, slsa_provenance_v02())
    blob, annotations = sigstore_instance.legacy_att_layer_with_key(key, statement)

    assert set(annotations) == {ANNOTATION_SIGNATURE, ANNOTATION_BUNDLE, ANNOTATION_PREDICATE_TYPE}
    assert annotations[ANNOTATION_SIGNATURE] == ""
    envelope = json.loads(blob)
    payload = base64.b64decode(envelope["payload"])
    signature = base64.b64decode(envelope["signatures"][0]["sig"])
    _independent_verify(kind, key.public_pem, signature, _pae(envelope["payloadType"], payload))
    body = _verified_rekor_body(sigstore_instance, annotations)
    assert body["kind"] == "dsse"
    assert base64.b64decode(body["spec"]["signatures"][0]["verifier"]) == key.public_pem
    assert body["spec"]["envelopeHash"]["value"] == hashlib.sha256(blob).hexdigest()


def test_key_signed_layers_without_tlog_have_no_bundle(sigstore_instance: FakeSigstore) -> None:
    key = generate_key("ecdsa-p256")
    _, sig_annotations = sigstore_instance.legacy_sig_layer_with_key(
        key, image_name=_IMAGE, digest=_DIGEST, tlog=False
    )
    _, att_annotations = sigstore_instance.legacy_att_layer_with_key(key, {"predicateType": "x"}, tlog=False)

    assert set(sig_annotations) == {ANNOTATION_SIGNATURE}
    assert set(att_annotations) == {ANNOTATION_SIGNATURE, ANNOTATION_PREDICATE_TYPE}
    assert sigstore_instance.log.entries == ()
