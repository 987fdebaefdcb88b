"""Hot reload: watch the policy and every file it references; swap in a new runtime when they change.

ConfigMap updates replace a ``..data`` symlink, so files are compared by what ``os.stat`` (following
symlinks) reports: device, inode, size and mtime. A change that does not load (invalid policy, a
half-written file) is rejected: the last good runtime keeps serving and the rejection shows in the
logs and in ``imagegate_policy_reloads_total{result="rejected"}``. A truncated file that still happens
to be a valid policy cannot be told apart from an intended one: write policy files atomically (a rename),
as kubelet does for ConfigMap volumes.
"""

from __future__ import annotations

__all__ = ["PolicyStore", "Runtime"]

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Generic, TypeVar

from webhook.errors import ConfigError
from webhook.policy.loader import load_policy, referenced_paths
from webhook.policy.model import Policy

_logger = logging.getLogger(__name__)

T = TypeVar("T")

_Signature = tuple[tuple[str, int, int, int, int], ...]


@dataclass(frozen=True, slots=True)
class Runtime(Generic[T]):
    """A loaded policy with the adapters built for it (``services``)."""

    policy: Policy
    services: T
    watched: tuple[Path, ...]
    signature: _Signature


class PolicyStore(Generic[T]):
    def __init__(
        self,
        path: Path,
        *,
        build: Callable[[Policy], T],
        interval: float = 2.0,
        on_reload: Callable[[str, Policy | None], None] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._path = path
        self._build = build
        self._interval = interval
        self._on_reload = on_reload
        self._clock = clock
        self._current: Runtime[T] | None = None
        # The files a rejected version named and their state when it was rejected: watched as well, so
        # that version loads once a file it was missing appears or a broken one is fixed.
        self._attempted: tuple[Path, ...] = ()
        self._rejected: _Signature | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def load(self) -> Runtime[T]:
        """Load (or reload) now. Raises ConfigError, leaving the current runtime in place."""
        with self._lock:
            # The state of the files is taken BEFORE they are read, and is what the new version is
            # recorded with: a file replaced while it is read or while the adapters are built then
            # differs from that record at the next poll, which loads it. (Taken after, the replacement
            # would count as loaded although its old content was read, and no poll would load it.)
            before = _by_path(
                _signature((*self._watched(), *self._attempted, self._path, *referenced_paths(self._path)))
            )
            try:
                loaded = load_policy(self._path, now=self._clock())
            except ConfigError:
                self._attempted = (self._path, *referenced_paths(self._path))
                raise
            for warning in loaded.warnings:
                _logger.warning("policy warning: %s", warning)
            watched = _referenced_files(self._path, loaded.policy)
            self._attempted = watched
            services = self._build(loaded.policy)
            runtime = Runtime(loaded.policy, services, watched, _recorded(watched, before))
            self._current = runtime
            self._rejected = None
            self._attempted = ()
            return runtime

    def adopt(self, policy: Policy) -> Runtime[T]:
        """Serve ``policy`` (validated elsewhere) until the watched files load again.

        A worker that starts while the files are invalid has never loaded them itself; it adopts the
        last good policy of the process that forked it instead of serving nothing.
        """
        with self._lock:
            watched = _referenced_files(self._path, policy)
            runtime = Runtime(policy, self._build(policy), watched, ())
            self._current = runtime
            self._rejected = _signature(self._with_attempted(watched))
            return runtime

    def current(self) -> Runtime[T] | None:
        return self._current

    def check(self) -> bool:
        """Reload if a watched file changed. Returns True when a new policy was swapped in."""
        current = self._current
        watched = self._with_attempted(current.watched if current else (self._path,))
        signature = _signature(watched)
        if current is not None and self._rejected is None and signature == current.signature:
            return False
        if signature == self._rejected:
            return False
        try:
            runtime = self.load()
        except ConfigError as error:
            self._rejected = self._rejected_state(watched, signature)
            _logger.error(
                "policy reload rejected, still serving %s: %s%s",
                current.policy.fingerprint[:12] if current else "nothing",
                error.user_message,
                "".join(f"\n  {p}" for p in error.problems),
            )
            self._report("rejected", None)
            return False
        except Exception:
            self._rejected = self._rejected_state(watched, signature)
            _logger.exception("policy reload failed, still serving the last good policy")
            self._report("rejected", None)
            return False
        _logger.info(
            "policy %s reloaded (fingerprint %s)", runtime.policy.name, runtime.policy.fingerprint[:12]
        )
        self._report("success", runtime.policy)
        return True

    def guard_forks(self) -> None:
        """Make ``fork()`` in this process wait for a reload in progress.

        The gunicorn master watches the policy in a thread and forks workers from its main thread; a
        fork in the middle of a reload would hand the child locks held inside half-done work (logging,
        OpenSSL) and a stale policy. Holding the store's lock across fork rules both out.
        """
        os.register_at_fork(
            before=self._lock.acquire,
            after_in_parent=self._lock.release,
            after_in_child=self._lock.release,
        )

    def start(self) -> None:
        """Poll for changes in a daemon thread (one per worker process)."""
        if self._thread is not None or self._interval <= 0:
            return
        self._thread = threading.Thread(target=self._run, name="imagegate-reload", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.check()
            except Exception:  # the watcher must never die
                _logger.exception("policy watcher error")

    def _rejected_state(self, watched: tuple[Path, ...], before: _Signature) -> _Signature | None:
        after = _signature(self._with_attempted(watched))
        # A file changed while the attempt ran: it may have read either version, so try again.
        return after if after[: len(before)] == before else None

    def _with_attempted(self, watched: tuple[Path, ...]) -> tuple[Path, ...]:
        return tuple(dict.fromkeys((*watched, *self._attempted)))

    def _watched(self) -> tuple[Path, ...]:
        return self._current.watched if self._current else (self._path,)

    def _report(self, result: str, policy: Policy | None) -> None:
        if self._on_reload is not None:
            self._on_reload(result, policy)


def _referenced_files(path: Path, policy: Policy) -> tuple[Path, ...]:
    base = path.parent
    files = [path, *policy.quarantine.files, *(r.file for r in policy.trust.roots)]
    files += [k.file for k in policy.trust.keys if k.file is not None]
    files += [f for f in (policy.registries.ca_file, policy.registries.credentials_file) if f is not None]
    return tuple(dict.fromkeys(f if f.is_absolute() else base / f for f in files))


def _by_path(signature: _Signature) -> dict[str, tuple[str, int, int, int, int]]:
    return {entry[0]: entry for entry in signature}


def _recorded(watched: tuple[Path, ...], before: dict[str, tuple[str, int, int, int, int]]) -> _Signature:
    """The state ``watched`` had before the load read them, as :func:`_signature` writes it.

    A file not stat-ed beforehand (the policy changed between the look-ahead and the load, so the policy
    file's own entry differs already and the next poll reloads) is stat-ed now.
    """
    now = _by_path(_signature(tuple(p for p in watched if str(p) not in before)))
    return tuple(before.get(str(p)) or now[str(p)] for p in watched)


def _signature(paths: tuple[Path, ...]) -> _Signature:
    entries = []
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            entries.append((str(path), -1, -1, -1, -1))
            continue
        entries.append((str(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns))
    return tuple(entries)
