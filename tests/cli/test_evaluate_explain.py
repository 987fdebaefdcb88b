"""``imagegate evaluate --explain``: a developer whose deploy is refused sees every check and what is missing.

A real docker-registry, images signed and attested with the local test Sigstore as cosign does, and the
command run as a user runs it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.fake_sigstore import SLSA_PROVENANCE_V1, FakeSigstore, slsa_provenance_v1, statement_v1
from tests.support.registry import RegistryServer
from tests.support.signing_world import Keyless, SigningWorld
from webhook.cli import main

pytestmark = [pytest.mark.registry, pytest.mark.sigstore]

ISSUER = "https://token.actions.githubusercontent.com"
WORKFLOW = "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/feature"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _policy(directory: Path, registry: RegistryServer, sigstore: FakeSigstore) -> Path:
    signer = {"keyless": {"root": "acme", "issuer": ISSUER, "subjectRegExp": r"https://github\.com/acme/.+"}}
    rule: dict[str, Any] = {
        "name": "release",
        "images": [f"{registry.host}/explain/**"],
        "namespaces": ["prod"],
        "signatures": {"signers": [signer]},
        "attestations": [
            {
                "predicateType": SLSA_PROVENANCE_V1,
                "signers": [signer],
                "slsa": {"sourceRepositories": ["github.com/acme/app"], "sourceRefs": ["refs/tags/v*"]},
            }
        ],
    }
    dev = {"name": "dev", "images": [f"{registry.host}/explain/**"], "namespaces": ["dev-*"], "mode": "warn"}
    policy = {
        "apiVersion": "imagegate.dev/v1alpha1",
        "kind": "ImagePolicy",
        "metadata": {"name": "explain"},
        "spec": {
            "registries": {"allow": [registry.host], "insecure": [registry.host]},
            "trust": {"roots": [{"name": "acme", "file": str(sigstore.trusted_root_path)}]},
            "rules": [rule, dev],
        },
    }
    path = directory / "policy.yaml"
    path.write_text(yaml.safe_dump(policy))
    return path


def test_a_denied_deploy_shows_what_is_missing(
    tmp_path: Path,
    plain_registry: RegistryServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sigstore = FakeSigstore.create(tmp_path / "sigstore", name="acme")
    world = SigningWorld(pusher=plain_registry.pusher(), host=plain_registry.host)
    repo = f"explain/{tmp_path.name.lower().replace('_', '-')}"
    image = world.push_image(repo, "v1")
    signer = Keyless(sigstore, sigstore.issue_cert(subject=WORKFLOW, issuer=ISSUER))
    world.sign_and_push(repo, image, by=signer, fmt="bundle")
    # Built from a feature branch: the policy wants a version tag.
    predicate = slsa_provenance_v1(ref="refs/heads/feature", commit=COMMIT)
    world.attest_and_push(
        repo,
        image,
        statement_v1(image.digest, SLSA_PROVENANCE_V1, predicate, name=world.name(repo)),
        by=signer,
        fmt="legacy",
    )
    manifest = tmp_path / "pod.yaml"
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web", "namespace": "prod"},
        "spec": {"containers": [{"name": "web", "image": world.ref(repo, "v1")}]},
    }
    manifest.write_text(yaml.safe_dump(pod))
    policy = _policy(tmp_path, plain_registry, sigstore)

    code = main(["evaluate", "--policy", str(policy), str(manifest)])
    plain = capsys.readouterr().out
    assert code == 1
    code = main(["evaluate", "--explain", "--policy", str(policy), str(manifest)])
    out = capsys.readouterr().out
    assert code == 1
    lines = [line.strip() for line in out.splitlines()]

    # The decision line is the one without --explain; the explanation follows it.
    [decision] = [line for line in plain.splitlines() if "container" in line]
    assert decision.strip() in lines
    assert "[provenance-mismatch]" in decision
    assert "rules: governed by release (enforce)" in lines
    assert 'rule dev (warn) does not match: namespace "prod" matches none of namespaces [dev-*]' in lines
    assert f"digest: tag v1 resolved to {image.digest}" in out
    assert f"quarantine: {image.digest} is not quarantined" in out
    # The signature held, and says which artifact satisfied which signer, signed by whom.
    assert "signatures: passed (1 of minimum 1 signer(s) satisfied)" in lines
    assert any(line.startswith("bundle sha256:") and line.endswith("satisfies signer #1") for line in lines)
    assert f"signed by keyless {WORKFLOW} issuer {ISSUER}" in lines
    # The provenance did not: the field compared, where it was read, what the policy expects.
    assert f"attestation {SLSA_PROVENANCE_V1}: FAILED (0 of minimum 1 signer(s) satisfied)" in lines
    assert any(line.startswith("legacy .att layer #1") and "predicate-mismatch" in line for line in lines)
    assert (
        "source ref: refs/heads/feature (from buildDefinition.externalParameters.workflow.ref): "
        "FAILED [provenance-mismatch], expected sourceRefs [refs/tags/v*]"
    ) in lines
    assert (
        "source repository: github.com/acme/app "
        "(from buildDefinition.externalParameters.workflow.repository): "
        "ok, expected sourceRepositories [github.com/acme/app]"
    ) in lines
    assert f"provenance: repository github.com/acme/app, ref refs/heads/feature, commit {COMMIT}" in out
    assert lines[-1] == "result: denied"
