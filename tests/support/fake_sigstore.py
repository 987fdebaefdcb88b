"""Runs a local, offline test Sigstore instance whose output sigstore-python 4.5.1's real `Verifier` accepts.

Only `cryptography` and `rfc8785` are used; nothing touches the network. Helpers live in
``sigstore_x509`` (certificates, SCTs), ``sigstore_log`` (Merkle log), ``sigstore_statements``
(in-toto statements, predicates) and ``sigstore_oci`` (manifests); everything public is re-exported here.

Instance
--------
``FakeSigstore.create(tmp_dir, *, name="imagegate-test", valid_from=None) -> FakeSigstore``
    Fresh keys every time, so two instances never trust each other. It holds:
    a root CA and a Fulcio-style intermediate (ECDSA P-384, WebPKI profile), a CT log key (P-256) that
    signs embedded precertificate SCTs, and a Rekor-v1-style Merkle log (P-256 key) issuing inclusion
    proofs, signed checkpoints and SETs. CA certs and all ``validFor`` windows start at `valid_from`
    (default: now - 365 days) and run ten years. ``trusted_root_path`` is a fresh
    ``<tmp_dir>/<name>-XXXX/trusted_root.json`` (media type
    ``application/vnd.dev.sigstore.trustedroot+json;version=0.1``) listing tlog, CA chain and CT log.
    Attributes: ``name``, ``trusted_root_path``, ``trusted_root()`` (the same document as a dict),
    ``root_cert``, ``intermediate_cert``, ``chain_pem`` (intermediate + root PEM, no trailing newline, as
    in real cosign annotations), ``log`` (`TransparencyLog`; ``log.entries`` -> `LogEntry` tuple,
    ``log.log_id``), ``log_public_key_pem``, ``ct_public_key_pem``, ``rekor_url``, ``fulcio_url``,
    ``ct_url`` (``*.invalid`` hosts; never contacted).
    Layer annotation keys: ``ANNOTATION_SIGNATURE``, ``ANNOTATION_CERTIFICATE``, ``ANNOTATION_CHAIN``,
    ``ANNOTATION_BUNDLE``, ``ANNOTATION_PREDICATE_TYPE``.

Keyless identities
------------------
``issue_cert(*, subject, issuer, extensions=None, when=None, sct=True) -> Identity``
    `subject` becomes a URI SAN (contains ``://``) or an e-mail SAN (contains ``@``). `issuer` fills both
    1.3.6.1.4.1.57264.1.1 (raw) and 1.8 (DER UTF8String). `extensions` maps Fulcio names (any case) or
    full dotted OIDs under 1.3.6.1.4.1.57264.1. to string values. Names: ``sourceRepositoryURI``,
    ``sourceRepositoryRef``, ``sourceRepositoryDigest``, ``sourceRepositoryIdentifier``,
    ``sourceRepositoryOwnerURI``, ``sourceRepositoryOwnerIdentifier``,
    ``sourceRepositoryVisibilityAtSigning``, ``buildSignerURI``, ``buildSignerDigest``, ``buildConfigURI``,
    ``buildConfigDigest``, ``buildTrigger``, ``runnerEnvironment``, ``runInvocationURI`` (DER UTF8String,
    1.9-1.22) and the legacy raw-encoded ``githubWorkflowTrigger``, ``githubWorkflowSHA``,
    ``githubWorkflowName``, ``githubWorkflowRepository``, ``githubWorkflowRef`` (1.2-1.6).
    The leaf is valid from `when` (default now, truncated to seconds) for 10 minutes, like Fulcio.
    ``sct=False`` omits the SCT (negative tests). `github_actions_extensions(...)` builds a typical dict.
``Identity``: ``private_key``, ``certificate``, ``chain`` (intermediate, root), ``subject``, ``issuer``,
    ``not_before``, ``cert_pem``, ``chain_pem``, ``sign(data)`` (ECDSA P-256 / SHA-256).

Producers (every one appends one entry to ``log``; return values are ready to push)
-----------------------------------------------------------------------------------
All take keyword-only ``integrated_time: datetime | None`` (default: the leaf's notBefore + 1 s for keyless,
now for key-signed). DSSE producers take `statement` as a dict (serialised compactly) or raw bytes, and a
keyword-only ``payload_type`` (default ``application/vnd.in-toto+json``).

``bundle_dsse(identity, statement) -> bytes``
    Bundle v0.3 JSON (``application/vnd.dev.sigstore.bundle.v0.3+json``) with a DSSE envelope, a
    ``dsse/0.0.1`` tlog entry, inclusion proof, checkpoint and SET. ``Verifier.verify_dsse`` accepts it.
``bundle_message(identity, data) -> bytes``
    Bundle v0.3 with ``messageSignature`` (SHA2_256 digest of `data`) and a ``hashedrekord/0.0.1`` entry.
``legacy_sig_layer(identity, *, image_name, digest, annotations=None) -> (payload, layer_annotations)``
    cosign's ``.sig`` layer: simple-signing JSON (``optional`` is null without annotations) and the
    annotations ``dev.cosignproject.cosign/signature`` (b64 ECDSA sig over the payload),
    ``dev.sigstore.cosign/certificate`` (leaf PEM), ``dev.sigstore.cosign/chain`` (intermediate + root PEM),
    ``dev.sigstore.cosign/bundle`` (``{"SignedEntryTimestamp", "Payload": {"body", "integratedTime",
    "logIndex", "logID"}}``; hashedrekord over sha256(payload); SET only, no inclusion proof).
``FakeSigstore.simple_signing_payload(*, image_name, digest, annotations=None) -> bytes``
    The exact payload bytes the ``.sig`` producers sign.
``legacy_att_layer(identity, statement) -> (envelope_json, layer_annotations)``
    cosign's ``.att`` layer: DSSE envelope JSON (layer media type ``application/vnd.dsse.envelope.v1+json``),
    annotations with an empty signature, certificate, chain, bundle (``dsse/0.0.1`` body, envelopeHash =
    sha256 of the returned bytes) and ``predicateType`` (from the statement).
``generate_key(kind) -> SigningKey`` (also ``FakeSigstore.generate_key``)
    kind: ``"ecdsa-p256" | "ecdsa-p384" | "ed25519" | "rsa"`` (RSA 2048). ``SigningKey`` has
    ``private_key``, ``public_key``, ``public_pem``, ``private_pem`` (PKCS#8, unencrypted), ``hint``
    (b64 sha256 of the DER SPKI), ``hash_name``, ``sign(data)``, ``verify(signature, data)``.
    Algorithms follow cosign's default loaders: P-256/SHA-256, P-384/SHA-384, RSA PKCS#1 v1.5/SHA-256,
    Ed25519 *pure* (cosign >= 2.4 defaults to Ed25519ph, which `cryptography` cannot produce).
``legacy_sig_layer_with_key(key, *, image_name, digest, annotations=None, tlog=True)``
``legacy_att_layer_with_key(key, statement, *, tlog=True)``
    As the keyless ones without certificate/chain annotations; with ``tlog=True`` the bundle annotation
    holds an entry whose verifier is the PEM public key, SET signed by this instance's log key.
``bundle_dsse_with_key(key, statement, *, tlog=True) -> bytes``
    Bundle v0.3 with ``verificationMaterial.publicKey.hint`` and (``tlog=True``) a ``dsse/0.0.1`` entry
    with proof; ``tlog=False`` gives an empty ``tlogEntries``. sigstore-python 4.5.1 rejects key bundles
    ("expected certificate in bundle"), so verify these with `cryptography`.

Statements, predicates (module functions, from ``sigstore_statements``)
------------------------------------------------------------------------
``statement_v1(subject_digest, predicate_type, predicate, name="image")``, ``statement_v01(...)``,
``cosign_sign_statement(subject_digest, *, annotations=None)``, ``slsa_provenance_v1(*, repository, ref, path,
commit, builder_id, build_type, ...)``, ``slsa_provenance_v02(*, builder_id, config_uri, config_digest,
entry_point, build_type, materials)``, ``vsa_v1(*, verifier_id, time_verified, resource_uri, policy_uri,
verification_result, verified_levels, slsa_version)``, ``vuln(id, severity="MEDIUM", *, method, cvss)``,
``vulns_v01(*, results, scanner_uri, scanner_version, scan_started, scan_finished)``; type constants
``SLSA_PROVENANCE_V1``, ``SLSA_PROVENANCE_V02``, ``VSA_V1``, ``VULNS_V01``, ``COSIGN_SIGN_PREDICATE_TYPE``.

OCI (from ``sigstore_oci``)
---------------------------
``legacy_manifest(layers, *, kind="sig"|"att") -> OciArtifact``, ``bundle_referrer_manifest(bundle, *,
subject_digest, subject_size, subject_media_type=OCI manifest, created=None) -> OciArtifact``,
``legacy_tag(digest, "sig"|"att")``, ``referrers_fallback_tag(digest)``, ``sha256_digest(data)``;
``OciArtifact``: ``manifest``, ``media_type``, ``blobs`` ({digest: bytes}), ``digest``, ``size``.

Tampering helpers (negative tests)
----------------------------------
``tamper_payload(data, mutate=None)``: `data` is a DSSE bundle or a bare DSSE envelope; rewrites the payload
(default: adds ``"tampered": true`` to the statement) and keeps the signature.
``shift_integrated_time(bundle, seconds=1)``; ``shift_legacy_integrated_time(annotations, seconds=1)``;
``corrupt_inclusion_proof(bundle)`` (flips the proof's root hash); ``other_digest(digest)`` (a different
valid sha256 digest, e.g. to sign "another digest").
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from tests.support.markers import require
from tests.support.sigstore_log import LogEntry, TransparencyLog, dsse_body, hashedrekord_body
from tests.support.sigstore_oci import (
    BUNDLE_V03_MEDIA_TYPE,
    DSSE_ENVELOPE_MEDIA_TYPE,
    OCI_EMPTY_CONFIG_MEDIA_TYPE,
    OCI_IMAGE_CONFIG_MEDIA_TYPE,
    OCI_INDEX_MEDIA_TYPE,
    OCI_MANIFEST_MEDIA_TYPE,
    SIMPLESIGNING_MEDIA_TYPE,
    OciArtifact,
    bundle_referrer_manifest,
    legacy_manifest,
    legacy_tag,
    referrers_fallback_tag,
    sha256_digest,
)
from tests.support.sigstore_statements import (
    COSIGN_SIGN_PREDICATE_TYPE,
    IN_TOTO_PAYLOAD_TYPE,
    SLSA_PROVENANCE_V02,
    SLSA_PROVENANCE_V1,
    STATEMENT_V01,
    STATEMENT_V1,
    VSA_V1,
    VULNS_V01,
    cosign_sign_statement,
    rfc3339,
    slsa_provenance_v02,
    slsa_provenance_v1,
    statement_v01,
    statement_v1,
    vsa_v1,
    vuln,
    vulns_v01,
)
from tests.support.sigstore_x509 import build_ca_pair, build_leaf, key_id

__all__ = [
    "ANNOTATION_BUNDLE",
    "ANNOTATION_CERTIFICATE",
    "ANNOTATION_CHAIN",
    "ANNOTATION_PREDICATE_TYPE",
    "ANNOTATION_SIGNATURE",
    "BUNDLE_V03_MEDIA_TYPE",
    "COSIGN_SIGN_PREDICATE_TYPE",
    "DSSE_ENVELOPE_MEDIA_TYPE",
    "IN_TOTO_PAYLOAD_TYPE",
    "OCI_EMPTY_CONFIG_MEDIA_TYPE",
    "OCI_IMAGE_CONFIG_MEDIA_TYPE",
    "OCI_INDEX_MEDIA_TYPE",
    "OCI_MANIFEST_MEDIA_TYPE",
    "SIMPLESIGNING_MEDIA_TYPE",
    "SLSA_PROVENANCE_V02",
    "SLSA_PROVENANCE_V1",
    "STATEMENT_V01",
    "STATEMENT_V1",
    "TRUSTED_ROOT_MEDIA_TYPE",
    "VSA_V1",
    "VULNS_V01",
    "FakeSigstore",
    "Identity",
    "KeyKind",
    "LogEntry",
    "OciArtifact",
    "SigningKey",
    "TransparencyLog",
    "bundle_referrer_manifest",
    "corrupt_inclusion_proof",
    "cosign_sign_statement",
    "generate_key",
    "github_actions_extensions",
    "legacy_manifest",
    "legacy_tag",
    "other_digest",
    "referrers_fallback_tag",
    "rfc3339",
    "sha256_digest",
    "shift_integrated_time",
    "shift_legacy_integrated_time",
    "slsa_provenance_v02",
    "slsa_provenance_v1",
    "statement_v01",
    "statement_v1",
    "tamper_payload",
    "vsa_v1",
    "vuln",
    "vulns_v01",
]

TRUSTED_ROOT_MEDIA_TYPE = "application/vnd.dev.sigstore.trustedroot+json;version=0.1"
ANNOTATION_SIGNATURE = "dev.cosignproject.cosign/signature"
ANNOTATION_CERTIFICATE = "dev.sigstore.cosign/certificate"
ANNOTATION_CHAIN = "dev.sigstore.cosign/chain"
ANNOTATION_BUNDLE = "dev.sigstore.cosign/bundle"
ANNOTATION_PREDICATE_TYPE = "predicateType"

KeyKind = Literal["ecdsa-p256", "ecdsa-p384", "ed25519", "rsa"]
_PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey
_PublicKey = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | rsa.RSAPublicKey

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]*$")


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _aware(when: datetime) -> datetime:
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _spki_der(public_key: _PublicKey) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _public_pem(public_key: _PublicKey) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _cert_pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _pae(payload_type: str, payload: bytes) -> bytes:
    # DSSE v1 pre-authentication encoding.
    return b"DSSEv1 %d %s %d %s" % (len(payload_type), payload_type.encode(), len(payload), payload)


def _payload_bytes(statement: Mapping[str, Any] | bytes) -> bytes:
    if isinstance(statement, bytes):
        return statement
    return json.dumps(statement, separators=(",", ":")).encode()


def _envelope(*, payload_type: str, payload: bytes, signature: bytes) -> dict[str, Any]:
    # Field order as go-securesystemslib marshals it (what cosign writes into .att layers).
    return {
        "payloadType": payload_type,
        "payload": _b64(payload),
        "signatures": [{"keyid": "", "sig": _b64(signature)}],
    }


def _predicate_type(payload: bytes) -> str:
    try:
        value = json.loads(payload).get("predicateType", "")
    except (ValueError, AttributeError):
        return ""
    return value if isinstance(value, str) else ""


@dataclass(frozen=True, slots=True)
class Identity:
    """A keyless signer: the ephemeral P-256 key and its Fulcio-style leaf (with SCT) plus chain."""

    private_key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...]
    subject: str
    issuer: str
    not_before: datetime

    @property
    def cert_pem(self) -> str:
        """The leaf as PEM."""
        return _cert_pem(self.certificate)

    @property
    def chain_pem(self) -> str:
        """Intermediate then root as PEM, without a trailing newline (as in real cosign annotations)."""
        return "".join(_cert_pem(c) for c in self.chain).rstrip("\n")

    def sign(self, data: bytes) -> bytes:
        """ECDSA P-256 / SHA-256 signature over `data` (what Fulcio-certified cosign signatures are)."""
        return self.private_key.sign(data, ec.ECDSA(hashes.SHA256()))


@dataclass(frozen=True, slots=True)
class SigningKey:
    """A `cosign generate-key-pair`-style key: sign/verify with cosign's default algorithm for its kind."""

    kind: KeyKind
    private_key: _PrivateKey

    @property
    def public_key(self) -> _PublicKey:
        """The public half."""
        return self.private_key.public_key()

    @property
    def public_pem(self) -> bytes:
        """PEM SubjectPublicKeyInfo, as in ``cosign.pub``."""
        return _public_pem(self.public_key)

    @property
    def private_pem(self) -> bytes:
        """Unencrypted PKCS#8 PEM."""
        return self.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    @property
    def hint(self) -> str:
        """Bundle ``publicKey.hint``: base64 sha256 of the DER public key."""
        return _b64(hashlib.sha256(_spki_der(self.public_key)).digest())

    @property
    def hash_name(self) -> str:
        """Digest algorithm used for signing and for the hashedrekord entry (``sha256`` or ``sha384``)."""
        return "sha384" if self.kind == "ecdsa-p384" else "sha256"

    def _hash(self) -> hashes.HashAlgorithm:
        return hashes.SHA384() if self.kind == "ecdsa-p384" else hashes.SHA256()

    def sign(self, data: bytes) -> bytes:
        """Sign `data` (ECDSA with `hash_name`, RSA PKCS#1 v1.5 SHA-256, pure Ed25519)."""
        key = self.private_key
        if isinstance(key, ec.EllipticCurvePrivateKey):
            return key.sign(data, ec.ECDSA(self._hash()))
        if isinstance(key, rsa.RSAPrivateKey):
            return key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        return key.sign(data)

    def verify(self, signature: bytes, data: bytes) -> None:
        """Raise `cryptography.exceptions.InvalidSignature` unless `signature` is valid over `data`."""
        key = self.public_key
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, data, ec.ECDSA(self._hash()))
        elif isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
        else:
            key.verify(signature, data)


def generate_key(kind: KeyKind = "ecdsa-p256") -> SigningKey:
    """A fresh key of `kind` (RSA keys are 2048 bits)."""
    private_key: _PrivateKey
    if kind == "ecdsa-p256":
        private_key = ec.generate_private_key(ec.SECP256R1())
    elif kind == "ecdsa-p384":
        private_key = ec.generate_private_key(ec.SECP384R1())
    elif kind == "ed25519":
        private_key = ed25519.Ed25519PrivateKey.generate()
    elif kind == "rsa":
        private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    else:
        raise ValueError(f"unknown key kind {kind!r}")
    return SigningKey(kind=kind, private_key=private_key)


def github_actions_extensions(
    *,
    repository: str = "acme/app",
    ref: str = "refs/heads/main",
    commit: str = "4d329c75e7ec1725f7c9ce917a8799d408d06be3",
    workflow: str = ".github/workflows/release.yml",
    trigger: str = "push",
    host: str = "https://github.com",
) -> dict[str, str]:
    """The Fulcio extensions a GitHub Actions token yields (new names plus the legacy 1.2-1.6 ones)."""
    owner = repository.split("/", 1)[0]
    workflow_uri = f"{host}/{repository}/{workflow}@{ref}"
    return {
        "githubWorkflowTrigger": trigger,
        "githubWorkflowSHA": commit,
        "githubWorkflowName": workflow.rsplit("/", 1)[-1],
        "githubWorkflowRepository": repository,
        "githubWorkflowRef": ref,
        "buildSignerURI": workflow_uri,
        "buildSignerDigest": commit,
        "runnerEnvironment": "github-hosted",
        "sourceRepositoryURI": f"{host}/{repository}",
        "sourceRepositoryDigest": commit,
        "sourceRepositoryRef": ref,
        "sourceRepositoryOwnerURI": f"{host}/{owner}",
        "buildConfigURI": workflow_uri,
        "buildConfigDigest": commit,
        "buildTrigger": trigger,
        "runInvocationURI": f"{host}/{repository}/actions/runs/1/attempts/1",
    }


class FakeSigstore:
    """A self-contained Fulcio + CT log + Rekor v1 stand-in; see the module docstring for the API."""

    generate_key = staticmethod(generate_key)

    def __init__(
        self,
        *,
        name: str,
        directory: Path,
        valid_from: datetime,
        root_key: ec.EllipticCurvePrivateKey,
        intermediate_key: ec.EllipticCurvePrivateKey,
        ct_key: ec.EllipticCurvePrivateKey,
        log_key: ec.EllipticCurvePrivateKey,
    ) -> None:
        """Use `create`; this wires already generated keys together."""
        self.name = name
        self.rekor_url = f"https://rekor.{name}.invalid"
        self.fulcio_url = f"https://fulcio.{name}.invalid"
        self.ct_url = f"https://ctfe.{name}.invalid/test"
        self._valid_from = valid_from
        self._intermediate_key = intermediate_key
        self._ct_key = ct_key
        self._log_key = log_key
        self.root_cert, self.intermediate_cert = build_ca_pair(
            name=name,
            root_key=root_key,
            intermediate_key=intermediate_key,
            not_before=valid_from,
            not_after=valid_from + timedelta(days=3650),
        )
        # The tree id in the origin line mirrors Rekor's "<host> - <tree id>" checkpoints.
        tree_id = int.from_bytes(key_id(log_key.public_key())[:7], "big")
        self.log = TransparencyLog(key=log_key, origin=f"rekor.{name}.invalid - {tree_id}")
        self.trusted_root_path = directory / "trusted_root.json"
        self.trusted_root_path.write_text(json.dumps(self.trusted_root(), indent=2))

    @classmethod
    def create(
        cls, tmp_dir: Path, *, name: str = "imagegate-test", valid_from: datetime | None = None
    ) -> FakeSigstore:
        """A new, independent instance writing its trusted root under `tmp_dir`."""
        require("sigstore", "creates a local test Sigstore")
        if not _NAME.match(name):
            raise ValueError(f"instance name {name!r} must be a DNS-like label ([A-Za-z0-9.-])")
        tmp_dir.mkdir(parents=True, exist_ok=True)
        start = _aware(valid_from) if valid_from is not None else datetime.now(UTC) - timedelta(days=365)
        return cls(
            name=name,
            directory=Path(tempfile.mkdtemp(prefix=f"{name}-", dir=tmp_dir)),
            valid_from=start.replace(microsecond=0),
            root_key=ec.generate_private_key(ec.SECP384R1()),
            intermediate_key=ec.generate_private_key(ec.SECP384R1()),
            ct_key=ec.generate_private_key(ec.SECP256R1()),
            log_key=ec.generate_private_key(ec.SECP256R1()),
        )

    # -- trust material ---------------------------------------------------------------------------------

    @property
    def chain_pem(self) -> str:
        """Intermediate then root as PEM (no trailing newline)."""
        return "".join(_cert_pem(c) for c in (self.intermediate_cert, self.root_cert)).rstrip("\n")

    @property
    def log_public_key_pem(self) -> bytes:
        """The Rekor log key (verifies SETs and checkpoints)."""
        return _public_pem(self._log_key.public_key())

    @property
    def ct_public_key_pem(self) -> bytes:
        """The CT log key (verifies SCTs)."""
        return _public_pem(self._ct_key.public_key())

    def trusted_root(self) -> dict[str, Any]:
        """The trusted root as a dict (what `trusted_root_path` holds)."""
        valid_for = {"start": rfc3339(self._valid_from)}

        def log_instance(url: str, key: ec.EllipticCurvePrivateKey) -> dict[str, Any]:
            return {
                "baseUrl": url,
                "hashAlgorithm": "SHA2_256",
                "publicKey": {
                    "rawBytes": _b64(_spki_der(key.public_key())),
                    "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                    "validFor": valid_for,
                },
                "logId": {"keyId": _b64(key_id(key.public_key()))},
            }

        return {
            "mediaType": TRUSTED_ROOT_MEDIA_TYPE,
            "tlogs": [log_instance(self.rekor_url, self._log_key)],
            "certificateAuthorities": [
                {
                    "subject": {"organization": self.name, "commonName": f"{self.name} intermediate"},
                    "uri": self.fulcio_url,
                    "certChain": {
                        "certificates": [
                            {"rawBytes": _b64(c.public_bytes(serialization.Encoding.DER))}
                            for c in (self.intermediate_cert, self.root_cert)
                        ]
                    },
                    "validFor": valid_for,
                }
            ],
            "ctlogs": [log_instance(self.ct_url, self._ct_key)],
            "timestampAuthorities": [],
        }

    # -- identities ---------------------------------------------------------------------------------------

    def issue_cert(
        self,
        *,
        subject: str,
        issuer: str,
        extensions: Mapping[str, str] | None = None,
        when: datetime | None = None,
        sct: bool = True,
    ) -> Identity:
        """A Fulcio-style leaf for `subject`/`issuer`, valid 10 minutes from `when` (default now)."""
        not_before = _aware(when if when is not None else datetime.now(UTC)).replace(microsecond=0)
        key = ec.generate_private_key(ec.SECP256R1())
        cert = build_leaf(
            intermediate=self.intermediate_cert,
            intermediate_key=self._intermediate_key,
            public_key=key.public_key(),
            subject=subject,
            issuer=issuer,
            extensions=extensions or {},
            not_before=not_before,
            not_after=not_before + timedelta(minutes=10),
            ct_key=self._ct_key if sct else None,
        )
        return Identity(
            private_key=key,
            certificate=cert,
            chain=(self.intermediate_cert, self.root_cert),
            subject=subject,
            issuer=issuer,
            not_before=not_before,
        )

    # -- log ----------------------------------------------------------------------------------------------

    @staticmethod
    def _time(integrated_time: datetime | None, default: datetime) -> int:
        return int(_aware(integrated_time if integrated_time is not None else default).timestamp())

    def _keyless_time(self, identity: Identity, integrated_time: datetime | None) -> int:
        return self._time(integrated_time, identity.not_before + timedelta(seconds=1))

    def _append_dsse(
        self,
        *,
        envelope_json: bytes,
        payload: bytes,
        signature: bytes,
        verifier_pem: bytes,
        integrated_time: int,
    ) -> LogEntry:
        body = dsse_body(
            envelope_json=envelope_json, payload=payload, signature=signature, verifier_pem=verifier_pem
        )
        return self.log.append(kind="dsse", body=body, integrated_time=integrated_time)

    def _append_hashedrekord(
        self, *, digest_hex: str, algorithm: str, signature: bytes, verifier_pem: bytes, integrated_time: int
    ) -> LogEntry:
        body = hashedrekord_body(
            digest_hex=digest_hex, algorithm=algorithm, signature=signature, verifier_pem=verifier_pem
        )
        return self.log.append(kind="hashedrekord", body=body, integrated_time=integrated_time)

    # -- Sigstore bundles ---------------------------------------------------------------------------------

    @staticmethod
    def _bundle(verification_material: dict[str, Any], content: dict[str, Any]) -> bytes:
        return json.dumps(
            {"mediaType": BUNDLE_V03_MEDIA_TYPE, "verificationMaterial": verification_material, **content},
            indent=1,
        ).encode()

    @staticmethod
    def _certificate_material(identity: Identity, entry: LogEntry) -> dict[str, Any]:
        return {
            "certificate": {"rawBytes": _b64(identity.certificate.public_bytes(serialization.Encoding.DER))},
            "tlogEntries": [entry.tlog_entry()],
            "timestampVerificationData": {},
        }

    def bundle_dsse(
        self,
        identity: Identity,
        statement: Mapping[str, Any] | bytes,
        *,
        payload_type: str = IN_TOTO_PAYLOAD_TYPE,
        integrated_time: datetime | None = None,
    ) -> bytes:
        """Bundle v0.3 with a DSSE envelope over `statement` and a ``dsse/0.0.1`` entry with proof and SET."""
        payload = _payload_bytes(statement)
        signature = identity.sign(_pae(payload_type, payload))
        envelope = _envelope(payload_type=payload_type, payload=payload, signature=signature)
        entry = self._append_dsse(
            envelope_json=json.dumps(envelope, separators=(",", ":")).encode(),
            payload=payload,
            signature=signature,
            verifier_pem=identity.cert_pem.encode(),
            integrated_time=self._keyless_time(identity, integrated_time),
        )
        return self._bundle(self._certificate_material(identity, entry), {"dsseEnvelope": envelope})

    def bundle_message(
        self, identity: Identity, data: bytes, *, integrated_time: datetime | None = None
    ) -> bytes:
        """Bundle v0.3 with a message signature over `data` and a ``hashedrekord/0.0.1`` entry."""
        digest = hashlib.sha256(data).digest()
        signature = identity.sign(data)
        entry = self._append_hashedrekord(
            digest_hex=digest.hex(),
            algorithm="sha256",
            signature=signature,
            verifier_pem=identity.cert_pem.encode(),
            integrated_time=self._keyless_time(identity, integrated_time),
        )
        content = {
            "messageSignature": {
                "messageDigest": {"algorithm": "SHA2_256", "digest": _b64(digest)},
                "signature": _b64(signature),
            }
        }
        return self._bundle(self._certificate_material(identity, entry), content)

    def bundle_dsse_with_key(
        self,
        key: SigningKey,
        statement: Mapping[str, Any] | bytes,
        *,
        tlog: bool = True,
        payload_type: str = IN_TOTO_PAYLOAD_TYPE,
        integrated_time: datetime | None = None,
    ) -> bytes:
        """Bundle v0.3 signed by `key` (``publicKey.hint``), with a ``dsse/0.0.1`` entry when `tlog`."""
        payload = _payload_bytes(statement)
        signature = key.sign(_pae(payload_type, payload))
        envelope = _envelope(payload_type=payload_type, payload=payload, signature=signature)
        entries = []
        if tlog:
            entry = self._append_dsse(
                envelope_json=json.dumps(envelope, separators=(",", ":")).encode(),
                payload=payload,
                signature=signature,
                verifier_pem=key.public_pem,
                integrated_time=self._time(integrated_time, datetime.now(UTC)),
            )
            entries.append(entry.tlog_entry())
        material = {"publicKey": {"hint": key.hint}, "tlogEntries": entries, "timestampVerificationData": {}}
        return self._bundle(material, {"dsseEnvelope": envelope})

    # -- legacy cosign layers -----------------------------------------------------------------------------

    @staticmethod
    def simple_signing_payload(
        *, image_name: str, digest: str, annotations: Mapping[str, str] | None = None
    ) -> bytes:
        """cosign's simple-signing JSON, byte-for-byte as Go marshals it (``optional`` null when empty)."""
        payload = {
            "critical": {
                "identity": {"docker-reference": image_name},
                "image": {"docker-manifest-digest": digest},
                "type": "cosign container image signature",
            },
            "optional": dict(sorted(annotations.items())) if annotations else None,
        }
        return json.dumps(payload, separators=(",", ":")).encode()

    def legacy_sig_layer(
        self,
        identity: Identity,
        *,
        image_name: str,
        digest: str,
        annotations: Mapping[str, str] | None = None,
        integrated_time: datetime | None = None,
    ) -> tuple[bytes, dict[str, str]]:
        """cosign's keyless ``.sig`` layer: (simple-signing payload, layer annotations)."""
        payload = self.simple_signing_payload(image_name=image_name, digest=digest, annotations=annotations)
        signature = identity.sign(payload)
        entry = self._append_hashedrekord(
            digest_hex=hashlib.sha256(payload).hexdigest(),
            algorithm="sha256",
            signature=signature,
            verifier_pem=identity.cert_pem.encode(),
            integrated_time=self._keyless_time(identity, integrated_time),
        )
        return payload, {
            ANNOTATION_SIGNATURE: _b64(signature),
            ANNOTATION_CERTIFICATE: identity.cert_pem,
            ANNOTATION_CHAIN: identity.chain_pem,
            ANNOTATION_BUNDLE: entry.legacy_bundle(),
        }

    def legacy_att_layer(
        self,
        identity: Identity,
        statement: Mapping[str, Any] | bytes,
        *,
        payload_type: str = IN_TOTO_PAYLOAD_TYPE,
        integrated_time: datetime | None = None,
    ) -> tuple[bytes, dict[str, str]]:
        """cosign's keyless ``.att`` layer: (DSSE envelope JSON, layer annotations)."""
        payload = _payload_bytes(statement)
        signature = identity.sign(_pae(payload_type, payload))
        envelope_json = json.dumps(
            _envelope(payload_type=payload_type, payload=payload, signature=signature), separators=(",", ":")
        ).encode()
        entry = self._append_dsse(
            envelope_json=envelope_json,
            payload=payload,
            signature=signature,
            verifier_pem=identity.cert_pem.encode(),
            integrated_time=self._keyless_time(identity, integrated_time),
        )
        return envelope_json, {
            ANNOTATION_SIGNATURE: "",
            ANNOTATION_CERTIFICATE: identity.cert_pem,
            ANNOTATION_CHAIN: identity.chain_pem,
            ANNOTATION_BUNDLE: entry.legacy_bundle(),
            ANNOTATION_PREDICATE_TYPE: _predicate_type(payload),
        }

    def legacy_sig_layer_with_key(
        self,
        key: SigningKey,
        *,
        image_name: str,
        digest: str,
        annotations: Mapping[str, str] | None = None,
        tlog: bool = True,
        integrated_time: datetime | None = None,
    ) -> tuple[bytes, dict[str, str]]:
        """`cosign sign --key`'s ``.sig`` layer; a bundle annotation (SET) only when `tlog`."""
        payload = self.simple_signing_payload(image_name=image_name, digest=digest, annotations=annotations)
        signature = key.sign(payload)
        layer_annotations = {ANNOTATION_SIGNATURE: _b64(signature)}
        if tlog:
            entry = self._append_hashedrekord(
                digest_hex=hashlib.new(key.hash_name, payload).hexdigest(),
                algorithm=key.hash_name,
                signature=signature,
                verifier_pem=key.public_pem,
                integrated_time=self._time(integrated_time, datetime.now(UTC)),
            )
            layer_annotations[ANNOTATION_BUNDLE] = entry.legacy_bundle()
        return payload, layer_annotations

    def legacy_att_layer_with_key(
        self,
        key: SigningKey,
        statement: Mapping[str, Any] | bytes,
        *,
        tlog: bool = True,
        payload_type: str = IN_TOTO_PAYLOAD_TYPE,
        integrated_time: datetime | None = None,
    ) -> tuple[bytes, dict[str, str]]:
        """`cosign attest --key`'s ``.att`` layer; a bundle annotation (SET) only when `tlog`."""
        payload = _payload_bytes(statement)
        signature = key.sign(_pae(payload_type, payload))
        envelope_json = json.dumps(
            _envelope(payload_type=payload_type, payload=payload, signature=signature), separators=(",", ":")
        ).encode()
        layer_annotations = {ANNOTATION_SIGNATURE: "", ANNOTATION_PREDICATE_TYPE: _predicate_type(payload)}
        if tlog:
            entry = self._append_dsse(
                envelope_json=envelope_json,
                payload=payload,
                signature=signature,
                verifier_pem=key.public_pem,
                integrated_time=self._time(integrated_time, datetime.now(UTC)),
            )
            layer_annotations[ANNOTATION_BUNDLE] = entry.legacy_bundle()
        return envelope_json, layer_annotations


# -- tampering helpers ------------------------------------------------------------------------------------


def _default_tamper(statement: dict[str, Any]) -> None:
    target = statement.get("predicate")
    (target if isinstance(target, dict) else statement)["tampered"] = True


def tamper_payload(data: bytes, mutate: Callable[[dict[str, Any]], None] | None = None) -> bytes:
    """Rewrite the DSSE payload of a bundle or bare envelope, keeping its signature (and log entry)."""
    document = json.loads(data)
    envelope = document["dsseEnvelope"] if "dsseEnvelope" in document else document
    statement = json.loads(base64.b64decode(envelope["payload"]))
    (mutate or _default_tamper)(statement)
    envelope["payload"] = _b64(json.dumps(statement, separators=(",", ":")).encode())
    return json.dumps(document, separators=(",", ":")).encode()


def shift_integrated_time(bundle: bytes, seconds: int = 1) -> bytes:
    """Move a v0.3 bundle's ``integratedTime`` by `seconds` (invalidates the SET only)."""
    document = json.loads(bundle)
    entry = document["verificationMaterial"]["tlogEntries"][0]
    entry["integratedTime"] = str(int(entry["integratedTime"]) + seconds)
    return json.dumps(document, indent=1).encode()


def shift_legacy_integrated_time(annotations: Mapping[str, str], seconds: int = 1) -> dict[str, str]:
    """Copy of legacy layer annotations with the bundle's ``integratedTime`` moved by `seconds`."""
    legacy = json.loads(annotations[ANNOTATION_BUNDLE])
    legacy["Payload"]["integratedTime"] += seconds
    return {**annotations, ANNOTATION_BUNDLE: json.dumps(legacy, separators=(",", ":"))}


def corrupt_inclusion_proof(bundle: bytes) -> bytes:
    """Flip one bit of a v0.3 bundle's inclusion-proof root hash."""
    document = json.loads(bundle)
    proof = document["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]
    root = bytearray(base64.b64decode(proof["rootHash"]))
    root[0] ^= 0x01
    proof["rootHash"] = _b64(bytes(root))
    return json.dumps(document, indent=1).encode()


def other_digest(digest: str) -> str:
    """A different, well-formed ``sha256:`` digest derived from `digest`."""
    return "sha256:" + hashlib.sha256(("other:" + digest).encode()).hexdigest()
