"""Mode overrides: the policy judged as if its modes were changed, the file untouched."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from webhook.audit.overrides import Overrides
from webhook.errors import ConfigError
from webhook.policy.loader import load_policy
from webhook.policy.model import Policy

NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def policy(tmp_path: Path) -> Policy:
    document = {
        "apiVersion": "imagegate.dev/v1alpha1",
        "kind": "ImagePolicy",
        "metadata": {"name": "modes"},
        "spec": {
            "mode": "warn",
            "unmatched": "allow",
            "registries": {"allow": ["ghcr.io"]},
            "rules": [
                {"name": "prod", "images": ["ghcr.io/acme/**"], "namespaces": ["prod-*"], "mode": "enforce"},
                {"name": "dev-signed", "images": ["ghcr.io/acme/**"], "mode": "audit"},
                {"name": "tools", "images": ["ghcr.io/tools/**"]},
            ],
        },
    }
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(document))
    return load_policy(path, now=NOW).policy


def modes(policy: Policy) -> tuple[str, str, dict[str, str | None]]:
    return policy.mode, policy.unmatched, {rule.name: rule.mode for rule in policy.rules}


def test_no_override_leaves_the_policy_as_written(policy: Policy) -> None:
    assert not Overrides().active
    assert Overrides().apply(policy) == policy
    assert Overrides().describe() == ""


def test_a_rule_mode_changes_that_rule_only(policy: Policy) -> None:
    overrides = Overrides(rule_modes={"dev-signed": "enforce"})
    assert overrides.active
    assert modes(overrides.apply(policy)) == (
        "warn",
        "allow",
        {"prod": "enforce", "dev-signed": "enforce", "tools": None},
    )
    assert overrides.describe() == "rule dev-signed: enforce"


def test_mode_sets_spec_mode_and_every_rule_then_rule_modes_apply(policy: Policy) -> None:
    overrides = Overrides(mode="enforce", rule_modes={"prod": "warn"}, unmatched="deny")
    judged = overrides.apply(policy)
    assert modes(judged) == ("enforce", "deny", {"prod": "warn", "dev-signed": "enforce", "tools": "enforce"})
    # Only modes change: what is checked, and the fingerprint the verification caches key on, do not.
    assert [(r.name, r.images, r.namespaces) for r in judged.rules] == [
        (r.name, r.images, r.namespaces) for r in policy.rules
    ]
    assert judged.fingerprint == policy.fingerprint
    assert overrides.describe() == "--mode enforce, rule prod: warn, --unmatched deny"


def test_an_unknown_rule_is_a_configuration_error_with_a_suggestion(policy: Policy) -> None:
    with pytest.raises(ConfigError, match=r"has no rule 'dev-signd' \(did you mean 'dev-signed'\?\)"):
        Overrides(rule_modes={"dev-signd": "enforce"}).apply(policy)
    with pytest.raises(ConfigError, match=r"has no rule 'zzz' \(its rules: prod, dev-signed, tools\)"):
        Overrides(rule_modes={"zzz": "enforce"}).apply(policy)
