"""``imagegate verify`` against a real docker-registry over HTTPS with auth, signed with a test Sigstore."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.fake_sigstore import (
    SLSA_PROVENANCE_V1,
    FakeSigstore,
    OciArtifact,
    bundle_referrer_manifest,
    cosign_sign_statement,
    legacy_manifest,
    legacy_tag,
    slsa_provenance_v1,
    statement_v1,
)
from tests.support.oci import OciPusher, Pushed
from tests.support.registry import RegistryServer
from tests.support.verify_world import GITHUB_ISSUER, WORKFLOW
from webhook.cli import main

pytestmark = [pytest.mark.sigstore, pytest.mark.registry]

BUNDLE_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"


def _push(pusher: OciPusher, repo: str, artifact: OciArtifact, *, tag: str | None = None) -> Pushed:
    for data in artifact.blobs.values():
        pusher.push_blob(repo, data)
    return pusher.push_manifest(repo, artifact.manifest, artifact.media_type, ref=tag)


def _push_referrer(pusher: OciPusher, repo: str, image: Pushed, bundle: bytes) -> None:
    """A bundle referrer as cosign writes it to a registry without the referrers API (fallback tag)."""
    artifact = bundle_referrer_manifest(bundle, subject_digest=image.digest, subject_size=image.size)
    pushed = _push(pusher, repo, artifact)
    entries = (pusher.fallback_index(repo, image.digest) or {}).get("manifests", [])
    annotations = json.loads(artifact.manifest).get("annotations", {})
    entries.append(pushed.descriptor(artifactType=BUNDLE_TYPE, annotations=annotations))
    pusher.put_fallback_index(repo, image.digest, entries)


@pytest.fixture
def setup(tls_registry: RegistryServer, tmp_path: Path) -> dict[str, Any]:
    sigstore = FakeSigstore.create(tmp_path / "sigstore")
    pusher = tls_registry.pusher()
    repo = f"verify-cli/{tmp_path.name.lower().replace('_', '-')}"
    identity = sigstore.issue_cert(subject=WORKFLOW, issuer=GITHUB_ISSUER)

    signed = pusher.push_image(repo, "signed", content=b"signed")
    _push_referrer(pusher, repo, signed, sigstore.bundle_dsse(identity, cosign_sign_statement(signed.digest)))
    statement = statement_v1(signed.digest, SLSA_PROVENANCE_V1, slsa_provenance_v1())
    _push_referrer(pusher, repo, signed, sigstore.bundle_dsse(identity, statement))

    legacy = pusher.push_image(repo, "legacy", content=b"legacy")
    layer = sigstore.legacy_sig_layer(
        identity, image_name=tls_registry.host + "/" + repo, digest=legacy.digest
    )
    _push(pusher, repo, legacy_manifest([layer], kind="sig"), tag=legacy_tag(legacy.digest, "sig"))

    pusher.push_image(repo, "unsigned", content=b"unsigned")

    def write_policy(signer: dict[str, Any], *, attest: bool = False, root_file: Path | None = None) -> Path:
        rule: dict[str, Any] = {
            "name": "release",
            "images": [f"{tls_registry.host}/**"],
            "signatures": {"signers": [{"keyless": signer}]},
        }
        if attest:
            rule["attestations"] = [
                {
                    "predicateType": SLSA_PROVENANCE_V1,
                    "signers": [{"keyless": signer}],
                    "slsa": {
                        "sourceRepositories": ["github.com/acme/app"],
                        "sourceRefs": ["refs/heads/main"],
                    },
                }
            ]
        policy = {
            "apiVersion": "imagegate.dev/v1alpha1",
            "kind": "ImagePolicy",
            "metadata": {"name": "cli-test"},
            "spec": {
                "registries": {
                    "allow": [tls_registry.host],
                    "caFile": str(tls_registry.ca_file),
                    "credentialsFile": str(tls_registry.credentials_file),
                },
                "trust": {"roots": [{"name": "test", "file": str(root_file or sigstore.trusted_root_path)}]},
                "rules": [rule],
            },
        }
        path = tmp_path / "policy.yaml"
        path.write_text(yaml.safe_dump(policy))
        return path

    return {"registry": tls_registry, "repo": repo, "policy": write_policy, "signed": signed, "tmp": tmp_path}


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(["verify", *argv])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


GOOD = {"root": "test", "issuer": GITHUB_ISSUER, "subject": WORKFLOW}


def test_signed_image_passes_and_every_step_is_printed(
    setup: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    policy = setup["policy"](GOOD, attest=True)
    image = setup["registry"].ref(setup["repo"], "signed")
    code, out = _run(capsys, "--policy", str(policy), image)
    assert code == 0, out
    digest = setup["signed"].digest
    assert f"digest: tag signed resolved to {digest}, pinned to {image}@{digest}" in out
    assert f"quarantine: {digest} is not quarantined: no quarantine lists" in out
    assert "rules: governed by release (enforce)" in out
    assert "signatures: passed (1 of minimum 1 signer(s) satisfied)" in out
    assert f"attestation {SLSA_PROVENANCE_V1}: passed" in out
    # The evidence: which artifact satisfied which signer, who signed it, the fields compared.
    assert re.search(r"bundle sha256:\w+ \(referrer sha256:\w+\): satisfies signer #1", out)
    assert f"signed by keyless {WORKFLOW} issuer {GITHUB_ISSUER}" in out
    assert (
        "source ref: refs/heads/main (from buildDefinition.externalParameters.workflow.ref): ok, "
        "expected sourceRefs [refs/heads/main]"
    ) in out
    assert "commit 4d329c75e7ec1725f7c9ce917a8799d408d06be3" in out
    assert "result: PASS: verified" in out


def test_legacy_signature_and_regexp_signer(
    setup: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    policy = setup["policy"](
        {"root": "test", "issuer": GITHUB_ISSUER, "subjectRegExp": r"https://github\.com/acme/.+"}
    )
    code, out = _run(capsys, "--policy", str(policy), setup["registry"].ref(setup["repo"], "legacy"))
    assert code == 0, out
    assert "legacy .sig layer" in out


def test_failures_exit_1_with_reason_codes(setup: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    policy = setup["policy"](
        {"root": "test", "issuer": GITHUB_ISSUER, "subjectRegExp": r"https://github\.com/evil/.+"}
    )
    registry, repo = setup["registry"], setup["repo"]
    code, out = _run(
        capsys,
        "--policy",
        str(policy),
        registry.ref(repo, "signed"),
        registry.ref(repo, "unsigned"),
        registry.ref(repo, "latest"),
    )
    assert code == 1
    assert "[identity-mismatch]" in out
    assert "found keyless " + WORKFLOW in out
    assert "[unsigned]" in out
    assert "[tag-denied]" in out
    assert out.count("result: FAIL (denied)") == 3


def test_configuration_errors_exit_2(setup: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    broken_root = setup["tmp"] / "broken.json"
    broken_root.write_text("{}")
    policy = setup["policy"](GOOD, root_file=broken_root)
    code, out = _run(capsys, "--policy", str(policy), setup["registry"].ref(setup["repo"], "signed"))
    assert code == 2
    assert str(broken_root) in out
    code, out = _run(capsys, "--policy", str(setup["tmp"] / "missing.yaml"), "x/y:1")
    assert code == 2


def test_json_output_gives_each_decision_and_its_steps(
    setup: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    policy = setup["policy"](GOOD, attest=True)
    registry, repo, signed = setup["registry"], setup["repo"], setup["signed"]
    images = [registry.ref(repo, "signed"), registry.ref(repo, "unsigned")]
    code = main(["verify", "--policy", str(policy), "--timeout", "1m", "-o", "json", *images])
    captured = capsys.readouterr()
    assert code == 1, captured.err
    document = json.loads(captured.out)  # the whole of stdout is one JSON document
    assert document["policy"] == {
        "name": "cli-test",
        "file": str(policy),
        "mode": "enforce",
        "trustRoots": 1,
        "keys": 0,
    }
    passed, failed = document["images"]
    assert {
        k: passed[k] for k in ("image", "namespace", "digest", "pinned", "outcome", "status", "passed")
    } == {
        "image": images[0],
        "namespace": "default",
        "digest": signed.digest,
        "pinned": f"{images[0]}@{signed.digest}",
        "outcome": "verified",
        "status": "allowed",
        "passed": True,
    }
    assert (passed["rules"], passed["rule"], passed["mode"], passed["failures"]) == (
        ["release"],
        "release",
        None,
        [],
    )
    # Every check with its evidence, as the text explains it; the steps are the text output's lines.
    assert (passed["explanation"]["outcome"], passed["explanation"]["digest"]) == ("verified", signed.digest)
    assert passed["steps"][-1] == "result: PASS: verified"
    assert main(["verify", "--policy", str(policy), *images]) == 1
    text = capsys.readouterr().out
    blocks = [block.splitlines()[1:] for block in text.split("\n\n")[1:]]
    assert [passed["steps"], failed["steps"]] == [[line.strip() for line in b] for b in blocks]
    assert any(
        check.get("finding", {}).get("code") == "unsigned" and check["outcome"] == "failed"
        for check in failed["explanation"]["checks"]
    ), failed["explanation"]
    assert (failed["outcome"], failed["status"], failed["mode"], failed["rule"], failed["passed"]) == (
        "unsigned",
        "denied",
        "enforce",
        "release",
        False,
    )
    assert (failed["failures"][0]["code"], failed["failures"][0]["mode"]) == ("unsigned", "enforce")
