"""Where a worker's CPU time goes under load: ``py-spy`` samples of its threads that are on a CPU.

While ``wrk`` loads ``/validate`` at 16 connections, ``py-spy record`` samples one worker (threads
waiting for the GIL, a lock or the network are idle and not sampled). Reported: the share of samples
per area (the innermost frame of a known area, walking from the leaf up) and the functions with the
most samples as the leaf. py-spy takes some waits for work (a thread blocked in a queue ``get`` or
in ``epoll``, or re-taking the GIL after waking the event loop): those leaves are counted apart as
waiting. ``--gil`` (only the GIL holder) was tried and rejected: it charged the audit queue's hand-off
with a quarter of the samples, where switching the handler measurably changed nothing.
"""

from __future__ import annotations

__all__ = ["profile_worker"]

import logging
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

from bench.load import run_wrk
from bench.procstat import worker_pids
from bench.results import Metric, Result
from tests.support.server import Server

_logger = logging.getLogger(__name__)

# (area, pattern on "function (file:line)") checked from the leaf up; the first match names the area.
# py-spy names a module by its path below the sys.path entry it came from ("json/decoder.py",
# "flask/app.py"), so a package is matched at the start of the file name or after a "/".
_AREAS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (area, re.compile(pattern))
    for area, pattern in (
        ("json (encode/decode)", r"\((.*/)?json/"),
        ("logging (audit line)", r"\((.*/)?logging/|webhook/serving/logs\.py"),
        ("prometheus metrics", r"prometheus_client/|webhook/metrics\.py"),
        ("policy matching (globs)", r"webhook/policy/"),
        ("decision", r"webhook/decision\.py"),
        ("admission parsing / patch / response", r"webhook/admission/"),
        ("images (reference grammar)", r"webhook/images/"),
        ("service (plan, gather, annotations)", r"webhook/service\.py|webhook/runtime\.py"),
        ("flask / werkzeug", r"\((.*/)?(flask|werkzeug)/"),
        (
            "server front (HTTP, TLS, event loop)",
            r"webhook/serving/|\((.*/)?(asyncio/|ssl\.py)|selectors\.py",
        ),
        ("thread pool", r"concurrent/futures/|threading\.py"),
    )
)


# Leaves where a thread waits (py-spy counts some waits as active): a queue get, epoll, the self-pipe
# write that wakes the event loop (and the GIL re-acquisition after it).
_WAITING = re.compile(
    r"^(_worker \(.*concurrent/futures/thread\.py|LineHandler\._run |EpollSelector\.select |"
    r"BaseSelectorEventLoop\._write_to_self |Condition\.wait |Event\.wait )"
)
WAITING = "waiting (queue get, epoll, loop wake-up)"


def _area(frames: list[str]) -> str:
    if _WAITING.match(frames[-1]):
        return WAITING
    for frame in reversed(frames):
        for area, pattern in _AREAS:
            if pattern.search(frame):
                return area
    return "other"


def _parse(raw: str) -> tuple[Counter[str], Counter[str], int]:
    areas: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [f for f in stack.split(";") if not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        total += count
        areas[_area(frames)] += count
        leaves[re.sub(r":\d+\)$", ")", frames[-1])] += count
    return areas, leaves, total


def profile_worker(server: Server, *, body: Path, seconds: float, workdir: Path) -> Result | None:
    """Sample one worker with py-spy during a ``wrk -c16`` run on ``/validate``; None without py-spy."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        _logger.warning("py-spy not installed (pip install py-spy, or make bench): no profile")
        return None
    pid = worker_pids(server.process.pid)[0]
    raw_file = workdir / "profile.raw"
    argv = [
        spy, "record", "--pid", str(pid), "--rate", "250", "--duration", f"{seconds:g}",
        "--format", "raw", "--output", str(raw_file), "--nonblocking",
    ]  # fmt: skip
    with (workdir / "py-spy.log").open("wb") as log:
        spy_process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    try:
        load = run_wrk(server.url + "/validate", body=body, connections=16, seconds=seconds, workdir=workdir)
    finally:
        try:
            spy_process.wait(timeout=seconds + 30)
        except subprocess.TimeoutExpired:
            spy_process.kill()
            spy_process.wait()
    if not raw_file.exists():
        _logger.warning("py-spy wrote no profile (see %s)", workdir / "py-spy.log")
        return None
    areas, leaves, total = _parse(raw_file.read_text())
    if not total:
        return None
    waiting = areas.pop(WAITING, 0)
    busy = total - waiting
    if not busy:
        return None
    # Shares of the busy samples, and how many of all samples were waits.
    share = {area: count / busy for area, count in areas.most_common()}
    share[WAITING + ", share of all samples"] = waiting / total
    return Result(
        name="profile-validate-c16",
        group="1. admission",
        description=(
            f"py-spy on one worker during wrk POST /validate c=16 "
            f"({load.requests_per_second:,.0f} req/s): share of the busy samples per area"
        ),
        parameters={"samples": total, "rate_hz": 250, "seconds": seconds, "worker_pid": pid},
        primary=next(iter(share)),
        metrics={area: Metric("share", (value,)) for area, value in share.items()},
        details=[
            {
                "top_leaf_functions": [
                    {"function": f, "share": round(c / total, 4)} for f, c in leaves.most_common(25)
                ]
            }
        ],
        notes=[
            "top busy leaf functions (share of all samples): "
            + "; ".join(f"{f} {c / total:.1%}" for f, c in leaves.most_common(14) if not _WAITING.match(f))
        ],
    )
