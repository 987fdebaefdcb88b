"""``imagegate quarantine`` on multi-arch images: an index brings every manifest it lists, and back.

Real indexes in a real registry (Debian's docker-registry), real quarantine files.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.test_registry_cmds import cli, write_policy
from tests.support.oci import OCI_INDEX, OCI_MANIFEST, OciPusher, Pushed
from tests.support.registry import RegistryServer, refused_address
from webhook.deadline import Deadline
from webhook.images.reference import ImageRef
from webhook.policy.loader import load_quarantine
from webhook.registry import RegistryClient
from webhook.registry.listing import MAX_ENTRIES
from webhook.registry.markers import list_markers
from webhook.times import parse_rfc3339

pytestmark = pytest.mark.registry

REPO = "demo/multiarch"


def buildkit_index(pusher: OciPusher, repo: str, tag: str, images: list[tuple[Pushed, str]]) -> Pushed:
    """An index as buildkit writes it: each platform manifest followed by its attestation manifest."""
    entries = []
    for image, arch in images:
        attestation = pusher.push_image(
            repo, None, arch="unknown", os_name="unknown", content=image.digest.encode()
        )
        entries.append(image.descriptor(platform={"os": "linux", "architecture": arch}))
        entries.append(
            attestation.descriptor(
                platform={"os": "unknown", "architecture": "unknown"},
                annotations={
                    "vnd.docker.reference.type": "attestation-manifest",
                    "vnd.docker.reference.digest": image.digest,
                },
            )
        )
    body = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}).encode()
    return pusher.push_manifest(repo, body, OCI_INDEX, ref=tag)


def entries(path: Path) -> dict[str, tuple[str, tuple[str, ...], str]]:
    return {e.digest: (e.reason, e.indexes, e.platform) for e in load_quarantine(path)}


def test_file_add_of_an_index_records_its_platform_manifests_and_remove_takes_them_back(
    plain_registry: RegistryServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pusher = plain_registry.pusher()
    amd64 = pusher.push_image(REPO, None, arch="amd64", content=b"file amd64")
    arm64 = pusher.push_image(REPO, None, arch="arm64", content=b"file arm64")
    riscv = pusher.push_image(REPO, None, arch="riscv64", content=b"file riscv64")
    first = buildkit_index(pusher, REPO, "1.0", [(amd64, "amd64"), (arm64, "arm64")])
    # A rebuild that changed only arm64 shares the amd64 manifest with the first index.
    second = buildkit_index(pusher, REPO, "1.1", [(amd64, "amd64"), (riscv, "riscv64")])
    policy = str(write_policy(tmp_path / "policy.yaml", plain_registry))
    path = tmp_path / "quarantine.yaml"
    file = str(path)
    ref = plain_registry.ref

    def add_index(reason: str, target: str) -> int:
        return cli("quarantine", "add", "--file", file, "--policy", policy, "--reason", reason, target)

    # quarantined on its own first: no index removal may lift it
    assert cli("quarantine", "add", "--file", file, "--reason", "own CVE", riscv.digest) == 0
    capsys.readouterr()
    assert add_index("CVE-A", ref(REPO, digest=first.digest)) == 0
    assert add_index("CVE-B", ref(REPO, "1.1", digest=second.digest)) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-3:] == [
        f"{second.digest}: added in {path}",
        f"{amd64.digest}: updated in {path} (platform linux/amd64 of index {second.digest})",
        f"{riscv.digest}: already quarantined on its own in {path}, kept "
        f"(platform linux/riscv64 of index {second.digest})",
    ]
    # The attestation manifests (platform unknown/unknown) are not images any node pulls: not recorded.
    assert entries(path) == {
        riscv.digest: ("own CVE", (), ""),
        first.digest: ("CVE-A", (), ""),
        amd64.digest: ("CVE-B", (first.digest, second.digest), "linux/amd64"),
        arm64.digest: ("CVE-A", (first.digest,), "linux/arm64"),
        second.digest: ("CVE-B", (), ""),
    }
    assert cli("quarantine", "list", "--file", file) == 0
    listed = {row.split("\t")[0]: row.split("\t")[3] for row in capsys.readouterr().out.splitlines()}
    assert listed[amd64.digest] == f"platform linux/amd64 of index {first.digest} and 1 more"
    assert listed[first.digest] == "-"
    assert cli("quarantine", "list", "--file", file, "-o", "json") == 0
    as_json = {item["digest"]: item for item in json.loads(capsys.readouterr().out)}
    assert {d: (i["reason"], tuple(i["indexes"]), i["platform"]) for d, i in as_json.items()} == entries(path)
    assert as_json[amd64.digest]["relation"] == listed[amd64.digest]
    assert all(parse_rfc3339(item["since"]) for item in as_json.values())

    # Removing an index needs no registry: what it brought in is recorded in the file.
    assert cli("quarantine", "remove", "--file", file, first.digest) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"{first.digest}: removed from {path}",
        f"{amd64.digest}: kept in {path}, still recorded for index {second.digest} "
        f"(platform linux/amd64 of index {first.digest})",
        f"{arm64.digest}: removed from {path} (platform linux/arm64 of index {first.digest})",
    ]
    assert cli("quarantine", "remove", "--file", file, ref(REPO, digest=second.digest)) == 0
    assert entries(path) == {riscv.digest: ("own CVE", (), "")}

    # Lifting one platform manifest of a quarantined index says what stays quarantined.
    assert add_index("CVE-A", ref(REPO, digest=first.digest)) == 0
    capsys.readouterr()
    assert cli("quarantine", "remove", "--file", file, amd64.digest) == 0
    assert f"it was quarantined as a manifest of index {first.digest}" in capsys.readouterr().err


def test_file_add_of_an_image_that_cannot_be_read_records_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "quarantine.yaml"
    digest = "sha256:" + "a" * 64
    host = refused_address()
    code = cli(
        "quarantine",
        "add",
        "--file",
        str(path),
        "--insecure-registry",
        host,
        "--reason",
        "r",
        f"{host}/app@{digest}",
    )
    assert code == 1
    assert not path.exists()
    err = capsys.readouterr().err
    assert f"{host}/app@{digest}: [registry-error] cannot read it to find the manifests it lists" in err
    assert (
        "nothing was recorded (reach its registry with --policy, or --credentials/--ca-file; or give" in err
    )


def test_registry_add_of_an_index_marks_its_platform_manifests_and_remove_takes_them_back(
    plain_registry: RegistryServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pusher = plain_registry.pusher()
    amd64 = pusher.push_image(REPO, None, arch="amd64", content=b"registry amd64")
    arm64 = pusher.push_image(REPO, None, arch="arm64", content=b"registry arm64")
    inner = pusher.push_index(REPO, None, [(arm64, "linux", "arm64")])
    index = pusher.push_manifest(
        REPO,
        json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_INDEX,
                "manifests": [
                    amd64.descriptor(platform={"os": "linux", "architecture": "amd64"}),
                    inner.descriptor(),
                ],
            }
        ).encode(),
        OCI_INDEX,
    )
    policy = str(write_policy(tmp_path / "policy.yaml", plain_registry))
    target = plain_registry.ref(REPO, digest=index.digest)
    repo = ImageRef.parse(target)

    # amd64 was quarantined on its own before: removing the index's quarantine must keep that marker.
    own = plain_registry.ref(REPO, digest=amd64.digest)
    assert cli("quarantine", "add", "--registry", "--policy", policy, "--reason", "own", own) == 0
    assert (
        cli("quarantine", "add", "--registry", "--policy", policy, "--reason", "CVE-X", "--by", "sec", target)
        == 0
    )
    rows = capsys.readouterr().out.splitlines()[1:]
    assert [row.split(": ")[0] for row in rows] == [
        target,
        own,
        plain_registry.ref(REPO, digest=inner.digest),
        plain_registry.ref(REPO, digest=arm64.digest),
    ]
    assert rows[1].endswith(f"added (platform linux/amd64 of index {index.digest})")
    assert rows[2].endswith(f"added (manifest of index {index.digest})")  # a nested index names no platform

    with RegistryClient(plain_registry.settings()) as client:
        markers = list_markers(client, repo, arm64.digest, deadline=Deadline.after(5))
    assert [(m.entry.reason, m.entry.by, m.entry.indexes, m.entry.platform) for m in markers] == [
        ("CVE-X", "sec", (index.digest,), "linux/arm64")
    ]

    assert cli("quarantine", "list", "--registry", "--policy", policy, target) == 0
    listed = [row.split("\t") for row in capsys.readouterr().out.splitlines()]
    # The index first, then what it lists; one manifest's two markers come in either order.
    assert [row[0] for row in listed] == [
        target,
        own,
        own,
        *(plain_registry.ref(REPO, digest=d) for d in (inner.digest, arm64.digest)),
    ]
    assert sorted((row[0], row[4], row[5]) for row in listed) == sorted(
        [
            (target, "-", "CVE-X"),
            (own, "-", "own"),
            (own, f"platform linux/amd64 of index {index.digest}", "CVE-X"),
            (plain_registry.ref(REPO, digest=inner.digest), f"manifest of index {index.digest}", "CVE-X"),
            (
                plain_registry.ref(REPO, digest=arm64.digest),
                f"platform linux/arm64 of index {index.digest}",
                "CVE-X",
            ),
        ]
    )

    assert cli("quarantine", "remove", "--registry", "--policy", policy, target) == 0
    assert len(capsys.readouterr().out.splitlines()) == 4
    with RegistryClient(plain_registry.settings()) as client:
        left = {
            digest: [m.entry.reason for m in list_markers(client, repo, digest, deadline=Deadline.after(5))]
            for digest in (index.digest, amd64.digest, inner.digest, arm64.digest)
        }
    assert left == {index.digest: [], amd64.digest: ["own"], inner.digest: [], arm64.digest: []}


def test_registry_remove_of_an_index_that_is_gone_removes_its_own_markers_and_says_what_is_left(
    plain_registry: RegistryServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pusher = plain_registry.pusher()
    index, amd64, _ = pusher.push_multiarch("demo/gone", "1.0")
    policy = str(write_policy(tmp_path / "policy.yaml", plain_registry))
    target = plain_registry.ref("demo/gone", digest=index.digest)
    assert cli("quarantine", "add", "--registry", "--policy", policy, "--reason", "r", target) == 0
    assert pusher.delete_manifest("demo/gone", index.digest) == 202
    capsys.readouterr()
    # What is left can still be listed: the index's own markers, then why the rest cannot be.
    assert cli("quarantine", "list", "--registry", "--policy", policy, target) == 1
    captured = capsys.readouterr()
    assert [row.split("\t")[0] for row in captured.out.splitlines()] == [target]
    assert "cannot read it to find the manifests it lists" in captured.err

    assert cli("quarantine", "remove", "--registry", "--policy", policy, target) == 1
    captured = capsys.readouterr()
    assert captured.out.startswith(f"{target}: quarantine marker sha256:")
    assert "markers of those manifests were not removed" in captured.err
    child = plain_registry.ref("demo/gone", digest=amd64.digest)
    with RegistryClient(plain_registry.settings()) as client:
        kept = list_markers(client, ImageRef.parse(child), amd64.digest, deadline=Deadline.after(5))
    assert [m.entry.indexes for m in kept] == [(index.digest,)]

    # Lifting the platform manifest itself says that its index's quarantine does not cover it any more.
    assert cli("quarantine", "remove", "--registry", "--policy", policy, child) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith(f"{child}: quarantine marker sha256:")
    assert f"{child}: warning: it was quarantined as a manifest of index {index.digest}" in captured.err


def test_registry_add_of_a_huge_index_marks_nothing(
    plain_registry: RegistryServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pusher = plain_registry.pusher()
    image = pusher.push_image("demo/huge", None)
    document = json.loads(image.body)
    # The registry checks that an index's entries exist: push that many (tiny) manifests.
    children = [
        pusher.push_manifest(
            "demo/huge", json.dumps({**document, "annotations": {"n": str(n)}}).encode(), OCI_MANIFEST
        )
        for n in range(MAX_ENTRIES + 1)
    ]
    body = json.dumps(
        {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [c.descriptor() for c in children]}
    )
    index = pusher.push_manifest("demo/huge", body.encode(), OCI_INDEX)
    policy = str(write_policy(tmp_path / "policy.yaml", plain_registry))
    target = plain_registry.ref("demo/huge", digest=index.digest)
    assert cli("quarantine", "add", "--registry", "--policy", policy, "--reason", "r", target) == 1
    assert (
        f"lists {MAX_ENTRIES + 1} manifests, more than imagegate checks ({MAX_ENTRIES})"
        in capsys.readouterr().err
    )
    assert pusher.fallback_index("demo/huge", index.digest) is None  # no marker was written
