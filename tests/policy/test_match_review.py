"""Image globs over hosts whose case matters to the grammar: loaded rules must govern what they name."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from webhook.images.reference import ImageRef
from webhook.policy.loader import load_policy
from webhook.policy.match import find_exemption, image_glob_match, matching_rules, normalise_image_glob

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
DIGEST = "sha256:" + "ab" * 32

POLICY = f"""\
apiVersion: imagegate.dev/v1alpha1
kind: ImagePolicy
metadata: {{name: hosts}}
spec:
  unmatched: allow
  registries:
    allow: [Mirror, Acmex, docker.io]
  exemptions:
    - {{images: ["Mirror/tool@{DIGEST}"], expires: "2027-01-01T00:00:00Z", reason: INC-9}}
  rules:
    - name: mirror
      images: ["Mirror/**"]
    - name: acme-hosts
      images: ["Acme*/app"]
"""


@pytest.fixture(scope="module")
def policy(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    path: Path = tmp_path_factory.mktemp("hosts") / "policy.yaml"
    path.write_text(POLICY)
    return load_policy(path, now=NOW).policy


@pytest.mark.parametrize("pattern", ["Mirror/**", "Acme*/app", "GHCR.IO/acme/**", "ghcr.io/acme/**"])
def test_normalising_a_normalised_glob_changes_nothing(pattern: str) -> None:
    # Every match normalises the policy's stored (already normalised) glob again.
    once = normalise_image_glob(pattern)
    assert normalise_image_glob(once) == once


@pytest.mark.parametrize("image", ["Mirror/app:1", "MIRROR/app:1", "Mirror/a/b"])
def test_a_rule_for_a_single_label_host_governs_its_images(policy, image: str) -> None:  # type: ignore[no-untyped-def]
    ref = ImageRef.parse(image)
    assert [r.name for r in matching_rules(policy, ref, "prod")] == ["mirror"]


def test_a_rule_for_a_single_label_host_does_not_govern_docker_hub(policy) -> None:  # type: ignore[no-untyped-def]
    ref = ImageRef.parse("mirror/app:1")  # docker.io/mirror/app
    assert ref.registry == "docker.io"
    assert matching_rules(policy, ref, "prod") == ()


def test_a_wildcard_single_label_host_glob_matches_without_raising(policy) -> None:  # type: ignore[no-untyped-def]
    assert [r.name for r in matching_rules(policy, ImageRef.parse("ACMEX/app"), "prod")] == ["acme-hosts"]
    assert matching_rules(policy, ImageRef.parse("acmex/app"), "prod") == ()  # Docker Hub


def test_digest_exemption_for_a_single_label_host_ignores_host_case(policy) -> None:  # type: ignore[no-untyped-def]
    for image in (f"Mirror/tool@{DIGEST}", f"MIRROR/tool@{DIGEST}"):
        exemption = find_exemption(policy, ImageRef.parse(image), "prod", now=NOW)
        assert exemption is not None and exemption.reason == "INC-9"
    assert find_exemption(policy, ImageRef.parse(f"mirror/tool@{DIGEST}"), "prod", now=NOW) is None


def test_globs_stay_anchored_with_case_folding() -> None:
    assert image_glob_match("Mirror/**", "Mirror/app")
    assert not image_glob_match("Mirror/**", "Mirror2/app")
    assert not image_glob_match("Mirror/app", "Mirror/app/x")
    assert not image_glob_match("ghcr.io/acme/**", "ghcr.io/acme-evil/x")
