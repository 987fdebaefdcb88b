"""Churn: 10,000 distinct pinned digests cycled through a running server; RSS per worker at 10k and 100k.

Each request is the 5-container pinned Pod review with new digests: request ``n`` carries the digests
of slot ``n mod 2000`` (5 per slot, so 10,000 distinct digests in all), built by ``wrk``'s Lua
``request()`` from a template. Every cache keyed by image or digest (decision, matching, verification,
metrics labels) meets all 10,000 within the first 10,000 requests; if memory still grows between 10,000
and 100,000 requests, something keeps per-request state.
"""

from __future__ import annotations

__all__ = ["churn_benchmark"]

import json
import logging
import subprocess
import time
from pathlib import Path
from typing import Any

from bench.load import check_local
from bench.procstat import rss_by_worker
from bench.results import Metric, Result
from bench.world import pod_review, write_body
from tests.support.server import Server

_logger = logging.getLogger(__name__)

SLOTS = 2000  # x 5 containers = 10,000 distinct digests
_MARK = "CHURN-JSON "
_LUA = """\
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = assert(io.open(%(body)s, "rb"))
local template = f:read("*all")
f:close()
local counter = %(offset)d
local answered, bad = 0, 0
local limit = %(limit)d

request = function()
  local slot = counter %% %(slots)d
  counter = counter + 1
  local body = template:gsub("DIGEST(%%d)", function(i)
    return string.format("%%058x%%06d", slot, tonumber(i))
  end)
  return wrk.format(nil, nil, nil, body)
end

-- wrk runs for its whole -d even after thread:stop(): report and exit once the count is reached.
response = function(status, headers, body)
  answered = answered + 1
  if status ~= 200 then bad = bad + 1 end
  if answered == limit then
    io.write(string.format('%(mark)s{"requests":%%d,"status":%%d}\\n', answered, bad))
    io.flush()
    os.exit(0)
  end
end

done = function(summary, latency, requests)
  io.write(string.format('%(mark)s{"requests":%%d,"status":%%d,"errors":%%d}\\n', answered, bad,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
"""


def _phase(
    url: str, *, workdir: Path, body: Path, offset: int, limit: int, connections: int
) -> dict[str, Any]:
    script = workdir / f"churn-{offset}.lua"
    script.write_text(
        _LUA
        % {"body": json.dumps(str(body)), "offset": offset, "limit": limit, "slots": SLOTS, "mark": _MARK}
    )
    # Bounded by time too (the script exits once ``limit`` answers came): 300 s.
    argv = ["wrk", "-t1", f"-c{connections}", "-d300s", "--timeout=5s", "-s", str(script), url]
    started = time.monotonic()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=360, check=False)
    seconds = time.monotonic() - started
    (workdir / f"churn-{offset}.txt").write_text(done.stdout + done.stderr)
    line = next((x for x in done.stdout.splitlines() if x.startswith(_MARK)), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout[-800:]} {done.stderr[-800:]}")
    counts: dict[str, Any] = json.loads(line[len(_MARK) :])
    if counts["requests"] < limit:
        raise RuntimeError(f"churn: only {counts['requests']} of {limit} requests answered within 300 s")
    return {
        **counts,
        "seconds": round(seconds, 1),
        "requests_per_second": round(counts["requests"] / seconds, 1),
    }


def churn_benchmark(
    server: Server, *, workdir: Path, first: int = 10_000, total: int = 100_000, connections: int = 16
) -> Result:
    """Send ``first`` churned requests, read RSS per worker, continue to ``total``, read it again."""
    if not 0 < first < total:
        raise ValueError(f"churn: need 0 < first < total, not {first} and {total}")
    url = server.url + "/validate"
    check_local(url)
    images = [f"ghcr.io/acme/churn-{i}:1.0@sha256:DIGEST{i}" for i in range(5)]
    body = write_body(workdir / "churn-template.json", pod_review(images, uid="bench-churn"))
    master = server.process.pid
    start = rss_by_worker(master)
    phases = [_phase(url, workdir=workdir, body=body, offset=0, limit=first, connections=connections)]
    at_first = rss_by_worker(master)
    phases.append(
        _phase(url, workdir=workdir, body=body, offset=first, limit=total - first, connections=connections)
    )
    at_total = rss_by_worker(master)
    pids = sorted(set(at_first) & set(at_total))
    growth = tuple(at_total[pid] / at_first[pid] for pid in pids)
    failed = sum(p["status"] + p.get("errors", 0) for p in phases)
    _logger.info("churn: RSS %s -> %s -> %s (failed %d)", start, at_first, at_total, failed)
    mib = 1024 * 1024
    return Result(
        name="churn-10k-digests",
        group="1. admission",
        description=(
            f"wrk POST /validate, 5-container Pod reviews cycling through {SLOTS * 5:,} distinct pinned "
            f"digests, c={connections}: RSS per worker after {first:,} and {total:,} requests"
        ),
        parameters={
            "distinct_digests": SLOTS * 5,
            "first": first,
            "total": total,
            "connections": connections,
        },
        primary="rss_growth",
        metrics={
            "rss_growth": Metric("x", growth),
            "rss_at_first": Metric("MiB", tuple(at_first[pid] / mib for pid in pids)),
            "rss_at_total": Metric("MiB", tuple(at_total[pid] / mib for pid in pids)),
            "failed": Metric("requests", (float(failed),)),
        },
        details=[
            {"rss_start": start, "rss_at_first": at_first, "rss_at_total": at_total, "phases": phases},
        ],
        notes=[f"{failed} failed requests"] if failed else [],
    )
