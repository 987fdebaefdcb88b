"""The operator guide's overlay, credentials, policy-check and quarantine recipes, run as written.

The shell blocks of deploy/README.md run in bash in a copy of the repository, with the real
``imagegate`` and ``kubectl`` (kustomize, ``create --dry-run=client``). Only the commands that need a
cluster (``kubectl apply``, ``logs``) are recorded instead of run; ``kubectl kustomize`` then renders the
overlay the recipes built, exactly as ``kubectl apply -k`` would send it.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml
from deploy_support import DEPLOY, REPO, kustomize, one, pod_files, require_kubectl

DIGEST = "sha256:" + "ab" * 32
START = "O=deploy/overlays/production\nmkdir"
PINNED = "nginx@sha256:4c0fdaa8b6341bfdeca5f18f7837462c80cff90527ee35ef185571e1c327beac"
# A kubectl that runs the offline verbs for real and records the ones that need a cluster.
KUBECTL_SHIM = """#!/bin/sh
case "$1" in
  kustomize|create) exec "$REAL_KUBECTL" "$@" ;;
esac
case "$*" in
  *" logs "*|"logs "*) echo "$*" >> "$CLUSTER_LOG"; echo "policy production reloaded" ;;
  *) echo "$*" >> "$CLUSTER_LOG" ;;
esac
"""


def guide_blocks(language: str) -> list[str]:
    text = (DEPLOY / "README.md").read_text()
    found = re.findall(rf"^( *)```{language}\n(.*?)^\1```", text, flags=re.MULTILINE | re.DOTALL)
    return [textwrap.dedent(body) for _indent, body in found]


def block(language: str, first_line: str) -> str:
    (found,) = [b for b in guide_blocks(language) if b.startswith(first_line)]
    return found


def block_containing(language: str, text: str) -> str:
    (found,) = [b for b in guide_blocks(language) if text in b]
    return found


class Shell:
    """bash in a copy of the repository, with imagegate on PATH and the recording kubectl."""

    def __init__(self, root: Path) -> None:
        self.root = root
        bin_dir = root / ".bin"
        bin_dir.mkdir()
        shim = bin_dir / "kubectl"
        shim.write_text(KUBECTL_SHIM)
        shim.chmod(0o755)
        self.cluster_log = root / ".cluster-log"
        self.cluster_log.touch()
        self.env = {
            **os.environ,
            "PATH": os.pathsep.join([str(bin_dir), str(Path(sys.executable).parent), os.environ["PATH"]]),
            "REAL_KUBECTL": require_kubectl(),
            "CLUSTER_LOG": str(self.cluster_log),
            "TOKEN": "s3cret-token",
        }

    def run(self, script: str) -> str:
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, f"{script}\nexit {result.returncode}\n{result.stdout}\n{result.stderr}"
        return result.stdout

    def cluster_calls(self) -> list[str]:
        return self.cluster_log.read_text().splitlines()


@pytest.fixture
def shell(tmp_path: Path) -> Shell:
    root = tmp_path / "repo"
    root.mkdir()
    shutil.copytree(DEPLOY, root / "deploy", ignore=shutil.ignore_patterns("certs"))
    shutil.copytree(REPO / "policies", root / "policies")
    return Shell(root)


def write_overlay_kustomization(shell: Shell) -> Path:
    text = block("yaml", "# deploy/overlays/production/kustomization.yaml")
    path = shell.root / text.splitlines()[0].removeprefix("# ").strip()
    path.write_text(text.replace("sha256:<digest printed by the push>", DIGEST))
    return path


def test_the_overlay_recipe_builds_an_overlay_that_lints_and_renders(shell: Shell) -> None:
    start = block("sh", START)
    check = block("sh", "imagegate lint --root $O")
    shell.run(start)
    write_overlay_kustomization(shell)
    out = shell.run(start + check)
    assert out.strip().endswith("renders")

    docs = kustomize(shell.root / "deploy" / "overlays" / "production")
    deployment = one(docs, "Deployment", "imagegate")
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == (
        f"registry.acme.test/platform/imagegate@{DIGEST}"
    )
    files = pod_files(docs)
    assert files["/etc/imagegate/policy/policy.yaml"] == (DEPLOY / "base" / "policy.yaml").read_bytes()
    assert (
        files["/etc/imagegate/registry/config.json"]
        == (DEPLOY / "base" / "registry" / "config.json").read_bytes()
    )


def test_the_credentials_recipe_writes_what_the_overlay_mounts(shell: Shell) -> None:
    shell.run(block("sh", START))
    write_overlay_kustomization(shell)
    shell.run(block("sh", "kubectl create secret docker-registry"))
    overlay = shell.root / "deploy" / "overlays" / "production"
    written = (overlay / "registry" / "config.json").read_bytes()
    auth = yaml.safe_load(written)["auths"]["registry.acme.test"]
    assert base64.b64decode(auth["auth"]) == b"imagegate-ro:s3cret-token"

    docs = kustomize(overlay)
    secret = one(docs, "Secret", "imagegate-registry")
    assert secret["type"] == "kubernetes.io/dockerconfigjson"
    assert pod_files(docs)["/etc/imagegate/registry/config.json"] == written
    # The policy lints against the overlay's credentials, which shadow the base's.
    shell.run(block("sh", START) + block("sh", "imagegate lint --root $O"))


def test_the_policy_check_recipe_lints_and_evaluates_the_overlay(shell: Shell) -> None:
    shell.run(block("sh", START))
    write_overlay_kustomization(shell)
    lint_and_apply = block("sh", "P=deploy/overlays/production\nimagegate lint --root $P")
    shell.run(lint_and_apply)
    assert shell.cluster_calls()[0] == "apply -k deploy/overlays/production"

    # The evaluate recipe, on a manifest as `kubectl create` writes it (pinned: no registry needed).
    shell.run(f"kubectl create deployment web --image={PINNED} --dry-run=client -o yaml > my-app.yaml")
    out = shell.run(block_containing("sh", "imagegate evaluate --policy $L/policy.yaml"))
    assert "result: allowed" in out, out
    broken = shell.root / "deploy" / "overlays" / "production" / "policy.yaml"
    broken.write_text(
        broken.read_text().replace("/etc/imagegate/registry/config.json", "/etc/imagegate/registry/gone.json")
    )
    with pytest.raises(AssertionError, match=r"registry/gone\.json' does not exist"):
        shell.run(lint_and_apply)


def test_the_quarantine_recipe_adds_an_entry_the_pod_sees(shell: Shell) -> None:
    shell.run(block("sh", START))
    path = write_overlay_kustomization(shell)
    kustomization: dict[str, Any] = yaml.safe_load(path.read_text())
    kustomization["configMapGenerator"] += yaml.safe_load(block("yaml", "# add to configMapGenerator"))
    path.write_text(yaml.safe_dump(kustomization))
    recipe = block("sh", "P=deploy/overlays/production; Q=")
    digest = "sha256:" + "cd" * 32
    shell.run(recipe.replace("sha256:<digest>", digest))
    assert shell.cluster_calls() == ["apply -k deploy/overlays/production"]

    docs = kustomize(shell.root / "deploy" / "overlays" / "production")
    listed = yaml.safe_load(pod_files(docs)["/etc/imagegate/quarantine/quarantine.yaml"] or b"")
    assert [(e["digest"], e["reason"]) for e in listed["entries"]] == [
        (digest, "CVE-2026-1234 in base layer")
    ]
