"""``imagegate audit``'s text report on a manifest whose ``kind`` carries control characters: what the
input says is written escaped, as in every table cell, so no object can forge lines of the report or
send terminal escape sequences (cursor movement, erasing) that hide what would be denied."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import yaml

from tests.support.cli import write_rule_free_policy
from tests.support.refresh_world import Run

# Up five lines and erase to the end of the screen, then a forged verdict.
_FORGED_KIND = "Widget\x1b[5A\x1b[J\nnothing would be denied or warned"


def test_a_skipped_kind_is_written_escaped(tmp_path: Path, run_cli: Callable[..., Run]) -> None:
    policy = write_rule_free_policy(tmp_path)
    manifests = tmp_path / "manifests.yaml"
    manifests.write_text(
        yaml.safe_dump_all(
            [
                {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {"name": "web"},
                    "spec": {"containers": [{"name": "c", "image": "quay.io/acme/app:1"}]},
                },
                {"apiVersion": "example.com/v1", "kind": _FORGED_KIND, "metadata": {"name": "w"}},
            ]
        )
    )

    result = run_cli("audit", "--policy", str(policy), str(manifests))

    assert result.code == 1, result.err  # the Pod's registry is not allowed
    assert "registry-not-allowed" in result.out
    assert "\x1b" not in result.out
    assert "nothing would be denied or warned" not in result.out.splitlines()


def test_an_input_error_quoting_the_input_is_written_escaped(
    tmp_path: Path, run_cli: Callable[..., Run]
) -> None:
    policy = write_rule_free_policy(tmp_path)
    manifests = tmp_path / "manifests.yaml"
    # A malformed pod spec is an input error whose message names the object.
    manifests.write_text(
        yaml.safe_dump({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": _FORGED_KIND}, "spec": 5})
    )

    result = run_cli("audit", "--policy", str(policy), str(manifests))

    assert result.code == 2, result.out
    assert result.err.startswith("error: "), result.err
    assert "\x1b" not in result.err
    assert "nothing would be denied or warned" not in result.err.splitlines()
