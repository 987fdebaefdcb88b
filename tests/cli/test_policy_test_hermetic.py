"""``imagegate test`` without ``--live``: every check of admission runs over a suite's declared facts.

One policy with a rule per check (keyless identity and extensions, k-of-n over distinct keys, the
transparency-log requirement of key signers, SLSA provenance, verification summaries, vulnerability
scans, quarantine lists and registry markers on indexes and platforms, UPDATEs of running workloads)
and one suite of cases, each admitted offline against declared images. Nothing here has a registry or
a network: an undeclared image is a ``registry-error`` that says so.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from webhook.cli import main

REPO = Path(__file__).resolve().parents[2]
ROOT = REPO / "policies" / "examples" / "trust" / "trusted_root.json"
RELEASE_KEY = REPO / "policies" / "examples" / "trust" / "release.pub"
# A second P-256 public key (any key the release key is not).
SECOND_KEY = """\
-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE2G2Y+2tabdTV5BcGiBIx0a9fAFwrkBbmLSGtks4L3qX6yYY0zufBnhC8Ur/iy55GhWP/9A/bY2LhC30M9+RYtw==
-----END PUBLIC KEY-----
"""
ISSUER = "https://token.actions.githubusercontent.com"
WORKFLOW = "https://github.com/acme/app/.github/workflows/release.yml@refs/tags/v1.4.2"
BUILDER = "https://github.com/actions/runner/github-hosted"
NOW = "2026-12-01T00:00:00Z"


def digest(n: int) -> str:
    return "sha256:" + f"{n:x}" * 64 if n < 16 else "sha256:" + f"{n:064x}"


def policy() -> dict[str, Any]:
    keyless = {
        "keyless": {
            "root": "public-good",
            "issuer": ISSUER,
            "subjectRegExp": r"https://github\.com/acme/[^/]+/\.github/workflows/release\.yml@refs/tags/v.+",
            "extensions": {"sourceRepositoryOwnerURI": "https://github.com/acme"},
        }
    }
    return {
        "apiVersion": "imagegate.dev/v1alpha1",
        "kind": "ImagePolicy",
        "metadata": {"name": "hermetic"},
        "spec": {
            "registries": {"allow": ["ghcr.io"]},
            "trust": {
                "roots": [{"name": "public-good", "file": str(ROOT)}],
                "keys": [
                    {"name": "release", "file": str(RELEASE_KEY)},
                    {"name": "release-again", "file": str(RELEASE_KEY)},
                    {"name": "second", "file": "second.pub"},
                    {"name": "offline", "file": "second.pub"},
                ],
            },
            "quarantine": {"files": ["quarantine.yaml"], "registryMarkers": True},
            "rules": [
                {
                    "name": "signed",
                    "images": ["ghcr.io/acme/signed/**"],
                    "signatures": {"signers": [keyless]},
                },
                {
                    "name": "two-keys",
                    "images": ["ghcr.io/acme/critical/**"],
                    "signatures": {
                        "minimum": 2,
                        "signers": [{"key": {"name": n}} for n in ("release", "release-again", "second")],
                    },
                },
                {
                    "name": "air-gapped",
                    "images": ["ghcr.io/acme/offline/**"],
                    "signatures": {"signers": [{"key": {"name": "offline", "requireTlog": False}}]},
                },
                {
                    "name": "gates",
                    "images": ["ghcr.io/acme/prod/**"],
                    "attestations": [
                        {
                            "predicateType": "https://slsa.dev/provenance/v1",
                            "signers": [keyless],
                            "slsa": {
                                "builderIds": [BUILDER],
                                "sourceRepositories": ["github.com/acme/app"],
                                "sourceRefs": ["refs/heads/main", "refs/tags/v*"],
                            },
                        },
                        {
                            "predicateType": "https://slsa.dev/verification_summary/v1",
                            "signers": [{"key": {"name": "release"}}],
                            "verificationSummary": {
                                "verifierIds": ["https://acme.example.com/promotion/staging"],
                                "minLevel": "SLSA_BUILD_LEVEL_3",
                            },
                        },
                        {
                            "predicateType": "https://in-toto.io/attestation/vulns/v0.1",
                            "signers": [keyless],
                            "vulnerabilities": {"maxSeverity": "MEDIUM", "maxAge": "168h"},
                        },
                    ],
                },
                {"name": "pinned", "images": ["ghcr.io/acme/plain/**"]},
            ],
        },
    }


def identity(**extensions: str) -> dict[str, Any]:
    return {
        "issuer": ISSUER,
        "subject": WORKFLOW,
        "extensions": {"sourceRepositoryOwnerURI": "https://github.com/acme", **extensions},
    }


def provenance(ref: str = "refs/tags/v1.4.2", builder: str = BUILDER) -> dict[str, Any]:
    return {
        "buildDefinition": {
            "buildType": "https://actions.github.io/buildtypes/workflow/v1",
            "externalParameters": {
                "workflow": {"ref": ref, "repository": "https://github.com/acme/app", "path": ".github/x.yml"}
            },
        },
        "runDetails": {"builder": {"id": builder}},
    }


def summary(result: str = "PASSED") -> dict[str, Any]:
    return {
        "verifier": {"id": "https://acme.example.com/promotion/staging"},
        "timeVerified": "2026-11-30T00:00:00Z",
        "resourceUri": "ghcr.io/acme/prod/app",
        "policy": {"uri": "https://acme.example.com/policies/staging"},
        "verificationResult": result,
        "verifiedLevels": ["SLSA_BUILD_LEVEL_3"],
    }


def scan(severity: str = "LOW", finished: str = "2026-11-29T00:00:00Z") -> dict[str, Any]:
    return {
        "scanner": {
            "uri": "pkg:github/aquasecurity/trivy",
            "result": [{"id": "CVE-2026-1", "severity": [{"method": "nvd", "score": severity}]}],
        },
        "metadata": {"scanStartedOn": finished, "scanFinishedOn": finished},
    }


def prod_attestations(*, ref: str = "refs/tags/v1.4.2", result: str = "PASSED", severity: str = "LOW"):
    return [
        {
            "predicateType": "https://slsa.dev/provenance/v1",
            "keyless": identity(),
            "predicate": provenance(ref),
        },
        {
            "predicateType": "https://slsa.dev/verification_summary/v1",
            "key": "release",
            "predicate": summary(result),
        },
        {
            "predicateType": "https://in-toto.io/attestation/vulns/v0.1",
            "keyless": identity(),
            "predicate": scan(severity),
        },
    ]


IMAGES: list[dict[str, Any]] = [
    {
        "name": "ghcr.io/acme/signed/app",
        "digest": digest(1),
        "tags": ["good"],
        "signatures": [{"keyless": identity()}],
    },
    {
        "name": "ghcr.io/acme/signed/app",
        "digest": digest(2),
        "tags": ["fork"],
        "signatures": [
            {"keyless": {**identity(), "extensions": {"sourceRepositoryOwnerURI": "https://github.com/evil"}}}
        ],
    },
    {
        "name": "ghcr.io/acme/signed/app",
        "digest": digest(3),
        "tags": ["rogue-root"],
        "signatures": [{"keyless": {**identity(), "root": "elsewhere"}}],
    },
    {
        "name": "ghcr.io/acme/signed/app",
        "digest": digest(4),
        "tags": ["tampered"],
        "signatures": [{"keyless": identity(), "valid": False}],
    },
    {
        "name": "ghcr.io/acme/signed/app",
        "digest": digest(5),
        "tags": ["replayed"],
        "signatures": [{"keyless": identity(), "signedDigest": digest(1)}],
    },
    {"name": "ghcr.io/acme/signed/app", "digest": digest(6), "tags": ["unsigned"]},
    {
        "name": "ghcr.io/acme/signed/app",
        "digest": digest(7),
        "tags": ["no-log"],
        "signatures": [{"keyless": identity(), "tlog": False}],
    },
    {
        "name": "ghcr.io/acme/critical/app",
        "digest": digest(8),
        "tags": ["one-key-twice"],
        "signatures": [{"key": "release"}, {"key": "release-again"}],
    },
    {
        "name": "ghcr.io/acme/critical/app",
        "digest": digest(9),
        "tags": ["two-keys"],
        "signatures": [{"key": "release"}, {"key": "second"}],
    },
    {
        "name": "ghcr.io/acme/critical/app",
        "digest": digest(10),
        "tags": ["untrusted-key"],
        "signatures": [{"key": "release"}, {"key": "attacker"}],
    },
    {
        "name": "ghcr.io/acme/critical/app",
        "digest": digest(11),
        "tags": ["unlogged"],
        "signatures": [{"key": "release"}, {"key": "second", "tlog": False}],
    },
    {
        "name": "ghcr.io/acme/offline/app",
        "digest": digest(12),
        "tags": ["unlogged"],
        "signatures": [{"key": "second", "tlog": False}],
    },
    {
        "name": "ghcr.io/acme/prod/app",
        "digest": digest(13),
        "tags": ["1.4.2"],
        "attestations": prod_attestations(),
    },
    {
        "name": "ghcr.io/acme/prod/app",
        "digest": digest(14),
        "tags": ["feature"],
        "attestations": prod_attestations(ref="refs/heads/feature"),
    },
    {
        "name": "ghcr.io/acme/prod/app",
        "digest": digest(15),
        "tags": ["failed-gate"],
        "attestations": prod_attestations(result="FAILED"),
    },
    {
        "name": "ghcr.io/acme/prod/app",
        "digest": "sha256:" + "a1" * 32,
        "tags": ["critical-cve"],
        "attestations": prod_attestations(severity="CRITICAL"),
    },
    {
        "name": "ghcr.io/acme/plain/app",
        "digest": "sha256:" + "b1" * 32,
        "tags": ["multi"],
        "platforms": [
            {"platform": "linux/amd64", "digest": "sha256:" + "b2" * 32},
            {
                "platform": "linux/arm64/v8",
                "digest": "sha256:" + "b3" * 32,
                "marker": {"reason": "CVE-2026-7 in the arm64 base", "by": "sec"},
            },
        ],
    },
    {
        "name": "ghcr.io/acme/plain/app",
        "digest": "sha256:" + "c1" * 32,
        "tags": ["marked"],
        "marker": {"reason": "INC-9 compromised runner"},
    },
    {"name": "ghcr.io/acme/plain/app", "digest": "sha256:" + "d1" * 32, "tags": ["listed", "also-listed"]},
    {"name": "ghcr.io/acme/plain/app", "digest": "sha256:" + "e1" * 32, "tags": ["1.0"]},
]
QUARANTINED = [{"digest": "sha256:" + "d1" * 32, "reason": "CVE-2026-42 in openssl", "by": "sec"}]


def case(name: str, image: str, outcome: str, *, allowed: bool, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "images": [image],
        "expect": {"allowed": allowed, "outcomes": [outcome], **extra},
    }


CASES: list[dict[str, Any]] = [
    case(
        "the release workflow's signature verifies", "ghcr.io/acme/signed/app:good", "verified", allowed=True
    ),
    case(
        "a fork signs with another owner",
        "ghcr.io/acme/signed/app:fork",
        "identity-mismatch",
        allowed=False,
        messageContains="found keyless " + WORKFLOW,
    ),
    case(
        "a root the signer does not name",
        "ghcr.io/acme/signed/app:rogue-root",
        "signature-invalid",
        allowed=False,
        messageContains="does not chain to trust root 'public-good'",
    ),
    case(
        "a signature that does not verify",
        "ghcr.io/acme/signed/app:tampered",
        "signature-invalid",
        allowed=False,
    ),
    case(
        "a signature replayed from another digest",
        "ghcr.io/acme/signed/app:replayed",
        "signature-invalid",
        allowed=False,
        messageContains=f"but for {digest(1)}",
    ),
    case("nothing signed", "ghcr.io/acme/signed/app:unsigned", "unsigned", allowed=False),
    case(
        "keyless needs the transparency log",
        "ghcr.io/acme/signed/app:no-log",
        "signature-invalid",
        allowed=False,
    ),
    case(
        "one key under two names counts once",
        "ghcr.io/acme/critical/app:one-key-twice",
        "identity-mismatch",
        allowed=False,
        messageContains="only 1 of minimum 2",
    ),
    case("two distinct keys", "ghcr.io/acme/critical/app:two-keys", "verified", allowed=True),
    case(
        "a key the policy does not trust",
        "ghcr.io/acme/critical/app:untrusted-key",
        "identity-mismatch",
        allowed=False,
        messageContains="only 1 of minimum 2",
    ),
    case(
        "key signers require the log by default",
        "ghcr.io/acme/critical/app:unlogged",
        "identity-mismatch",
        allowed=False,
    ),
    case("unless requireTlog is false", "ghcr.io/acme/offline/app:unlogged", "verified", allowed=True),
    case("every promotion gate holds", "ghcr.io/acme/prod/app:1.4.2", "verified", allowed=True),
    case(
        "provenance from a feature branch",
        "ghcr.io/acme/prod/app:feature",
        "provenance-mismatch",
        allowed=False,
        messageContains="refs/heads/feature",
    ),
    case(
        "a failed staging gate",
        "ghcr.io/acme/prod/app:failed-gate",
        "provenance-mismatch",
        allowed=False,
        messageContains="FAILED",
    ),
    case(
        "a critical vulnerability",
        "ghcr.io/acme/prod/app:critical-cve",
        "provenance-mismatch",
        allowed=False,
        messageContains="CRITICAL",
    ),
    case(
        "a quarantined platform of an index",
        "ghcr.io/acme/plain/app:multi",
        "quarantined",
        allowed=False,
        messageContains="platform linux/arm64/v8 manifest",
    ),
    case(
        "a pod pinned to the quarantined platform",
        "ghcr.io/acme/plain/app@sha256:" + "b3" * 32,
        "quarantined",
        allowed=False,
        messageContains="CVE-2026-7",
    ),
    case(
        "the other platform is fine", "ghcr.io/acme/plain/app@sha256:" + "b2" * 32, "admitted", allowed=True
    ),
    case(
        "a registry marker",
        "ghcr.io/acme/plain/app:marked",
        "quarantined",
        allowed=False,
        messageContains="INC-9",
    ),
    case(
        "a quarantine list entry, by any tag",
        "ghcr.io/acme/plain/app:also-listed",
        "quarantined",
        allowed=False,
        messageContains="CVE-2026-42",
    ),
    case(
        "an image the suite does not declare",
        "ghcr.io/acme/plain/other:1.0",
        "registry-error",
        allowed=False,
        messageContains="do not declare it",
    ),
    case(
        "the registry allowlist comes first",
        "docker.io/library/nginx:1.27",
        "registry-not-allowed",
        allowed=False,
    ),
    {
        "name": "an UPDATE keeps a running image that is now quarantined",
        "images": ["ghcr.io/acme/plain/app:marked", "ghcr.io/acme/plain/app:1.0"],
        "oldImages": ["ghcr.io/acme/plain/app:marked"],
        "expect": {
            "allowed": True,
            "outcomes": ["quarantined", "admitted"],
            "warnings": 1,
            "messageContains": "already running",
        },
    },
    {
        "name": "an UPDATE that adds a quarantined image is refused",
        "images": ["ghcr.io/acme/plain/app:1.0", "ghcr.io/acme/plain/app:marked"],
        "oldImages": ["ghcr.io/acme/plain/app:1.0"],
        "expect": {"allowed": False, "outcomes": ["admitted", "quarantined"]},
    },
]


def write_suite(tmp_path: Path, cases: list[dict[str, Any]] | None = None, **extra: Any) -> Path:
    (tmp_path / "second.pub").write_text(SECOND_KEY)
    (tmp_path / "quarantine.yaml").write_text(
        "apiVersion: imagegate.dev/v1alpha1\nkind: Quarantine\nentries: []\n"
    )
    (tmp_path / "policy.yaml").write_text(yaml.safe_dump(policy()))
    suite = {
        "apiVersion": "imagegate.dev/v1alpha1",
        "kind": "PolicyTest",
        "metadata": {"name": "hermetic"},
        "policy": "policy.yaml",
        "now": NOW,
        "images": IMAGES,
        "quarantine": QUARANTINED,
        "cases": CASES if cases is None else cases,
        **extra,
    }
    path = tmp_path / "hermetic.test.yaml"
    path.write_text(yaml.safe_dump(suite, sort_keys=False))
    return path


def run_json(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any], str]:
    """Exit status, the JSON report, and what went to stderr."""
    status = main(["test", "-o", "json", *args])
    captured = capsys.readouterr()
    return status, json.loads(captured.out), captured.err


@pytest.mark.usefixtures("offline")  # any network access fails the run
def test_every_check_runs_over_the_declared_facts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, report, _ = run_json([str(write_suite(tmp_path))], capsys)
    failed = [(c["name"], c["problems"]) for s in report["suites"] for c in s["cases"] if not c["passed"]]
    assert failed == []
    assert status == 0
    assert report["passed"] == len(CASES) and report["suites"][0]["mode"] == "hermetic"


def test_a_wrong_expectation_fails_with_expected_actual_and_explanation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wrong = case("expects the fork to pass", "ghcr.io/acme/signed/app:fork", "verified", allowed=True)
    path = write_suite(tmp_path, [wrong])
    assert main(["test", str(path)]) == 1
    out = capsys.readouterr().out
    assert "FAIL hermetic.test.yaml: expects the fork to pass" in out
    assert "expected outcomes ['verified'], got ['identity-mismatch']" in out
    # The explanation (as evaluate --explain prints it): every check, the digest, the candidate
    # signature, who signed it and why it does not count.
    assert "rule signed (enforce) matches; requires signatures" in out
    assert f"digest: tag fork resolved to {digest(2)}" in out
    assert "valid signature by keyless " + WORKFLOW in out
    assert "OIDCSourceRepositoryOwnerURI does not match (got https://github.com/evil" in out
    assert out.strip().endswith("0 passed, 1 failed")


def test_explanations_carry_into_the_json_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    wrong = case(
        "expects the feature build in prod", "ghcr.io/acme/prod/app:feature", "verified", allowed=True
    )
    status, report, _ = run_json([str(write_suite(tmp_path, [wrong]))], capsys)
    assert status == 1
    (result,) = report["suites"][0]["cases"]
    assert result["passed"] is False and result["expect"] == {"allowed": True, "outcomes": ["verified"]}
    (image,) = result["admissions"][0]["images"]
    assert image["outcome"] == "provenance-mismatch" and image["digest"] == digest(14)
    assert [f["code"] for f in image["failures"]] == ["provenance-mismatch"]
    assert any("refs/heads/feature" in step for step in image["explanation"])


def test_each_case_starts_from_a_fresh_world(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A marker seen in one repository quarantines its digest everywhere, but only within a case."""
    shared = "sha256:" + "f1" * 32
    images = [
        {"name": "ghcr.io/acme/plain/a", "digest": shared, "tags": ["1"], "marker": {"reason": "bad"}},
        {"name": "ghcr.io/acme/plain/b", "digest": shared, "tags": ["1"]},
    ]
    cases = [
        case("seen in a", "ghcr.io/acme/plain/a:1", "quarantined", allowed=False),
        case("b alone has no marker", "ghcr.io/acme/plain/b:1", "admitted", allowed=True),
    ]
    path = write_suite(tmp_path, cases, images=images, quarantine=[])
    status, report, _ = run_json([str(path)], capsys)
    assert [c["passed"] for c in report["suites"][0]["cases"]] == [True, True], report
    assert status == 0


def test_live_ignores_the_declarations(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--live asks the real registry: the allowlist still refuses before anything is fetched."""
    only_offline = case("allowlist", "docker.io/library/nginx:1.27", "registry-not-allowed", allowed=False)
    path = write_suite(tmp_path, [only_offline])
    status, report, err = run_json(["--live", str(path)], capsys)
    assert status == 0 and report["suites"][0]["mode"] == "live"
    assert "the declared images and quarantine entries are not used" in err
