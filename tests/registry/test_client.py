"""RegistryClient against real docker-registry processes in all three modes (plain, TLS+Basic, token)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import pytest

from tests.support.oci import OCI_INDEX, OCI_MANIFEST, sha256
from tests.support.registry import RegistryServer
from webhook.deadline import Deadline
from webhook.errors import RegistryError
from webhook.images.reference import ImageRef
from webhook.registry import RegistryClient
from webhook.registry.port import MEDIA_OCI_INDEX, MEDIA_OCI_MANIFEST, fallback_tag

pytestmark = pytest.mark.registry


@pytest.fixture(params=["plain", "tls", "token"])
def registry(request: pytest.FixtureRequest) -> RegistryServer:
    server: RegistryServer = request.getfixturevalue(f"{request.param}_registry")
    return server


@pytest.fixture
def client(registry: RegistryServer) -> Iterator[RegistryClient]:
    with RegistryClient(registry.settings()) as instance:
        yield instance


def repo(registry: RegistryServer, name: str = "demo/app") -> ImageRef:
    return ImageRef.parse(registry.ref(name))


def test_resolve_tag_gives_the_pushed_manifest_digest(
    registry: RegistryServer, client: RegistryClient, deadline: Deadline
) -> None:
    image = registry.pusher().push_image("demo/app", "resolve-v1")
    assert client.resolve(repo(registry), "resolve-v1", deadline=deadline) == image.digest


def test_resolve_multi_arch_tag_gives_the_index_digest(
    registry: RegistryServer, client: RegistryClient, deadline: Deadline
) -> None:
    index, amd64, arm64 = registry.pusher().push_multiarch("demo/app", "multi")
    resolved = client.resolve(repo(registry), "multi", deadline=deadline)
    assert resolved == index.digest
    assert resolved not in (amd64.digest, arm64.digest)
    fetched = client.manifest(repo(registry), resolved, deadline=deadline)
    assert fetched.media_type == MEDIA_OCI_INDEX
    assert fetched.body == index.body
    assert [m["digest"] for m in fetched.json()["manifests"]] == [amd64.digest, arm64.digest]


def test_resolve_by_digest_confirms_it(
    registry: RegistryServer, client: RegistryClient, deadline: Deadline
) -> None:
    image = registry.pusher().push_image("demo/app", "by-digest")
    assert client.resolve(repo(registry), image.digest, deadline=deadline) == image.digest


def test_unknown_tag_is_a_clear_registry_error(
    registry: RegistryServer, client: RegistryClient, deadline: Deadline
) -> None:
    with pytest.raises(RegistryError) as caught:
        client.resolve(repo(registry), "no-such-tag", deadline=deadline)
    assert caught.value.code == "registry-error"
    assert f"{registry.host}/demo/app:no-such-tag" in caught.value.user_message
    assert "not found" in caught.value.user_message


def test_manifest_and_blob_by_digest_are_the_pushed_bytes(
    registry: RegistryServer, client: RegistryClient, deadline: Deadline
) -> None:
    image = registry.pusher().push_image("demo/app", "content")
    manifest = client.manifest(repo(registry), image.digest, deadline=deadline)
    assert (manifest.digest, manifest.media_type, manifest.body) == (
        image.digest,
        MEDIA_OCI_MANIFEST,
        image.body,
    )
    config = manifest.json()["config"]
    blob = client.blob(repo(registry), config["digest"], deadline=deadline, max_bytes=1024 * 1024)
    assert sha256(blob) == config["digest"]
    assert json.loads(blob)["architecture"] == "amd64"


def test_blob_larger_than_the_cap_is_refused(
    registry: RegistryServer, client: RegistryClient, deadline: Deadline
) -> None:
    blob = registry.pusher().push_blob("demo/app", b"x" * 5000)
    with pytest.raises(RegistryError, match="exceeds the limit of 4096 bytes"):
        client.blob(repo(registry), blob.digest, deadline=deadline, max_bytes=4096)


def test_manifest_if_exists_is_none_for_an_unknown_tag(
    registry: RegistryServer, client: RegistryClient, deadline: Deadline
) -> None:
    assert client.manifest_if_exists(repo(registry), "sha256-" + "0" * 64 + ".sig", deadline=deadline) is None


def test_referrers_use_the_tag_fallback_and_filter_by_artifact_type(
    registry: RegistryServer, client: RegistryClient, deadline: Deadline
) -> None:
    pusher = registry.pusher()
    subject = pusher.push_image("demo/app", "with-referrers")
    sig = pusher.push_artifact("demo/app", subject=subject, artifact_type="application/vnd.example.sig")
    sbom = pusher.push_artifact("demo/app", subject=subject, artifact_type="application/vnd.example.sbom")
    assert client.referrers(repo(registry), subject.digest, deadline=deadline) == ()
    pusher.put_fallback_index(
        "demo/app",
        subject.digest,
        [
            sig.descriptor(artifactType="application/vnd.example.sig", annotations={"k": "v"}),
            sbom.descriptor(artifactType="application/vnd.example.sbom"),
        ],
    )
    found = client.referrers(repo(registry), subject.digest, deadline=deadline)
    assert [d.digest for d in found] == [sig.digest, sbom.digest]
    assert found[0].annotations == {"k": "v"}
    only = client.referrers(
        repo(registry), subject.digest, deadline=deadline, artifact_type="application/vnd.example.sbom"
    )
    assert [(d.digest, d.artifact_type, d.size) for d in only] == [
        (sbom.digest, "application/vnd.example.sbom", sbom.size)
    ]


def test_push_resolve_and_delete_through_the_client(
    registry: RegistryServer, client: RegistryClient, deadline: Deadline
) -> None:
    target = repo(registry, "demo/pushed")
    config = client.push_blob(target, b'{"architecture":"amd64","os":"linux"}', deadline=deadline)
    layer = client.push_blob(target, b"layer-bytes", deadline=deadline)
    body = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config.digest,
                "size": 37,
            },
            "layers": [{"mediaType": "application/octet-stream", "digest": layer.digest, "size": layer.size}],
        }
    ).encode()
    digest = client.push_manifest(target, body, OCI_MANIFEST, deadline=deadline, tag="pushed")
    assert digest == sha256(body)
    assert client.resolve(target, "pushed", deadline=deadline) == digest
    # pushing the same blob again is a no-op that still describes it
    assert client.push_blob(target, b"layer-bytes", deadline=deadline).digest == layer.digest
    client.delete_manifest(target, digest, deadline=deadline)
    assert client.manifest_if_exists(target, digest, deadline=deadline) is None
    client.delete_manifest(target, digest, deadline=deadline)  # already gone: not an error


def test_fallback_index_tag_is_readable_as_an_index(
    registry: RegistryServer, client: RegistryClient, deadline: Deadline
) -> None:
    pusher = registry.pusher()
    subject = pusher.push_image("demo/app", "fallback-read")
    pushed = pusher.put_fallback_index("demo/app", subject.digest, [])
    found = client.manifest_if_exists(repo(registry), fallback_tag(subject.digest), deadline=deadline)
    assert found is not None
    assert (found.digest, found.media_type) == (pushed.digest, OCI_INDEX)


def test_one_client_serves_many_threads(token_registry: RegistryServer) -> None:
    pusher = token_registry.pusher()
    images = {f"t{n}": pusher.push_image("demo/threads", f"t{n}") for n in range(6)}
    repo = ImageRef.parse(token_registry.ref("demo/threads"))
    results: dict[str, str] = {}
    errors: list[BaseException] = []

    def work(tag: str) -> None:
        try:
            for _ in range(3):
                results[tag] = client.resolve(repo, tag, deadline=Deadline.after(10.0))
        except BaseException as error:  # collected and asserted below
            errors.append(error)

    with RegistryClient(token_registry.settings()) as client:
        threads = [threading.Thread(target=work, args=(tag,)) for tag in images]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    assert not errors
    assert results == {tag: image.digest for tag, image in images.items()}


def test_concurrent_first_referrers_lookups_probe_the_referrers_api_once(
    registry: RegistryServer, client: RegistryClient, deadline: Deadline
) -> None:
    pusher = registry.pusher()
    subjects = [pusher.push_image("demo/probe", f"probe-{n}") for n in range(8)]
    client.resolve(repo(registry, "demo/probe"), "probe-0", deadline=deadline)  # the host is contacted
    before = registry.requests(path=r"/referrers/")
    start = threading.Barrier(len(subjects), timeout=10)
    errors: list[BaseException] = []

    def lookup(digest: str) -> None:
        start.wait()
        try:
            assert client.referrers(repo(registry, "demo/probe"), digest, deadline=deadline) == ()
        except BaseException as error:  # reported below, on the test's thread
            errors.append(error)

    threads = [threading.Thread(target=lookup, args=(s.digest,)) for s in subjects]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert errors == []
    # The first answer (404: no referrers API) is what the others wait for, and then believe.
    assert registry.requests(path=r"/referrers/") - before == 1
    assert registry.requests(path=r"/manifests/sha256-") >= len(subjects)
