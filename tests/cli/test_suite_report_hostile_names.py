"""``imagegate test``'s text report cannot be forged by a suite's case names.

A suite is often not the operator's own (a pull request's, in CI): a case name may hold a line break or
a terminal escape. Case names are written escaped, as every other outside text in the report, so a
failing case cannot print a PASS line of its own or erase its FAIL line on a terminal.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from tests.support.cli import UNGOVERNED_IMAGE, write_rule_free_policy
from tests.support.refresh_world import Run

# Up one line and erase it (the FAIL line), then a forged verdict on a line of its own.
_FORGED = "wrong\x1b[1A\x1b[2K\nPASS hostile.test.yaml: all good"


def test_a_case_name_is_written_escaped(tmp_path: Path, run_cli: Callable[..., Run]) -> None:
    write_rule_free_policy(tmp_path)
    suite = tmp_path / "hostile.test.yaml"
    suite.write_text(
        json.dumps(
            {
                "apiVersion": "imagegate.dev/v1alpha1",
                "kind": "PolicyTest",
                "policy": "policy.yaml",
                "cases": [{"name": _FORGED, "images": [UNGOVERNED_IMAGE], "expect": {"allowed": True}}],
            }
        )
    )

    result = run_cli("test", str(suite))

    assert result.code == 1, result.err
    assert "\x1b" not in result.out
    assert "PASS hostile.test.yaml: all good" not in result.out.splitlines()
    escaped = "wrong\\u001b[1A\\u001b[2K\\nPASS hostile.test.yaml: all good"
    assert f"FAIL hostile.test.yaml: {escaped}" in result.out
