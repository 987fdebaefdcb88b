"""Key-signed Sigstore bundles and Rekor SETs: real production data, and a local log for the edge cases."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import rfc8785
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, utils

from webhook.errors import VerificationFailed
from webhook.policy.material import TrustedRootMaterial
from webhook.verify.dsse import pae
from webhook.verify.keys import verify_key_bundle
from webhook.verify.rekor import TlogExpectation, verify_legacy_set
from webhook.verify.signatures import PublicKey, load_public_key
from webhook.verify.trust import tlog_keys

from ._data import DATA, read_data

PROD = dict(tlog_keys(TrustedRootMaterial.read(DATA / "trusted_root.production.json")))
STAGING = dict(tlog_keys(TrustedRootMaterial.read(DATA / "trusted_root.managed-key-staging.json")))
A_TXT_SHA256 = hashlib.sha256(read_data("a.txt")).digest()
IN_TOTO = "application/vnd.in-toto+json"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _pem(private: Any) -> bytes:
    return bytes(
        private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


# -- the real legacy cosign attestation (slsa-verifier oci-layout-generic-container-v2.1.0) -----------


def _legacy_layer() -> tuple[str, dict[str, Any], dict[str, str]]:
    manifest = json.loads(read_data("legacy-att-manifest.json"))
    (layer,) = manifest["layers"]
    annotations = layer["annotations"]
    envelope = json.loads(read_data("legacy-att-layer.dsse.json"))
    assert "sha256:" + hashlib.sha256(read_data("legacy-att-layer.dsse.json")).hexdigest() == layer["digest"]
    return annotations["dev.sigstore.cosign/bundle"], envelope, annotations


def _legacy_expectation(**change: Any) -> TlogExpectation:
    _, envelope, annotations = _legacy_layer()
    certificate = x509.load_pem_x509_certificate(annotations["dev.sigstore.cosign/certificate"].encode())
    values = {
        "signature": base64.b64decode(envelope["signatures"][0]["sig"]),
        "data_sha256": hashlib.sha256(base64.b64decode(envelope["payload"])).hexdigest(),
        "certificate_der": certificate.public_bytes(serialization.Encoding.DER),
    }
    values.update(change)
    return TlogExpectation(**values)


def test_real_legacy_set_verifies_with_the_production_rekor_key() -> None:
    annotation, _, _ = _legacy_layer()
    assert verify_legacy_set(annotation, tlog_keys=PROD) == 1740520687
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert verify_legacy_set(annotation, tlog_keys=PROD, expect=_legacy_expectation(), now=now) == 1740520687


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("integratedTime", 1740520688),
        ("integratedTime", 1740520686),
        ("logIndex", 174304113),
    ],
)
def test_real_legacy_set_fails_when_its_payload_is_altered(field: str, value: int) -> None:
    annotation, _, _ = _legacy_layer()
    document = json.loads(annotation)
    document["Payload"][field] = value
    with pytest.raises(
        VerificationFailed, match=r"does not verify with tlog https://rekor\.sigstore\.dev"
    ) as caught:
        verify_legacy_set(json.dumps(document), tlog_keys=PROD)
    assert caught.value.code == "signature-invalid"


def test_real_legacy_set_fails_when_its_body_or_signature_is_altered() -> None:
    annotation, _, _ = _legacy_layer()
    document = json.loads(annotation)
    body = json.loads(base64.b64decode(document["Payload"]["body"]))
    body["spec"]["payloadHash"]["value"] = "0" * 64
    altered_body = {**document, "Payload": {**document["Payload"], "body": _b64(json.dumps(body).encode())}}
    signature = bytearray(base64.b64decode(document["SignedEntryTimestamp"]))
    signature[10] ^= 1
    altered_set = {**document, "SignedEntryTimestamp": _b64(bytes(signature))}
    for altered in (altered_body, altered_set):
        with pytest.raises(VerificationFailed, match="SET"):
            verify_legacy_set(json.dumps(altered), tlog_keys=PROD)


def test_real_legacy_set_is_refused_by_a_root_that_does_not_know_its_log() -> None:
    annotation, _, _ = _legacy_layer()
    with pytest.raises(VerificationFailed, match="which no trusted root names"):
        verify_legacy_set(annotation, tlog_keys=STAGING)
    with pytest.raises(VerificationFailed, match="which no trusted root names"):
        verify_legacy_set(annotation, tlog_keys={})


def test_real_legacy_entry_must_name_the_layer_signature_certificate_and_payload() -> None:
    annotation, _, _ = _legacy_layer()
    other_certificate = x509.load_pem_x509_certificate(trustme.CA().cert_pem.bytes()).public_bytes(
        serialization.Encoding.DER
    )
    key = load_public_key(read_data("managed-key.pub"), name="k")
    cases = [
        (_legacy_expectation(signature=b"\x30\x00"), "does not contain the bundle's signature"),
        (_legacy_expectation(data_sha256="0" * 64), "is for digest sha256:bdd4007b"),
        (_legacy_expectation(certificate_der=other_certificate), "different key or certificate"),
        (_legacy_expectation(certificate_der=None, public_key=key), "different key or certificate"),
    ]
    for expectation, expected in cases:
        with pytest.raises(VerificationFailed, match=expected):
            verify_legacy_set(annotation, tlog_keys=PROD, expect=expectation)


def test_real_legacy_set_from_the_future_is_refused() -> None:
    annotation, _, _ = _legacy_layer()
    with pytest.raises(VerificationFailed, match="in the future"):
        verify_legacy_set(annotation, tlog_keys=PROD, now=datetime(2025, 2, 25, tzinfo=UTC))


@pytest.mark.parametrize(
    ("annotation", "expected"),
    [
        ("not json", "not valid JSON"),
        ("[]", "not a JSON object"),
        ('{"SignedEntryTimestamp": "AA=="}', "no Payload"),
        ('{"Payload": {"body": 1}}', "body is not a string"),
        ('{"Payload": {"body": "", "logID": "C0D2"}}', "is not 64 lower-case hex"),
        ('{"Payload": {"body": "", "logID": "' + "a" * 64 + '", "integratedTime": "x"}}', "integratedTime"),
        (
            '{"Payload": {"body": "", "logID": "' + "a" * 64 + '", "integratedTime": -1, "logIndex": 1}}',
            "integratedTime is negative",
        ),
        (
            '{"Payload": {"body": "", "logID": "' + "a" * 64 + '", "integratedTime": 1, "logIndex": true}}',
            "logIndex is not an integer",
        ),
    ],
)
def test_malformed_legacy_annotations(annotation: str, expected: str) -> None:
    with pytest.raises(VerificationFailed, match=expected) as caught:
        verify_legacy_set(annotation, tlog_keys=PROD)
    assert caught.value.code == "signature-invalid"


def test_expectation_needs_exactly_one_verifier() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        TlogExpectation(b"s", "0" * 64)
    with pytest.raises(ValueError, match="exactly one"):
        TlogExpectation(
            b"s",
            "0" * 64,
            public_key=load_public_key(read_data("managed-key.pub"), name="k"),
            certificate_der=b"x",
        )


# -- real key-signed bundles -------------------------------------------------------------------------


def test_real_managed_key_bundle_verifies_against_the_production_log() -> None:
    key = load_public_key(read_data("managed-key.pub"), name="managed")
    bundle = read_data("managed-key-happy-path.sigstore.json")
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert verify_key_bundle(bundle, key, tlog_keys=PROD, require_tlog=True, now=now) == ("", A_TXT_SHA256)
    assert verify_key_bundle(bundle, key, tlog_keys=None, require_tlog=False) == ("", A_TXT_SHA256)


def test_real_managed_key_bundle_verifies_against_its_own_staging_root() -> None:
    key = load_public_key(read_data("managed-key.pub"), name="managed")
    bundle = read_data("managed-key-and-trusted-root.sigstore.json")
    assert verify_key_bundle(bundle, key, tlog_keys=STAGING, require_tlog=True) == ("", A_TXT_SHA256)
    # the production root does not know the staging log: no evidence, fatal only when required
    assert verify_key_bundle(bundle, key, tlog_keys=PROD, require_tlog=False) == ("", A_TXT_SHA256)
    with pytest.raises(VerificationFailed, match="unknown to the trusted roots"):
        verify_key_bundle(bundle, key, tlog_keys=PROD, require_tlog=True)


def test_real_npm_publish_bundle_with_an_intoto_entry() -> None:
    # sigstore-go examples/bundle-publish.json: v0.1 bundle, DSSE, intoto/0.0.2 entry with SET only.
    key = load_public_key(read_data("npm-publish_key.pub"), name="npm")
    result = verify_key_bundle(read_data("npm-publish.sigstore.json"), key, tlog_keys=PROD, require_tlog=True)
    assert result is not None
    payload_type, payload = result
    assert payload_type == IN_TOTO
    assert (
        json.loads(payload)["predicateType"]
        == "https://github.com/npm/attestation/tree/main/specs/publish/v0.1"
    )


def test_real_bundle_signed_by_another_key_is_not_this_signers() -> None:
    other = load_public_key(read_data("npm-publish_key.pub"), name="npm")
    for name in ("managed-key-happy-path.sigstore.json", "managed-key-and-trusted-root.sigstore.json"):
        assert verify_key_bundle(read_data(name), other, tlog_keys=PROD, require_tlog=True) is None
    managed = load_public_key(read_data("managed-key.pub"), name="managed")
    assert (
        verify_key_bundle(read_data("npm-publish.sigstore.json"), managed, tlog_keys=PROD, require_tlog=True)
        is None
    )


def test_certificate_bundle_is_not_a_key_bundle() -> None:
    key = load_public_key(read_data("managed-key.pub"), name="managed")
    not_a_bundle = read_data("statement-slsa-v1-minimal.json")
    with pytest.raises(VerificationFailed, match="media type"):
        verify_key_bundle(not_a_bundle, key, tlog_keys=PROD, require_tlog=False)
    certificate_bundle = json.loads(read_data("managed-key-happy-path.sigstore.json"))
    certificate_bundle["verificationMaterial"].pop("publicKey")
    certificate_bundle["verificationMaterial"]["certificate"] = {"rawBytes": "AA=="}
    assert (
        verify_key_bundle(json.dumps(certificate_bundle).encode(), key, tlog_keys=PROD, require_tlog=True)
        is None
    )


def test_real_bundle_without_log_entry_only_passes_when_the_log_is_not_required() -> None:
    # sigstore-go public-key-validity: key-signed, RFC 3161 timestamp only (timestamps are not checked here).
    key = load_public_key(read_data("public-key-validity.pem"), name="pkv")
    bundle = read_data("public-key-validity.sigstore.json")
    result = verify_key_bundle(bundle, key, tlog_keys=PROD, require_tlog=False)
    assert result is not None
    assert result[0] == ""
    assert len(result[1]) == 32
    with pytest.raises(VerificationFailed, match="no transparency log entry") as caught:
        verify_key_bundle(bundle, key, tlog_keys=PROD, require_tlog=True)
    assert caught.value.code == "signature-invalid"


def _managed_bundle() -> dict[str, Any]:
    return json.loads(read_data("managed-key-happy-path.sigstore.json"))


def _entry(bundle: dict[str, Any]) -> dict[str, Any]:
    entry: dict[str, Any] = bundle["verificationMaterial"]["tlogEntries"][0]
    return entry


@pytest.mark.parametrize("require_tlog", [True, False])
@pytest.mark.parametrize(
    ("tamper", "expected"),
    [
        (lambda e: e.update(integratedTime=str(int(e["integratedTime"]) + 1)), "SET"),
        (lambda e: e.update(logIndex=str(int(e["logIndex"]) + 1)), "SET"),
        (
            lambda e: e["inclusionPromise"].update(
                signedEntryTimestamp=_b64(b"\x30\x06\x02\x01\x01\x02\x01\x01")
            ),
            "SET",
        ),
        (lambda e: e.update(canonicalizedBody=_b64(base64.b64decode(e["canonicalizedBody"]) + b" ")), "SET"),
        (lambda e: e.update(kindVersion={"kind": "dsse", "version": "0.0.1"}), "kindVersion says 'dsse'"),
    ],
)
def test_real_bundle_with_altered_evidence_fails_whether_or_not_the_log_is_required(
    tamper: Any, expected: str, require_tlog: bool
) -> None:
    key = load_public_key(read_data("managed-key.pub"), name="managed")
    bundle = _managed_bundle()
    tamper(_entry(bundle))
    with pytest.raises(VerificationFailed, match=expected) as caught:
        verify_key_bundle(json.dumps(bundle).encode(), key, tlog_keys=PROD, require_tlog=require_tlog)
    assert caught.value.code == "signature-invalid"


def test_real_bundle_with_an_altered_signature_is_not_this_signers() -> None:
    key = load_public_key(read_data("managed-key.pub"), name="managed")
    bundle = _managed_bundle()
    bundle["messageSignature"]["messageDigest"]["digest"] = _b64(hashlib.sha256(b"other").digest())
    assert verify_key_bundle(json.dumps(bundle).encode(), key, tlog_keys=PROD, require_tlog=True) is None


def test_real_bundle_unverifiable_evidence_is_fatal_only_when_required() -> None:
    key = load_public_key(read_data("managed-key.pub"), name="managed")
    without_promise = _managed_bundle()
    del _entry(without_promise)["inclusionPromise"]
    no_entries = _managed_bundle()
    no_entries["verificationMaterial"]["tlogEntries"] = []
    for bundle, expected in (
        (without_promise, "no inclusion promise"),
        (no_entries, "no transparency log entry"),
    ):
        data = json.dumps(bundle).encode()
        assert verify_key_bundle(data, key, tlog_keys=PROD, require_tlog=False) == ("", A_TXT_SHA256)
        with pytest.raises(VerificationFailed, match=expected):
            verify_key_bundle(data, key, tlog_keys=PROD, require_tlog=True)
    bundle = read_data("managed-key-happy-path.sigstore.json")
    with pytest.raises(VerificationFailed, match="unknown to the trusted roots"):
        verify_key_bundle(bundle, key, tlog_keys=None, require_tlog=True)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda b: b.update(mediaType="application/vnd.dev.sigstore.bundle+json;version=9"), "media type"),
        (lambda b: b.pop("verificationMaterial"), "no verificationMaterial"),
        (lambda b: b["verificationMaterial"].pop("publicKey"), "neither a public key nor a certificate"),
        (lambda b: b.pop("messageSignature"), "exactly one of dsseEnvelope and messageSignature"),
        (lambda b: b.update(dsseEnvelope={}), "exactly one of dsseEnvelope and messageSignature"),
        (
            lambda b: b["messageSignature"]["messageDigest"].update(algorithm="SHA2_512"),
            "expected 'SHA2_256'",
        ),
        (lambda b: b["messageSignature"]["messageDigest"].update(digest="AAAA"), "3 bytes, expected 32"),
        (lambda b: b["messageSignature"].update(signature="***"), "not valid base64"),
        (lambda b: b["verificationMaterial"].update(tlogEntries={}), "tlogEntries is not a list"),
        (lambda b: b["verificationMaterial"].update(tlogEntries=[{}, {}]), "2 transparency log entries"),
        (lambda b: b["verificationMaterial"].update(tlogEntries=["x"]), r"tlogEntries\[0\] is not an object"),
        (lambda b: _entry(b).update(integratedTime="-5"), "integratedTime is not a non-negative integer"),
    ],
)
def test_malformed_bundles_are_invalid(change: Any, expected: str) -> None:
    key = load_public_key(read_data("managed-key.pub"), name="managed")
    bundle = _managed_bundle()
    change(bundle)
    with pytest.raises(VerificationFailed, match=expected) as caught:
        verify_key_bundle(json.dumps(bundle).encode(), key, tlog_keys=PROD, require_tlog=True)
    assert caught.value.code == "signature-invalid"


def test_bundle_json_with_duplicate_keys_is_refused() -> None:
    key = load_public_key(read_data("managed-key.pub"), name="managed")
    text = read_data("managed-key-happy-path.sigstore.json").decode()
    doubled = text.replace('"mediaType"', '"mediaType": "x", "mediaType"', 1)
    with pytest.raises(VerificationFailed, match="duplicate key 'mediaType'"):
        verify_key_bundle(doubled.encode(), key, tlog_keys=PROD, require_tlog=False)


# -- a local transparency log, for what no real data shows ---------------------------------------------


class LocalLog:
    """A Rekor-v1-like log: one ECDSA P-256 key that signs SETs over RFC 8785 JSON."""

    def __init__(self, *, valid_from: datetime | None = None, valid_until: datetime | None = None) -> None:
        self.private = ec.generate_private_key(ec.SECP256R1())
        loaded = load_public_key(_pem(self.private), name="tlog local")
        self.key = PublicKey(
            name="tlog local",
            key=loaded.key,
            spki_der=loaded.spki_der,
            valid_from=valid_from,
            valid_until=valid_until,
        )

    @property
    def keys(self) -> dict[str, PublicKey]:
        return {self.key.key_id: self.key}

    def entry(
        self, body: dict[str, Any], *, integrated_time: int = 1_767_000_000, index: int = 7
    ) -> dict[str, Any]:
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
        promise = rfc8785.dumps(
            {
                "body": _b64(canonical),
                "integratedTime": integrated_time,
                "logID": self.key.key_id,
                "logIndex": index,
            }
        )
        return {
            "logIndex": str(index),
            "logId": {"keyId": _b64(bytes.fromhex(self.key.key_id))},
            "kindVersion": {"kind": body["kind"], "version": body["apiVersion"]},
            "integratedTime": str(integrated_time),
            "inclusionPromise": {
                "signedEntryTimestamp": _b64(self.private.sign(promise, ec.ECDSA(hashes.SHA256())))
            },
            "canonicalizedBody": _b64(canonical),
        }


class Signer:
    def __init__(self, private: Any) -> None:
        self.private = private
        self.pem = _pem(private)
        self.key = load_public_key(self.pem, name="signer")

    def sign(self, data: bytes) -> bytes:
        if isinstance(self.private, ed25519.Ed25519PrivateKey):
            return bytes(self.private.sign(data))
        return bytes(self.private.sign(data, ec.ECDSA(hashes.SHA256())))

    def sign_digest(self, digest: bytes) -> bytes:
        return bytes(self.private.sign(digest, ec.ECDSA(utils.Prehashed(hashes.SHA256()))))


def _hashedrekord(signature: bytes, pem: bytes, digest_hex: str) -> dict[str, Any]:
    return {
        "apiVersion": "0.0.1",
        "kind": "hashedrekord",
        "spec": {
            "data": {"hash": {"algorithm": "sha256", "value": digest_hex}},
            "signature": {"content": _b64(signature), "publicKey": {"content": _b64(pem)}},
        },
    }


def _dsse_entry(signature: bytes, pem: bytes, payload: bytes) -> dict[str, Any]:
    return {
        "apiVersion": "0.0.1",
        "kind": "dsse",
        "spec": {
            "envelopeHash": {"algorithm": "sha256", "value": "0" * 64},
            "payloadHash": {"algorithm": "sha256", "value": hashlib.sha256(payload).hexdigest()},
            "signatures": [{"signature": _b64(signature), "verifier": _b64(pem)}],
        },
    }


def _message_bundle(signer: Signer, artifact: bytes, entry: dict[str, Any] | None) -> bytes:
    digest = hashlib.sha256(artifact).digest()
    bundle = {
        "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
        "verificationMaterial": {"publicKey": {"hint": "x"}, "tlogEntries": [entry] if entry else []},
        "messageSignature": {
            "messageDigest": {"algorithm": "SHA2_256", "digest": _b64(digest)},
            "signature": _b64(signer.sign_digest(digest)),
        },
    }
    return json.dumps(bundle).encode()


def _dsse_bundle(signature: bytes, payload: bytes, entry: dict[str, Any] | None) -> bytes:
    bundle = {
        "mediaType": "application/vnd.dev.sigstore.bundle+json;version=0.2",
        "verificationMaterial": {"publicKey": {"hint": "x"}, "tlogEntries": [entry] if entry else []},
        "dsseEnvelope": {
            "payload": _b64(payload),
            "payloadType": IN_TOTO,
            "signatures": [{"sig": _b64(signature)}],
        },
    }
    return json.dumps(bundle).encode()


STATEMENT = b'{"_type":"https://in-toto.io/Statement/v1","subject":[],"predicateType":"x","predicate":{}}'


def test_local_message_bundle_and_every_entry_mismatch() -> None:
    log, signer, other = (
        LocalLog(),
        Signer(ec.generate_private_key(ec.SECP256R1())),
        Signer(ec.generate_private_key(ec.SECP256R1())),
    )
    artifact = b"artifact"
    digest_hex = hashlib.sha256(artifact).hexdigest()
    bundle = json.loads(_message_bundle(signer, artifact, None))
    signature = base64.b64decode(bundle["messageSignature"]["signature"])

    def with_entry(body: dict[str, Any]) -> bytes:
        bundle["verificationMaterial"]["tlogEntries"] = [log.entry(body)]
        return json.dumps(bundle).encode()

    good = with_entry(_hashedrekord(signature, signer.pem, digest_hex))
    assert verify_key_bundle(good, signer.key, tlog_keys=log.keys, require_tlog=True) == (
        "",
        hashlib.sha256(artifact).digest(),
    )
    for body, expected in (
        (_hashedrekord(signature, other.pem, digest_hex), "different key or certificate"),
        (
            _hashedrekord(other.sign(artifact), signer.pem, digest_hex),
            "does not contain the bundle's signature",
        ),
        (_hashedrekord(signature, signer.pem, "1" * 64), "is for digest sha256:1111"),
        (_dsse_entry(signature, signer.pem, artifact), "is a 'dsse' entry, expected 'hashedrekord'"),
    ):
        for require_tlog in (True, False):
            with pytest.raises(VerificationFailed, match=expected):
                verify_key_bundle(with_entry(body), signer.key, tlog_keys=log.keys, require_tlog=require_tlog)

    unknown = {"apiVersion": "0.0.1", "kind": "rekord", "spec": {}}
    assert (
        verify_key_bundle(with_entry(unknown), signer.key, tlog_keys=log.keys, require_tlog=False) is not None
    )
    with pytest.raises(VerificationFailed, match=r"kind 'rekord' version '0\.0\.1' is not supported"):
        verify_key_bundle(with_entry(unknown), signer.key, tlog_keys=log.keys, require_tlog=True)


@pytest.mark.parametrize("kind", ["ecdsa", "ed25519"])
def test_local_dsse_bundle(kind: str) -> None:
    log = LocalLog()
    private = (
        ec.generate_private_key(ec.SECP256R1()) if kind == "ecdsa" else ed25519.Ed25519PrivateKey.generate()
    )
    signer = Signer(private)
    signature = signer.sign(pae(IN_TOTO, STATEMENT))
    entry = log.entry(_dsse_entry(signature, signer.pem, STATEMENT))
    assert verify_key_bundle(
        _dsse_bundle(signature, STATEMENT, entry), signer.key, tlog_keys=log.keys, require_tlog=True
    ) == (IN_TOTO, STATEMENT)
    # the entry is about another payload
    stale = log.entry(_dsse_entry(signature, signer.pem, STATEMENT + b" "))
    with pytest.raises(VerificationFailed, match="is for digest"):
        verify_key_bundle(
            _dsse_bundle(signature, STATEMENT, stale), signer.key, tlog_keys=log.keys, require_tlog=False
        )
    # two signatures in a bundle envelope: a log entry vouches for one
    two = json.loads(_dsse_bundle(signature, STATEMENT, entry))
    two["dsseEnvelope"]["signatures"].append({"sig": _b64(signature)})
    with pytest.raises(VerificationFailed, match="2 signatures, expected exactly 1"):
        verify_key_bundle(json.dumps(two).encode(), signer.key, tlog_keys=log.keys, require_tlog=True)


def test_local_log_key_validity_and_clock() -> None:
    integrated = datetime.fromtimestamp(1_767_000_000, tz=UTC)
    signer = Signer(ec.generate_private_key(ec.SECP256R1()))
    artifact = b"artifact"
    digest_hex = hashlib.sha256(artifact).hexdigest()

    def bundle_for(log: LocalLog) -> bytes:
        bundle = json.loads(_message_bundle(signer, artifact, None))
        signature = base64.b64decode(bundle["messageSignature"]["signature"])
        bundle["verificationMaterial"]["tlogEntries"] = [
            log.entry(_hashedrekord(signature, signer.pem, digest_hex))
        ]
        return json.dumps(bundle).encode()

    inside = LocalLog(valid_from=integrated - timedelta(days=1), valid_until=integrated + timedelta(days=1))
    assert (
        verify_key_bundle(bundle_for(inside), signer.key, tlog_keys=inside.keys, require_tlog=True)
        is not None
    )
    too_early = LocalLog(valid_from=integrated + timedelta(seconds=1))
    with pytest.raises(VerificationFailed, match="before tlog local became valid"):
        verify_key_bundle(bundle_for(too_early), signer.key, tlog_keys=too_early.keys, require_tlog=False)
    retired = LocalLog(valid_until=integrated - timedelta(seconds=1))
    with pytest.raises(VerificationFailed, match="after tlog local stopped being valid"):
        verify_key_bundle(bundle_for(retired), signer.key, tlog_keys=retired.keys, require_tlog=False)
    log = LocalLog()
    data = bundle_for(log)
    assert (
        verify_key_bundle(data, signer.key, tlog_keys=log.keys, require_tlog=True, now=integrated) is not None
    )
    with pytest.raises(VerificationFailed, match="in the future"):
        verify_key_bundle(
            data, signer.key, tlog_keys=log.keys, require_tlog=True, now=integrated - timedelta(hours=1)
        )


def test_local_legacy_sig_layer_with_a_key_expectation() -> None:
    log = LocalLog()
    signer = Signer(ec.generate_private_key(ec.SECP256R1()))
    payload = b'{"critical":{"identity":{"docker-reference":"ghcr.io/acme/app"}}}'
    signature = signer.sign(payload)
    entry = log.entry(
        _hashedrekord(signature, signer.pem, hashlib.sha256(payload).hexdigest()), integrated_time=5
    )
    annotation = json.dumps(
        {
            "SignedEntryTimestamp": entry["inclusionPromise"]["signedEntryTimestamp"],
            "Payload": {
                "body": entry["canonicalizedBody"],
                "integratedTime": 5,
                "logIndex": 7,
                "logID": log.key.key_id,
            },
        }
    )
    expectation = TlogExpectation(signature, hashlib.sha256(payload).hexdigest(), public_key=signer.key)
    assert verify_legacy_set(annotation, tlog_keys=log.keys, expect=expectation) == 5
    stranger = Signer(ec.generate_private_key(ec.SECP256R1()))
    wrong = TlogExpectation(signature, hashlib.sha256(payload).hexdigest(), public_key=stranger.key)
    with pytest.raises(VerificationFailed, match="different key or certificate"):
        verify_legacy_set(annotation, tlog_keys=log.keys, expect=wrong)
    keyless = TlogExpectation(signature, hashlib.sha256(payload).hexdigest(), certificate_der=b"cert")
    with pytest.raises(VerificationFailed, match="different key or certificate"):
        verify_legacy_set(annotation, tlog_keys=log.keys, expect=keyless)
    tampered = copy.deepcopy(json.loads(annotation))
    tampered["Payload"]["integratedTime"] = 6
    with pytest.raises(VerificationFailed, match="SET"):
        verify_legacy_set(json.dumps(tampered), tlog_keys=log.keys)
