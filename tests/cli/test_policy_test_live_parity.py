"""One suite, two worlds: hermetic ``imagegate test`` decides as ``--live`` does against the real things.

Each image is pushed to a real registry (Debian's docker-registry) and signed and attested by the local
test Sigstore exactly as cosign does, and the same facts are declared in the suite's ``images``. The
suite then runs twice: hermetically (declared facts; only the registry and the cryptography replaced)
and with ``--live`` (the registry client, sigstore-python's Verifier, Rekor and key checks). Both runs
must pass the suite, and every case must get the same decision, outcome and reason codes per image in
both: the hermetic run uses the policy checks admission uses, not a copy of them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.fake_sigstore import (
    SLSA_PROVENANCE_V1,
    VSA_V1,
    VULNS_V01,
    FakeSigstore,
    slsa_provenance_v1,
    statement_v1,
    vsa_v1,
    vuln,
    vulns_v01,
)
from tests.support.oci import Pushed
from tests.support.registry import RegistryServer
from tests.support.signing_world import Keyless, SigningWorld, WithKey
from webhook.cli import main

pytestmark = [pytest.mark.registry, pytest.mark.sigstore]

ISSUER = "https://token.actions.githubusercontent.com"
WORKFLOW = "https://github.com/acme/app/.github/workflows/release.yml@refs/tags/v1.4.2"
ACME = {"sourceRepositoryOwnerURI": "https://github.com/acme", "sourceRepositoryRef": "refs/tags/v1.4.2"}
EVIL = {"sourceRepositoryOwnerURI": "https://github.com/evil", "sourceRepositoryRef": "refs/tags/v1.4.2"}
VERIFIER = "https://acme.example.com/promotion/staging"
BUILDER = "https://github.com/actions/runner/github-hosted"


def policy(host: str) -> dict[str, Any]:
    keyless = {
        "keyless": {
            "root": "acme",
            "issuer": ISSUER,
            "subjectRegExp": r"https://github\.com/acme/[^/]+/\.github/workflows/release\.yml@refs/tags/v.+",
            "extensions": {"sourceRepositoryOwnerURI": "https://github.com/acme"},
        }
    }
    key = {"key": {"name": "release"}}
    return {
        "apiVersion": "imagegate.dev/v1alpha1",
        "kind": "ImagePolicy",
        "metadata": {"name": "parity"},
        "spec": {
            "registries": {"allow": [host], "insecure": [host]},
            "trust": {
                "roots": [{"name": "acme", "file": "acme_trusted_root.json"}],
                "keys": [{"name": "release", "file": "release.pub"}],
            },
            "quarantine": {"registryMarkers": True},
            "rules": [
                {"name": "keyless", "images": [f"{host}/keyless/**"], "signatures": {"signers": [keyless]}},
                {"name": "key", "images": [f"{host}/key/**"], "signatures": {"signers": [key]}},
                {
                    "name": "gates",
                    "images": [f"{host}/attested/**"],
                    "signatures": {"signers": [keyless]},
                    "attestations": [
                        {
                            "predicateType": SLSA_PROVENANCE_V1,
                            "signers": [keyless],
                            "slsa": {
                                "builderIds": [BUILDER],
                                "sourceRepositories": ["github.com/acme/app"],
                                "sourceRefs": ["refs/heads/main", "refs/tags/v*"],
                            },
                        },
                        {
                            "predicateType": VSA_V1,
                            "signers": [key],
                            "verificationSummary": {
                                "verifierIds": [VERIFIER],
                                "minLevel": "SLSA_BUILD_LEVEL_3",
                            },
                        },
                        {
                            "predicateType": VULNS_V01,
                            "signers": [keyless],
                            "vulnerabilities": {"maxSeverity": "MEDIUM", "maxAge": "168h"},
                        },
                    ],
                },
                {"name": "pinned", "images": [f"{host}/multi/**"]},
            ],
        },
    }


class Both:
    """Pushes and signs for real, and declares the same facts for the hermetic run."""

    def __init__(self, registry: RegistryServer, tmp: Path) -> None:
        self.world = SigningWorld(pusher=registry.pusher(), host=registry.host)
        self.acme = FakeSigstore.create(tmp / "sigstore", name="acme")
        self.key = FakeSigstore.generate_key("ecdsa-p256")
        self.stray = FakeSigstore.generate_key("ecdsa-p256")
        self.declared: list[dict[str, Any]] = []
        self.now = datetime.now(UTC).replace(microsecond=0)
        self.policy = tmp / "policy.yaml"

    def image(self, repo: str, tag: str) -> tuple[Pushed, dict[str, Any]]:
        pushed = self.world.push_image(repo, tag, content=f"{repo}:{tag}".encode())
        entry: dict[str, Any] = {"name": self.world.name(repo), "digest": pushed.digest, "tags": [tag]}
        self.declared.append(entry)
        return pushed, entry

    def keyless(self, extensions: dict[str, str]) -> Keyless:
        return Keyless(
            self.acme, self.acme.issue_cert(subject=WORKFLOW, issuer=ISSUER, extensions=extensions)
        )

    def sign_keyless(
        self,
        repo: str,
        image: Pushed,
        entry: dict[str, Any],
        *,
        extensions: dict[str, str],
        signed: str | None = None,
    ) -> None:
        self.world.sign_and_push(repo, image, by=self.keyless(extensions), fmt="bundle", signed_digest=signed)
        declared: dict[str, Any] = {
            "keyless": {"issuer": ISSUER, "subject": WORKFLOW, "extensions": extensions}
        }
        if signed is not None:
            declared["signedDigest"] = signed
        entry.setdefault("signatures", []).append(declared)

    def attest(
        self,
        repo: str,
        image: Pushed,
        entry: dict[str, Any],
        predicate_type: str,
        predicate: dict[str, Any],
        *,
        key: bool = False,
    ) -> None:
        statement = statement_v1(image.digest, predicate_type, predicate, name=self.world.name(repo))
        by = WithKey(self.acme, self.key) if key else self.keyless(ACME)
        self.world.attest_and_push(repo, image, statement, by=by, fmt="bundle")
        signer: dict[str, Any] = (
            {"key": "release"}
            if key
            else {"keyless": {"issuer": ISSUER, "subject": WORKFLOW, "extensions": ACME}}
        )
        entry.setdefault("attestations", []).append(
            {"predicateType": predicate_type, "predicate": predicate, **signer}
        )


Scenario = Callable[[Both], dict[str, Any]]


def keyless_good(both: Both) -> dict[str, Any]:
    image, entry = both.image("keyless/app", "good")
    both.sign_keyless("keyless/app", image, entry, extensions=ACME)
    return _case("the release workflow signed", both.world.ref("keyless/app", "good"), True, "verified")


def keyless_fork(both: Both) -> dict[str, Any]:
    image, entry = both.image("keyless/app", "fork")
    both.sign_keyless("keyless/app", image, entry, extensions=EVIL)
    return _case("a fork signed", both.world.ref("keyless/app", "fork"), False, "identity-mismatch")


def keyless_replayed(both: Both) -> dict[str, Any]:
    other, _ = both.image("keyless/app", "other")
    image, entry = both.image("keyless/app", "replayed")
    both.sign_keyless("keyless/app", image, entry, extensions=ACME, signed=other.digest)
    return _case(
        "a signature replayed from another image",
        both.world.ref("keyless/app", "replayed"),
        False,
        "signature-invalid",
    )


def unsigned(both: Both) -> dict[str, Any]:
    both.image("keyless/app", "unsigned")
    return _case("unsigned", both.world.ref("keyless/app", "unsigned"), False, "unsigned")


def key_signed(both: Both) -> dict[str, Any]:
    image, entry = both.image("key/app", "signed")
    both.world.sign_and_push("key/app", image, by=WithKey(both.acme, both.key), fmt="bundle")
    entry["signatures"] = [{"key": "release"}]
    return _case("signed with the release key", both.world.ref("key/app", "signed"), True, "verified")


def stray_key(both: Both) -> dict[str, Any]:
    image, entry = both.image("key/app", "stray")
    both.world.sign_and_push("key/app", image, by=WithKey(both.acme, both.stray), fmt="bundle")
    entry["signatures"] = [{"key": "stray"}]
    return _case(
        "signed with a key nobody trusts", both.world.ref("key/app", "stray"), False, "signature-invalid"
    )


def gated(ref: str, *, outcome: str, allowed: bool, name: str) -> Scenario:
    def scenario(both: Both) -> dict[str, Any]:
        repo = "attested/app"
        tag = ref.rsplit("/", 1)[-1]
        image, entry = both.image(repo, tag)
        both.sign_keyless(repo, image, entry, extensions=ACME)
        recent = both.now - timedelta(hours=1)
        both.attest(repo, image, entry, SLSA_PROVENANCE_V1, slsa_provenance_v1(ref=ref, builder_id=BUILDER))
        summary = vsa_v1(
            verifier_id=VERIFIER,
            time_verified=recent,
            resource_uri=f"oci://{both.world.name(repo)}",
            verified_levels=["SLSA_BUILD_LEVEL_3"],
        )
        both.attest(repo, image, entry, VSA_V1, summary, key=True)
        scan = vulns_v01(results=[vuln("CVE-2026-1", "LOW")], scan_started=recent, scan_finished=recent)
        both.attest(repo, image, entry, VULNS_V01, scan)
        return _case(name, both.world.ref(repo, tag), allowed, outcome)

    return scenario


def multiarch(both: Both) -> dict[str, Any]:
    index, amd64, arm64 = both.world.push_multiarch("multi/app", "2.0")
    arm = both.world.ref("multi/app", digest=arm64.digest)
    assert (
        main(["quarantine", "add", "--registry", "--policy", str(both.policy), "--reason", "CVE-2026-7", arm])
        == 0
    )
    both.declared.append(
        {
            "name": both.world.name("multi/app"),
            "digest": index.digest,
            "tags": ["2.0"],
            "platforms": [
                {"platform": "linux/amd64", "digest": amd64.digest},
                {"platform": "linux/arm64", "digest": arm64.digest, "marker": {"reason": "CVE-2026-7"}},
            ],
        }
    )
    return _case(
        "an index with a quarantined platform", both.world.ref("multi/app", "2.0"), False, "quarantined"
    )


def _case(name: str, image: str, allowed: bool, outcome: str) -> dict[str, Any]:
    return {"name": name, "images": [image], "expect": {"allowed": allowed, "outcomes": [outcome]}}


SCENARIOS: list[Scenario] = [
    keyless_good,
    keyless_fork,
    keyless_replayed,
    unsigned,
    key_signed,
    stray_key,
    gated("refs/tags/v1.4.2", outcome="verified", allowed=True, name="every gate holds"),
    gated(
        "refs/heads/feature", outcome="provenance-mismatch", allowed=False, name="built from a feature branch"
    ),
    multiarch,
]


def decisions(report: dict[str, Any]) -> dict[str, list[Any]]:
    """Per case: allowed, and per image the outcome and the reason codes of its failures."""
    found = {}
    for case in report["suites"][0]["cases"]:
        found[case["name"]] = [
            (a["allowed"], [(i["outcome"], sorted(f["code"] for f in i["failures"])) for i in a["images"]])
            for a in case["admissions"]
        ]
    return found


def test_hermetic_and_live_runs_of_one_suite_decide_alike(
    plain_registry: RegistryServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    both = Both(plain_registry, tmp_path)
    (tmp_path / "acme_trusted_root.json").write_bytes(both.acme.trusted_root_path.read_bytes())
    (tmp_path / "release.pub").write_bytes(both.key.public_pem)
    both.policy.write_text(yaml.safe_dump(policy(plain_registry.host)))
    cases = [scenario(both) for scenario in SCENARIOS]
    cases.append(
        _case("not pushed, not declared", both.world.ref("keyless/app", "absent"), False, "registry-error")
    )
    suite = tmp_path / "parity.test.yaml"
    suite.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "imagegate.dev/v1alpha1",
                "kind": "PolicyTest",
                "policy": "policy.yaml",
                "now": both.now.isoformat().replace("+00:00", "Z"),
                "images": both.declared,
                "cases": cases,
            },
            sort_keys=False,
        )
    )
    capsys.readouterr()
    reports = {}
    for mode, extra in (("hermetic", []), ("live", ["--live"])):
        status = main(["test", "-o", "json", *extra, str(suite)])
        report = json.loads(capsys.readouterr().out)
        problems = {c["name"]: c["problems"] for c in report["suites"][0]["cases"] if not c["passed"]}
        assert (status, problems) == (0, {}), f"{mode}: {problems}"
        reports[mode] = decisions(report)
    assert reports["hermetic"] == reports["live"]
    assert len(reports["live"]) == len(SCENARIOS) + 1
