"""The ``imagegate`` command as a user runs it: a process of its own (``python -m webhook``).

For what only a process shows: stdin, logging set up by the entry point, the exit status of
``--version``. In-process runs are the ``run_cli`` fixture (tests.support.fixtures).
"""

from __future__ import annotations

__all__ = ["REPO", "imagegate"]

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
