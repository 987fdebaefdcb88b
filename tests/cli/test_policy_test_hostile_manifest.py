"""``imagegate test`` with a hostile case input: a deeply nested manifest fails its case as an input
error (a FAIL line, exit 1, the other cases still run), never a traceback."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.support.cli import write_rule_free_policy
from tests.support.refresh_world import Run

_SUITE = """\
apiVersion: imagegate.dev/v1alpha1
kind: PolicyTest
policy: policy.yaml
cases:
  - name: a deeply nested manifest
    manifest: deep.yaml
    expect: {allowed: false}
  - name: an ungoverned image is unmatched
    images: ["ghcr.io/acme/app@sha256:0000000000000000000000000000000000000000000000000000000000000001"]
    expect: {allowed: false, outcomes: [unmatched]}
"""

_DEPTH = 5_000


def test_a_deeply_nested_manifest_fails_its_case_cleanly(tmp_path: Path, run_cli: Callable[..., Run]) -> None:
    write_rule_free_policy(tmp_path)
    (tmp_path / "deep.yaml").write_text(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: deep}\nspec: " + "[" * _DEPTH + "]" * _DEPTH + "\n"
    )
    suite = tmp_path / "hostile.test.yaml"
    suite.write_text(_SUITE)

    result = run_cli("test", str(suite))

    assert result.code == 1, result.err
    assert "FAIL hostile.test.yaml: a deeply nested manifest" in result.out
    assert "1 passed, 1 failed" in result.out
