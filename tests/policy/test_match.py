"""Policy questions: matching rules, exemptions and their expiry, registry allowlist, denied tags."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from webhook.images.reference import ImageRef
from webhook.policy.loader import load_policy
from webhook.policy.match import (
    denied_tag,
    find_exemption,
    host_allowed,
    is_expired,
    matching_rules,
    registry_allowed,
)
from webhook.policy.model import Exemption, Policy, Registries, Rule, Tags

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
DIGEST = "sha256:" + "ab" * 32
OTHER = "sha256:" + "cd" * 32

POLICY = f"""\
apiVersion: imagegate.dev/v1alpha1
kind: ImagePolicy
metadata: {{name: match}}
spec:
  registries:
    allow: [ghcr.io, docker.io, "registry.example.com:5000", "[::1]:5000", localhost]
  exemptions:
    - {{images: ["ghcr.io/acme/tool@{DIGEST}"], namespaces: ["ops-*"],
       expires: "2026-12-01T00:00:00Z", reason: INC-1}}
    - {{images: ["ghcr.io/acme/debug/*"], expires: "2026-11-27T00:00:00Z", reason: INC-2}}
    - {{images: ["ghcr.io/acme/old"], expires: "2026-11-01T00:00:00Z", reason: INC-0}}
    - {{images: ["busybox@{DIGEST}"], namespaces: [kube-system],
       expires: "2027-01-01T00:00:00Z", reason: INC-3}}
  rules:
    - {{name: acme, images: ["ghcr.io/acme/**"]}}
    - {{name: acme-dev, images: ["ghcr.io/acme/**"], namespaces: ["dev-*"], mode: warn}}
    - {{name: nginx, images: [nginx, "index.docker.io/library/redis"]}}
    - {{name: apps, images: ["ghcr.io/acme/app", "ghcr.io/*/api"]}}
"""


@pytest.fixture(scope="module")
def policy(tmp_path_factory: pytest.TempPathFactory) -> Policy:
    path = tmp_path_factory.mktemp("match") / "policy.yaml"
    path.write_text(POLICY)
    loaded = load_policy(path, now=NOW)
    assert [w.pointer for w in loaded.warnings] == ["/spec/exemptions/2/expires"]
    return loaded.policy


def _names(rules: tuple[Rule, ...]) -> list[str]:
    return [r.name for r in rules]


@pytest.mark.parametrize(
    ("image", "namespace", "expected"),
    [
        ("ghcr.io/acme/app:1.0", "default", ["acme", "apps"]),
        ("ghcr.io/acme/app:1.0", "dev-team", ["acme", "acme-dev", "apps"]),
        ("ghcr.io/acme/team/svc", "default", ["acme"]),
        ("ghcr.io/other/api", "default", ["apps"]),
        ("ghcr.io/acme-evil/app", "default", []),
        ("ghcr.io/acme", "default", []),
        ("nginx", "default", ["nginx"]),
        ("docker.io/library/nginx:1.25", "default", ["nginx"]),
        ("index.docker.io/library/nginx", "default", ["nginx"]),
        ("redis", "default", ["nginx"]),
        ("someone/nginx", "default", []),
        ("evil.io/ghcr.io/acme/app", "default", []),
    ],
)
def test_matching_rules_returns_every_match_in_file_order(
    policy: Policy, image: str, namespace: str, expected: list[str]
) -> None:
    assert _names(matching_rules(policy, ImageRef.parse(image), namespace)) == expected


def test_rule_globs_are_stored_normalised(policy: Policy) -> None:
    assert policy.rules[2].images == ("docker.io/library/nginx", "docker.io/library/redis")


@pytest.mark.parametrize(
    ("image", "namespace", "at", "expected"),
    [
        (f"ghcr.io/acme/tool@{DIGEST}", "ops-1", NOW, "INC-1"),
        (f"ghcr.io/acme/tool:v1@{DIGEST}", "ops-1", NOW, "INC-1"),
        (f"ghcr.io/acme/tool@{OTHER}", "ops-1", NOW, None),  # another digest of that image
        ("ghcr.io/acme/tool:v1", "ops-1", NOW, None),  # not pinned yet: cannot be that digest
        (f"ghcr.io/acme/tool@{DIGEST}", "prod", NOW, None),  # namespace glob does not match
        (f"ghcr.io/acme/tool2@{DIGEST}", "ops-1", NOW, None),  # same digest, other name
        (f"ghcr.io/acme/tool@{DIGEST}", "ops-1", datetime(2026, 12, 1, tzinfo=UTC), None),  # expiry instant
        (f"ghcr.io/acme/tool@{DIGEST}", "ops-1", datetime(2026, 11, 30, 23, 59, tzinfo=UTC), "INC-1"),
        ("ghcr.io/acme/debug/shell:1", "anything", NOW, "INC-2"),  # glob entry, default namespaces ["*"]
        ("ghcr.io/acme/debug/x/shell", "anything", NOW, None),
        ("ghcr.io/acme/old", "default", NOW, None),  # expired at load: dropped
        (f"busybox@{DIGEST}", "kube-system", NOW, "INC-3"),  # docker hub short name, normalised
        (f"docker.io/library/busybox@{DIGEST}", "kube-system", NOW, "INC-3"),
    ],
)
def test_find_exemption(
    policy: Policy, image: str, namespace: str, at: datetime, expected: str | None
) -> None:
    found = find_exemption(policy, ImageRef.parse(image), namespace, now=at)
    assert (found.reason if found else None) == expected


def test_expired_exemptions_are_dropped_at_load(policy: Policy) -> None:
    assert [e.reason for e in policy.exemptions] == ["INC-1", "INC-2", "INC-3"]
    assert policy.exemptions[0].images == (f"ghcr.io/acme/tool@{DIGEST}",)
    assert policy.exemptions[2].images == (f"docker.io/library/busybox@{DIGEST}",)


def test_an_exemption_that_expires_after_loading_stops_matching() -> None:
    exemption = Exemption(images=("ghcr.io/a/**",), namespaces=("*",), expires=NOW, reason="r")
    policy = Policy(name="p", source="p", exemptions=(exemption,))
    ref = ImageRef.parse("ghcr.io/a/b")
    assert find_exemption(policy, ref, "ns", now=NOW - timedelta(seconds=1)) is exemption
    assert find_exemption(policy, ref, "ns", now=NOW) is None
    assert is_expired(exemption, now=NOW)
    assert not is_expired(exemption, now=NOW - timedelta(microseconds=1))


def test_a_malformed_exemption_entry_exempts_nothing() -> None:
    exemption = Exemption(images=("ghcr.io/a/b@sha256:zz",), namespaces=("*",), expires=NOW, reason="r")
    policy = Policy(name="p", source="p", exemptions=(exemption,))
    ref = ImageRef.parse(f"ghcr.io/a/b@{DIGEST}")
    assert find_exemption(policy, ref, "ns", now=NOW - timedelta(days=1)) is None


@pytest.mark.parametrize(
    ("image", "allowed"),
    [
        ("ghcr.io/acme/app", True),
        ("GHCR.IO/acme/app", True),
        ("ghcr.io:443/acme/app", False),  # a port-less entry does not open other ports
        ("nginx", True),
        ("docker.io/library/nginx", True),
        ("index.docker.io/library/nginx", True),
        ("registry-1.docker.io/library/nginx", True),
        ("registry.example.com:5000/app", True),
        ("registry.example.com/app", False),
        ("registry.example.com:5001/app", False),
        ("[::1]:5000/app", True),
        ("[::1]:5001/app", False),
        ("localhost/app", True),
        ("localhost:5000/app", False),
        ("quay.io/app/app", False),
        ("ghcr.io.evil.io/acme/app", False),
    ],
)
def test_registry_allowed(policy: Policy, image: str, allowed: bool) -> None:
    assert registry_allowed(policy, ImageRef.parse(image)) is allowed


def test_docker_hub_aliases_in_the_allowlist_are_one_registry() -> None:
    for entry in ("docker.io", "index.docker.io", "registry-1.docker.io", "Registry-1.Docker.IO"):
        policy = Policy(name="p", source="p", registries=Registries(allow=(entry,)))
        assert registry_allowed(policy, ImageRef.parse("nginx"))
        assert host_allowed(policy.registries.allow, "registry-1.docker.io")
        assert not host_allowed(policy.registries.allow, "registry-1.docker.io:443")
        assert not registry_allowed(policy, ImageRef.parse("ghcr.io/x/y"))


def test_an_empty_allowlist_allows_nothing() -> None:
    policy = Policy(name="p", source="p")
    assert not registry_allowed(policy, ImageRef.parse("nginx"))


@pytest.mark.parametrize(
    ("image", "deny", "expected"),
    [
        ("nginx", ("latest",), "latest"),  # no tag means latest
        ("nginx:latest", ("latest",), "latest"),
        ("nginx:Latest", ("latest",), None),  # exact comparison
        ("nginx:latest-alpine", ("latest",), None),
        ("nginx:1.25", ("latest",), None),
        (f"nginx@{DIGEST}", ("latest",), None),  # a digest-only reference has no tag
        (f"nginx:latest@{DIGEST}", ("latest",), "latest"),
        ("nginx:main", ("latest", "main"), "main"),
        ("nginx", (), None),
    ],
)
def test_denied_tag(image: str, deny: tuple[str, ...], expected: str | None) -> None:
    policy = Policy(name="p", source="p", tags=Tags(deny=deny))
    assert denied_tag(policy, ImageRef.parse(image)) == expected


def test_hand_built_policies_with_unnormalised_globs_still_match() -> None:
    policy = Policy(name="p", source="p", rules=(Rule(name="r", images=("nginx",)),))
    assert _names(matching_rules(policy, ImageRef.parse("docker.io/library/nginx:1"), "default")) == ["r"]


def test_loaded_policy_paths_resolve_relative_to_the_policy(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    policy_path = tmp_path / "sub" / "p.yaml"
    (tmp_path / "q.yaml").write_text("apiVersion: imagegate.dev/v1alpha1\nkind: Quarantine\nentries: []\n")
    policy_path.write_text(
        "apiVersion: imagegate.dev/v1alpha1\nkind: ImagePolicy\nmetadata: {name: p}\n"
        "spec: {registries: {allow: [ghcr.io]}, quarantine: {files: [../q.yaml]}}\n"
    )
    loaded = load_policy(policy_path, now=NOW)
    assert loaded.policy.quarantine.files[0].resolve() == (tmp_path / "q.yaml").resolve()
    assert loaded.policy.quarantine.files[0].is_absolute()
