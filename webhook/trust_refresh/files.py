"""Replacing a file atomically: readers (the server's hot reload among them) see the old or the new bytes.

The new content goes to a temporary file in the same directory, is flushed to disk, and is renamed over
the target; the directory is then synced so the rename survives a crash. An existing file keeps its
permission bits (a new one gets 0644: trusted roots are public). A symlink is followed: the file it
points to is replaced and the link stays.
"""

from __future__ import annotations

__all__ = ["replace_file"]

import contextlib
import os
import stat
import tempfile
from pathlib import Path

_NEW_FILE_MODE = 0o644


def replace_file(path: Path, data: bytes) -> Path:
    """Atomically make ``path`` hold ``data``.

    Returns:
        The file really written (``path`` with symlinks resolved).

    Raises:
        OSError: the directory is not writable, the target is a directory, the disk is full, ...;
            the target is then unchanged and no temporary file is left behind.
    """
    target = Path(os.path.realpath(path))
    try:
        mode = stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        mode = _NEW_FILE_MODE
    descriptor, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fchmod(handle.fileno(), mode)
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    _sync_directory(target.parent)
    return target


def _sync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
