"""Public keys, raw signatures and DSSE envelopes: generated keys of every type and the DSSE test vectors."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import pytest
import trustme
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519, padding, rsa, utils

from webhook.errors import ConfigError, VerificationFailed
from webhook.verify.discovery import LegacyLayer
from webhook.verify.dsse import pae, verify_dsse_envelope
from webhook.verify.legacy import SIMPLE_SIGNING_TYPE, verify_legacy_key
from webhook.verify.signatures import PublicKey, load_public_key, verify_signature
from webhook.verify.statements import IN_TOTO_PAYLOAD_TYPE

from ._data import DATA, read_data

CLAIM = "cosign container image signature"
PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey


def _pem(private: Any) -> bytes:
    return bytes(
        private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


def _sign(private: PrivateKey, data: bytes, *, scheme: str = "default") -> bytes:
    if isinstance(private, ed25519.Ed25519PrivateKey):
        return private.sign(data)
    if isinstance(private, ec.EllipticCurvePrivateKey):
        algorithm: hashes.HashAlgorithm = hashes.SHA384() if scheme == "sha384" else hashes.SHA256()
        signature = private.sign(data, ec.ECDSA(algorithm))
        if scheme == "raw":
            r, s = utils.decode_dss_signature(signature)
            size = (private.curve.key_size + 7) // 8
            return r.to_bytes(size, "big") + s.to_bytes(size, "big")
        return signature
    if scheme == "pss":
        return private.sign(
            data,
            padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.MAX_LENGTH),
            hashes.SHA256(),
        )
    if scheme == "pss-digest":
        return private.sign(
            data,
            padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH),
            hashes.SHA256(),
        )
    return private.sign(data, padding.PKCS1v15(), hashes.SHA256())


@pytest.fixture(scope="module")
def private_keys() -> dict[str, PrivateKey]:
    return {
        "ecdsa-p256": ec.generate_private_key(ec.SECP256R1()),
        "ecdsa-p384": ec.generate_private_key(ec.SECP384R1()),
        "ed25519": ed25519.Ed25519PrivateKey.generate(),
        "rsa-2048": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "rsa-3072": rsa.generate_private_key(public_exponent=65537, key_size=3072),
    }


# (key type, signature scheme) pairs this verifier accepts
SCHEMES = [
    ("ecdsa-p256", "default"),
    ("ecdsa-p256", "raw"),
    ("ecdsa-p384", "sha384"),
    ("ecdsa-p384", "default"),  # cosign signs with SHA-256 whatever the curve
    ("ecdsa-p384", "raw"),
    ("ed25519", "default"),
    ("rsa-2048", "default"),
    ("rsa-2048", "pss"),
    ("rsa-3072", "pss-digest"),
    ("rsa-3072", "default"),
]


@pytest.mark.parametrize(("kind", "scheme"), SCHEMES)
def test_signatures_of_every_key_type_verify_and_tampering_is_caught(
    private_keys: dict[str, PrivateKey], kind: str, scheme: str
) -> None:
    private = private_keys[kind]
    key = load_public_key(_pem(private), name=kind)
    assert key.algorithm == kind
    data = b'{"critical":{"image":{"docker-manifest-digest":"sha256:abc"}}}'
    signature = _sign(private, data, scheme=scheme)
    assert verify_signature(key, signature, data)
    assert not verify_signature(key, signature, data + b" ")
    tampered = bytearray(signature)
    tampered[len(tampered) // 2] ^= 0x01
    assert not verify_signature(key, bytes(tampered), data)
    assert not verify_signature(key, b"", data)
    assert not verify_signature(key, b"\x30\x02\x01", data)
    other = next(k for name, k in private_keys.items() if name != kind)
    assert not verify_signature(load_public_key(_pem(other), name="other"), signature, data)


@pytest.mark.parametrize(("kind", "scheme"), SCHEMES)
def test_legacy_layers_verify_with_every_key_type_and_scheme_bundles_do(
    private_keys: dict[str, PrivateKey], kind: str, scheme: str
) -> None:
    # Legacy .sig and .att layers check with the same verifier as bundles: raw r||s ECDSA, P-384 with
    # SHA-384 and RSA-PSS are accepted there too.
    private = private_keys[kind]
    key = load_public_key(_pem(private), name=kind)
    digest = "sha256:" + "ab" * 32
    payload = json.dumps(
        {"critical": {"identity": {}, "image": {"docker-manifest-digest": digest}, "type": CLAIM}}
    ).encode()

    def layer(signature: bytes) -> LegacyLayer:
        annotations = (("dev.cosignproject.cosign/signature", base64.b64encode(signature).decode()),)
        return LegacyLayer("sig", "sha256-ab.sig", digest, digest, SIMPLE_SIGNING_TYPE, payload, annotations)

    signed = verify_legacy_key(
        layer(_sign(private, payload, scheme=scheme)),
        key=key,
        key_name=kind,
        tlog_keys={},
        require_tlog=False,
    )
    assert (signed.key, signed.payload) == (kind, payload)
    with pytest.raises(VerificationFailed, match="does not verify"):
        verify_legacy_key(
            layer(_sign(private, payload + b" ", scheme=scheme)),
            key=key,
            key_name=kind,
            tlog_keys={},
            require_tlog=False,
        )

    statement = b'{"_type":"https://in-toto.io/Statement/v1"}'
    signature = _sign(private, pae(IN_TOTO_PAYLOAD_TYPE, statement), scheme=scheme)
    envelope = {
        "payloadType": IN_TOTO_PAYLOAD_TYPE,
        "payload": base64.b64encode(statement).decode(),
        "signatures": [{"sig": base64.b64encode(signature).decode()}],
    }
    attestation = LegacyLayer(
        "att",
        "sha256-ab.att",
        digest,
        digest,
        "application/vnd.dsse.envelope.v1+json",
        json.dumps(envelope).encode(),
    )
    signed = verify_legacy_key(attestation, key=key, key_name=kind, tlog_keys={}, require_tlog=False)
    assert signed.payload == statement


def test_key_identity_is_the_spki(private_keys: dict[str, PrivateKey]) -> None:
    pem = _pem(private_keys["ecdsa-p256"])
    first = load_public_key(pem, name="a")
    der = serialization.load_pem_public_key(pem).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    second = load_public_key(der, name="a")
    assert first == second
    assert first.spki_der == der
    assert first.key_id == hashlib.sha256(der).hexdigest()
    assert first != load_public_key(_pem(private_keys["ecdsa-p384"]), name="a")


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda: ec.generate_private_key(ec.SECP521R1()), "curve secp521r1 is not accepted"),
        (lambda: ec.generate_private_key(ec.SECP256K1()), "curve secp256k1 is not accepted"),
        # weak on purpose: it must be refused
        (lambda: rsa.generate_private_key(public_exponent=65537, key_size=1024), "1024 bits is too small"),  # noqa: S505
        (lambda: dsa.generate_private_key(key_size=2048), "is not accepted"),
    ],
)
def test_weak_or_unsupported_keys_are_configuration_errors(make: Any, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        load_public_key(_pem(make()), name="bad")


def test_garbage_and_certificates_are_configuration_errors() -> None:
    with pytest.raises(ConfigError, match="key 'w': is not a PEM public key"):
        load_public_key(read_data("managed-key-wrong.pub"), name="w")
    with pytest.raises(ConfigError, match="not a PEM public key"):
        load_public_key(b"hello", name="x")
    certificate = trustme.CA().cert_pem.bytes()
    with pytest.raises(ConfigError, match="it is a certificate"):
        load_public_key(certificate, name="cert")


def test_real_cosign_public_keys_load() -> None:
    for name in (
        "managed-key.pub",
        "npm-publish_key.pub",
        "public-key-validity.pem",
        "vsa_signing_public_key.pem",
    ):
        key = load_public_key(read_data(name), name=name)
        assert key.algorithm == "ecdsa-p256"


# -- DSSE --------------------------------------------------------------------------------------------


def test_pae_matches_the_protocol_test_vector() -> None:
    assert pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )
    assert pae("application/vnd.in-toto+json", b"") == b"DSSEv1 28 application/vnd.in-toto+json 0 "
    # lengths are byte lengths of the UTF-8 encoding
    assert pae("é", "ü".encode()) == b"DSSEv1 2 \xc3\xa9 2 \xc3\xbc"


def test_protocol_ecdsa_test_vector_verifies() -> None:
    # secure-systems-lab/dsse protocol.md "Test Vectors": P-256, raw r||s signature.
    numbers = ec.EllipticCurvePublicNumbers(
        46950820868899156662930047687818585632848591499744589407958293238635476079160,
        5640078356564379163099075877009565129882514886557779369047442380624545832820,
        ec.SECP256R1(),
    )
    pem = numbers.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    key = load_public_key(pem, name="dsse-spec")
    envelope = {
        "payload": "aGVsbG8gd29ybGQ=",
        "payloadType": "http://example.com/HelloWorld",
        "signatures": [
            {
                "sig": "A3JqsQGtVsJ2O2xqrI5IcnXip5GToJ3F+FnZ+O88SjtR6rDAajab"
                "ZKciJTfUiHqJPcIAriEGAHTVeCUjW2JIZA=="
            }
        ],
    }
    assert verify_dsse_envelope(envelope, key) == ("http://example.com/HelloWorld", b"hello world")
    with pytest.raises(VerificationFailed) as caught:
        verify_dsse_envelope({**envelope, "payload": "aGVsbG8gd29ybGQh"}, key)
    assert caught.value.code == "signature-invalid"


def _vector_keys() -> dict[str, PublicKey]:
    vectors = json.loads(read_data("dsse-vectors.json"))
    keys = {}
    for name, material in vectors["keys"].items():
        private = ed25519.Ed25519PrivateKey.from_private_bytes(bytes.fromhex(material["seed"]))
        raw = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        assert raw.hex() == material["public"]
        keys[name] = load_public_key(_pem(private), name=name)
    return keys


@pytest.mark.parametrize(
    "vector", json.loads((DATA / "dsse-vectors.json").read_text())["vectors"], ids=lambda v: v["id"]
)
def test_dsse_reference_vectors(vector: dict[str, Any]) -> None:
    keys = _vector_keys()
    envelope = vector["envelope"]
    payload = base64.urlsafe_b64decode(envelope["payload"]) if envelope["payload"] else b""
    if vector["expect"] == "accept":
        assert pae(envelope["payloadType"], payload) == bytes.fromhex(vector["pae"])
    accepted = set()
    failures = []
    for name in vector["trustedKeys"]:
        try:
            payload_type, body = verify_dsse_envelope(envelope, keys[name])
        except VerificationFailed as failure:
            failures.append(failure.code)
            continue
        assert (payload_type, body) == (envelope["payloadType"], payload)
        if payload_type in vector["supportedPayloadTypes"]:
            accepted.add(name)
    assert set(failures) <= {"signature-invalid"}
    assert (len(accepted) >= vector["threshold"]) is (vector["expect"] == "accept")


@pytest.mark.parametrize(("kind", "scheme"), SCHEMES)
def test_dsse_envelopes_of_every_key_type(
    private_keys: dict[str, PrivateKey], kind: str, scheme: str
) -> None:
    private = private_keys[kind]
    key = load_public_key(_pem(private), name=kind)
    payload = b'{"_type":"https://in-toto.io/Statement/v1"}'
    payload_type = "application/vnd.in-toto+json"
    signature = base64.b64encode(_sign(private, pae(payload_type, payload), scheme=scheme)).decode()
    envelope = {
        "payloadType": payload_type,
        "payload": base64.b64encode(payload).decode(),
        "signatures": [{"keyid": "", "sig": base64.b64encode(b"\x00" * 64).decode()}, {"sig": signature}],
    }
    assert verify_dsse_envelope(envelope, key) == (payload_type, payload)
    assert verify_dsse_envelope(json.dumps(envelope).encode(), key) == (payload_type, payload)
    # Signing the payload alone (no PAE) is not a DSSE signature.
    raw = base64.b64encode(_sign(private, payload, scheme=scheme)).decode()
    for tampered in (
        {**envelope, "payloadType": "application/json"},
        {**envelope, "payload": base64.b64encode(payload + b" ").decode()},
        {**envelope, "signatures": [{"sig": raw}]},
    ):
        with pytest.raises(VerificationFailed, match="none of its") as caught:
            verify_dsse_envelope(tampered, key)
        assert caught.value.code == "signature-invalid"


@pytest.mark.parametrize(
    ("envelope", "expected"),
    [
        ([], "expected a JSON object"),
        ({"payload": "", "signatures": [{"sig": "AA=="}]}, "no payloadType"),
        ({"payloadType": "t", "payload": 5, "signatures": [{"sig": "AA=="}]}, "DSSE payload is not a base64"),
        ({"payloadType": "t", "payload": "!!", "signatures": [{"sig": "AA=="}]}, "not valid base64"),
        ({"payloadType": "t", "payload": "", "signatures": []}, "no signatures"),
        ({"payloadType": "t", "payload": ""}, "no signatures"),
        ({"payloadType": "t", "payload": "", "signatures": ["AA=="]}, r"signatures\[0\] is not an object"),
        ({"payloadType": "t", "payload": "", "signatures": [{"keyid": "a"}]}, r"signatures\[0\]\.sig"),
    ],
)
def test_malformed_envelopes_are_invalid_signatures(
    private_keys: dict[str, PrivateKey], envelope: Any, expected: str
) -> None:
    key = load_public_key(_pem(private_keys["ed25519"]), name="k")
    with pytest.raises(VerificationFailed, match=expected) as caught:
        verify_dsse_envelope(envelope, key)
    assert caught.value.code == "signature-invalid"


def test_malformed_envelope_bytes_are_invalid_signatures(private_keys: dict[str, PrivateKey]) -> None:
    key = load_public_key(_pem(private_keys["ed25519"]), name="k")
    for document in (b"{", b'{"payloadType": "a", "payloadType": "b"}'):
        with pytest.raises(VerificationFailed, match="not valid JSON") as caught:
            verify_dsse_envelope(document, key)
        assert caught.value.code == "signature-invalid"


def test_real_google_vsa_envelope_signed_with_a_raw_p256_signature() -> None:
    key = load_public_key(read_data("vsa_signing_public_key.pem"), name="bcid")
    envelope = json.loads(read_data("vsa-gke-gce-pre.bcid-vsa.dsse.json"))
    payload_type, payload = verify_dsse_envelope(envelope, key)
    assert payload_type == "application/vnd.in-toto+json"
    assert b"https://slsa.dev/verification_summary/v1" in payload
    statement = json.loads(payload)
    statement["predicate"]["verificationResult"] = "FAILED"
    forged = {**envelope, "payload": base64.b64encode(json.dumps(statement).encode()).decode()}
    with pytest.raises(VerificationFailed):
        verify_dsse_envelope(forged, key)
    with pytest.raises(VerificationFailed):
        verify_dsse_envelope(envelope, load_public_key(read_data("managed-key.pub"), name="other"))
