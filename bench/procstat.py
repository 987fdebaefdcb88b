"""CPU time and memory of a gunicorn master's worker processes, read from ``/proc`` (Linux).

before = cpu_by_worker(master_pid); <load>; after = cpu_by_worker(master_pid)
split = cpu_split(before, after)    # per-worker CPU seconds during the load, and their balance
"""

from __future__ import annotations

__all__ = ["CpuSplit", "cpu_by_worker", "cpu_split", "rss_by_worker", "worker_pids"]

import os
from dataclasses import dataclass
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")


def worker_pids(master: int) -> list[int]:
    """The live child processes of ``master`` (gunicorn's workers), sorted."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == master and fields[0] not in ("Z", "X"):
            pids.append(int(entry.name))
    return sorted(pids)


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime + stime


def cpu_by_worker(master: int) -> dict[int, float]:
    """CPU seconds (user + system) so far, per worker, plus the master under its own pid."""
    seconds = {}
    for pid in [master, *worker_pids(master)]:
        try:
            seconds[pid] = _cpu_seconds(pid)
        except OSError:
            continue
    return seconds


def rss_by_worker(master: int) -> dict[int, int]:
    """Resident set size in bytes per worker."""
    sizes = {}
    for pid in worker_pids(master):
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    sizes[pid] = int(line.split()[1]) * 1024
        except OSError:
            continue
    return sizes


@dataclass(frozen=True, slots=True)
class CpuSplit:
    """CPU seconds each worker used during a load run, and the whole server's (workers and master)."""

    workers: tuple[float, ...]
    total: float

    @property
    def balance(self) -> float:
        """Least-loaded worker's CPU over the most-loaded one's (1 = even, 0 = one worker idle)."""
        if len(self.workers) < 2 or max(self.workers) <= 0:
            return 1.0
        return min(self.workers) / max(self.workers)


def cpu_split(master: int, before: dict[int, float], after: dict[int, float]) -> CpuSplit:
    workers = tuple(round(after[pid] - before.get(pid, 0.0), 3) for pid in sorted(after) if pid != master)
    total = sum(after[pid] - before.get(pid, 0.0) for pid in after)
    return CpuSplit(workers=workers, total=round(total, 3))
