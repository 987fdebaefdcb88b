"""``imagegate audit`` on hostile input: a deeply nested JSON document is an input error (exit 2),
never a traceback (whose exit status 1 reads as "something would be denied")."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.support.cli import write_rule_free_policy
from tests.support.refresh_world import Run

_DEPTH = 100_000


def _deep_list() -> str:
    return '{"apiVersion": "v1", "kind": "List", "items": ' + "[" * _DEPTH + "]" * _DEPTH + "}"


def test_a_deeply_nested_json_input_is_an_input_error(tmp_path: Path, run_cli: Callable[..., Run]) -> None:
    policy = write_rule_free_policy(tmp_path)
    cluster = tmp_path / "cluster.json"
    cluster.write_text(_deep_list())

    result = run_cli("audit", "--policy", str(policy), str(cluster))

    assert result.code == 2, result.err
    assert "cluster.json" in result.err


def test_a_deeply_nested_json_file_in_a_directory_is_skipped_with_a_warning(
    tmp_path: Path, run_cli: Callable[..., Run]
) -> None:
    policy = write_rule_free_policy(tmp_path)
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    (manifests / "cluster.json").write_text(_deep_list())
    (manifests / "web.yaml").write_text(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: web}\n"
        "spec: {containers: [{name: c, image: quay.io/acme/app:1}]}\n"
    )

    result = run_cli("audit", "--policy", str(policy), str(manifests))

    assert result.code == 1, result.err  # web's registry is not allowed: the audit went on
    assert f"warning: {manifests / 'cluster.json'}: skipped: nested too deeply to read" in result.err
    assert "Pod/web" in result.out
