"""Admission throughput, latency and CPU of ``imagegate serve`` against the live floor, interleaved.

Two servers run side by side, both 2 workers over TLS with keep-alive: ``imagegate serve`` (the
shipped settings, audit log on) and the floor (``bench/floor.py``: a bare Flask app answering a fixed
1-op patch, gunicorn gthread 2 x 4). Scenarios:

* ``pinned``: a ~8 KB Pod review with 5 digest-pinned images under a rule without signature
  requirements: no registry call. ``/validate`` at 1 and 16 connections, ``/mutate`` at 16, and
  ``/validate`` at a fixed 200 req/s offered (``hey -q 25 -c 8``).
* ``deployment``: a Deployment review with 10 pinned containers, ``/validate`` at 16 connections.
* ``signed``: 5 pinned images that must carry a keyless signature and a SLSA attestation; after the
  warm-up every verification is a verification-cache hit.
* ``floor``: the floor app, with the same bodies, tools and connection counts as the scenarios above.

Each scenario gets a warm-up run, then ``runs`` measured runs; the runs of all scenarios are
interleaved round by round, so drift on a shared machine spreads over all of them. Per run: the load
tool's numbers, and from ``/proc`` each worker's CPU seconds (the split between the workers) and the
server's CPU per request. Every scenario is also given as a ratio to its floor twin (same body, tool
and connections), computed per round (adjacent runs) and summarised by the median over the rounds.
"""

from __future__ import annotations

__all__ = ["Scenario", "Target", "admission_benchmarks"]

import json
import logging
import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.load import LoadRun, run_hey, run_wrk
from bench.procstat import CpuSplit, cpu_by_worker, cpu_split
from bench.results import Metric, Result
from tests.support.server import Server

_logger = logging.getLogger(__name__)
_SERVER_TROUBLE = re.compile(r"Traceback|WORKER TIMEOUT|\bERROR\b|\bCRITICAL\b")
GROUP = "1. admission"


@dataclass(frozen=True, slots=True)
class Target:
    """A server under load: its base URL and the pid of its gunicorn master (for per-worker CPU)."""

    url: str
    master: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Scenario:
    """One load configuration. ``images``: ``pinned``, ``deployment``, ``signed`` or ``floor``."""

    name: str
    path: str
    body: Path
    connections: int
    tool: str  # "wrk" or "hey"
    images: str
    rate: int | None = None  # hey -q: requests per second per connection
    floor: str | None = None  # name of the floor scenario to compare with

    @property
    def is_floor(self) -> bool:
        return self.images == "floor"

    @property
    def outcome(self) -> str:
        """Every image's outcome in imagegate's answer."""
        return "verified" if self.images == "signed" else "admitted"

    def run(self, target: Target, *, seconds: float, workdir: Path, label: str) -> tuple[LoadRun, CpuSplit]:
        """One bounded load run, with the server's CPU per worker over it."""
        url = target.url + self.path
        log = workdir / f"{self.name}-{label}.txt"
        before = cpu_by_worker(target.master)
        if self.tool == "wrk":
            done = run_wrk(
                url, body=self.body, connections=self.connections, seconds=seconds, workdir=workdir, log=log
            )
        else:
            done = run_hey(
                url, body=self.body, connections=self.connections, seconds=seconds, rate=self.rate, log=log
            )
        return done, cpu_split(target.master, before, cpu_by_worker(target.master))


def check_answers(server: Server, *, path: str, body: Path, outcome: str) -> None:
    """Before and after loading an endpoint: allowed, every image ``outcome`` (``admitted`` where the rule
    asks for no signature, ``verified`` where it does), nothing to patch."""
    review = json.loads(body.read_bytes())
    response = server.admit(path, review)
    images = json.loads(response["auditAnnotations"]["images"])
    if response.get("allowed") is not True or "patch" in response:
        raise AssertionError(f"{path}: unexpected answer {response}")
    if [i["outcome"] for i in images] != [outcome] * len(images):
        raise AssertionError(f"{path}: unexpected outcomes {images}")


def admission_benchmarks(
    server: Server,
    scenarios: Sequence[Scenario],
    *,
    floor: Target | None,
    runs: int,
    seconds: float,
    warmup: float,
    workdir: Path,
) -> list[Result]:
    """Warm up and load every scenario ``runs`` times, interleaved; check answers before and after."""
    mine = [s for s in scenarios if not s.is_floor]
    imagegate = Target(server.url, server.process.pid)
    for scenario in mine:
        check_answers(server, path=scenario.path, body=scenario.body, outcome=scenario.outcome)
    measured: dict[str, list[tuple[LoadRun, CpuSplit]]] = {s.name: [] for s in scenarios}
    warmups: dict[str, LoadRun] = {}
    for round_ in range(runs):
        for scenario in scenarios:
            target = floor if scenario.is_floor else imagegate
            if target is None:
                continue
            if round_ == 0 and warmup > 0:
                warmups[scenario.name] = scenario.run(
                    target, seconds=warmup, workdir=workdir, label="warmup"
                )[0]
            done, cpu = scenario.run(target, seconds=seconds, workdir=workdir, label=f"run{round_}")
            _logger.info(
                "%s run %d: %.0f req/s p99 %.2f ms, CPU %.3f ms/request, workers %s",
                scenario.name,
                round_,
                done.requests_per_second,
                done.p99_ms,
                cpu.total * 1000 / max(done.requests, 1),
                cpu.workers,
            )
            measured[scenario.name].append((done, cpu))
    if server.process.poll() is not None:
        raise RuntimeError(f"imagegate serve died during the load runs ({server.process.returncode})")
    for scenario in mine:
        check_answers(server, path=scenario.path, body=scenario.body, outcome=scenario.outcome)
    trouble = [line for line in server.stderr.read_text().splitlines() if _SERVER_TROUBLE.search(line)]
    return [
        _result(
            scenario,
            measured[scenario.name],
            floor_runs=measured.get(scenario.floor or "", []),
            warmup_run=warmups.get(scenario.name),
            seconds=seconds,
            warmup=warmup,
            server_trouble=() if scenario.is_floor else trouble,
        )
        for scenario in scenarios
        if measured[scenario.name]
    ]


def _ratios(mine: Sequence[float], floor: Sequence[float]) -> tuple[float, ...]:
    """Per-round ratios (run i against the floor's run i of the same round)."""
    return tuple(m / f for m, f in zip(mine, floor, strict=False) if f > 0)


def _result(
    scenario: Scenario,
    runs: Sequence[tuple[LoadRun, CpuSplit]],
    *,
    floor_runs: Sequence[tuple[LoadRun, CpuSplit]],
    warmup_run: LoadRun | None,
    seconds: float,
    warmup: float,
    server_trouble: Sequence[str],
) -> Result:
    loads = [load for load, _ in runs]
    cpu_per_request = tuple(cpu.total * 1000 / max(load.requests, 1) for load, cpu in runs)
    metrics = {
        "requests_per_second": Metric("req/s", tuple(r.requests_per_second for r in loads)),
        "p50": Metric("ms", tuple(r.p50_ms for r in loads)),
        "p90": Metric("ms", tuple(r.p90_ms for r in loads)),
        "p99": Metric("ms", tuple(r.p99_ms for r in loads)),
        "max": Metric("ms", tuple(r.max_ms for r in loads)),
        "failed": Metric("requests", tuple(float(r.failed) for r in loads)),
        "timeouts": Metric("requests", tuple(float(r.timeouts) for r in loads)),
        "cpu_per_request": Metric("ms", cpu_per_request),
        "worker_balance": Metric("min/max", tuple(cpu.balance for _, cpu in runs)),
    }
    notes = []
    if floor_runs:
        floor_loads = [load for load, _ in floor_runs]
        floor_cpu = [cpu.total * 1000 / max(load.requests, 1) for load, cpu in floor_runs]
        if scenario.rate is None:
            metrics["throughput_vs_floor"] = Metric(
                "x",
                _ratios([r.requests_per_second for r in loads], [r.requests_per_second for r in floor_loads]),
            )
        metrics["p99_vs_floor"] = Metric(
            "x", _ratios([r.p99_ms for r in loads], [r.p99_ms for r in floor_loads])
        )
        metrics["cpu_vs_floor"] = Metric("x", _ratios(cpu_per_request, floor_cpu))
        floor_rps = statistics.median(r.requests_per_second for r in floor_loads)
        notes.append(
            f"floor twin {scenario.floor}: {floor_rps:,.0f} req/s, "
            f"p99 {statistics.median(r.p99_ms for r in floor_loads):.2f} ms, "
            f"CPU {statistics.median(floor_cpu):.3f} ms/request"
        )
    failed = sum(r.failed for r in loads)
    if failed:
        kinds: dict[str, int] = {}
        for r in loads:
            for kind, count in r.errors.items():
                kinds[kind] = kinds.get(kind, 0) + count
            if r.non_2xx:
                kinds["non-2xx"] = kinds.get("non-2xx", 0) + r.non_2xx
        notes.append(f"{failed} failed requests over the runs: {kinds}")
    overran = [round(r.seconds, 1) for r in loads if r.seconds > seconds + 1.5]
    if overran:
        notes.append(
            f"runs of {seconds:g} s took {overran} s: requests were still hanging when the run ended (stalls)"
        )
    samples = {r.error_sample for r in loads if r.error_sample}
    if samples:
        notes.append(f"client error: {sorted(samples)[0]}")
    slowest = max(r.max_ms for r in loads)
    if slowest >= 1000:
        notes.append(f"slowest request {slowest:,.0f} ms: a stall (the API server's default timeout is 10 s)")
    if server_trouble:
        notes.append(f"server stderr has {len(server_trouble)} error lines, first: {server_trouble[0][:200]}")
    offered = f", {scenario.rate * scenario.connections} req/s offered" if scenario.rate else ""
    return Result(
        name=scenario.name,
        group=GROUP,
        description=(
            f"{scenario.tool} POST {scenario.path}, {scenario.body.stat().st_size / 1024:.1f} KB review, "
            + ("floor app" if scenario.is_floor else f"{scenario.images} images")
            + f", c={scenario.connections}{offered}"
        ),
        parameters={
            "tool": scenario.tool,
            "path": scenario.path,
            "connections": scenario.connections,
            "rate_per_connection": scenario.rate,
            "client_threads": 1 if scenario.tool == "wrk" else None,
            "images": scenario.images,
            "body_bytes": scenario.body.stat().st_size,
            "seconds_per_run": seconds,
            "warmup_seconds": warmup,
            "runs": len(runs),
            "request_timeout_seconds": 5,
            "floor": scenario.floor,
            "server": (
                "bare Flask app (bench/floor.py), gunicorn gthread 2 workers x 4 threads, reuse_port, TLS"
                if scenario.is_floor
                else "imagegate serve, 2 workers, TLS, audit log on"
            ),
        },
        primary="requests_per_second",
        metrics=metrics,
        details=[
            {
                "run": i,
                **load.to_json(),
                "worker_cpu_seconds": list(cpu.workers),
                "server_cpu_seconds": cpu.total,
            }
            for i, (load, cpu) in enumerate(runs)
        ]
        + ([{"run": "warmup", **warmup_run.to_json()}] if warmup_run is not None else []),
        notes=notes,
    )


def stall_result(probe: Any, *, stalled: int) -> Result:
    """The stall probe as a result: fresh-request latency with stalled connections held open."""
    return Result(
        name="stalled-connections",
        group=GROUP,
        description=(
            f"{stalled} TLS connections that sent only a request line and {stalled} that never finished "
            "the handshake, held open while fresh /validate admissions are timed, each on a new TLS "
            "connection (handshake included)"
        ),
        parameters={"stalled_per_kind": stalled, "fresh_requests": len(probe.fresh_ms)},
        primary="fresh_max",
        metrics={
            "fresh_max": Metric("ms", (probe.fresh_max_ms,)),
            "fresh_median": Metric("ms", (probe.fresh_median_ms,)),
            "fresh_failed": Metric("requests", (float(probe.fresh_failed),)),
            "closed_by_server": Metric("connections", (float(probe.closed_by_server),)),
        },
        details=[probe.to_json()],
        notes=[
            f"the server closed {probe.closed_by_server} of {probe.stalled} stalled connections, the last "
            f"after {probe.seconds_to_close} s"
        ],
    )
