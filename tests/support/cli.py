"""The ``imagegate`` command as a user runs it: a process of its own (``python -m webhook``).

For what only a process shows: stdin, logging set up by the entry point, the exit status of
``--version``. In-process runs are the ``run_cli`` fixture (tests.support.fixtures).
"""

from __future__ import annotations

__all__ = ["REPO", "UNGOVERNED_IMAGE", "imagegate", "write_rule_free_policy"]

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def imagegate(
    *argv: str, stdin: str | None = None, cwd: Path = REPO, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run ``imagegate ARGV...`` in ``cwd`` (the repository by default), ``stdin`` as its input."""
    return subprocess.run(
        [sys.executable, "-m", "webhook", *argv],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        check=False,
        timeout=timeout,
    )


#: A pinned image of the registry :func:`write_rule_free_policy` allows, which no rule governs.
UNGOVERNED_IMAGE = "ghcr.io/acme/app@sha256:" + "0" * 63 + "1"

_RULE_FREE_POLICY = """\
apiVersion: imagegate.dev/v1alpha1
kind: ImagePolicy
metadata: {name: rule-free}
spec:
  mode: enforce
  registries: {allow: [ghcr.io]}
  rules: []
"""


def write_rule_free_policy(directory: Path) -> Path:
    """``DIRECTORY/policy.yaml``: enforce, ghcr.io allowed, no rules. Nothing it admits needs a registry,
    so tests of what the commands make of their input run offline."""
    path = directory / "policy.yaml"
    path.write_text(_RULE_FREE_POLICY)
    return path
