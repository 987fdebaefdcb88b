"""The registry port's contract, held by the in-memory fake and by the real client alike.

Every check runs twice: against ``tests.support.memory_registry.InMemoryRegistry`` (what the
verification, quarantine and listing tests use) and against :class:`RegistryClient` talking to Debian's
docker-registry. A check that passes for one and fails for the other is a fake that drifted from the real
behaviour. Content is pushed through the port itself; referrers are pushed as OCI 1.1 clients push them
(a manifest with a ``subject``, listed in the ``sha256-<hex>`` fallback index too), since
docker-registry 2.8 has no referrers API and answers from that index, while the fake answers from the
subjects as the API does. (A registry that serves content of another digest cannot be played by the
fake, which never lies: the client's own tests cover it, in test_transport_faults.py.)
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.support.memory_registry import InMemoryRegistry
from tests.support.registry import RegistryServer
from webhook.deadline import Deadline
from webhook.errors import RegistryError
from webhook.images.reference import ImageRef
from webhook.registry import RegistryClient
from webhook.registry.markers import QUARANTINE_ARTIFACT_TYPE, add_marker, list_markers, remove_marker
from webhook.registry.port import (
    MEDIA_DOCKER_LIST,
    MEDIA_DOCKER_MANIFEST,
    MEDIA_OCI_INDEX,
    MEDIA_OCI_MANIFEST,
    Descriptor,
    Manifest,
    Registry,
    fallback_tag,
    sha256_digest,
)

BUNDLE_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
CONFIG_TYPES = {
    MEDIA_OCI_MANIFEST: "application/vnd.oci.image.config.v1+json",
    MEDIA_DOCKER_MANIFEST: "application/vnd.docker.container.image.v1+json",
}
LAYER_TYPES = {
    MEDIA_OCI_MANIFEST: "application/vnd.oci.image.layer.v1.tar+gzip",
    MEDIA_DOCKER_MANIFEST: "application/vnd.docker.image.rootfs.diff.tar.gzip",
}
INDEX_OF = {MEDIA_OCI_MANIFEST: MEDIA_OCI_INDEX, MEDIA_DOCKER_MANIFEST: MEDIA_DOCKER_LIST}


@dataclass
class Side:
    """One implementation of the port and a fresh repository on it."""

    port: Registry
    repo: ImageRef

    def push_image(
        self, tag: str | None, *, arch: str = "amd64", media_type: str = MEDIA_OCI_MANIFEST
    ) -> Manifest:
        config = self.push_blob(
            json.dumps({"architecture": arch, "os": "linux"}).encode(), CONFIG_TYPES[media_type]
        )
        layer = self.push_blob(f"layer of {arch} {uuid.uuid4()}".encode(), LAYER_TYPES[media_type])
        # Not canonical JSON on purpose: the bytes served must be the bytes pushed.
        body = json.dumps(
            {"schemaVersion": 2, "mediaType": media_type, "config": config, "layers": [layer]}, indent=1
        ).encode()
        return self.push_manifest(body, media_type, tag)

    def push_index(self, tag: str | None, images: list[tuple[Manifest, str]], media_type: str) -> Manifest:
        manifests = [
            {
                "mediaType": image.media_type,
                "digest": image.digest,
                "size": len(image.body),
                "platform": {"os": "linux", "architecture": arch},
            }
            for image, arch in images
        ]
        body = json.dumps({"schemaVersion": 2, "mediaType": media_type, "manifests": manifests}).encode()
        return self.push_manifest(body, media_type, tag)

    def push_blob(self, data: bytes, media_type: str) -> dict[str, Any]:
        descriptor = self.port.push_blob(self.repo, data, deadline=_deadline())
        assert descriptor.digest == sha256_digest(data)
        assert descriptor.size == len(data)
        return {"mediaType": media_type, "digest": descriptor.digest, "size": descriptor.size}

    def push_manifest(self, body: bytes, media_type: str, tag: str | None) -> Manifest:
        digest = self.port.push_manifest(self.repo, body, media_type, deadline=_deadline(), tag=tag)
        assert digest == sha256_digest(body)
        return Manifest(digest=digest, media_type=media_type, body=body)

    def push_referrer(
        self, subject: Manifest, *, artifact_type: str, annotations: dict[str, str]
    ) -> Descriptor:
        """An artifact manifest about ``subject``, pushed and listed in its fallback index (OCI 1.1)."""
        bundle = self.push_blob(b'{"mediaType": "bundle"}', artifact_type)
        empty = self.push_blob(b"{}", "application/vnd.oci.empty.v1+json")
        body = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": MEDIA_OCI_MANIFEST,
                "artifactType": artifact_type,
                "config": empty,
                "layers": [bundle],
                "subject": {
                    "mediaType": subject.media_type,
                    "digest": subject.digest,
                    "size": len(subject.body),
                },
                "annotations": annotations,
            }
        ).encode()
        pushed = self.push_manifest(body, MEDIA_OCI_MANIFEST, None)
        descriptor = Descriptor(
            media_type=MEDIA_OCI_MANIFEST,
            digest=pushed.digest,
            size=len(body),
            artifact_type=artifact_type,
            annotations=annotations,
        )
        index = {"schemaVersion": 2, "mediaType": MEDIA_OCI_INDEX, "manifests": [descriptor.to_json()]}
        self.push_manifest(json.dumps(index).encode(), MEDIA_OCI_INDEX, fallback_tag(subject.digest))
        return descriptor


def _deadline() -> Deadline:
    return Deadline.after(10.0)


@pytest.fixture(
    params=[
        pytest.param("memory", id="memory"),
        pytest.param("docker-registry", id="docker-registry", marks=pytest.mark.registry),
    ]
)
def side(request: pytest.FixtureRequest) -> Iterator[Side]:
    repository = f"contract/{uuid.uuid4().hex[:12]}"
    if request.param == "memory":
        yield Side(InMemoryRegistry(), ImageRef.parse(f"registry.example.com/{repository}"))
        return
    server: RegistryServer = request.getfixturevalue("plain_registry")
    client = RegistryClient(server.settings())
    try:
        yield Side(client, ImageRef.parse(server.ref(repository)))
    finally:
        client.close()


# --- manifests -------------------------------------------------------------------------------------


@pytest.mark.parametrize("media_type", [MEDIA_OCI_MANIFEST, MEDIA_DOCKER_MANIFEST])
def test_a_manifest_resolves_and_is_served_by_tag_and_by_digest(side: Side, media_type: str) -> None:
    pushed = side.push_image("v1", media_type=media_type)
    port, repo = side.port, side.repo
    assert port.resolve(repo, "v1", deadline=_deadline()) == pushed.digest
    assert port.resolve(repo, pushed.digest, deadline=_deadline()) == pushed.digest
    assert port.manifest(repo, "v1", deadline=_deadline()) == pushed
    assert port.manifest(repo, pushed.digest, deadline=_deadline()) == pushed
    assert port.manifest_if_exists(repo, "v1", deadline=_deadline()) == pushed
    assert port.manifest_if_exists(repo, pushed.digest, deadline=_deadline()) == pushed


@pytest.mark.parametrize("image_type", [MEDIA_OCI_MANIFEST, MEDIA_DOCKER_MANIFEST])
def test_an_index_resolves_to_its_own_digest_and_lists_what_was_pushed(side: Side, image_type: str) -> None:
    amd64 = side.push_image(None, arch="amd64", media_type=image_type)
    arm64 = side.push_image(None, arch="arm64", media_type=image_type)
    index = side.push_index("multi", [(amd64, "amd64"), (arm64, "arm64")], INDEX_OF[image_type])
    port, repo = side.port, side.repo
    assert port.resolve(repo, "multi", deadline=_deadline()) == index.digest
    served = port.manifest(repo, index.digest, deadline=_deadline())
    assert served == index
    assert served.is_index
    listed = [entry["digest"] for entry in served.json()["manifests"]]
    assert listed == [amd64.digest, arm64.digest]
    assert [port.manifest(repo, digest, deadline=_deadline()) for digest in listed] == [amd64, arm64]


def test_a_tag_moved_to_another_manifest_resolves_to_the_new_one(side: Side) -> None:
    first = side.push_image("moving", arch="amd64")
    second = side.push_image("moving", arch="arm64")
    assert first.digest != second.digest
    assert side.port.resolve(side.repo, "moving", deadline=_deadline()) == second.digest
    assert side.port.manifest(side.repo, first.digest, deadline=_deadline()) == first


def test_unknown_tags_and_digests(side: Side) -> None:
    side.push_image("v1")
    port, repo = side.port, side.repo
    unknown = sha256_digest(b"never pushed")
    assert port.manifest_if_exists(repo, "v2", deadline=_deadline()) is None
    assert port.manifest_if_exists(repo, unknown, deadline=_deadline()) is None
    for call in (
        lambda: port.resolve(repo, "v2", deadline=_deadline()),
        lambda: port.resolve(repo, unknown, deadline=_deadline()),
        lambda: port.manifest(repo, "v2", deadline=_deadline()),
        lambda: port.manifest(repo, unknown, deadline=_deadline()),
        lambda: port.blob(repo, unknown, deadline=_deadline(), max_bytes=1024),
    ):
        with pytest.raises(RegistryError) as failure:
            call()
        assert failure.value.code == "registry-error"


def test_content_in_one_repository_is_not_served_from_another(side: Side) -> None:
    pushed = side.push_image("v1")
    other = ImageRef.parse(f"{side.repo.registry}/{side.repo.repository}-other")
    assert side.port.manifest_if_exists(other, pushed.digest, deadline=_deadline()) is None
    assert side.port.manifest_if_exists(other, "v1", deadline=_deadline()) is None


@pytest.mark.parametrize(
    ("call", "argument"),
    [
        ("manifest", "not a tag!"),
        ("manifest_if_exists", "-leading-dash"),
        ("resolve", "sha256:ABC"),
        ("blob", "sha256:" + "0" * 63),
        ("blob", "md5:" + "0" * 32),
        ("referrers", "sha512:" + "0" * 128),
    ],
)
def test_malformed_references_are_refused(side: Side, call: str, argument: str) -> None:
    method = getattr(side.port, call)
    extra: dict[str, Any] = {"max_bytes": 1024} if call == "blob" else {}
    with pytest.raises(RegistryError):
        method(side.repo, argument, deadline=_deadline(), **extra)


def test_a_manifest_over_the_size_cap_is_refused(side: Side) -> None:
    cap = 4 * 1024 * 1024  # RegistrySettings.manifest_max_bytes: distribution's own limit
    body = json.dumps({"schemaVersion": 2, "mediaType": MEDIA_OCI_MANIFEST, "pad": "x" * cap}).encode()
    with pytest.raises(RegistryError):
        side.port.push_manifest(side.repo, body, MEDIA_OCI_MANIFEST, deadline=_deadline(), tag="big")
    assert side.port.manifest_if_exists(side.repo, "big", deadline=_deadline()) is None


def test_a_deleted_manifest_is_gone_and_deleting_it_again_is_fine(side: Side) -> None:
    pushed = side.push_image("v1")
    port, repo = side.port, side.repo
    port.delete_manifest(repo, pushed.digest, deadline=_deadline())
    assert port.manifest_if_exists(repo, pushed.digest, deadline=_deadline()) is None
    assert port.manifest_if_exists(repo, "v1", deadline=_deadline()) is None
    with pytest.raises(RegistryError):
        port.manifest(repo, pushed.digest, deadline=_deadline())
    port.delete_manifest(repo, pushed.digest, deadline=_deadline())


def test_a_spent_deadline_is_a_registry_error_before_anything_is_read(side: Side) -> None:
    side.push_image("v1")
    with pytest.raises(RegistryError):
        side.port.resolve(side.repo, "v1", deadline=Deadline(time.monotonic() - 1))


# --- blobs -----------------------------------------------------------------------------------------


def test_a_blob_is_served_exactly_within_its_byte_cap(side: Side) -> None:
    data = b"a signature bundle, say " + uuid.uuid4().bytes
    digest = side.push_blob(data, "application/octet-stream")["digest"]
    side.push_blob(data, "application/octet-stream")  # pushing it again is harmless
    port, repo = side.port, side.repo
    assert port.blob(repo, digest, deadline=_deadline(), max_bytes=len(data)) == data
    with pytest.raises(RegistryError):
        port.blob(repo, digest, deadline=_deadline(), max_bytes=len(data) - 1)


# --- referrers -------------------------------------------------------------------------------------


def test_referrers_list_what_refers_to_a_digest_and_filter_by_artifact_type(side: Side) -> None:
    image = side.push_image("v1")
    other = side.push_image("v2", arch="arm64")
    bundle = side.push_referrer(image, artifact_type=BUNDLE_TYPE, annotations={"kind": "signature"})
    port, repo = side.port, side.repo
    assert port.referrers(repo, image.digest, deadline=_deadline()) == (bundle,)
    assert port.referrers(repo, image.digest, deadline=_deadline(), artifact_type=BUNDLE_TYPE) == (bundle,)
    assert port.referrers(repo, image.digest, deadline=_deadline(), artifact_type="application/x-other") == ()
    assert port.referrers(repo, other.digest, deadline=_deadline()) == ()
    assert (
        port.manifest(repo, bundle.digest, deadline=_deadline()).json()["subject"]["digest"] == image.digest
    )


def test_quarantine_markers_round_trip_through_the_port(side: Side) -> None:
    """imagegate's own referrer writer (quarantine markers) against both: add, list, read, remove."""
    image = side.push_image("v1")
    port, repo = side.port, side.repo
    bundle = side.push_referrer(image, artifact_type=BUNDLE_TYPE, annotations={})
    marker = add_marker(port, repo, image.digest, reason="CVE-2024-0001", by="alice", deadline=_deadline())
    [found] = list_markers(port, repo, image.digest, deadline=_deadline())
    assert found.manifest_digest == marker
    assert (found.entry.reason, found.entry.by) == ("CVE-2024-0001", "alice")
    listed = {d.digest: d.artifact_type for d in port.referrers(repo, image.digest, deadline=_deadline())}
    assert listed == {bundle.digest: BUNDLE_TYPE, marker: QUARANTINE_ARTIFACT_TYPE}
    assert remove_marker(port, repo, image.digest, deadline=_deadline()) == (marker,)
    assert list_markers(port, repo, image.digest, deadline=_deadline()) == ()
    assert port.referrers(repo, image.digest, deadline=_deadline()) == (bundle,)
    assert port.manifest_if_exists(repo, marker, deadline=_deadline()) is None
