"""``python -m bench.report [results.json]``: the results as Markdown tables (for bench/README.md)."""

from __future__ import annotations

__all__ = ["main", "markdown"]

import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bench.results import format_number

_DEFAULT = Path(__file__).resolve().parent / "results.json"


def _cell(metric: Mapping[str, Any]) -> str:
    if metric["min"] == metric["max"]:
        return format_number(metric["median"])
    low, high = format_number(metric["min"]), format_number(metric["max"])
    return f"{format_number(metric['median'])} ({low}-{high})"


def _ratio(metric: Mapping[str, Any] | None) -> str:
    return "-" if metric is None else _cell(metric) + "x"


def _admission(entries: Sequence[Mapping[str, Any]]) -> list[str]:
    lines = [
        "| scenario | tool | c | req/s | vs floor | p50 ms | p99 ms | p99 vs floor | CPU ms/req "
        "| CPU vs floor | worker balance | failed (timeouts) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for e in entries:
        m = e["metrics"]
        if "requests_per_second" not in m:
            continue
        failed = int(sum(m["failed"]["runs"]))
        timeouts = int(sum(m["timeouts"]["runs"]))
        rate = e["parameters"].get("rate_per_connection")
        c = e["parameters"]["connections"]
        lines.append(
            f"| {e['name']} | {e['parameters']['tool']} | {c}{f' @ {rate * c}/s' if rate else ''} "
            f"| {_cell(m['requests_per_second'])} | {_ratio(m.get('throughput_vs_floor'))} "
            f"| {_cell(m['p50'])} | {_cell(m['p99'])} | {_ratio(m.get('p99_vs_floor'))} "
            f"| {_cell(m['cpu_per_request'])} | {_ratio(m.get('cpu_vs_floor'))} "
            f"| {', '.join(f'{v:.2f}' for v in m['worker_balance']['runs'])} "
            f"| {failed} ({timeouts}) |"
        )
    return lines


def _targets(checks: Sequence[Mapping[str, Any]]) -> list[str]:
    lines = ["| target | limit | measured | status |", "|---|---|---|---|"]
    lines += [f"| {c['target']} | {c['limit']} | {c['measured']} | **{c['status']}** |" for c in checks]
    return lines


def _latency(entries: Sequence[Mapping[str, Any]]) -> list[str]:
    lines = ["| benchmark | metric | median (min-max over runs) |", "|---|---|---|"]
    for e in entries:
        for name, metric in e["metrics"].items():
            lines.append(f"| {e['name']} | {name} | {_cell(metric)} {metric['units']} |")
    return lines


def markdown(document: Mapping[str, Any]) -> str:
    machine = document["machine"]
    benchmarks = document["benchmarks"]
    head = (
        f"Run {machine['date']}, commit {machine['commit']}: "
        f"{machine['cores']} cores ({machine['cpu_model']}), "
        f"{machine['memory_mib']:,} MiB, {machine['python']}, gunicorn {machine['packages']['gunicorn']} "
        f"({machine['gunicorn']['worker_class']}, {machine['gunicorn']['threads']} threads), flask "
        f"{machine['packages']['flask']}, sigstore {machine['packages']['sigstore']}, wrk "
        f"{machine['debian_packages']['wrk']}, hey {machine['debian_packages']['hey']}, docker-registry "
        f"{machine['debian_packages']['docker-registry']}. Load average at start "
        f"{machine['load_average_at_start'][0]:.1f}, at end {machine['load_average_at_end'][0]:.1f}; "
        f"wall time {machine['wall_seconds']} s."
    )
    admission = [
        b for b in benchmarks if b["group"].startswith("1.") and "requests_per_second" in b["metrics"]
    ]
    rest = [b for b in benchmarks if b not in admission]
    out = [head, ""]
    if document.get("targets"):
        out += [*_targets(document["targets"]), ""]
    if admission:
        out += [*_admission(admission), ""]
    if rest:
        out += [*_latency(rest), ""]
    notes = [f"- {b['name']}: {note}" for b in benchmarks for note in b["notes"]]
    if notes:
        out += ["Notes recorded by the run:", "", *notes, ""]
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    path = Path(args[0]) if args else _DEFAULT
    print(markdown(json.loads(path.read_text())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
