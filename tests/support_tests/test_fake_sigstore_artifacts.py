"""Checks the statement/predicate helpers, the Fulcio extension encoding and the OCI manifest producers."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime

import pytest
from cryptography import x509
from google.protobuf import json_format  # type: ignore[import-untyped]
from in_toto_attestation.predicates.provenance.v1 import provenance_pb2
from in_toto_attestation.v1 import statement_pb2
from in_toto_attestation.v1.statement import Statement
from sigstore.errors import VerificationError
from sigstore.verify import policy

from tests.support.fake_sigstore import (
    BUNDLE_V03_MEDIA_TYPE,
    COSIGN_SIGN_PREDICATE_TYPE,
    DSSE_ENVELOPE_MEDIA_TYPE,
    OCI_EMPTY_CONFIG_MEDIA_TYPE,
    SIMPLESIGNING_MEDIA_TYPE,
    SLSA_PROVENANCE_V1,
    STATEMENT_V01,
    VULNS_V01,
    FakeSigstore,
    Identity,
    bundle_referrer_manifest,
    cosign_sign_statement,
    legacy_manifest,
    legacy_tag,
    referrers_fallback_tag,
    sha256_digest,
    slsa_provenance_v02,
    slsa_provenance_v1,
    statement_v01,
    statement_v1,
    vsa_v1,
    vuln,
    vulns_v01,
)

__all__: list[str] = []

pytestmark = [pytest.mark.usefixtures("offline"), pytest.mark.sigstore]

_HEX = "ef" * 32
_DIGEST = "sha256:" + _HEX


def test_statement_v1_with_slsa_v1_passes_in_toto_attestation_validation() -> None:
    statement = statement_v1(_DIGEST, SLSA_PROVENANCE_V1, slsa_provenance_v1(ref="refs/tags/v1.2.3"))

    Statement.copy_from_pb(json_format.ParseDict(statement, statement_pb2.Statement())).validate()
    # Strict parse against the official SLSA v1 proto: every field name must exist there.
    provenance = json_format.ParseDict(statement["predicate"], provenance_pb2.Provenance())
    assert provenance.run_details.builder.id == "https://github.com/actions/runner/github-hosted"
    workflow = statement["predicate"]["buildDefinition"]["externalParameters"]["workflow"]
    assert workflow == {
        "ref": "refs/tags/v1.2.3",
        "repository": "https://github.com/acme/app",
        "path": ".github/workflows/release.yml",
    }
    dependency = statement["predicate"]["buildDefinition"]["resolvedDependencies"][0]
    assert dependency["uri"] == "git+https://github.com/acme/app@refs/tags/v1.2.3"


def test_statement_v01_with_slsa_v02() -> None:
    statement = statement_v01(
        _HEX, "https://slsa.dev/provenance/v0.2", slsa_provenance_v02(), name="ghcr.io/acme/app"
    )

    assert statement["_type"] == STATEMENT_V01
    assert statement["subject"] == [{"name": "ghcr.io/acme/app", "digest": {"sha256": _HEX}}]
    predicate = statement["predicate"]
    assert predicate["builder"]["id"].endswith("generator_container_slsa3.yml@refs/tags/v2.1.0")
    assert predicate["invocation"]["configSource"]["uri"] == "git+https://github.com/acme/app@refs/heads/main"
    assert set(predicate["invocation"]["configSource"]) == {"uri", "digest", "entryPoint"}
    assert predicate["materials"][0]["uri"] == predicate["invocation"]["configSource"]["uri"]


def test_vsa_and_vulns_predicates() -> None:
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    vsa = vsa_v1(verifier_id="https://verifier.example", time_verified=when, verification_result="FAILED")
    vulns = vulns_v01(results=[vuln("CVE-2026-1", "HIGH", cvss="8.1")], scan_finished=when)

    assert vsa["verifier"] == {"id": "https://verifier.example"}
    assert vsa["timeVerified"] == "2026-01-02T03:04:05Z"
    assert (vsa["verificationResult"], vsa["verifiedLevels"]) == ("FAILED", ["SLSA_BUILD_LEVEL_3"])
    assert vulns["scanner"]["result"] == [
        {
            "id": "CVE-2026-1",
            "severity": [{"method": "nvd", "score": "HIGH"}, {"method": "cvss_score", "score": "8.1"}],
        }
    ]
    assert vulns["metadata"] == {
        "scanStartedOn": "2026-01-02T03:04:05Z",
        "scanFinishedOn": "2026-01-02T03:04:05Z",
    }
    assert VULNS_V01 == "https://in-toto.io/attestation/vulns/v0.1"


def test_statement_rejects_malformed_digest() -> None:
    with pytest.raises(ValueError, match="not a sha256 digest"):
        statement_v1("sha256:abc", SLSA_PROVENANCE_V1, {})


def test_fulcio_extensions_by_name_and_oid(sigstore_instance: FakeSigstore) -> None:
    identity = sigstore_instance.issue_cert(
        subject="ci@acme.example",
        issuer="https://issuer.example",
        extensions={"SourceRepositoryURI": "https://git.example/acme/app", "1.3.6.1.4.1.57264.1.20": "tag"},
    )

    policy.AllOf(
        [
            policy.OIDCSourceRepositoryURI("https://git.example/acme/app"),
            policy.OIDCBuildTrigger("tag"),
            policy.OIDCIssuer("https://issuer.example"),
        ]
    ).verify(identity.certificate)
    with pytest.raises(VerificationError, match="does not contain OIDCBuildSignerURI"):
        policy.OIDCBuildSignerURI("x").verify(identity.certificate)
    san = identity.certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert san.critical
    assert san.value.get_values_for_type(x509.RFC822Name) == ["ci@acme.example"]
    with pytest.raises(ValueError, match="unknown Fulcio extension"):
        sigstore_instance.issue_cert(subject="a@b.example", issuer="https://i", extensions={"repo": "x"})


def test_legacy_manifests(sigstore_instance: FakeSigstore, github_identity: Identity) -> None:
    layers = [
        sigstore_instance.legacy_sig_layer(github_identity, image_name="ghcr.io/acme/app", digest=_DIGEST),
        sigstore_instance.legacy_sig_layer(github_identity, image_name="ghcr.io/acme/app", digest=_DIGEST),
    ]
    artifact = legacy_manifest(layers, kind="sig")

    manifest = json.loads(artifact.manifest)
    assert artifact.digest == "sha256:" + hashlib.sha256(artifact.manifest).hexdigest()
    assert [layer["mediaType"] for layer in manifest["layers"]] == [SIMPLESIGNING_MEDIA_TYPE] * 2
    assert [artifact.blobs[layer["digest"]] for layer in manifest["layers"]] == [blob for blob, _ in layers]
    assert [layer["annotations"] for layer in manifest["layers"]] == [
        annotations for _, annotations in layers
    ]
    config = json.loads(artifact.blobs[manifest["config"]["digest"]])
    assert config["rootfs"]["diff_ids"] == [layer["digest"] for layer in manifest["layers"]]
    att = legacy_manifest(
        [sigstore_instance.legacy_att_layer(github_identity, {"predicateType": "x"})], kind="att"
    )
    assert json.loads(att.manifest)["layers"][0]["mediaType"] == DSSE_ENVELOPE_MEDIA_TYPE
    assert legacy_tag(_DIGEST, "sig") == f"sha256-{_HEX}.sig"
    assert legacy_tag(_DIGEST, "att") == f"sha256-{_HEX}.att"


def test_bundle_referrer_manifest(sigstore_instance: FakeSigstore, github_identity: Identity) -> None:
    bundle = sigstore_instance.bundle_dsse(github_identity, cosign_sign_statement(_DIGEST))
    artifact = bundle_referrer_manifest(bundle, subject_digest=_DIGEST, subject_size=1234)

    manifest = json.loads(artifact.manifest)
    assert manifest["artifactType"] == BUNDLE_V03_MEDIA_TYPE
    assert manifest["config"]["mediaType"] == OCI_EMPTY_CONFIG_MEDIA_TYPE
    # The well-known digest of the 2-byte empty JSON object `{}`.
    assert (
        manifest["config"]["digest"]
        == "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
    )
    assert artifact.blobs[manifest["layers"][0]["digest"]] == bundle
    assert manifest["subject"]["digest"] == _DIGEST
    assert manifest["annotations"]["dev.sigstore.bundle.predicateType"] == COSIGN_SIGN_PREDICATE_TYPE
    assert manifest["annotations"]["dev.sigstore.bundle.content"] == "dsse-envelope"
    statement = json.loads(base64.b64decode(json.loads(bundle)["dsseEnvelope"]["payload"]))
    assert statement["subject"] == [{"digest": {"sha256": _HEX}}]
    assert statement["predicate"] == {}
    assert referrers_fallback_tag(_DIGEST) == f"sha256-{_HEX}"
    assert sha256_digest(b"{}") == manifest["config"]["digest"]
