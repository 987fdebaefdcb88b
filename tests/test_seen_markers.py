"""The store of quarantine markers seen in one repository: shared through files, bounded, tamper-tolerant."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from webhook.seen_markers import PER_DIGEST, SeenMarkers, Sighting

D1, D2, INDEX = ("sha256:" + c * 64 for c in "12f")


def sighting(digest: str = D1, repository: str = "team/app", subject: str | None = None) -> Sighting:
    return Sighting(digest, "ghcr.io", repository, subject or digest)


def test_a_sighting_is_seen_by_every_store_on_the_directory_until_forgotten(tmp_path: Path) -> None:
    # Two stores on one directory stand for two worker processes.
    first, second = SeenMarkers(tmp_path), SeenMarkers(tmp_path)
    assert second.sightings(D1) == ()
    first.remember(sighting())
    first.remember(sighting(subject=INDEX))  # the marker of an index that lists D1
    assert set(second.sightings(D1)) == {sighting(), sighting(subject=INDEX)}
    assert second.sightings(D2) == ()
    second.forget(sighting())
    assert first.sightings(D1) == (sighting(subject=INDEX),)
    second.forget(sighting(subject=INDEX))
    assert first.sightings(D1) == ()
    assert list(tmp_path.iterdir()) == []  # nothing is left behind


def test_sightings_come_most_recently_seen_first(tmp_path: Path) -> None:
    store = SeenMarkers(tmp_path)
    store.remember(sighting(repository="team/a"))
    store.remember(sighting(repository="team/b"))
    old = time.time() - 100
    for path in (tmp_path / D1.removeprefix("sha256:")).iterdir():
        os.utime(path, (old, old))
    store.remember(sighting(repository="team/a"))  # seen again
    assert [s.repository for s in store.sightings(D1)] == ["team/a", "team/b"]


def test_the_store_is_bounded_per_digest_and_in_all(tmp_path: Path) -> None:
    store = SeenMarkers(tmp_path, max_entries=12)
    for n in range(PER_DIGEST + 3):
        store.remember(sighting(repository=f"team/r{n}"))
        time.sleep(0.002)  # distinct modification times: the oldest go first
    assert [s.repository for s in store.sightings(D1)] == [f"team/r{n}" for n in range(PER_DIGEST + 2, 2, -1)]
    for n in range(10):
        store.remember(sighting(f"sha256:{n:064x}"))
        time.sleep(0.002)
    kept = [f for folder in tmp_path.iterdir() for f in folder.iterdir()]
    assert len(kept) == 12
    # The least recently seen went first: 6 of the first digest's 8 sightings.
    assert [s.repository for s in store.sightings(D1)] == [
        f"team/r{PER_DIGEST + 2}",
        f"team/r{PER_DIGEST + 1}",
    ]
    assert all(store.sightings(f"sha256:{n:064x}") for n in range(10))


@pytest.mark.parametrize(
    "content",
    [
        "not json",
        json.dumps({"digest": D1}),
        json.dumps([1]),
        json.dumps({"digest": D1, "registry": "EVIL HOST", "repository": "team/app", "subject": D1}),
        json.dumps({"digest": D2, "registry": "ghcr.io", "repository": "team/app", "subject": D2}),
        json.dumps({"digest": D1, "registry": "ghcr.io", "repository": "team/app", "subject": "sha256:nope"}),
        "x" * 5000,
    ],
)
def test_a_file_that_is_not_a_sighting_of_its_digest_is_ignored(tmp_path: Path, content: str) -> None:
    store = SeenMarkers(tmp_path)
    store.remember(sighting())
    folder = tmp_path / D1.removeprefix("sha256:")
    (path,) = folder.iterdir()
    path.write_text(content)
    assert store.sightings(D1) == ()


def test_a_sighting_file_moved_to_another_key_is_ignored(tmp_path: Path) -> None:
    store = SeenMarkers(tmp_path)
    store.remember(sighting())
    (path,) = (tmp_path / D1.removeprefix("sha256:")).iterdir()
    path.rename(path.with_name(sighting(repository="team/other").key + ".json"))
    assert store.sightings(D1) == ()


def test_without_a_directory_sightings_stay_in_a_private_one(tmp_path: Path) -> None:
    store = SeenMarkers(None)
    assert store.sightings(D1) == ()
    store.remember(sighting())
    assert store.sightings(D1) == (sighting(),)
    assert SeenMarkers(None).sightings(D1) == ()


def test_an_unwritable_directory_is_logged_not_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    store = SeenMarkers(blocker / "below")
    store.remember(sighting())
    assert store.sightings(D1) == ()
    assert "cannot record a quarantine marker sighting" in caplog.text


def test_invalid_digests_are_never_stored(tmp_path: Path) -> None:
    store = SeenMarkers(tmp_path)
    store.remember(sighting("sha256:../../etc"))
    assert store.sightings("sha256:../../etc") == ()
    assert list(tmp_path.iterdir()) == []
