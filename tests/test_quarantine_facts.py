"""Reading the quarantine facts of a digest: listed manifests, their markers, markers seen elsewhere."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import pytest

from tests.support.memory_registry import OCI_INDEX, InMemoryRegistry, PushedImage
from webhook.deadline import Deadline
from webhook.decision import ImagePlan, quarantine_finding
from webhook.errors import RegistryError
from webhook.images.reference import ImageRef
from webhook.policy.model import Policy, QuarantineEntry, QuarantineSettings
from webhook.quarantine_facts import QuarantineFacts, QuarantineReader
from webhook.reasons import Reason
from webhook.registry.markers import add_marker, remove_marker
from webhook.registry.port import Descriptor
from webhook.seen_markers import SeenMarkers

APP, COPY = ImageRef.parse("ghcr.io/team/app"), ImageRef.parse("ghcr.io/team/copy")
POLICY = Policy(name="q", source="p.yaml", quarantine=QuarantineSettings(registry_markers=True))
PLAN = ImagePlan("x", None, check_markers=True, check_listing=True)


class Registry(InMemoryRegistry):
    """The in-memory registry, with referrers lookups that fail or hang for chosen repositories/digests."""

    def __init__(self) -> None:
        super().__init__()
        self.broken: set[str] = set()
        self.hang: set[str] = set()
        self.release = threading.Event()

    def referrers(
        self, repo: ImageRef, digest: str, *, deadline: Deadline, artifact_type: str | None = None
    ) -> tuple[Descriptor, ...]:
        if repo.repository in self.broken or digest in self.broken:
            raise RegistryError(f"{repo.name}: HTTP 503 Service Unavailable", code=Reason.REGISTRY_ERROR)
        if digest in self.hang:
            self.release.wait(5)
        return super().referrers(repo, digest, deadline=deadline, artifact_type=artifact_type)


@pytest.fixture
def registry() -> Iterator[Registry]:
    registry = Registry()
    yield registry
    registry.release.set()


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=4) as executor:
        yield executor


def reader(
    registry: Registry, pool: ThreadPoolExecutor, seen: Path, policy: Policy = POLICY
) -> QuarantineReader:
    return QuarantineReader(policy, registry, SeenMarkers(seen), pool)


def read(
    quarantine: QuarantineReader, repo: ImageRef, digest: str, *, seconds: float = 5.0
) -> QuarantineFacts:
    return quarantine.read(PLAN, repo, digest, deadline=Deadline.after(seconds))


def refused(facts: QuarantineFacts, digest: str) -> bool:
    """Whether the decision refuses ``digest`` (or fails closed) on these facts."""
    found = facts.image_facts(digest)
    return quarantine_finding(PLAN, policy=POLICY, digest=digest, facts=found) is not None


def multiarch(registry: Registry, repo: ImageRef) -> tuple[str, PushedImage, PushedImage]:
    amd64, arm64 = (
        registry.push_image(repo, None, arch="amd64"),
        registry.push_image(repo, None, arch="arm64"),
    )
    index = registry.push_index(repo, "1.0", [(amd64, "amd64"), (arm64, "arm64")])
    return index.digest, amd64, arm64


def copy(registry: Registry, digest: str, source: ImageRef, target: ImageRef) -> None:
    """Push the manifest ``digest`` of ``source`` to ``target`` (same bytes, same digest)."""
    media_type, body = registry.repo(source).manifests[digest]
    assert registry.put_manifest(target, body, media_type) == digest


def mark(registry: Registry, repo: ImageRef, digest: str, **extra: str) -> None:
    add_marker(registry, repo, digest, reason="bad build", deadline=Deadline.after(5), **extra)


def test_a_marker_seen_in_one_repository_refuses_the_digest_in_another_until_it_is_gone(
    registry: Registry, pool: ThreadPoolExecutor, tmp_path: Path
) -> None:
    image = registry.push_image(APP, "1.0")
    copy(registry, image.digest, APP, COPY)
    first, second = reader(registry, pool, tmp_path), reader(registry, pool, tmp_path)  # two workers
    assert read(second, COPY, image.digest) == QuarantineFacts()
    mark(registry, APP, image.digest)
    assert read(second, COPY, image.digest).marker is None  # nobody has seen the marker yet

    seen = read(first, APP, image.digest).marker
    assert seen is not None and seen.source == "registry"
    elsewhere = read(second, COPY, image.digest).marker
    assert elsewhere == replace(seen, source="registry marker on ghcr.io/team/app")

    remove_marker(registry, APP, image.digest, deadline=Deadline.after(5))
    assert read(second, COPY, image.digest) == QuarantineFacts()
    assert SeenMarkers(tmp_path).sightings(image.digest) == ()  # forgotten once it was really gone


def test_a_repository_that_can_no_longer_be_read_keeps_the_digest_refused(
    registry: Registry, pool: ThreadPoolExecutor, tmp_path: Path
) -> None:
    image = registry.push_image(APP, "1.0")
    copy(registry, image.digest, APP, COPY)
    mark(registry, APP, image.digest)
    quarantine = reader(registry, pool, tmp_path)
    read(quarantine, APP, image.digest)
    registry.broken.add(APP.repository)
    facts = read(quarantine, COPY, image.digest)
    assert facts.marker is None
    assert facts.marker_error is not None
    assert facts.marker_error.message == (
        "quarantine markers could not be read: a quarantine marker was seen on ghcr.io/team/app and could "
        "not be checked again: ghcr.io/team/app: HTTP 503 Service Unavailable"
    )
    assert refused(facts, image.digest)


def test_a_marker_on_an_index_refuses_what_it_lists_wherever_it_is_pinned(
    registry: Registry, pool: ThreadPoolExecutor, tmp_path: Path
) -> None:
    index, amd64, _ = multiarch(registry, APP)
    copy(registry, amd64.digest, APP, COPY)
    mark(registry, APP, index)  # a marker on the index only, as another tool might write it
    quarantine = reader(registry, pool, tmp_path)
    assert read(quarantine, COPY, amd64.digest).marker is None  # no one has admitted the index yet
    assert read(quarantine, APP, index).marker is not None
    found = read(quarantine, COPY, amd64.digest).marker
    assert found is not None
    assert (found.digest, found.source) == (amd64.digest, f"registry marker on ghcr.io/team/app@{index}")
    # ... in the index's own repository too, where the manifest has no marker of its own.
    here = read(quarantine, APP, amd64.digest).marker
    assert here is not None and here.source == f"registry marker on ghcr.io/team/app@{index}"


def test_markers_of_every_listed_manifest_are_read(
    registry: Registry, pool: ThreadPoolExecutor, tmp_path: Path
) -> None:
    index, amd64, arm64 = multiarch(registry, APP)
    mark(registry, APP, arm64.digest, index=index, platform="linux/arm64")
    facts = read(reader(registry, pool, tmp_path), APP, index)
    assert facts.marker is None and facts.marker_error is None and facts.listing_error is None
    assert [(m.digest, m.platform, m.marker is not None) for m in facts.listed] == [
        (amd64.digest, "linux/amd64", False),
        (arm64.digest, "linux/arm64", True),
    ]
    marker = facts.listed[1].marker
    assert marker is not None
    assert (marker.reason, marker.indexes, marker.platform) == ("bad build", (index,), "linux/arm64")
    assert refused(facts, index)


def test_a_listed_manifest_whose_markers_cannot_be_read_fails_closed(
    registry: Registry, pool: ThreadPoolExecutor, tmp_path: Path
) -> None:
    index, _, arm64 = multiarch(registry, APP)
    registry.broken.add(arm64.digest)
    facts = read(reader(registry, pool, tmp_path), APP, index)
    assert facts.listing_error is not None
    assert facts.listing_error.message == (
        f"quarantine markers of platform linux/arm64 manifest {arm64.digest} could not be read: "
        "ghcr.io/team/app: HTTP 503 Service Unavailable"
    )


def test_markers_not_read_within_the_deadline_fail_closed(
    registry: Registry, pool: ThreadPoolExecutor, tmp_path: Path
) -> None:
    index, amd64, _ = multiarch(registry, APP)
    registry.hang.add(amd64.digest)
    facts = read(reader(registry, pool, tmp_path), APP, index, seconds=0.3)
    registry.release.set()
    assert facts.listing_error is not None
    assert "no answer from the registry within the admission deadline" in facts.listing_error.message


def test_an_index_that_cannot_be_read_fails_closed(
    registry: Registry, pool: ThreadPoolExecutor, tmp_path: Path
) -> None:
    body = json.dumps(
        {
            "mediaType": OCI_INDEX,
            "manifests": [{"mediaType": OCI_INDEX, "digest": "sha256:" + "e" * 64, "size": 1}],
        }
    )
    index = registry.put_manifest(APP, body.encode(), OCI_INDEX)
    facts = read(reader(registry, pool, tmp_path), APP, index)
    assert facts.listing_error is not None
    assert facts.listing_error.message.startswith("the manifests of this image could not be read:")
    assert "not found" in facts.listing_error.message


def test_a_quarantine_list_entry_needs_no_lookup(
    registry: Registry, pool: ThreadPoolExecutor, tmp_path: Path
) -> None:
    index, amd64, _ = multiarch(registry, APP)
    listed = {amd64.digest: QuarantineEntry(digest=amd64.digest, reason="CVE-1")}
    policy = replace(POLICY, quarantined=listed)
    registry.calls.clear()
    assert read(reader(registry, pool, tmp_path, policy), APP, amd64.digest) == QuarantineFacts()
    assert registry.calls == []  # a pod pinned to a listed manifest costs no round trip
    facts = read(reader(registry, pool, tmp_path, policy), APP, index)
    assert next(m.digest for m in facts.listed) == amd64.digest
    assert not [call for call in registry.calls if call[0] == "referrers"]  # the list refuses it already


def test_an_image_progresses_while_the_pool_is_busy_with_other_admissions(
    registry: Registry, tmp_path: Path
) -> None:
    index, _, arm64 = multiarch(registry, APP)
    mark(registry, APP, arm64.digest)
    blocker = threading.Event()
    with ThreadPoolExecutor(max_workers=1) as busy:
        busy.submit(blocker.wait, 5)  # another admission holds the only pool thread
        try:
            facts = read(reader(registry, busy, tmp_path), APP, index, seconds=2)
        finally:
            blocker.set()
    assert facts.listing_error is None
    assert [m.marker is not None for m in facts.listed] == [False, True]
