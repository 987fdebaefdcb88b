"""Quarantine markers seen in one repository, remembered for every repository and every worker process.

A registry marker lives in one repository (``team/app@sha256:X``), but the same content can be pulled
under any other name (``team/copy@sha256:X``), where no marker is stored. So once a worker has seen a
marker for a digest, the webhook refuses that digest in every repository until the marker is gone:
a digest refused because of a marker seen elsewhere has that repository's markers read again (through
the cached referrers lookup, which costs nothing within the referrers TTL), and the sighting is
forgotten once the marker is really gone. A repository that can no longer be read keeps the digest
refused (fail closed). A marker on an index is remembered for every manifest the index lists as well.

Sightings are small JSON files in a directory the server owns, so every gunicorn worker process sees
what any of them has seen: ``<dir>/<hex of the digest>/<key>.json``, where ``key`` hashes the registry,
repository and marker subject. ``imagegate serve`` takes the directory from
``IMAGEGATE_SEEN_MARKERS_DIR`` and makes a temporary one when it is unset; without one (CLI runs), each
process uses a private temporary directory. Files are written whole (a temporary file, then a rename).
The store is bounded: at most ``max_entries`` sightings, the least recently seen dropped first, and
:data:`PER_DIGEST` per digest. Sightings are hints, never verdicts: each one is re-checked against the
registry before it refuses anything, so one left over from an earlier run costs a lookup at most.
"""

from __future__ import annotations

__all__ = ["PER_DIGEST", "SeenMarkers", "Sighting"]

import contextlib
import hashlib
import json
import logging
import os
import tempfile
import threading
from dataclasses import asdict, dataclass
from pathlib import Path

from webhook.errors import InvalidReference
from webhook.images.reference import ImageRef

_logger = logging.getLogger(__name__)

PER_DIGEST = 8
_MAX_FILE = 4096
_HEX = frozenset("0123456789abcdef")


@dataclass(frozen=True, slots=True)
class Sighting:
    """A marker seen on ``registry/repository@subject`` that quarantines ``digest`` everywhere.

    ``subject`` is ``digest`` itself, or an index that lists ``digest`` and carries the marker.
    """

    digest: str
    registry: str
    repository: str
    subject: str

    @property
    def key(self) -> str:
        return hashlib.sha256(f"{self.registry}/{self.repository}@{self.subject}".encode()).hexdigest()[:32]

    @property
    def repo(self) -> ImageRef:
        """The repository holding the marker (raises InvalidReference for a tampered sighting)."""
        return ImageRef(self.registry, self.repository, digest=self.subject)

    def describe(self) -> str:
        where = f"{self.registry}/{self.repository}"
        return where if self.subject == self.digest else f"{where}@{self.subject}"


class SeenMarkers:
    """The sightings store (see the module docstring). Thread- and process-safe."""

    def __init__(self, directory: Path | None, *, max_entries: int = 1024) -> None:
        self._directory = directory
        self._max_entries = max_entries
        self._private: tempfile.TemporaryDirectory[str] | None = None
        self._lock = threading.Lock()

    def remember(self, sighting: Sighting) -> None:
        """Record ``sighting`` (or mark it as seen again). Failures to write are logged, not raised."""
        try:
            folder = self._folder(sighting.digest, create=True)
        except OSError as error:
            _logger.warning("cannot record a quarantine marker sighting in %s: %s", self._directory, error)
            return
        if folder is None:
            return
        path = folder / f"{sighting.key}.json"
        try:
            os.utime(path)  # seen again: the least recently seen go first
            return
        except FileNotFoundError:
            pass
        except OSError as error:
            _logger.warning("cannot record a quarantine marker sighting in %s: %s", folder, error)
            return
        for attempt in (1, 2):
            try:
                _write(folder, path, sighting)
                break
            except OSError as error:
                # FileNotFoundError: another process removed the folder as it emptied it; once more.
                if attempt == 2 or not isinstance(error, FileNotFoundError):
                    _logger.warning("cannot record a quarantine marker sighting in %s: %s", folder, error)
                    return
        _logger.info(
            "quarantine marker on %s: %s is refused in every repository until the marker is removed",
            sighting.describe(),
            sighting.digest,
        )
        self._bound(folder)

    def forget(self, sighting: Sighting) -> None:
        """Drop ``sighting`` (its marker is gone)."""
        folder = self._folder(sighting.digest, create=False)
        if folder is None:
            return
        with contextlib.suppress(FileNotFoundError):
            (folder / f"{sighting.key}.json").unlink()
            _logger.info(
                "quarantine marker on %s is gone: %s is no longer refused for it",
                sighting.describe(),
                sighting.digest,
            )
        with contextlib.suppress(OSError):
            folder.rmdir()  # only when empty

    def sightings(self, digest: str) -> tuple[Sighting, ...]:
        """Every recorded sighting for ``digest``, most recently seen first."""
        folder = self._folder(digest, create=False)
        if folder is None:
            return ()
        try:
            names = os.listdir(folder)
        except FileNotFoundError:
            return ()
        except OSError as error:
            _logger.warning("cannot read quarantine marker sightings in %s: %s", folder, error)
            return ()
        found: list[tuple[int, Sighting]] = []
        for name in names:
            if not name.endswith(".json"):
                continue
            loaded = _load(folder / name, digest)
            if loaded is not None:
                found.append(loaded)
        return tuple(s for _, s in sorted(found, key=lambda item: -item[0]))

    # --- internals -------------------------------------------------------------------------------

    def _folder(self, digest: str, *, create: bool) -> Path | None:
        algorithm, _, hexdigits = digest.partition(":")
        if algorithm != "sha256" or len(hexdigits) != 64 or not set(hexdigits) <= _HEX:
            return None
        root = self._root(create=create)
        return root / hexdigits if root is not None else None

    def _root(self, *, create: bool) -> Path | None:
        if self._directory is not None:
            if create:
                self._directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            return self._directory
        with self._lock:
            if self._private is None:
                if not create:
                    return None
                self._private = tempfile.TemporaryDirectory(prefix="imagegate-seen-markers-")
            return Path(self._private.name)

    def _bound(self, folder: Path) -> None:
        """Drop the least recently seen sightings beyond the per-digest and total caps."""
        try:
            _drop_oldest(_files(folder), keep=PER_DIGEST)
            root = folder.parent
            every = [f for sub in os.scandir(root) if sub.is_dir() for f in _files(Path(sub.path))]
            _drop_oldest(every, keep=self._max_entries)
        except OSError as error:
            _logger.warning("cannot bound the quarantine marker sightings in %s: %s", folder.parent, error)


def _write(folder: Path, path: Path, sighting: Sighting) -> None:
    """Write ``sighting`` to ``path`` whole: readers in other processes see all of it or nothing."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=".", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(asdict(sighting), out)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def _files(folder: Path) -> list[tuple[int, str]]:
    entries = []
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(folder):
            if entry.name.endswith(".json"):
                with contextlib.suppress(FileNotFoundError):
                    entries.append((entry.stat().st_mtime_ns, entry.path))
    return entries


def _drop_oldest(files: list[tuple[int, str]], *, keep: int) -> None:
    for _, path in sorted(files)[: max(0, len(files) - keep)]:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        with contextlib.suppress(OSError):
            os.rmdir(os.path.dirname(path))


def _load(path: Path, digest: str) -> tuple[int, Sighting] | None:
    """A sighting file, or None when it vanished, is malformed or does not belong where it lies."""
    try:
        with path.open("rb") as handle:
            raw = handle.read(_MAX_FILE + 1)
            seen = os.fstat(handle.fileno()).st_mtime_ns
        data = json.loads(raw) if len(raw) <= _MAX_FILE else None
        sighting = Sighting(**data) if isinstance(data, dict) else None
        if sighting is None or sighting.digest != digest or f"{sighting.key}.json" != path.name:
            raise ValueError("not a sighting of this digest")
        if sighting.repo.digest != sighting.subject:  # building the reference validates every field
            raise ValueError("not a sighting of this digest")
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError, InvalidReference) as error:
        _logger.warning("ignoring the quarantine marker sighting %s: %s", path, error)
        return None
    return seen, sighting
