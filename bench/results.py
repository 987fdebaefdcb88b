"""Benchmark results: per-run values summarised as median and spread, machine facts, JSON and text output."""

from __future__ import annotations

__all__ = [
    "Metric",
    "Result",
    "Stopwatch",
    "describe_samples",
    "format_number",
    "machine_facts",
    "summary_text",
    "write_results",
]

import json
import logging
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

_logger = logging.getLogger(__name__)

# Python distributions whose versions explain the numbers (server stack, crypto, HTTP client).
_DISTRIBUTIONS = (
    "imagegate",
    "flask",
    "werkzeug",
    "gunicorn",
    "sigstore",
    "cryptography",
    "requests",
    "urllib3",
    "cachetools",
    "prometheus-client",
)
_DEBIAN_PACKAGES = ("wrk", "hey", "docker-registry")


@dataclass(frozen=True, slots=True)
class Metric:
    """One measured quantity: its value in each run (>= 3 runs), summarised by median and spread."""

    units: str
    runs: tuple[float, ...]

    @property
    def median(self) -> float:
        return float(statistics.median(self.runs))

    @property
    def min(self) -> float:
        return min(self.runs)

    @property
    def max(self) -> float:
        return max(self.runs)

    def to_json(self) -> dict[str, Any]:
        return {
            "units": self.units,
            "runs": [_round(v) for v in self.runs],
            "median": _round(self.median),
            "min": _round(self.min),
            "max": _round(self.max),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Result:
    """One benchmark: what was measured (``parameters``), its metrics, and raw per-run details.

    ``primary`` names the metric whose runs/median/min/max/units are repeated at the top level of the
    JSON entry, so a reader that knows nothing of ``metrics`` still gets the headline number.
    """

    name: str
    group: str
    description: str
    parameters: Mapping[str, Any]
    primary: str
    metrics: Mapping[str, Metric]
    details: Sequence[Mapping[str, Any]] = ()
    notes: Sequence[str] = field(default_factory=tuple)

    def to_json(self) -> dict[str, Any]:
        head = self.metrics[self.primary]
        return {
            "name": self.name,
            "group": self.group,
            "description": self.description,
            "parameters": dict(self.parameters),
            "metric": self.primary,
            "units": head.units,
            "runs": [_round(v) for v in head.runs],
            "median": _round(head.median),
            "min": _round(head.min),
            "max": _round(head.max),
            "metrics": {name: metric.to_json() for name, metric in self.metrics.items()},
            "details": [dict(d) for d in self.details],
            "notes": list(self.notes),
        }


class Stopwatch:
    """Wall-clock seconds since creation (``time.perf_counter``)."""

    def __init__(self) -> None:
        self._start = time.perf_counter()

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self._start


def describe_samples(samples: Sequence[float]) -> dict[str, float]:
    """Median, p90, min and max of per-operation samples (for the per-run details)."""
    ordered = sorted(samples)
    p90 = ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]
    return {
        "n": len(ordered),
        "median": _round(statistics.median(ordered)),
        "p90": _round(p90),
        "min": _round(ordered[0]),
        "max": _round(ordered[-1]),
    }


def _round(value: float) -> float:
    if value == 0 or abs(value) >= 100:
        return round(value, 1)
    return float(f"{value:.4g}")


def _command_output(argv: Sequence[str]) -> str | None:
    if shutil.which(argv[0]) is None:
        return None
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return (done.stdout or done.stderr).strip() or None


def machine_facts(repo: Path) -> dict[str, Any]:
    """Cores, CPU, memory, OS, Python and package versions, gunicorn settings, repository commit."""
    cpu_model = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory_mib = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_mib = int(line.split()[1]) // 1024
                break
    except OSError:
        pass
    versions: dict[str, str | None] = {}
    for name in _DISTRIBUTIONS:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    debian = {}
    for package in _DEBIAN_PACKAGES:
        debian[package] = _command_output(["dpkg-query", "-W", "-f", "${Version}", package])
    from webhook import gunicorn_conf

    commit = _command_output(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"])
    dirty = _command_output(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"])
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu_model": cpu_model,
        "memory_mib": memory_mib,
        "os": platform.platform(),
        "python": platform.python_implementation() + " " + platform.python_version(),
        "python_executable_in_venv": sys.prefix != sys.base_prefix,
        "packages": versions,
        "debian_packages": debian,
        "gunicorn": {
            "worker_class": gunicorn_conf.worker_class,
            "threads": gunicorn_conf.threads,
            "keepalive": gunicorn_conf.keepalive,
        },
        "commit": commit,
        "tracked_changes": bool(dirty),
        "load_average_at_start": list(os.getloadavg()),
    }


def write_results(
    path: Path,
    *,
    machine: Mapping[str, Any],
    results: Sequence[Result],
    settings: Mapping[str, Any],
    targets: Sequence[Any] = (),
) -> None:
    document = {
        "schema": "imagegate-bench/2",
        "machine": dict(machine),
        "settings": dict(settings),
        "targets": [check.to_json() for check in targets],
        "benchmarks": [result.to_json() for result in results],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n")
    _logger.info("wrote %s", path)


def format_number(value: float) -> str:
    """A number for the reports: thousands separated, about three significant digits."""
    if value == int(value):
        return f"{int(value):,}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    if abs(value) >= 0.1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def _spread(metric: Metric) -> str:
    if metric.min == metric.max:
        return f"{format_number(metric.median)} {metric.units}"
    low, high = format_number(metric.min), format_number(metric.max)
    return f"{format_number(metric.median)} {metric.units} ({low}-{high})"


def summary_text(results: Sequence[Result], machine: Mapping[str, Any]) -> str:
    """A human summary: one line per benchmark, median with (min-max) over the runs."""
    lines = [
        f"imagegate benchmarks, {machine.get('date')}: {machine.get('cores')} cores "
        f"({machine.get('cpu_model')}), {machine.get('python')}, gunicorn "
        f"{machine['packages'].get('gunicorn')} {machine['gunicorn']['worker_class']} x "
        f"{machine['gunicorn']['threads']} threads, sigstore {machine['packages'].get('sigstore')}, "
        f"commit {machine.get('commit')}",
        "each value: median of the runs, then (min-max over the runs)",
    ]
    group = None
    for result in results:
        if result.group != group:
            group = result.group
            lines += ["", f"== {group}"]
        parts = [f"{name} {_spread(metric)}" for name, metric in result.metrics.items()]
        lines.append(f"{result.name}: " + "; ".join(parts))
        lines.extend(f"    note: {note}" for note in result.notes)
    return "\n".join(lines)
