"""``python -m bench.plot [results.json] [out.png]``: the admission latency distributions as a PNG.

One panel per comparison (1 connection, 16 connections, 200 req/s offered, the 10-container
Deployment): imagegate's runs against the floor's, latency (log scale) by percentile. Needs matplotlib
(``pip install -e '.[bench]'``, which ``make bench`` does).
"""

from __future__ import annotations

__all__ = ["main", "plot"]

import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent
PANELS = (
    ("1 connection (wrk)", "validate-pinned-c1", "floor-c1"),
    ("16 connections (wrk)", "validate-pinned-c16", "floor-c16"),
    ("200 req/s offered (hey -q 25 -c 8)", "validate-pinned-200rps", "floor-200rps"),
    ("10-container Deployment, 16 connections", "validate-deployment-c16", "floor-deployment-c16"),
)


def _curves(entry: Mapping[str, Any]) -> list[list[tuple[float, float]]]:
    return [
        [(p, ms) for p, ms in d["curve"]]
        for d in entry["details"]
        if d.get("run") != "warmup" and d.get("curve")
    ]


def plot(document: Mapping[str, Any], out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    entries = {b["name"]: b for b in document["benchmarks"]}
    panels = [p for p in PANELS if p[1] in entries]
    columns = 2
    rows = (len(panels) + columns - 1) // columns
    figure, axes = plt.subplots(rows, columns, figsize=(11, 4.2 * rows), squeeze=False)
    ticks = [50, 90, 99, 99.9, 100]
    for axis, (title, mine, floor) in zip(axes.flat, panels, strict=False):
        for name, colour in ((floor, "tab:gray"), (mine, "tab:blue")):
            if name not in entries:
                continue
            for index, curve in enumerate(_curves(entries[name])):
                xs = [100 / (100 - min(p, 99.97)) for p, _ in curve]  # the max drawn just past p99.9
                axis.plot(
                    xs, [ms for _, ms in curve], color=colour, alpha=0.8, label=name if index == 0 else None
                )
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xticks(
            [100 / (100 - min(t, 99.97)) for t in ticks], [f"p{t:g}" if t < 100 else "max" for t in ticks]
        )
        axis.set_title(title, fontsize=9)
        axis.set_ylabel("latency, ms")
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize=7)
    machine = document["machine"]
    figure.suptitle(
        f"imagegate vs the floor, one line per run; {machine['date']}, commit {machine['commit']}, "
        f"load average {machine['load_average_at_start'][0]:.1f} at start",
        fontsize=9,
    )
    figure.tight_layout()
    figure.savefig(out, dpi=110)
    plt.close(figure)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    source = Path(args[0]) if args else _HERE / "results.json"
    out = Path(args[1]) if len(args) > 1 else _HERE / "latency.png"
    print(plot(json.loads(source.read_text()), out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
