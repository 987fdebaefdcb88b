"""``imagegate evaluate`` of a manifest judges it by its apiVersion's group, as the server does.

The server checks a kind only in its own API group: a ``Pod`` under group ``apps``, or a custom
resource that happens to be called ``Deployment``, is "not checked" (webhook/admission/workloads.py).
README.md promises the same of ``evaluate``: "an object it does not check (another kind, a kind in
another API group, no pod spec, no images) is shown as ``not checked`` with the reason". Given as an
AdmissionReview that holds (tests/cli/test_evaluate.py); given as a manifest, the most common input,
``webhook/dryrun.review_for`` takes the group from the kind name alone and the object is judged as the
built-in kind, so ``evaluate`` denies what the server would admit unchecked.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from tests.support.refresh_world import Run

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_POLICY = REPO_ROOT / "policies" / "default.yaml"
SPEC = {"containers": [{"name": "web", "image": "nginx:latest"}]}
MANIFESTS = {
    "pod-in-group-apps": (
        {"apiVersion": "apps/v1", "kind": "Pod", "metadata": {"name": "web"}, "spec": SPEC},
        'kind apps/Pod is not one imagegate checks (it checks Pod in the core API group "")',
    ),
    "deployment-of-another-group": (
        {
            "apiVersion": "example.com/v1",
            "kind": "Deployment",
            "metadata": {"name": "web"},
            "spec": {"template": {"spec": SPEC}},
        },
        'kind example.com/Deployment is not one imagegate checks (it checks Deployment in API group "apps")',
    ),
}


@pytest.mark.parametrize("case", sorted(MANIFESTS))
def test_evaluate_of_a_manifest_in_another_api_group_says_nothing_was_checked(
    tmp_path: Path, run_cli: Callable[..., Run], case: str
) -> None:
    manifest, reason = MANIFESTS[case]
    source = tmp_path / "manifest.yaml"
    source.write_text(yaml.safe_dump(manifest))

    result = run_cli("evaluate", "--policy", str(DEFAULT_POLICY), str(source))

    assert result.out.splitlines()[1:] == [f"  not checked: {reason}", "  result: allowed"], result.out
    assert result.code == 0
