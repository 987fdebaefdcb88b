"""``imagegate test`` reads a case's ``manifest`` with a bound, as it reads the policy and the files
the policy names (32 MiB): a manifest that never ends (``/dev/zero``, a runaway generated file) fails
its case as an input error, and the other cases still run. Run in a child process whose address space
is capped, so that the unbounded read this guards against ends in MemoryError, not in a swapping host.
"""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

from tests.support.cli import write_rule_free_policy

_SUITE = """\
apiVersion: imagegate.dev/v1alpha1
kind: PolicyTest
policy: policy.yaml
cases:
  - name: a manifest that never ends
    manifest: /dev/zero
    expect: {allowed: false}
  - name: an ungoverned image is unmatched
    images: ["ghcr.io/acme/app@sha256:0000000000000000000000000000000000000000000000000000000000000001"]
    expect: {allowed: false, outcomes: [unmatched]}
"""

_ADDRESS_SPACE = 1024 * 1024 * 1024  # far above what a run needs, far below what /dev/zero offers


def _capped() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (_ADDRESS_SPACE, _ADDRESS_SPACE))


def test_a_manifest_that_never_ends_fails_its_case(tmp_path: Path) -> None:
    write_rule_free_policy(tmp_path)
    suite = tmp_path / "unbounded.test.yaml"
    suite.write_text(_SUITE)

    result = subprocess.run(
        [sys.executable, "-m", "webhook", "test", str(suite)],
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=_capped,
        check=False,
    )

    assert "FAIL unbounded.test.yaml: a manifest that never ends" in result.stdout, result.stderr[-2000:]
    assert "1 passed, 1 failed" in result.stdout
    assert result.returncode == 1
