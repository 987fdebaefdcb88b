"""The policy, quarantine list and trust root shipped in deploy/base: valid, and the default policy's twin."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.deploy import DEPLOY, REPO, PodView


def lint(capsys: pytest.CaptureFixture[str], *files: Path) -> None:
    from webhook.cli import main

    code = main(["lint", *map(str, files)])
    captured = capsys.readouterr()
    assert code == 0, captured.out + captured.err
    # Every lint finding names its file: none may be reported, not even a warning.
    for path in files:
        assert str(path) not in captured.err, captured.err


def test_policy_and_quarantine_lint_clean_where_mounted(
    pod_view: PodView, capsys: pytest.CaptureFixture[str]
) -> None:
    lint(
        capsys,
        pod_view.local("/etc/imagegate/policy/policy.yaml"),
        pod_view.local("/etc/imagegate/quarantine/quarantine.yaml"),
    )


def test_a_keyless_rule_on_the_mounted_trusted_root_lints_clean(
    pod_view: PodView, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # What deploy/README.md tells operators to add: the mounted public-good root and a keyless signer.
    policy = yaml.safe_load(pod_view.local("/etc/imagegate/policy/policy.yaml").read_text())
    root = pod_view.local("/etc/imagegate/trust/trusted_root.json")
    policy["spec"]["trust"] = {"roots": [{"name": "public-good", "file": str(root)}]}
    policy["spec"]["rules"].append(
        {
            "name": "acme-release",
            "images": ["ghcr.io/acme/**"],
            "signatures": {
                "signers": [
                    {
                        "keyless": {
                            "root": "public-good",
                            "issuer": "https://token.actions.githubusercontent.com",
                            "subjectRegExp": r"^https://github\.com/acme/[^/]+/\.github/workflows/release\.yml@refs/tags/v.+$",
                        }
                    }
                ]
            },
        }
    )
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(policy, sort_keys=False))
    lint(capsys, path)


def without_cluster_paths(policy: dict[str, Any]) -> dict[str, Any]:
    """The policy minus what only exists in a cluster: the mounted credentials and quarantine list."""
    policy = copy.deepcopy(policy)
    spec = policy["spec"]
    spec.get("registries", {}).pop("credentialsFile", None)
    spec.get("quarantine", {}).pop("files", None)
    if spec.get("quarantine") == {}:
        del spec["quarantine"]
    return policy


def test_deploy_policy_means_the_same_as_the_default_policy() -> None:
    deployed = yaml.safe_load((DEPLOY / "base" / "policy.yaml").read_text())
    default = yaml.safe_load((REPO / "policies" / "default.yaml").read_text())
    assert without_cluster_paths(deployed) == default, (
        "deploy/base/policy.yaml drifted from policies/default.yaml: copy the change over, keeping only the "
        "credentialsFile and quarantine file paths that exist in the cluster"
    )


def test_the_cluster_paths_are_the_mounted_files() -> None:
    spec = yaml.safe_load((DEPLOY / "base" / "policy.yaml").read_text())["spec"]
    assert spec["registries"]["credentialsFile"] == "/etc/imagegate/registry/config.json"
    assert spec["quarantine"]["files"] == ["/etc/imagegate/quarantine/quarantine.yaml"]
