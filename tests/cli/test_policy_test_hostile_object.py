"""``imagegate test`` with an inline ``object`` whose ``metadata`` is not a mapping: the suite lints
clean (the schema leaves an object's fields to Kubernetes), so the case must fail as an input error
(a FAIL line, exit 1, the other cases still run), never end the run in a traceback."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.support.cli import UNGOVERNED_IMAGE, write_rule_free_policy
from tests.support.refresh_world import Run

_SUITE = f"""\
apiVersion: imagegate.dev/v1alpha1
kind: PolicyTest
policy: policy.yaml
cases:
  - name: metadata is a string
    object:
      apiVersion: v1
      kind: Pod
      metadata: web
      spec: {{containers: [{{name: c, image: "{UNGOVERNED_IMAGE}"}}]}}
    expect: {{allowed: false}}
  - name: an ungoverned image is unmatched
    images: ["{UNGOVERNED_IMAGE}"]
    expect: {{allowed: false, outcomes: [unmatched]}}
"""


def test_an_object_whose_metadata_is_not_a_mapping_fails_its_case_cleanly(
    tmp_path: Path, run_cli: Callable[..., Run]
) -> None:
    write_rule_free_policy(tmp_path)
    suite = tmp_path / "hostile.test.yaml"
    suite.write_text(_SUITE)
    assert run_cli("lint", str(suite)).code == 0

    result = run_cli("test", str(suite))

    assert result.code == 1, result.err
    assert "FAIL hostile.test.yaml: metadata is a string" in result.out
    assert "1 passed, 1 failed" in result.out


def test_lint_warns_of_inline_metadata_that_is_not_a_mapping_and_the_old_object_is_checked_too(
    tmp_path: Path, run_cli: Callable[..., Run]
) -> None:
    write_rule_free_policy(tmp_path)
    suite = tmp_path / "hostile.test.yaml"
    suite.write_text(
        _SUITE.replace(
            "    expect: {allowed: false}\n",
            "    oldObject: {apiVersion: v1, kind: Pod, metadata: [web], spec: {containers: []}}\n"
            "    expect: {allowed: false}\n",
            1,
        ).replace("metadata: web", "metadata: {name: web}")
    )

    lint = run_cli("lint", str(suite))
    result = run_cli("test", str(suite))

    assert lint.code == 0, lint.out
    assert "/cases/0/oldObject/metadata: metadata must be a mapping, not an array" in lint.err
    assert result.code == 1, result.err
    assert "input: Pod (oldObject): metadata must be a mapping, not an array" in result.out
    assert "1 passed, 1 failed" in result.out
