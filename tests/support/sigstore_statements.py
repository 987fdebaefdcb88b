"""Builds in-toto statements and example predicates (SLSA v1/v0.2, VSA v1, vulns v0.1) as plain JSON dicts.

All functions return fresh dicts that tests may mutate. Digests are accepted as ``sha256:<hex>`` or bare hex.
Timestamps are RFC 3339 strings with a ``Z`` suffix, as GitHub, slsa-verifier and scanners write them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

__all__ = [
    "COSIGN_SIGN_PREDICATE_TYPE",
    "IN_TOTO_PAYLOAD_TYPE",
    "SLSA_PROVENANCE_V02",
    "SLSA_PROVENANCE_V1",
    "STATEMENT_V01",
    "STATEMENT_V1",
    "VSA_V1",
    "VULNS_V01",
    "cosign_sign_statement",
    "rfc3339",
    "slsa_provenance_v02",
    "slsa_provenance_v1",
    "statement_v01",
    "statement_v1",
    "vsa_v1",
    "vuln",
    "vulns_v01",
]

STATEMENT_V1 = "https://in-toto.io/Statement/v1"
STATEMENT_V01 = "https://in-toto.io/Statement/v0.1"
IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
COSIGN_SIGN_PREDICATE_TYPE = "https://sigstore.dev/cosign/sign/v1"
SLSA_PROVENANCE_V1 = "https://slsa.dev/provenance/v1"
SLSA_PROVENANCE_V02 = "https://slsa.dev/provenance/v0.2"
VSA_V1 = "https://slsa.dev/verification_summary/v1"
VULNS_V01 = "https://in-toto.io/attestation/vulns/v0.1"

_COMMIT = "4d329c75e7ec1725f7c9ce917a8799d408d06be3"
_GITHUB_HOSTED_BUILDER = "https://github.com/actions/runner/github-hosted"


def _hex(digest: str) -> str:
    hex_part = digest.removeprefix("sha256:")
    if len(hex_part) != 64 or any(c not in "0123456789abcdef" for c in hex_part):
        raise ValueError(f"not a sha256 digest: {digest!r}")
    return hex_part


def rfc3339(when: datetime | str) -> str:
    """``2026-01-02T03:04:05Z`` for an aware datetime (naive means UTC); strings pass through."""
    if isinstance(when, str):
        return when
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _statement(
    type_: str, *, subject_digest: str, predicate_type: str, predicate: dict[str, Any], name: str
) -> dict[str, Any]:
    return {
        "_type": type_,
        "subject": [{"name": name, "digest": {"sha256": _hex(subject_digest)}}],
        "predicateType": predicate_type,
        "predicate": predicate,
    }


def statement_v1(
    subject_digest: str, predicate_type: str, predicate: dict[str, Any], name: str = "image"
) -> dict[str, Any]:
    """An in-toto Statement v1 with one subject."""
    return _statement(
        STATEMENT_V1,
        subject_digest=subject_digest,
        predicate_type=predicate_type,
        predicate=predicate,
        name=name,
    )


def statement_v01(
    subject_digest: str, predicate_type: str, predicate: dict[str, Any], name: str = "image"
) -> dict[str, Any]:
    """An in-toto Statement v0.1 with one subject (slsa-github-generator, legacy cosign attest)."""
    return _statement(
        STATEMENT_V01,
        subject_digest=subject_digest,
        predicate_type=predicate_type,
        predicate=predicate,
        name=name,
    )


def cosign_sign_statement(
    subject_digest: str, *, annotations: dict[str, str] | None = None
) -> dict[str, Any]:
    """What cosign v3 `sign` signs for an image: a Statement v1 of type cosign/sign/v1, empty predicate."""
    subject: dict[str, Any] = {"digest": {"sha256": _hex(subject_digest)}}
    if annotations:
        subject["annotations"] = dict(annotations)
    return {
        "_type": STATEMENT_V1,
        "subject": [subject],
        "predicateType": COSIGN_SIGN_PREDICATE_TYPE,
        "predicate": {},
    }


def slsa_provenance_v1(
    *,
    repository: str = "https://github.com/acme/app",
    ref: str = "refs/heads/main",
    path: str = ".github/workflows/release.yml",
    commit: str = _COMMIT,
    builder_id: str = _GITHUB_HOSTED_BUILDER,
    build_type: str = "https://actions.github.io/buildtypes/workflow/v1",
    event_name: str = "push",
    run_id: str = "1",
) -> dict[str, Any]:
    """SLSA provenance v1 predicate shaped like GitHub's `attest-build-provenance` output."""
    return {
        "buildDefinition": {
            "buildType": build_type,
            "externalParameters": {"workflow": {"ref": ref, "repository": repository, "path": path}},
            "internalParameters": {
                "github": {"event_name": event_name, "runner_environment": "github-hosted"}
            },
            "resolvedDependencies": [{"uri": f"git+{repository}@{ref}", "digest": {"gitCommit": commit}}],
        },
        "runDetails": {
            "builder": {"id": builder_id},
            "metadata": {"invocationId": f"{repository}/actions/runs/{run_id}/attempts/1"},
        },
    }


def slsa_provenance_v02(
    *,
    builder_id: str = (
        "https://github.com/slsa-framework/slsa-github-generator/.github/workflows/"
        "generator_container_slsa3.yml@refs/tags/v2.1.0"
    ),
    config_uri: str = "git+https://github.com/acme/app@refs/heads/main",
    config_digest: dict[str, str] | None = None,
    entry_point: str = ".github/workflows/release.yml",
    build_type: str = "https://github.com/slsa-framework/slsa-github-generator/container@v1",
    materials: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """SLSA provenance v0.2 predicate shaped like slsa-github-generator's container provenance."""
    digest = dict(config_digest) if config_digest is not None else {"sha1": _COMMIT}
    return {
        "builder": {"id": builder_id},
        "buildType": build_type,
        "invocation": {
            "configSource": {"uri": config_uri, "digest": digest, "entryPoint": entry_point},
            "parameters": {},
            "environment": {"github_event_name": "push"},
        },
        "metadata": {"buildInvocationID": "1-1", "completeness": {"parameters": True}, "reproducible": False},
        "materials": materials if materials is not None else [{"uri": config_uri, "digest": digest}],
    }


def vsa_v1(
    *,
    verifier_id: str = "https://imagegate.dev/test-verifier",
    time_verified: datetime | str | None = None,
    resource_uri: str = "oci://ghcr.io/acme/app",
    policy_uri: str = "https://example.com/policies/release",
    verification_result: str = "PASSED",
    verified_levels: list[str] | None = None,
    slsa_version: str = "1.0",
) -> dict[str, Any]:
    """SLSA Verification Summary Attestation v1 predicate; `verification_result` is PASSED or FAILED."""
    return {
        "verifier": {"id": verifier_id},
        "timeVerified": rfc3339(time_verified if time_verified is not None else datetime.now(UTC)),
        "resourceUri": resource_uri,
        "policy": {"uri": policy_uri},
        "inputAttestations": [],
        "verificationResult": verification_result,
        "verifiedLevels": list(verified_levels) if verified_levels is not None else ["SLSA_BUILD_LEVEL_3"],
        "slsaVersion": slsa_version,
    }


def vuln(
    vuln_id: str, severity: str = "MEDIUM", *, method: str = "nvd", cvss: str | None = None
) -> dict[str, Any]:
    """One ``scanner.result[]`` item: the qualitative severity under `method`, optionally a CVSS score."""
    scores = [{"method": method, "score": severity}]
    if cvss is not None:
        scores.append({"method": "cvss_score", "score": cvss})
    return {"id": vuln_id, "severity": scores}


def vulns_v01(
    *,
    results: list[dict[str, Any]] | None = None,
    scanner_uri: str = "pkg:github/aquasecurity/trivy@v0.58.0",
    scanner_version: str = "0.58.0",
    scan_started: datetime | str | None = None,
    scan_finished: datetime | str | None = None,
) -> dict[str, Any]:
    """in-toto vulns v0.1 predicate; `results` are `vuln()` items (empty: nothing found)."""
    finished = scan_finished if scan_finished is not None else datetime.now(UTC)
    started = scan_started if scan_started is not None else finished
    return {
        "scanner": {
            "uri": scanner_uri,
            "version": scanner_version,
            "db": {"uri": "pkg:github/aquasecurity/trivy-db", "version": "2", "lastUpdate": rfc3339(started)},
            "result": list(results) if results is not None else [],
        },
        "metadata": {"scanStartedOn": rfc3339(started), "scanFinishedOn": rfc3339(finished)},
    }
