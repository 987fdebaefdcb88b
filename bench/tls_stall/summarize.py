"""Turn the JSON lines written by run.py into the Markdown tables of README.md.

python bench/tls_stall/summarize.py results.jsonl [more.jsonl ...]
"""

from __future__ import annotations

import json
import statistics
import sys
from collections import defaultdict
from typing import Any

__all__ = ["main"]


def main() -> None:
    rows: list[dict[str, Any]] = []
    for name in sys.argv[1:]:
        with open(name) as f:
            rows += [json.loads(line) for line in f if line.strip()]
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[(row["config"], row["tool"], row["c"], row["body"], row["keepalive"])].append(row)
    print("| config | tool | c | body B | keep-alive | runs | runs with timeouts | timeouts (per run) |"
          " req/s median (min-max) | slowest ok req, max | client conns near end |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for (config, tool, c, body, keepalive), runs in groups.items():
        rps = [r["rps"] or 0.0 for r in runs]
        errors = [r["errors"] for r in runs]
        print(
            f"| {config} | {tool} | {c} | {body} | {'yes' if keepalive else 'no'} | {len(runs)} | "
            f"{sum(1 for e in errors if e)} | {sum(errors)} ({', '.join(map(str, errors))}) | "
            f"{statistics.median(rps):.0f} ({min(rps):.0f}-{max(rps):.0f}) | "
            f"{max(r['slowest_s'] or 0.0 for r in runs):.2f} s | "
            f"{', '.join(str(r['conns_near_end']) for r in runs)} |"
        )
    print()
    print("| config | run | ok | timeouts | req/s | slowest ok (s) | p99 (s) | wall (s) | conns |")
    print("|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        label = row["config"] + ("" if row["keepalive"] else " (no keep-alive)")
        label += "" if row["c"] == 16 else " c=" + str(row["c"])
        cells = [label, row["run"], row["ok"], row["errors"], f"{row['rps']:.0f}", row["slowest_s"]]
        cells += [row["p99_s"], row["wall_s"], row["conns_near_end"]]
        print("| " + " | ".join(str(cell) for cell in cells) + " |")


if __name__ == "__main__":
    main()
