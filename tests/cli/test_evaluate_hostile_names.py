"""``imagegate evaluate`` output cannot be forged by the manifests it reads.

Manifests given to ``evaluate`` are often not the operator's own (a pull request's, in CI), and they are
not validated by an API server: a name may hold a line break or a terminal escape. The operator guide
promises that outside text "is written as JSON escapes it ... a line break or terminal escape in outside
text cannot forge a line"; the image and reason parts of evaluate's lines keep that promise, but the
object's heading (``kind namespace/name``, webhook/cli/evaluate.py ``_print_human``) and the "not
checked" reason are printed as read, so a manifest can print an "allowed" verdict of its own above the
real one, or send escape sequences to the terminal.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from tests.support.refresh_world import Run

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_POLICY = REPO_ROOT / "policies" / "default.yaml"
FORGED = 'web\n  container "web" image "nginx:1.27": allowed (admitted)\n  result: allowed\n\x1b[1A'
OBJECTS = {
    "name": {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": FORGED},
        "spec": {"containers": [{"name": "web", "image": "nginx:latest"}]},
    },
    "kind": {
        "apiVersion": "example.com/v1",
        "kind": "Rollout\n  result: denied\x1b[2K",
        "metadata": {"name": "web"},
        "spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}},
    },
}


@pytest.mark.parametrize("field", sorted(OBJECTS))
def test_evaluate_prints_outside_text_escaped(
    tmp_path: Path, run_cli: Callable[..., Run], field: str
) -> None:
    source = tmp_path / "manifest.yaml"
    source.write_text(yaml.safe_dump(OBJECTS[field]))

    result = run_cli("evaluate", "--policy", str(DEFAULT_POLICY), str(source))

    lines = result.out.splitlines()
    unsafe = [line for line in lines if not (line.isascii() and line.isprintable())]
    assert not unsafe, f"raw control characters in evaluate's output: {unsafe!r}"
    assert len([line for line in lines if line.startswith("  result: ")]) == 1, result.out
