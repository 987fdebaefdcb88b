"""A log handler that never makes request threads wait for each other: one writer thread per process.

The audit log goes to stdout, shared by every worker process and every request thread. A
``logging.StreamHandler`` holds a handler lock while it formats and writes each line, so concurrent
request threads queue on it. :class:`LineHandler` has no handler lock: the calling thread formats the
record and puts the line on a queue; one writer thread per process drains the queue and writes the lines
with ``write(2)`` directly to the file descriptor (no stream buffer).

Lines never interleave. Within a process there is one writer. Across the worker processes, each batch
is written under a ``lockf`` lock on a file they share (created before gunicorn forks them): a pipe
(a container's stdout) splits a write larger than ``PIPE_BUF`` when it fills, and another process's
write could otherwise land between the pieces. Only the writer threads ever wait on that lock.

``flush()`` (called by ``logging.shutdown`` at exit) waits until the queued lines are written.
"""

from __future__ import annotations

__all__ = ["LineHandler"]

import fcntl
import logging
import os
import queue
import select
import sys
import tempfile
import threading
from typing import IO, Any

_FLUSH_TIMEOUT = 5.0  # seconds flush() waits for the writer (a stuck stdout must not hang the exit)


class LineHandler(logging.Handler):
    """Queue formatted records; a writer thread writes them to ``stream``'s file descriptor as whole lines."""

    def __init__(self, stream: IO[Any] | None = None, level: int = logging.NOTSET) -> None:
        super().__init__(level)
        stream = stream if stream is not None else sys.stdout
        stream.flush()
        self._fd = stream.fileno()
        # lockf locks belong to processes: one inherited file excludes across the forked workers.
        self._process_lock = tempfile.TemporaryFile(prefix="imagegate-log-")
        self._queue: queue.SimpleQueue[str | threading.Event] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._start_lock = threading.Lock()
        os.register_at_fork(after_in_child=self._forked)

    def createLock(self) -> None:
        self.lock = None  # Handler.acquire/release skip a None lock

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record) + "\n"
        except Exception:
            self.handleError(record)
            return
        if self._writer is None:
            self._start()
        self._queue.put(line)

    def flush(self) -> None:
        writer = self._writer
        if writer is None or not writer.is_alive():
            return
        done = threading.Event()
        self._queue.put(done)
        done.wait(_FLUSH_TIMEOUT)

    def close(self) -> None:
        try:
            self.flush()
            self._process_lock.close()
        finally:
            super().close()

    def _forked(self) -> None:
        # Threads do not survive fork: the child starts its own writer on its first line.
        self._queue = queue.SimpleQueue()
        self._writer = None
        self._start_lock = threading.Lock()

    def _start(self) -> None:
        with self._start_lock:
            if self._writer is None:
                writer = threading.Thread(target=self._run, name="log-writer", daemon=True)
                writer.start()
                self._writer = writer

    def _run(self) -> None:
        pending = self._queue
        while True:
            batch = [pending.get()]
            while True:
                try:
                    batch.append(pending.get_nowait())
                except queue.Empty:
                    break
            text = "".join(item for item in batch if isinstance(item, str))
            if text:
                try:
                    self._write(text.encode("utf-8", "backslashreplace"))
                except OSError:
                    # Nowhere to report it: stderr may be the same broken pipe. Drop the batch.
                    pass
            for item in batch:
                if isinstance(item, threading.Event):
                    item.set()

    def _write(self, data: bytes) -> None:
        lock = self._process_lock.fileno()
        fcntl.lockf(lock, fcntl.LOCK_EX)
        try:
            view = memoryview(data)
            while view:
                try:
                    written = os.write(self._fd, view)
                except BlockingIOError:  # a non-blocking stdout: wait until it drains
                    select.select([], [self._fd], [])
                    continue
                view = view[written:]
        finally:
            fcntl.lockf(lock, fcntl.LOCK_UN)
