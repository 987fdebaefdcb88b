"""``imagegate resolve`` and ``imagegate quarantine`` against a real registry and real quarantine files."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
import yaml

from tests.support.registry import RegistryServer
from webhook.cli import registry_cmds
from webhook.deadline import Deadline
from webhook.images.reference import ImageRef
from webhook.policy.loader import load_quarantine
from webhook.registry import RegistryClient
from webhook.registry.markers import QUARANTINE_ARTIFACT_TYPE, read_marker
from webhook.times import format_rfc3339

COSIGN_SIG = "application/vnd.dev.cosign.artifact.sig.v1+json"
DIGEST_A = "sha256:" + "a" * 64
DIGEST_B = "sha256:" + "b" * 64


def cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="imagegate")
    registry_cmds.register(parser.add_subparsers(dest="command"))
    try:
        args = parser.parse_args(list(argv))
    except SystemExit as exit_:
        return int(exit_.code or 0)
    return registry_cmds.run(args)


def write_policy(path: Path, registry: RegistryServer, *, allow: list[str] | None = None) -> Path:
    policy = {
        "apiVersion": "imagegate.dev/v1alpha1",
        "kind": "ImagePolicy",
        "metadata": {"name": "cli-test"},
        "spec": {
            "registries": {
                "allow": allow if allow is not None else [registry.host],
                "insecure": [registry.host] if registry.mode == "plain" else [],
            }
        },
    }
    if registry.ca_file is not None:
        policy["spec"]["registries"]["caFile"] = str(registry.ca_file)
    if registry.credentials_file is not None:
        policy["spec"]["registries"]["credentialsFile"] = str(registry.credentials_file)
    path.write_text(yaml.safe_dump(policy))
    return path


# --- resolve -------------------------------------------------------------------------------------


@pytest.mark.registry
def test_resolve_prints_pinned_references(
    plain_registry: RegistryServer, capsys: pytest.CaptureFixture[str]
) -> None:
    pusher = plain_registry.pusher()
    image = pusher.push_image("demo/cli", "v1")
    index, _, _ = pusher.push_multiarch("demo/cli", "multi")
    first, second = plain_registry.ref("demo/cli", "v1"), plain_registry.ref("demo/cli", "multi")
    code = cli("resolve", "--insecure-registry", plain_registry.host, first, second)
    out = capsys.readouterr().out
    assert code == 0
    assert out.splitlines() == [f"{first} -> {first}@{image.digest}", f"{second} -> {second}@{index.digest}"]


@pytest.mark.registry
def test_resolve_with_a_policy_uses_its_registry_settings(
    tls_registry: RegistryServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    image = tls_registry.pusher().push_image("demo/cli", "v1")
    policy = write_policy(tmp_path / "policy.yaml", tls_registry)
    ref = tls_registry.ref("demo/cli", "v1")
    assert cli("resolve", "--policy", str(policy), ref) == 0
    assert capsys.readouterr().out.strip() == f"{ref} -> {ref}@{image.digest}"


@pytest.mark.registry
def test_resolve_exit_1_names_each_failure(
    plain_registry: RegistryServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    image = plain_registry.pusher().push_image("demo/cli", "ok")
    policy = write_policy(tmp_path / "policy.yaml", plain_registry)
    good, missing = plain_registry.ref("demo/cli", "ok"), plain_registry.ref("demo/cli", "missing")
    code = cli("resolve", "--policy", str(policy), good, missing, "ghcr.io/acme/app:v1", "Bad//Ref")
    captured = capsys.readouterr()
    assert code == 1
    assert captured.out.strip() == f"{good} -> {good}@{image.digest}"
    assert f"{missing}: [registry-error]" in captured.err
    assert "ghcr.io/acme/app:v1: [registry-not-allowed]" in captured.err
    assert "Bad//Ref:" in captured.err


def test_resolve_policy_and_overrides_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli("resolve", "--policy", str(tmp_path / "p.yaml"), "--ca-file", "x.pem", "ghcr.io/a/b:1") == 2
    assert "cannot be combined with --policy" in capsys.readouterr().err


# --- quarantine --registry -----------------------------------------------------------------------


@pytest.mark.registry
def test_quarantine_markers_add_list_remove_keep_foreign_entries(
    plain_registry: RegistryServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pusher = plain_registry.pusher()
    image = pusher.push_image("demo/quarantine", "v1")
    signature = pusher.push_artifact("demo/quarantine", subject=image, artifact_type=COSIGN_SIG)
    foreign = signature.descriptor(artifactType=COSIGN_SIG, annotations={"dev.cosignproject.cosign/x": "y"})
    pusher.put_fallback_index("demo/quarantine", image.digest, [foreign])
    target = plain_registry.ref("demo/quarantine", digest=image.digest)
    policy = str(write_policy(tmp_path / "policy.yaml", plain_registry))

    assert (
        cli(
            "quarantine",
            "add",
            "--registry",
            "--policy",
            policy,
            "--reason",
            "CVE-2026-1234",
            "--by",
            "sec",
            target,
        )
        == 0
    )
    added = capsys.readouterr().out
    assert "quarantine marker sha256:" in added
    index = pusher.fallback_index("demo/quarantine", image.digest)
    assert index is not None
    entries = index["manifests"]
    assert entries[0] == foreign
    assert [e.get("artifactType") for e in entries] == [COSIGN_SIG, QUARANTINE_ARTIFACT_TYPE]
    marker_digest = entries[1]["digest"]
    assert marker_digest in added

    with RegistryClient(plain_registry.settings()) as client:
        entry = read_marker(client, ImageRef.parse(target), image.digest, deadline=Deadline.after(5))
    assert entry is not None
    assert (entry.reason, entry.by, entry.source) == ("CVE-2026-1234", "sec", "registry")
    assert entry.since is not None
    marker = pusher.get_manifest("demo/quarantine", marker_digest)
    assert marker is not None
    document = json.loads(marker.body)
    assert document["subject"]["digest"] == image.digest
    assert document["artifactType"] == QUARANTINE_ARTIFACT_TYPE
    assert document["annotations"]["dev.imagegate.quarantine/reason"] == "CVE-2026-1234"

    assert cli("quarantine", "list", "--registry", "--policy", policy, target) == 0
    listed = capsys.readouterr().out.splitlines()
    assert len(listed) == 1
    assert listed[0].split("\t")[:2] == [target, marker_digest]
    assert listed[0].endswith("\tsec\t-\tCVE-2026-1234")
    assert cli("quarantine", "list", "--registry", "--policy", policy, "-o", "json", target) == 0
    assert json.loads(capsys.readouterr().out) == [
        {
            "target": target,
            "image": target,
            "marker": marker_digest,
            "digest": image.digest,
            "reason": "CVE-2026-1234",
            "by": "sec",
            "since": format_rfc3339(entry.since),
            "indexes": [],
            "platform": "",
            "relation": "",
        }
    ]

    assert cli("quarantine", "remove", "--registry", "--policy", policy, target) == 0
    assert marker_digest in capsys.readouterr().out
    index = pusher.fallback_index("demo/quarantine", image.digest)
    assert index is not None
    assert index["manifests"] == [foreign]
    assert pusher.get_manifest("demo/quarantine", marker_digest) is None
    assert pusher.get_manifest("demo/quarantine", signature.digest) is not None

    assert cli("quarantine", "list", "--registry", "--policy", policy, target) == 0
    assert capsys.readouterr().out == ""
    assert cli("quarantine", "remove", "--registry", "--policy", policy, target) == 1
    assert "no quarantine marker found" in capsys.readouterr().err


@pytest.mark.registry
def test_quarantine_marker_for_an_unknown_digest_fails(
    plain_registry: RegistryServer, capsys: pytest.CaptureFixture[str]
) -> None:
    target = plain_registry.ref("demo/quarantine", digest=DIGEST_A)
    code = cli(
        "quarantine", "add", "--registry", "--insecure-registry", plain_registry.host, "--reason", "r", target
    )
    assert code == 1
    assert "manifest not found" in capsys.readouterr().err


def test_quarantine_registry_needs_a_digest_and_a_reason(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli("quarantine", "add", "--registry", "--reason", "r", "ghcr.io/acme/app:v1") == 2
    assert "needs IMAGE@sha256" in capsys.readouterr().err
    assert cli("quarantine", "add", "--registry", f"ghcr.io/acme/app@{DIGEST_A}") == 2
    assert "--reason" in capsys.readouterr().err


# --- quarantine --file ---------------------------------------------------------------------------


def test_quarantine_file_add_list_remove(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "quarantine.yaml"
    assert cli("quarantine", "add", "--file", str(path), "--reason", "CVE-1", "--by", "sec", DIGEST_A) == 0
    assert cli("quarantine", "add", "--file", str(path), "--reason", "bad build", DIGEST_B) == 0
    # A bare digest cannot be read: an index named that way would be recorded without its manifests.
    assert "give IMAGE@DIGEST so that the manifests it lists are recorded too" in capsys.readouterr().err
    entries = load_quarantine(path)
    assert [(e.digest, e.reason, e.by) for e in entries] == [
        (DIGEST_A, "CVE-1", "sec"),
        (DIGEST_B, "bad build", ""),
    ]
    assert all(e.since is not None for e in entries)
    capsys.readouterr()

    assert cli("quarantine", "list", "--file", str(path)) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[0] for line in lines] == [DIGEST_A, DIGEST_B]
    assert lines[0].endswith("\tsec\t-\tCVE-1")
    assert cli("quarantine", "list", "--file", str(path), "--output", "json") == 0
    assert json.loads(capsys.readouterr().out) == [
        {
            "digest": digest,
            "reason": reason,
            "by": by,
            "since": format_rfc3339(entry.since) if entry.since else None,
            "indexes": [],
            "platform": "",
            "relation": "",
        }
        for (digest, reason, by), entry in zip(
            [(DIGEST_A, "CVE-1", "sec"), (DIGEST_B, "bad build", "")], entries, strict=True
        )
    ]
    # -o is for list only
    assert cli("quarantine", "add", "--file", str(path), "--reason", "x", "-o", "json", DIGEST_A) == 2
    capsys.readouterr()

    # adding again updates the entry in place
    assert cli("quarantine", "add", "--file", str(path), "--reason", "CVE-2", DIGEST_A) == 0
    assert [(e.digest, e.reason) for e in load_quarantine(path)] == [
        (DIGEST_A, "CVE-2"),
        (DIGEST_B, "bad build"),
    ]

    assert cli("quarantine", "remove", "--file", str(path), DIGEST_A) == 0
    assert [e.digest for e in load_quarantine(path)] == [DIGEST_B]
    assert cli("quarantine", "remove", "--file", str(path), DIGEST_A) == 1
    assert f"{DIGEST_A}: not in" in capsys.readouterr().err


def test_quarantine_file_keeps_existing_entries_and_their_times(tmp_path: Path) -> None:
    path = tmp_path / "quarantine.yaml"
    path.write_text(
        "apiVersion: imagegate.dev/v1alpha1\nkind: Quarantine\nentries:\n"
        f'  - {{digest: "{DIGEST_A}", reason: "old", by: "ops", since: "2026-11-20T10:00:00Z"}}\n'
    )
    assert cli("quarantine", "add", "--file", str(path), "--reason", "new", DIGEST_B) == 0
    document = yaml.safe_load(path.read_text().replace("since:", "since_text:"))
    assert document["entries"][0]["since_text"] == "2026-11-20T10:00:00Z"
    assert [e.digest for e in load_quarantine(path)] == [DIGEST_A, DIGEST_B]


def test_quarantine_file_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "quarantine.yaml"
    assert cli("quarantine", "add", "--file", str(path), "--reason", "r", "sha256:abc") == 2
    assert "not sha256:<64 lower-case hex>" in capsys.readouterr().err
    assert cli("quarantine", "add", "--file", str(path), DIGEST_A) == 2  # --reason is required
    assert cli("quarantine", "list", "--file", str(path)) == 2  # no such file
    assert not path.exists()
    path.write_text("apiVersion: imagegate.dev/v1alpha1\nkind: Quarantine\nentries: [{digest: nope}]\n")
    before = path.read_text()
    assert cli("quarantine", "add", "--file", str(path), "--reason", "r", DIGEST_A) == 2
    assert path.read_text() == before  # an invalid file is not edited
    assert str(path) in capsys.readouterr().err
