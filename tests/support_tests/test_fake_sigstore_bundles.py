"""Checks that sigstore-python's real Verifier accepts the test Sigstore's bundles and rejects tampering."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sigstore.errors import CertValidationError, VerificationError
from sigstore.models import Bundle, InvalidBundle, TrustedRoot
from sigstore.verify import Verifier, policy

from tests.support.fake_sigstore import (
    BUNDLE_V03_MEDIA_TYPE,
    IN_TOTO_PAYLOAD_TYPE,
    SLSA_PROVENANCE_V1,
    TRUSTED_ROOT_MEDIA_TYPE,
    FakeSigstore,
    Identity,
    corrupt_inclusion_proof,
    generate_key,
    other_digest,
    shift_integrated_time,
    slsa_provenance_v1,
    statement_v1,
    tamper_payload,
)

__all__: list[str] = []

pytestmark = [pytest.mark.usefixtures("offline"), pytest.mark.sigstore]

_DIGEST = "sha256:" + "ab" * 32


def _provenance() -> dict[str, object]:
    return statement_v1(_DIGEST, SLSA_PROVENANCE_V1, slsa_provenance_v1())


def _identity_policy(identity: Identity) -> policy.Identity:
    return policy.Identity(identity=identity.subject, issuer=identity.issuer)


def test_trusted_root_lists_instance_with_validity_windows(sigstore_instance: FakeSigstore) -> None:
    root = json.loads(sigstore_instance.trusted_root_path.read_text())
    assert root["mediaType"] == TRUSTED_ROOT_MEDIA_TYPE
    assert sigstore_instance.trusted_root_path.name == "trusted_root.json"
    for section in ("tlogs", "ctlogs"):
        (log,) = root[section]
        assert log["publicKey"]["keyDetails"] == "PKIX_ECDSA_P256_SHA_256"
        assert "start" in log["publicKey"]["validFor"]
    assert base64.b64decode(root["tlogs"][0]["logId"]["keyId"]) == sigstore_instance.log.log_id
    (ca,) = root["certificateAuthorities"]
    assert len(ca["certChain"]["certificates"]) == 2
    assert "start" in ca["validFor"]


def test_dsse_bundle_verifies_with_identity_and_extension_policies(
    sigstore_instance: FakeSigstore, verifier: Verifier, github_identity: Identity
) -> None:
    statement = _provenance()
    raw = sigstore_instance.bundle_dsse(github_identity, statement)
    assert json.loads(raw)["mediaType"] == BUNDLE_V03_MEDIA_TYPE
    checks = policy.AllOf(
        [
            _identity_policy(github_identity),
            policy.OIDCIssuerV2(github_identity.issuer),
            policy.OIDCSourceRepositoryURI("https://github.com/acme/app"),
            policy.OIDCSourceRepositoryRef("refs/heads/main"),
            policy.OIDCSourceRepositoryOwnerURI("https://github.com/acme"),
            policy.OIDCBuildSignerURI(github_identity.subject),
            policy.OIDCBuildTrigger("push"),
            policy.OIDCRunnerEnvironment("github-hosted"),
            policy.GitHubWorkflowRepository("acme/app"),
            policy.GitHubWorkflowRef("refs/heads/main"),
        ]
    )

    payload_type, payload = verifier.verify_dsse(Bundle.from_json(raw), checks)

    assert payload_type == IN_TOTO_PAYLOAD_TYPE
    assert json.loads(payload) == statement
    (entry,) = sigstore_instance.log.entries
    assert entry.kind == "dsse"


def test_message_bundle_verifies_for_email_identity(
    sigstore_instance: FakeSigstore, verifier: Verifier
) -> None:
    identity = sigstore_instance.issue_cert(
        subject="release@acme.example", issuer="https://accounts.example.com"
    )
    raw = sigstore_instance.bundle_message(identity, b"artifact bytes")

    verifier.verify_artifact(b"artifact bytes", Bundle.from_json(raw), _identity_policy(identity))

    assert sigstore_instance.log.entries[-1].kind == "hashedrekord"


def test_backdated_identity_still_verifies(sigstore_instance: FakeSigstore, verifier: Verifier) -> None:
    identity = sigstore_instance.issue_cert(
        subject="https://github.com/acme/app/.github/workflows/old.yml@refs/tags/v1",
        issuer="https://token.actions.githubusercontent.com",
        when=datetime.now(UTC) - timedelta(days=20),
    )
    assert identity.certificate.not_valid_after_utc < datetime.now(UTC)

    _, payload = verifier.verify_dsse(
        Bundle.from_json(sigstore_instance.bundle_dsse(identity, _provenance())), _identity_policy(identity)
    )

    assert json.loads(payload)["subject"][0]["digest"]["sha256"] == _DIGEST.removeprefix("sha256:")


def test_growing_log_gives_valid_inclusion_proofs_at_every_size(
    sigstore_instance: FakeSigstore, verifier: Verifier, github_identity: Identity
) -> None:
    # Eleven entries cover trees whose audit paths mix inner and right-border hashes.
    bundles = [sigstore_instance.bundle_dsse(github_identity, {"n": n}) for n in range(11)]
    for raw in bundles:
        verifier.verify_dsse(Bundle.from_json(raw), _identity_policy(github_identity))
    assert [e.tree_size for e in sigstore_instance.log.entries] == list(range(1, 12))
    # Size 8 is a full tree (three inner hashes); size 6 needs one inner and one right-border hash.
    assert len(sigstore_instance.log.entries[7].hashes) == 3
    assert len(sigstore_instance.log.entries[5].hashes) == 2


_Case = Callable[[FakeSigstore, Identity, Path], tuple[bytes, policy.VerificationPolicy]]


def _wrong_san(fs: FakeSigstore, ident: Identity, _: Path) -> tuple[bytes, policy.VerificationPolicy]:
    other = "https://github.com/evil/app/.github/workflows/release.yml@refs/heads/main"
    return fs.bundle_dsse(ident, _provenance()), policy.Identity(identity=other, issuer=ident.issuer)


def _wrong_issuer(fs: FakeSigstore, ident: Identity, _: Path) -> tuple[bytes, policy.VerificationPolicy]:
    wrong = policy.Identity(identity=ident.subject, issuer="https://accounts.google.com")
    return fs.bundle_dsse(ident, _provenance()), wrong


def _missing_extension(fs: FakeSigstore, _: Identity, __: Path) -> tuple[bytes, policy.VerificationPolicy]:
    bare = fs.issue_cert(subject="dev@acme.example", issuer="https://accounts.example.com")
    return fs.bundle_dsse(bare, _provenance()), policy.OIDCSourceRepositoryURI("https://github.com/acme/app")


def _wrong_extension(fs: FakeSigstore, ident: Identity, _: Path) -> tuple[bytes, policy.VerificationPolicy]:
    return fs.bundle_dsse(ident, _provenance()), policy.OIDCSourceRepositoryRef("refs/heads/dev")


def _tampered(fs: FakeSigstore, ident: Identity, _: Path) -> tuple[bytes, policy.VerificationPolicy]:
    return tamper_payload(fs.bundle_dsse(ident, _provenance())), _identity_policy(ident)


def _retargeted(fs: FakeSigstore, ident: Identity, _: Path) -> tuple[bytes, policy.VerificationPolicy]:
    def point_elsewhere(statement: dict[str, object]) -> None:
        statement["subject"] = [{"name": "image", "digest": {"sha256": other_digest(_DIGEST)[7:]}}]

    return tamper_payload(fs.bundle_dsse(ident, _provenance()), point_elsewhere), _identity_policy(ident)


def _shifted_time(fs: FakeSigstore, ident: Identity, _: Path) -> tuple[bytes, policy.VerificationPolicy]:
    return shift_integrated_time(fs.bundle_dsse(ident, _provenance())), _identity_policy(ident)


def _bad_proof(fs: FakeSigstore, ident: Identity, _: Path) -> tuple[bytes, policy.VerificationPolicy]:
    return corrupt_inclusion_proof(fs.bundle_dsse(ident, _provenance())), _identity_policy(ident)


def _no_sct(fs: FakeSigstore, ident: Identity, _: Path) -> tuple[bytes, policy.VerificationPolicy]:
    bare = fs.issue_cert(subject=ident.subject, issuer=ident.issuer, sct=False)
    return fs.bundle_dsse(bare, _provenance()), _identity_policy(bare)


def _signed_after_expiry(
    fs: FakeSigstore, ident: Identity, _: Path
) -> tuple[bytes, policy.VerificationPolicy]:
    late = ident.not_before + timedelta(minutes=11)
    return fs.bundle_dsse(ident, _provenance(), integrated_time=late), _identity_policy(ident)


def _other_root(fs: FakeSigstore, ident: Identity, tmp: Path) -> tuple[bytes, policy.VerificationPolicy]:
    stranger = FakeSigstore.create(tmp / "stranger")
    impostor = stranger.issue_cert(subject=ident.subject, issuer=ident.issuer)
    return stranger.bundle_dsse(impostor, _provenance()), _identity_policy(impostor)


@pytest.mark.parametrize(
    ("case", "error", "fragment"),
    [
        pytest.param(_wrong_san, VerificationError, "SANs do not match", id="wrong-san"),
        pytest.param(_wrong_issuer, VerificationError, "OIDCIssuer does not match", id="wrong-issuer"),
        pytest.param(
            _missing_extension,
            VerificationError,
            "does not contain OIDCSourceRepositoryURI",
            id="missing-extension",
        ),
        pytest.param(
            _wrong_extension,
            VerificationError,
            "OIDCSourceRepositoryRef does not match",
            id="wrong-extension",
        ),
        pytest.param(_tampered, VerificationError, "DSSE: invalid signature", id="tampered-payload"),
        pytest.param(_retargeted, VerificationError, "DSSE: invalid signature", id="retargeted-subject"),
        pytest.param(
            _shifted_time, VerificationError, "SET: invalid inclusion promise", id="integrated-time"
        ),
        pytest.param(_bad_proof, VerificationError, "inclusion proof contains invalid root hash", id="proof"),
        pytest.param(
            _no_sct, VerificationError, "does not contain a signed certificate timestamp", id="missing-sct"
        ),
        pytest.param(
            _signed_after_expiry, CertValidationError, "not valid at validation time", id="after-expiry"
        ),
        pytest.param(
            _other_root, CertValidationError, "failed to build timestamp certificate chain", id="other-root"
        ),
    ],
)
def test_dsse_bundle_rejected_for_intended_reason(
    case: _Case,
    error: type[Exception],
    fragment: str,
    sigstore_instance: FakeSigstore,
    verifier: Verifier,
    github_identity: Identity,
    tmp_path: Path,
) -> None:
    raw, checks = case(sigstore_instance, github_identity, tmp_path)

    with pytest.raises(error, match=fragment):
        verifier.verify_dsse(Bundle.from_json(raw), checks)


def test_bundle_from_this_instance_fails_against_another_root(
    sigstore_instance: FakeSigstore, github_identity: Identity, tmp_path: Path
) -> None:
    raw = sigstore_instance.bundle_dsse(github_identity, _provenance())
    stranger = FakeSigstore.create(tmp_path / "stranger")
    assert stranger.trusted_root_path != sigstore_instance.trusted_root_path
    other_verifier = Verifier(trusted_root=TrustedRoot.from_file(str(stranger.trusted_root_path)))

    with pytest.raises(CertValidationError, match="failed to build timestamp certificate chain"):
        other_verifier.verify_dsse(Bundle.from_json(raw), _identity_policy(github_identity))


def test_message_bundle_rejects_other_artifact(sigstore_instance: FakeSigstore, verifier: Verifier) -> None:
    identity = sigstore_instance.issue_cert(
        subject="release@acme.example", issuer="https://accounts.example.com"
    )
    raw = sigstore_instance.bundle_message(identity, b"artifact bytes")

    with pytest.raises(VerificationError, match="Bundle message digest mismatch"):
        verifier.verify_artifact(b"other bytes", Bundle.from_json(raw), _identity_policy(identity))


def test_key_bundle_is_well_formed_but_outside_sigstore_python(sigstore_instance: FakeSigstore) -> None:
    key = generate_key("ecdsa-p256")
    raw = sigstore_instance.bundle_dsse_with_key(key, _provenance())
    document = json.loads(raw)
    assert document["verificationMaterial"]["publicKey"]["hint"] == key.hint
    envelope = document["dsseEnvelope"]
    payload = base64.b64decode(envelope["payload"])
    pae = b"DSSEv1 %d %s %d %s" % (
        len(IN_TOTO_PAYLOAD_TYPE),
        IN_TOTO_PAYLOAD_TYPE.encode(),
        len(payload),
        payload,
    )
    public_key = serialization.load_pem_public_key(key.public_pem)
    assert isinstance(public_key, ec.EllipticCurvePublicKey)
    public_key.verify(base64.b64decode(envelope["signatures"][0]["sig"]), pae, ec.ECDSA(hashes.SHA256()))
    (entry,) = document["verificationMaterial"]["tlogEntries"]
    body = json.loads(base64.b64decode(entry["canonicalizedBody"]))
    assert base64.b64decode(body["spec"]["signatures"][0]["verifier"]) == key.public_pem
    assert (
        json.loads(sigstore_instance.bundle_dsse_with_key(key, {}, tlog=False))["verificationMaterial"][
            "tlogEntries"
        ]
        == []
    )

    # sigstore-python 4.5.1 only takes certificate bundles; the product must verify key bundles itself.
    with pytest.raises(InvalidBundle, match="expected certificate in bundle"):
        Bundle.from_json(raw)
