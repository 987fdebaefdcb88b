"""What an index lists for quarantine: platforms, attestations, nesting, duplicates and hostile indexes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support.memory_registry import OCI_INDEX, OCI_MANIFEST, InMemoryRegistry, PushedImage
from webhook.deadline import Deadline
from webhook.errors import RegistryError
from webhook.facts import ListedManifest
from webhook.images.reference import ImageRef
from webhook.registry.listing import MAX_DEPTH, MAX_ENTRIES, IndexEntry, index_entries, listed_manifests
from webhook.registry.port import MEDIA_DOCKER_LIST

REPO = ImageRef.parse("ghcr.io/acme/app")
D = ["sha256:" + f"{n:x}" * 64 for n in range(10)]


def entry(digest: str, **extra: Any) -> dict[str, Any]:
    return {"mediaType": OCI_MANIFEST, "digest": digest, "size": 100, **extra}


def platform(os_name: str, arch: str, variant: str | None = None) -> dict[str, str]:
    return {"os": os_name, "architecture": arch, **({"variant": variant} if variant else {})}


ATTESTATION = {"vnd.docker.reference.type": "attestation-manifest", "vnd.docker.reference.digest": D[1]}


def test_entries_name_their_platform_and_buildkit_attestations() -> None:
    document = {
        "manifests": [
            entry(D[1], platform=platform("linux", "amd64")),
            entry(D[2], platform=platform("linux", "arm", "v7")),
            entry(D[3]),  # no platform: a runtime selects it on any node
            entry(D[4], platform=platform("unknown", "unknown"), annotations=ATTESTATION),
            # The annotation alone does not make an attestation: this one is runnable on amd64 nodes.
            entry(D[5], platform=platform("linux", "amd64"), annotations=ATTESTATION),
            {"mediaType": OCI_INDEX, "digest": D[6], "size": 5},
        ]
    }
    assert index_entries(document, what="x") == (
        IndexEntry(D[1], OCI_MANIFEST, "linux/amd64"),
        IndexEntry(D[2], OCI_MANIFEST, "linux/arm/v7"),
        IndexEntry(D[3], OCI_MANIFEST, ""),
        IndexEntry(D[4], OCI_MANIFEST, "unknown/unknown", attestation=True),
        IndexEntry(D[5], OCI_MANIFEST, "linux/amd64"),
        IndexEntry(D[6], OCI_INDEX, ""),
    )
    assert index_entries({}, what="x") == ()  # a manifest, not an index
    hostile = entry(D[1], platform=platform("linux\x1b[2J", "amd64 /x"))
    assert index_entries({"manifests": [hostile]}, what="x")[0].platform == "linux??2J/amd64??x"


@pytest.mark.parametrize(
    ("manifests", "fragment"),
    [
        ("nope", "has no 'manifests' list"),
        (["nope"], "manifests[0] is not a JSON object"),
        ([entry("sha512:" + "a" * 128)], "compares sha256 digests only"),
        ([entry("sha256:ABC")], "compares sha256 digests only"),
        ([{"digest": D[1], "size": 1}], "has no mediaType"),
        ([entry(D[1], platform="linux/amd64")], "platform that is not a JSON object"),
        ([entry(D[1], annotations=["x"])], "annotations that are not a JSON object"),
        ([entry(D[1])] * (MAX_ENTRIES + 1), f"lists {MAX_ENTRIES + 1} manifests, more than imagegate checks"),
    ],
)
def test_entries_that_cannot_be_checked_fail_closed(manifests: object, fragment: str) -> None:
    with pytest.raises(RegistryError) as caught:
        index_entries({"manifests": manifests}, what="ghcr.io/acme/app@sha256:x")
    assert fragment in caught.value.user_message
    assert caught.value.user_message.startswith("ghcr.io/acme/app@sha256:x")


def push_index(registry: InMemoryRegistry, entries: list[dict[str, Any]], media_type: str = OCI_INDEX) -> str:
    body = json.dumps({"schemaVersion": 2, "mediaType": media_type, "manifests": entries}).encode()
    return registry.put_manifest(REPO, body, media_type)


def described(image: PushedImage, os_arch: tuple[str, str], **extra: Any) -> dict[str, Any]:
    return {**entry(image.digest, platform=platform(*os_arch)), "mediaType": image.media_type, **extra}


def listed(registry: InMemoryRegistry, digest: str) -> tuple[ListedManifest, ...]:
    return listed_manifests(registry, REPO, digest, deadline=Deadline.after(5))


def test_a_single_manifest_lists_nothing() -> None:
    registry = InMemoryRegistry()
    image = registry.push_image(REPO, "v1")
    assert listed(registry, image.digest) == ()


@pytest.mark.parametrize("media_type", [OCI_INDEX, MEDIA_DOCKER_LIST])
def test_an_index_lists_its_platform_manifests_once_each(media_type: str) -> None:
    registry = InMemoryRegistry()
    amd64, arm64 = (
        registry.push_image(REPO, None, arch="amd64"),
        registry.push_image(REPO, None, arch="arm64"),
    )
    index = push_index(
        registry,
        [
            described(amd64, ("linux", "amd64")),
            described(arm64, ("linux", "arm64")),
            described(amd64, ("linux", "amd64")),  # listed twice: checked once
            entry(D[7], platform=platform("unknown", "unknown"), annotations=ATTESTATION),
        ],
        media_type,
    )
    assert listed(registry, index) == (
        ListedManifest(amd64.digest, "linux/amd64", index),
        ListedManifest(arm64.digest, "linux/arm64", index),
    )


def test_nested_indexes_are_listed_with_what_they_list() -> None:
    registry = InMemoryRegistry()
    amd64, arm64 = (
        registry.push_image(REPO, None, arch="amd64"),
        registry.push_image(REPO, None, arch="arm64"),
    )
    inner = push_index(registry, [described(arm64, ("linux", "arm64"))])
    outer = push_index(
        registry, [described(amd64, ("linux", "amd64")), {"mediaType": OCI_INDEX, "digest": inner, "size": 1}]
    )
    assert listed(registry, outer) == (
        ListedManifest(amd64.digest, "linux/amd64", outer),
        ListedManifest(inner, "", outer),
        ListedManifest(arm64.digest, "linux/arm64", inner),
    )


def test_a_nested_index_the_registry_does_not_have_fails_closed() -> None:
    registry = InMemoryRegistry()
    outer = push_index(registry, [{"mediaType": OCI_INDEX, "digest": D[3], "size": 1}])
    with pytest.raises(RegistryError, match="not found"):
        listed(registry, outer)


def test_nesting_deeper_than_the_limit_fails_closed() -> None:
    registry = InMemoryRegistry()
    digest = registry.push_image(REPO, None).digest
    media_type = OCI_MANIFEST
    for _ in range(MAX_DEPTH + 1):
        digest = push_index(registry, [{"mediaType": media_type, "digest": digest, "size": 1}])
        media_type = OCI_INDEX
    # MAX_DEPTH indexes below the admitted one, the last listing a manifest: the deepest allowed.
    assert len(listed(registry, digest)) == MAX_DEPTH + 1
    top = push_index(registry, [{"mediaType": OCI_INDEX, "digest": digest, "size": 1}])
    with pytest.raises(RegistryError, match=f"nested more than {MAX_DEPTH} levels deep"):
        listed(registry, top)


def test_too_many_manifests_through_nested_indexes_fail_closed() -> None:
    registry = InMemoryRegistry()
    half = MAX_ENTRIES // 2 + 1
    inner = [
        push_index(registry, [entry(f"sha256:{n:064x}") for n in range(k * half, (k + 1) * half)])
        for k in (0, 1)
    ]
    outer = push_index(registry, [{"mediaType": OCI_INDEX, "digest": d, "size": 1} for d in inner])
    with pytest.raises(RegistryError, match=f"name more than {MAX_ENTRIES} manifests"):
        listed(registry, outer)


def test_a_registry_that_fails_fails_the_listing() -> None:
    registry = InMemoryRegistry()
    image = registry.push_image(REPO, "v1")
    registry.fail.add("manifest")
    with pytest.raises(RegistryError, match="injected failure"):
        listed(registry, image.digest)
