"""Bounded HTTP load on 127.0.0.1 with Debian's ``wrk`` (Lua POST script) and ``hey``, parsed into numbers.

Both tools keep connections alive, as the API server does. ``wrk`` measures latency from the request
write to the response (connection and TLS handshake excluded); ``hey`` includes the handshake of each
new connection. Every run is bounded in time (``-d``/``-z``), in connections (``-c``), and by a
subprocess timeout; URLs other than ``https://127.0.0.1:...`` are refused.
"""

from __future__ import annotations

__all__ = ["LoadRun", "check_local", "run_hey", "run_wrk"]

import json
import logging
import re
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

_logger = logging.getLogger(__name__)

# Seconds a request may take before the client counts it as timed out: a stall that long would
# already have eaten half of the API server's default 10 s webhook timeout.
REQUEST_TIMEOUT = 5
_MARK = "BENCH-JSON "

# Percentiles drawn as the latency distribution (bench/plot.py).
CURVE_PERCENTILES = (1, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 98, 99, 99.5, 99.9)  # then the max

# The body is loaded once; done() prints exact percentiles as one JSON line (microseconds).
_LUA = """\
wrk.method = "POST"
local f = assert(io.open(%(body)s, "rb"))
wrk.body = f:read("*all")
f:close()
wrk.headers["Content-Type"] = "application/json"

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '%(mark)s{"requests":%%d,"duration_us":%%d,"bytes":%%d,"connect":%%d,"read":%%d,"write":%%d,' ..
    '"status":%%d,"timeout":%%d,"min_us":%%d,"max_us":%%d,"mean_us":%%.1f,"p50_us":%%d,"p90_us":%%d,' ..
    '"p99_us":%%d,"p999_us":%%d}\\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.max, latency.mean, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9)))
  local curve = {}
  for _, p in ipairs({%(curve)s}) do curve[#curve + 1] = string.format("%%d", latency:percentile(p)) end
  io.write('%(mark)s{"curve_us":[' .. table.concat(curve, ",") .. ']}\\n')
end
"""


@dataclass(frozen=True, slots=True)
class LoadRun:
    """One bounded load run. Latencies in milliseconds; ``errors`` counts failed requests by kind."""

    tool: str
    connections: int
    seconds: float
    requests: int
    requests_per_second: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    errors: dict[str, int]
    non_2xx: int
    timeouts: int
    error_sample: str | None = None
    # (percentile, ms) points of the latency distribution, for the plot
    curve: tuple[tuple[float, float], ...] = ()

    @property
    def failed(self) -> int:
        return sum(self.errors.values()) + self.non_2xx

    def to_json(self) -> dict[str, Any]:
        return {k: round(v, 3) if isinstance(v, float) else v for k, v in asdict(self).items()}


def check_local(url: str) -> None:
    """Refuse to load anything but loopback."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or parts.hostname != "127.0.0.1":
        raise ValueError(f"load runs aim only at 127.0.0.1, not {url!r}")


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(f"{name} not found: install it with `make system-deps` (Debian package {name})")
    return path


def _keep(log: Path | None, *, argv: list[str], done: subprocess.CompletedProcess[str]) -> None:
    if log is not None:
        log.write_text(" ".join(argv) + "\n" + done.stdout + done.stderr)


def run_wrk(
    url: str, *, body: Path, connections: int, seconds: float, workdir: Path, log: Path | None = None
) -> LoadRun:
    """``wrk -t1 -cN -dS`` POSTing ``body``; one client thread leaves the other core to the server."""
    check_local(url)
    script = workdir / "post.lua"
    script.write_text(
        _LUA % {"body": json.dumps(str(body)), "mark": _MARK, "curve": ",".join(map(str, CURVE_PERCENTILES))}
    )
    argv = [
        _tool("wrk"),
        "-t1",
        f"-c{connections}",
        f"-d{seconds:g}s",
        f"--timeout={REQUEST_TIMEOUT}s",
        "-s",
        str(script),
        url,
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, check=False)
    _keep(log, argv=argv, done=done)
    lines = [x for x in done.stdout.splitlines() if x.startswith(_MARK)]
    if done.returncode != 0 or len(lines) != 2:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout[-800:]} {done.stderr[-800:]}")
    raw = json.loads(lines[0][len(_MARK) :])
    curve = json.loads(lines[1][len(_MARK) :])["curve_us"]
    duration = raw["duration_us"] / 1e6
    errors = {k: int(raw[k]) for k in ("connect", "read", "write", "timeout") if raw[k]}
    return LoadRun(
        tool="wrk",
        connections=connections,
        seconds=duration,
        requests=int(raw["requests"]),
        requests_per_second=raw["requests"] / duration if duration else 0.0,
        p50_ms=raw["p50_us"] / 1000,
        p90_ms=raw["p90_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        max_ms=raw["max_us"] / 1000,
        errors=errors,
        non_2xx=int(raw["status"]),
        timeouts=int(raw["timeout"]),
        curve=(
            *((p, us / 1000) for p, us in zip(CURVE_PERCENTILES, curve, strict=True)),
            (100, raw["max_us"] / 1000),
        ),
    )


_HEY_PERCENTILE = re.compile(r"^\s*(\d+)% in ([0-9.]+) secs", re.MULTILINE)
_HEY_STATUS = re.compile(r"^\s*\[(\d{3})\]\s+(\d+) responses", re.MULTILINE)
_HEY_ERROR = re.compile(r"^\s*\[(\d+)\]\s+(.+)$", re.MULTILINE)


def run_hey(
    url: str,
    *,
    body: Path,
    connections: int,
    seconds: float,
    rate: int | None = None,
    log: Path | None = None,
) -> LoadRun:
    """``hey -z S -c N -t 5``: latency includes each connection's TLS handshake; reports timeouts.

    ``rate``: requests per second per connection (``-q``): ``-q 25 -c 8`` offers 200 req/s.
    """
    check_local(url)
    argv = [
        _tool("hey"),
        "-z",
        f"{seconds:g}s",
        "-c",
        str(connections),
        *(["-q", str(rate)] if rate else []),
        "-t",
        str(REQUEST_TIMEOUT),
        "-m",
        "POST",
        "-T",
        "application/json",
        "-D",
        str(body),
        url,
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, check=False)
    _keep(log, argv=argv, done=done)
    out = done.stdout
    if done.returncode != 0 or "Requests/sec:" not in out:
        raise RuntimeError(f"hey failed ({done.returncode}): {out[-800:]} {done.stderr[-800:]}")
    total = float(re.search(r"Total:\s+([0-9.]+) secs", out).group(1))  # type: ignore[union-attr]
    slowest = float(re.search(r"Slowest:\s+([0-9.]+) secs", out).group(1))  # type: ignore[union-attr]
    percentiles: dict[float, float] = {int(p): float(s) * 1000 for p, s in _HEY_PERCENTILE.findall(out)}
    # hey leaves out percentiles it has too few answers for (a stalled run): the slowest bounds them.
    for p in (50, 90, 99):
        percentiles.setdefault(p, slowest * 1000)
    statuses = {int(code): int(n) for code, n in _HEY_STATUS.findall(out)}
    errors: dict[str, int] = {}
    sample = None
    if "Error distribution:" in out:
        for count, message in _HEY_ERROR.findall(out.split("Error distribution:", 1)[1]):
            sample = sample or message.strip()[:300]
            kind = "timeout" if "Timeout" in message or "deadline" in message else message.strip()[:120]
            errors[kind] = errors.get(kind, 0) + int(count)
    answered = sum(statuses.values())
    ok = sum(n for code, n in statuses.items() if 200 <= code < 300)
    return LoadRun(
        tool="hey",
        connections=connections,
        seconds=total,
        requests=answered,
        # hey's own Requests/sec counts errors too; only answered requests are throughput here.
        requests_per_second=answered / total if total else 0.0,
        p50_ms=percentiles.get(50, 0.0),
        p90_ms=percentiles.get(90, 0.0),
        p99_ms=percentiles.get(99, 0.0),
        max_ms=slowest * 1000,
        errors=errors,
        non_2xx=answered - ok,
        timeouts=errors.get("timeout", 0),
        error_sample=sample,
        curve=(*sorted(percentiles.items()), (100, slowest * 1000)),
    )
