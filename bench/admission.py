"""Admission throughput and latency of ``imagegate serve`` (gunicorn, TLS, 2 workers) on the warm path.

The review is a ~8 KB Pod CREATE AdmissionReview with 5 containers. Scenarios:

* ``pinned``: every image is digest-pinned and governed by a rule without signature requirements, so
  an admission never contacts a registry: parse, plan, decide, audit line, respond. POSTed to
  ``/validate`` and ``/mutate`` (no patch: nothing to pin) at 1 and 16 connections with ``wrk``, and to
  ``/validate`` at 16 connections with ``hey`` (whose latency includes TLS handshakes and whose client
  timeout exposes stalls).
* ``signed``: 5 pinned images that must carry a keyless signature and a SLSA attestation; after the
  warm-up every verification is a verification-cache hit, so this too makes no registry calls.

Each scenario gets one warm-up run, then ``runs`` measured runs; the runs of all scenarios are
interleaved, so drift on a shared machine spreads over all of them rather than hitting one.
"""

from __future__ import annotations

__all__ = ["FLOOR", "Scenario", "admission_benchmarks"]

import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.load import LoadRun, run_hey, run_wrk
from bench.results import Metric, Result
from tests.support.server import Server

_logger = logging.getLogger(__name__)

# The recorded Python webhook floor (bench/README.md, "The floor"): a trivial Flask /mutate, 8 KB review,
# gunicorn gthread x 4 threads, 2 workers, TLS, wrk -t1 on the same 2 cores. req/s, p50/p99 in ms.
FLOOR: dict[int, dict[str, Any]] = {
    1: {"requests_per_second": 957, "p50_ms": 0.98, "p99_ms": 2.9},
    16: {"requests_per_second": 2116, "runs": [867, 2295, 2116], "p50_ms": 8.8, "p99_ms": 34.3},
}
_SERVER_TROUBLE = re.compile(r"Traceback|WORKER TIMEOUT|\bERROR\b|\bCRITICAL\b")


@dataclass(frozen=True, slots=True, kw_only=True)
class Scenario:
    """One load configuration. ``images`` is ``pinned``, ``signed`` or ``floor`` (the trivial app)."""

    name: str
    path: str
    body: Path
    connections: int
    tool: str  # "wrk" or "hey"
    images: str

    @property
    def is_floor(self) -> bool:
        return self.images == "floor"

    def run(self, base_url: str, *, seconds: float, workdir: Path, label: str) -> LoadRun:
        """One bounded load run; the tool's output is kept in ``workdir/<name>-<label>.txt``."""
        url = base_url + self.path
        log = workdir / f"{self.name}-{label}.txt"
        if self.tool == "wrk":
            return run_wrk(
                url, body=self.body, connections=self.connections, seconds=seconds, workdir=workdir, log=log
            )
        return run_hey(url, body=self.body, connections=self.connections, seconds=seconds, log=log)


def check_answers(server: Server, *, path: str, body: Path) -> None:
    """Before and after loading an endpoint: allowed, every image ``admitted`` (its rule asks for no
    signature), nothing to patch."""
    review = json.loads(body.read_bytes())
    response = server.admit(path, review)
    images = json.loads(response["auditAnnotations"]["images"])
    if response.get("allowed") is not True or "patch" in response:
        raise AssertionError(f"{path}: unexpected answer {response}")
    if [i["outcome"] for i in images] != ["admitted"] * len(images):
        raise AssertionError(f"{path}: unexpected outcomes {images}")


def admission_benchmarks(
    server: Server,
    scenarios: Sequence[Scenario],
    *,
    floor_url: str | None,
    runs: int,
    seconds: float,
    warmup: float,
    workdir: Path,
) -> list[Result]:
    """Warm up and load every scenario ``runs`` times, interleaved; check answers before and after."""
    mine = [s for s in scenarios if not s.is_floor]
    for scenario in mine:
        check_answers(server, path=scenario.path, body=scenario.body)
    measured: dict[str, list[LoadRun]] = {s.name: [] for s in scenarios}
    warmups: dict[str, LoadRun] = {}
    for round_ in range(runs):
        for scenario in scenarios:
            base = floor_url if scenario.is_floor else server.url
            if base is None:
                continue
            if round_ == 0 and warmup > 0:
                warmups[scenario.name] = scenario.run(base, seconds=warmup, workdir=workdir, label="warmup")
            done = scenario.run(base, seconds=seconds, workdir=workdir, label=f"run{round_}")
            _logger.info(
                "%s run %d: %.0f req/s p50 %.2f ms p99 %.2f ms failed %d",
                scenario.name,
                round_,
                done.requests_per_second,
                done.p50_ms,
                done.p99_ms,
                done.failed,
            )
            measured[scenario.name].append(done)
    if server.process.poll() is not None:
        raise RuntimeError(f"imagegate serve died during the load runs ({server.process.returncode})")
    for scenario in mine:
        check_answers(server, path=scenario.path, body=scenario.body)
    trouble = [line for line in server.stderr.read_text().splitlines() if _SERVER_TROUBLE.search(line)]
    live_floor = {
        s.connections: Metric("req/s", tuple(r.requests_per_second for r in measured[s.name]))
        for s in scenarios
        if s.is_floor and s.tool == "wrk" and measured[s.name]
    }
    return [
        _result(
            scenario,
            measured[scenario.name],
            warmup_run=warmups.get(scenario.name),
            seconds=seconds,
            warmup=warmup,
            server_trouble=() if scenario.is_floor else trouble,
            live_floor=None
            if scenario.is_floor or scenario.tool != "wrk"
            else live_floor.get(scenario.connections),
        )
        for scenario in scenarios
        if measured[scenario.name]
    ]


def _result(
    scenario: Scenario,
    runs: Sequence[LoadRun],
    *,
    warmup_run: LoadRun | None,
    seconds: float,
    warmup: float,
    server_trouble: Sequence[str],
    live_floor: Metric | None,
) -> Result:
    metrics = {
        "requests_per_second": Metric("req/s", tuple(r.requests_per_second for r in runs)),
        "p50": Metric("ms", tuple(r.p50_ms for r in runs)),
        "p90": Metric("ms", tuple(r.p90_ms for r in runs)),
        "p99": Metric("ms", tuple(r.p99_ms for r in runs)),
        "max": Metric("ms", tuple(r.max_ms for r in runs)),
        "failed": Metric("requests", tuple(float(r.failed) for r in runs)),
        "timeouts": Metric("requests", tuple(float(r.timeouts) for r in runs)),
    }
    notes = []
    floor = FLOOR.get(scenario.connections)
    throughput = metrics["requests_per_second"].median
    if floor is not None and scenario.tool == "wrk":
        notes.append(
            f"{throughput / floor['requests_per_second']:.0%} of the published floor at "
            f"c={scenario.connections}: {floor['requests_per_second']:,} req/s, "
            f"p50 {floor['p50_ms']} ms, p99 {floor['p99_ms']} ms"
        )
    if live_floor is not None:
        notes.append(
            f"{throughput / live_floor.median:.0%} of the live floor measured alongside "
            f"({live_floor.median:,.0f} req/s, runs {', '.join(f'{v:,.0f}' for v in live_floor.runs)})"
        )
    failed = sum(r.failed for r in runs)
    if failed:
        kinds: dict[str, int] = {}
        for r in runs:
            for kind, count in r.errors.items():
                kinds[kind] = kinds.get(kind, 0) + count
            if r.non_2xx:
                kinds["non-2xx"] = kinds.get("non-2xx", 0) + r.non_2xx
        notes.append(f"{failed} failed requests over the runs: {kinds}")
    overran = [round(r.seconds, 1) for r in runs if r.seconds > seconds + 1.5]
    if overran:
        notes.append(
            f"runs of {seconds:g} s took {overran} s: requests were still hanging when the run ended (stalls)"
        )
    samples = {r.error_sample for r in runs if r.error_sample}
    if samples:
        notes.append(f"client error: {sorted(samples)[0]}")
    slowest = max(r.max_ms for r in runs)
    if slowest >= 1000:
        notes.append(f"slowest request {slowest:,.0f} ms: a stall (the API server's default timeout is 10 s)")
    if server_trouble:
        notes.append(f"server stderr has {len(server_trouble)} error lines, first: {server_trouble[0][:200]}")
    return Result(
        name=scenario.name,
        group="1. admission",
        description=(
            f"{scenario.tool} POST {scenario.path}, {scenario.body.stat().st_size / 1024:.1f} KB Pod review, "
            + ("floor app" if scenario.is_floor else f"5 {scenario.images} images")
            + f", c={scenario.connections}"
        ),
        parameters={
            "tool": scenario.tool,
            "path": scenario.path,
            "connections": scenario.connections,
            "client_threads": 1 if scenario.tool == "wrk" else None,
            "images": scenario.images,
            "body_bytes": scenario.body.stat().st_size,
            "seconds_per_run": seconds,
            "warmup_seconds": warmup,
            "runs": len(runs),
            "request_timeout_seconds": 5,
            "server": (
                "trivial Flask app (bench/floor.py), webhook.gunicorn_conf, 2 workers, TLS"
                if scenario.is_floor
                else "imagegate serve, 2 workers, TLS, audit log on"
            ),
            "floor": floor,
        },
        primary="requests_per_second",
        metrics=metrics,
        details=[{"run": i, **r.to_json()} for i, r in enumerate(runs)]
        + ([{"run": "warmup", **warmup_run.to_json()}] if warmup_run is not None else []),
        notes=notes,
    )
