"""webhook.serving.logs.LineHandler: whole lines from many threads in several processes, never interleaved.

Two forked processes (as gunicorn forks its workers, after the handler is built) each log from 8 threads
into one pipe, as workers share a container's stdout. Some lines are far longer than the pipe's buffer,
so the kernel must split their writes: any writer that slipped between the pieces would break a line.
The reader drains the pipe slowly, keeping it full.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable

from webhook.serving.logs import LineHandler

PROCESSES = 2
THREADS = 8
LINES = 40  # per thread
SIZES = (80, 3000, 5000, 90_000)  # bytes of padding; 90 kB is more than a pipe holds (64 KiB)


def _line(process: int, thread: int, number: int) -> dict[str, object]:
    size = SIZES[(process + thread + number) % len(SIZES)]
    return {"p": process, "t": thread, "n": number, "pad": chr(ord("a") + thread) * size}


def _child(logger: logging.Logger, process: int) -> None:
    def log_lines(thread: int) -> None:
        for number in range(LINES):
            logger.info("%s", json.dumps(_line(process, thread, number)))

    threads = [threading.Thread(target=log_lines, args=(t,)) for t in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 16384):
        chunks.append(chunk)
        time.sleep(0.0005)  # a slow reader keeps the pipe full, so long writes are split
    return b"".join(chunks)


def _run(make_handler: Callable[[object], logging.Handler]) -> list[bytes]:
    read_end, write_end = os.pipe()
    stream = os.fdopen(write_end, "w", closefd=False)
    handler = make_handler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger(f"test.serving.logs.{id(handler)}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    pids = []
    try:
        for process in range(PROCESSES):
            pid = os.fork()
            if pid == 0:  # pragma: no cover - runs in the child
                code = 0
                try:
                    os.close(read_end)
                    _child(logger, process)
                    handler.flush()
                except BaseException:
                    code = 1
                finally:
                    os._exit(code)
            pids.append(pid)
        os.close(write_end)
        output = _read_all(read_end)
    finally:
        for pid in pids:
            os.waitpid(pid, 0)
        os.close(read_end)
        logger.removeHandler(handler)
        handler.close()
    return output.split(b"\n")


def test_lines_from_threads_in_several_processes_never_interleave() -> None:
    lines = _run(lambda stream: LineHandler(stream))  # type: ignore[arg-type]
    assert lines[-1] == b""  # the output ends with a whole line
    records = [json.loads(line) for line in lines[:-1]]
    expected = [_line(p, t, n) for p in range(PROCESSES) for t in range(THREADS) for n in range(LINES)]
    key = lambda r: (r["p"], r["t"], r["n"])  # noqa: E731
    assert sorted(records, key=key) == expected
    # Each thread's lines keep their order.
    for p in range(PROCESSES):
        for t in range(THREADS):
            assert [r["n"] for r in records if (r["p"], r["t"]) == (p, t)] == list(range(LINES))


def test_the_handler_takes_no_lock_per_record() -> None:
    handler = LineHandler(os.fdopen(os.dup(1), "w"))
    try:
        assert handler.lock is None
    finally:
        handler.close()


def test_flush_writes_everything_queued() -> None:
    read_end, write_end = os.pipe()
    handler = LineHandler(os.fdopen(write_end, "w", closefd=False))
    handler.setFormatter(logging.Formatter("%(message)s"))
    for number in range(100):
        handler.handle(logging.LogRecord("t", logging.INFO, __file__, 1, "line %d", (number,), None))
    handler.flush()
    os.close(write_end)
    assert os.read(read_end, 1 << 20).decode().splitlines() == [f"line {n}" for n in range(100)]
    os.close(read_end)
    handler.close()
