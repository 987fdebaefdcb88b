"""A value that lints clean must mean what it says: no trailing newline slips through a schema pattern.

The JSON Schemas anchor their patterns with ``^...$`` and jsonschema checks ``pattern`` with
``re.search``, where ``$`` also matches before a final newline. YAML writes such a value without any
visible sign (a ``|`` block scalar, or a digest read from a file by a script), so ``imagegate lint``
passes it, and at admission it never equals the tag or digest it was meant to name:

* ``tags.deny: ["latest\\n"]`` lints clean and ``:latest`` is not denied;
* a quarantine entry ``digest: "sha256:<hex>\\n"`` lints clean and quarantines nothing.

Each case holds the promise "a policy that lints clean denies what it lists": either lint refuses the
value, or admission refuses the image.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.support.refresh_world import Run
from webhook.dryrun import DryRun, review_for

DIGEST = "sha256:" + "ab" * 32
PIN = f"ghcr.io/acme/app@{DIGEST}"


def _pod(image: str) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "app", "namespace": "default"},
        "spec": {"containers": [{"name": "app", "image": image}]},
    }


def _outcomes(policy: Path, image: str) -> tuple[bool, list[str]]:
    dry = DryRun(policy)
    try:
        result = dry.admit(review_for(_pod(image)))
    finally:
        dry.close()
    decision = result.final.decision
    assert decision is not None
    return result.allowed, [str(d.outcome) for d in decision.images]


def test_a_denied_tag_with_a_trailing_newline_is_refused_by_lint_or_denies_the_tag(
    tmp_path: Path, run_cli: Callable[..., Run]
) -> None:
    policy = tmp_path / "policy.yaml"
    # What a block scalar gives: the tag followed by a newline (yaml.safe_load reads "latest\n").
    policy.write_text(
        "apiVersion: imagegate.dev/v1alpha1\n"
        "kind: ImagePolicy\n"
        "metadata: {name: trailing-newline}\n"
        "spec:\n"
        "  registries: {allow: [ghcr.io]}\n"
        "  tags:\n"
        "    resolve: false\n"
        "    deny:\n"
        "      - |\n"
        "        latest\n"
        "  rules:\n"
        "    - {name: acme, images: ['ghcr.io/acme/**']}\n"
    )
    lint = run_cli("lint", str(policy))
    if lint.code == 0:
        # Lint passed it, so the policy must deny what it lists (policies/README.md, spec.tags.deny:
        # "Tags refused outright ([tag-denied]), compared exactly with the effective tag").
        allowed, outcomes = _outcomes(policy, "ghcr.io/acme/app:latest")
        assert (allowed, outcomes) == (False, ["tag-denied"]), (
            f"tags.deny ['latest\\n'] linted clean ({lint.err.strip()!r}) but ghcr.io/acme/app:latest "
            f"was admitted with outcomes {outcomes}"
        )
    else:
        assert "/spec/tags/deny/0" in lint.out


def test_a_quarantined_digest_with_a_trailing_newline_is_refused_by_lint_or_quarantines_the_digest(
    tmp_path: Path, run_cli: Callable[..., Run]
) -> None:
    quarantine = tmp_path / "quarantine.yaml"
    quarantine.write_text(
        "apiVersion: imagegate.dev/v1alpha1\n"
        "kind: Quarantine\n"
        "entries:\n"
        "  - digest: |\n"
        f"      {DIGEST}\n"
        "    reason: CVE-2026-1234 in base layer\n"
    )
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "apiVersion: imagegate.dev/v1alpha1\n"
        "kind: ImagePolicy\n"
        "metadata: {name: trailing-newline}\n"
        "spec:\n"
        "  unmatched: allow\n"
        "  registries: {allow: [ghcr.io]}\n"
        "  quarantine: {files: [quarantine.yaml]}\n"
    )
    lint = run_cli("lint", str(quarantine), str(policy))
    if lint.code == 0:
        # policies/README.md, the quarantine list: "A listed digest is refused whatever repository or
        # registry names it, for governed images and for pinned images no rule governs alike".
        allowed, outcomes = _outcomes(policy, PIN)
        assert (allowed, outcomes) == (False, ["quarantined"]), (
            f"the quarantine list linted clean but {PIN} was admitted with outcomes {outcomes}"
        )
    else:
        assert "/entries/0/digest" in lint.out
