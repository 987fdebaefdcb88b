"""Helpers for running the operator guide's recipes: its code blocks, and bash with recording stand-ins for
the commands that need a cluster."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.support.deploy import DEPLOY, require_kubectl

# A helm that records each call (one JSON array of its arguments per line); tests replay the calls through
# Helm's engine (tests/shipped/deploy/test_guide_recipes.py).
HELM_SHIM = f"""#!{sys.executable}
import json, os, sys
with open(os.environ["HELM_LOG"], "a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\\n")
"""
# A kubectl that runs the offline verbs for real and records the ones that need a cluster; `get` prints
# what the file CLUSTER_GET holds (a test's stand-in for the cluster's objects).
KUBECTL_SHIM = """#!/bin/sh
case "$1" in
  kustomize|create) exec "$REAL_KUBECTL" "$@" ;;
  get) echo "$*" >> "$CLUSTER_LOG"; cat "${CLUSTER_GET:-/dev/null}"; exit 0 ;;
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
        for name, text in (("kubectl", KUBECTL_SHIM), ("helm", HELM_SHIM)):
            shim = bin_dir / name
            shim.write_text(text)
            shim.chmod(0o755)
        self.cluster_log = root / ".cluster-log"
        self.cluster_log.touch()
        self.helm_log = root / ".helm-log"
        self.helm_log.touch()
        self.env = {
            **os.environ,
            "PATH": os.pathsep.join([str(bin_dir), str(Path(sys.executable).parent), os.environ["PATH"]]),
            "REAL_KUBECTL": require_kubectl(),
            "CLUSTER_LOG": str(self.cluster_log),
            "HELM_LOG": str(self.helm_log),
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

    def helm_calls(self) -> list[list[str]]:
        return [json.loads(line) for line in self.helm_log.read_text().splitlines()]
