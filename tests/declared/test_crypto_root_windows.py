"""The declared cryptography against a trusted root's ``validFor`` windows.

Declared certificates and log entries are dated the suite's ``now``. Live, a keyless bundle made
when the root's Fulcio CA, Rekor key or CT log key had retired is refused (``signature-invalid``,
webhook.verify.bundles), so a hermetic run must refuse it too: otherwise a suite that passes
hermetically expects an admission the webhook never makes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.fake_sigstore import FakeSigstore
from tests.support.refresh_world import Run
from tests.support.trust_roots import KEY_PARTS, with_window_ended

pytestmark = pytest.mark.sigstore

ISSUER = "https://token.actions.githubusercontent.com"
WORKFLOW = "https://github.com/acme/app/.github/workflows/release.yml@refs/tags/v1.4.2"
DIGEST = "sha256:" + "1" * 64


def _write(tmp_path: Path, root: dict[str, object]) -> Path:
    (tmp_path / "root.json").write_text(json.dumps(root))
    (tmp_path / "policy.yaml").write_text(
        json.dumps(
            {
                "apiVersion": "imagegate.dev/v1alpha1",
                "kind": "ImagePolicy",
                "metadata": {"name": "windows"},
                "spec": {
                    "mode": "enforce",
                    "registries": {"allow": ["ghcr.io"]},
                    "trust": {"roots": [{"name": "test", "file": "root.json"}]},
                    "rules": [
                        {
                            "name": "signed",
                            "images": ["ghcr.io/acme/**"],
                            "signatures": {
                                "signers": [
                                    {"keyless": {"root": "test", "issuer": ISSUER, "subject": WORKFLOW}}
                                ]
                            },
                        }
                    ],
                },
            }
        )
    )
    suite = tmp_path / "windows.test.yaml"
    suite.write_text(
        json.dumps(
            {
                "apiVersion": "imagegate.dev/v1alpha1",
                "kind": "PolicyTest",
                "policy": "policy.yaml",
                "images": [
                    {
                        "name": "ghcr.io/acme/app",
                        "digest": DIGEST,
                        "tags": ["1.4.2"],
                        "signatures": [{"keyless": {"issuer": ISSUER, "subject": WORKFLOW}}],
                    }
                ],
                "cases": [
                    {
                        "name": "signed after the root retired its key",
                        "images": ["ghcr.io/acme/app:1.4.2"],
                        "expect": {"allowed": False, "outcomes": ["signature-invalid"]},
                    }
                ],
            }
        )
    )
    return suite


@pytest.mark.parametrize("part", KEY_PARTS)
def test_a_keyless_signature_outside_the_roots_windows_is_refused_hermetically(
    part: str, tmp_path: Path, run_cli: Callable[..., Run]
) -> None:
    root = FakeSigstore.create(tmp_path / "sigstore").trusted_root()
    suite = _write(tmp_path, with_window_ended(root, part))

    result = run_cli("test", str(suite))

    assert result.code == 0, result.out + result.err


def test_a_signature_naming_no_root_is_judged_by_the_root_of_each_signer(
    tmp_path: Path, run_cli: Callable[..., Run]
) -> None:
    """Certified by every root of the policy: valid for the signer whose root's windows hold ``now``,
    refused by the signer whose root retired its Rekor key (policies/README.md, Declared facts)."""
    current = FakeSigstore.create(tmp_path / "current").trusted_root()
    retired = with_window_ended(FakeSigstore.create(tmp_path / "retired").trusted_root(), "rekor-key")
    (tmp_path / "current.json").write_text(json.dumps(current))
    (tmp_path / "retired.json").write_text(json.dumps(retired))
    signer = {"issuer": ISSUER, "subject": WORKFLOW}

    def rule(name: str, root: str) -> dict[str, object]:
        return {
            "name": name,
            "images": [f"ghcr.io/acme/{name}"],
            "signatures": {"signers": [{"keyless": {"root": root, **signer}}]},
        }

    def image(name: str) -> dict[str, object]:
        return {
            "name": f"ghcr.io/acme/{name}",
            "digest": DIGEST,
            "tags": ["1"],
            "signatures": [{"keyless": signer}],
        }

    def case(name: str, *, allowed: bool) -> dict[str, object]:
        outcomes = ["verified"] if allowed else ["signature-invalid"]
        return {
            "name": name,
            "images": [f"ghcr.io/acme/{name}:1"],
            "expect": {"allowed": allowed, "outcomes": outcomes},
        }

    (tmp_path / "policy.yaml").write_text(
        json.dumps(
            {
                "apiVersion": "imagegate.dev/v1alpha1",
                "kind": "ImagePolicy",
                "metadata": {"name": "two-roots"},
                "spec": {
                    "mode": "enforce",
                    "registries": {"allow": ["ghcr.io"]},
                    "trust": {
                        "roots": [
                            {"name": "current", "file": "current.json"},
                            {"name": "retired", "file": "retired.json"},
                        ]
                    },
                    "rules": [rule("current", "current"), rule("retired", "retired")],
                },
            }
        )
    )
    suite = tmp_path / "roots.test.yaml"
    suite.write_text(
        json.dumps(
            {
                "apiVersion": "imagegate.dev/v1alpha1",
                "kind": "PolicyTest",
                "policy": "policy.yaml",
                "images": [image("current"), image("retired")],
                "cases": [case("current", allowed=True), case("retired", allowed=False)],
            }
        )
    )

    result = run_cli("test", str(suite))

    assert result.code == 0, result.out + result.err
    assert "2 passed, 0 failed" in result.out
