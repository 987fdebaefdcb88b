"""The serving targets, checked against one benchmark run: each MET, NOT MET, or NOT MEASURED.

| target | measured by |
|---|---|
| warm admission >= 0.8 of the floor's throughput, 1 connection | validate-pinned-c1 / floor-c1, per round |
| the same at 16 connections | validate-pinned-c16 / floor-c16, per round |
| CPU per admission <= 1.25 x the floor's | validate-pinned-c16 against floor-c16 |
| p99 at 200 req/s offered <= 1.3 x the floor's | validate-pinned-200rps / floor-200rps |
| both workers carry load in every 16-connection run | min/max worker CPU >= 1/3 in every imagegate c=16 run |
| 8 + 8 stalled connections: fresh request < 100 ms | stalled-connections: slowest fresh admission |
| RSS per worker flat within 10 % from 10k to 100k churned digests | churn-10k-digests |
| cold signed image (signature + attestation) <= 20 ms p50 at /validate | validate-signed-image, cold |

Medians over the rounds are compared with the limits; the spread is printed alongside.
"""

from __future__ import annotations

__all__ = ["Check", "check_targets", "targets_text"]

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from bench.results import Result


@dataclass(frozen=True, slots=True)
class Check:
    target: str
    limit: str
    measured: str
    status: str  # "MET", "NOT MET", "NOT MEASURED"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _metric(results: Mapping[str, Result], name: str, metric: str) -> Any:
    result = results.get(name)
    return None if result is None else result.metrics.get(metric)


def _spread(metric: Any, fmt: Callable[[float], str]) -> str:
    return f"{fmt(metric.median)} (runs {', '.join(fmt(v) for v in metric.runs)})"


def check_targets(results: Sequence[Result]) -> list[Check]:
    by_name = {result.name: result for result in results}
    checks: list[Check] = []

    def ratio(
        target: str, name: str, metric: str, *, at_least: float | None = None, at_most: float | None = None
    ) -> None:
        value = _metric(by_name, name, metric)
        limit = f">= {at_least}x" if at_least is not None else f"<= {at_most}x"
        if value is None:
            checks.append(Check(target, limit, "-", "NOT MEASURED"))
            return
        ok = value.median >= at_least if at_least is not None else value.median <= (at_most or 0)
        checks.append(Check(target, limit, _spread(value, lambda v: f"{v:.2f}x"), "MET" if ok else "NOT MET"))

    ratio(
        "warm admission throughput vs floor, c=1", "validate-pinned-c1", "throughput_vs_floor", at_least=0.8
    )
    ratio(
        "warm admission throughput vs floor, c=16", "validate-pinned-c16", "throughput_vs_floor", at_least=0.8
    )
    ratio("CPU per admission vs floor (c=16)", "validate-pinned-c16", "cpu_vs_floor", at_most=1.25)
    ratio("p99 at 200 req/s offered vs floor", "validate-pinned-200rps", "p99_vs_floor", at_most=1.3)

    balances = [
        (result.name, value)
        for result in results
        if result.group.startswith("1.")
        and result.parameters.get("connections") == 16
        and result.parameters.get("images") != "floor"
        and "worker_balance" in result.metrics
        for value in result.metrics["worker_balance"].runs
    ]
    if balances:
        worst_name, worst = min(balances, key=lambda item: item[1])
        checks.append(
            Check(
                "both workers carry load in every c=16 run (min/max worker CPU)",
                ">= 0.33",
                f"worst {worst:.2f} ({worst_name}) over {len(balances)} runs",
                "MET" if worst >= 1 / 3 else "NOT MET",
            )
        )
    else:
        checks.append(Check("both workers carry load in every c=16 run", ">= 0.33", "-", "NOT MEASURED"))

    stall = by_name.get("stalled-connections")
    if stall is None:
        checks.append(Check("fresh admission with 8+8 stalled connections", "< 100 ms", "-", "NOT MEASURED"))
    else:
        slowest = stall.metrics["fresh_max"].median
        failed = stall.metrics["fresh_failed"].median
        closed = stall.metrics["closed_by_server"].median
        stalled = stall.details[0]["stalled"] if stall.details else 0
        checks.append(
            Check(
                "fresh admission with 8+8 stalled connections (slowest of the fresh ones)",
                "< 100 ms",
                f"{slowest:.1f} ms, {failed:.0f} failed; server closed {closed:.0f}/{stalled} stalled",
                "MET" if slowest < 100 and failed == 0 else "NOT MET",
            )
        )

    growth = _metric(by_name, "churn-10k-digests", "rss_growth")
    churn = by_name.get("churn-10k-digests")
    counts = (
        f"{churn.parameters['total']:,} vs {churn.parameters['first']:,}"
        if churn is not None
        else "100,000 vs 10,000"
    )
    if growth is None:
        checks.append(Check(f"RSS per worker, {counts} churned requests", "<= 1.10x", "-", "NOT MEASURED"))
    else:
        checks.append(
            Check(
                f"RSS per worker, {counts} churned requests",
                "<= 1.10x",
                "workers " + ", ".join(f"{v:.3f}x" for v in growth.runs),
                "MET" if growth.max <= 1.10 else "NOT MET",
            )
        )

    cold = _metric(by_name, "validate-signed-image", "cold")
    if cold is None:
        checks.append(Check("cold signed image at /validate, p50", "<= 20 ms", "-", "NOT MEASURED"))
    else:
        checks.append(
            Check(
                "cold signed image at /validate, p50",
                "<= 20 ms",
                _spread(cold, lambda v: f"{v:.1f} ms"),
                "MET" if cold.median <= 20 else "NOT MET",
            )
        )
    return checks


def targets_text(checks: Sequence[Check]) -> str:
    width = max(len(c.target) for c in checks)
    lines = ["", "== targets (this machine, this run)"]
    for c in checks:
        lines.append(f"{c.status:>12}  {c.target:<{width}}  limit {c.limit:<9}  measured {c.measured}")
    met = sum(c.status == "MET" for c in checks)
    lines.append(f"{met} of {len(checks)} targets met")
    return "\n".join(lines)
