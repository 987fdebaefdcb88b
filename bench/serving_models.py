"""Compare serving models for the webhook: gunicorn worker classes and fronts, same app, same TLS, same load.

    python -m bench.serving_models --rounds 2 --out models.jsonl
    python -m bench.serving_models --models front,gthread --extra fixed=old_module.ThreadWorker:/path/to/dir

Every model serves the floor app (``bench/floor.py``: parse the ~8 KB review, answer a 1-op patch) with
2 workers over TLS, a fresh server per model and round, rounds interleaved. Per run: ``wrk`` at 1 and
16 keep-alive connections (throughput, p99, per-worker CPU split), ``hey -q 25 -c 8`` (200 req/s
offered: p99), and the stall probe (:mod:`bench.stall`: 8 request-line stalls + 8 unfinished
handshakes, then fresh requests timed; are the stalled connections closed by the server?). Models whose
packages are missing (gevent, uvicorn-worker, a2wsgi) are skipped with a note.
"""

from __future__ import annotations

__all__ = ["main"]

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import trustme  # noqa: E402

from bench.floor import stop, wait_ready  # noqa: E402
from bench.load import run_hey, run_wrk  # noqa: E402
from bench.procstat import cpu_by_worker, cpu_split  # noqa: E402
from bench.stall import stall_probe  # noqa: E402
from bench.world import pinned_images, pod_review, write_body  # noqa: E402
from tests.support.server import free_port  # noqa: E402


@dataclass(frozen=True, slots=True)
class Model:
    worker: str
    app: str = "bench.floor:app"
    options: tuple[str, ...] = ()
    needs: tuple[str, ...] = ()  # importable modules the model needs
    pythonpath: str | None = None


MODELS: dict[str, Model] = {
    "front": Model("webhook.serving.worker.FrontWorker", options=("--reuse-port",), needs=("httptools",)),
    "gthread": Model("gthread"),
    "gthread-reuseport": Model("gthread", options=("--reuse-port",)),
    "gevent": Model("gevent", options=("--worker-connections", "1000"), needs=("gevent",)),
    "sync": Model("sync"),
    "uvicorn": Model(
        "uvicorn_worker.UvicornWorker", app="bench.floor:asgi_app", needs=("uvicorn_worker", "a2wsgi")
    ),
    "gunicorn-asgi": Model("asgi", app="bench.floor:asgi_app", needs=("a2wsgi",)),
}


def _missing(model: Model) -> list[str]:
    return [name for name in model.needs if importlib.util.find_spec(name) is None]


def _start(model: Model, *, port: int, work: Path, log: Path) -> subprocess.Popen[bytes]:
    argv = [
        sys.executable, "-m", "gunicorn", "-c", str(REPO / "bench" / "floor_conf.py"),
        "-k", model.worker, "--bind", f"127.0.0.1:{port}",
        "--certfile", str(work / "tls.crt"), "--keyfile", str(work / "tls.key"),
        *model.options, model.app,
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), model.pythonpath]))}
    with log.open("ab") as errors:
        process = subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=errors)
    wait_ready(f"https://127.0.0.1:{port}", ca_file=work / "ca.crt", process=process, log=log)
    time.sleep(0.5)  # both workers up
    return process


def _one_run(name: str, model: Model, *, work: Path, body: Path, seconds: float) -> dict[str, Any]:
    port = free_port()
    url = f"https://127.0.0.1:{port}"
    process = _start(model, port=port, work=work, log=work / f"{name}.log")
    row: dict[str, Any] = {"model": name, "worker": model.worker}
    try:
        for connections in (1, 16):
            before = cpu_by_worker(process.pid)
            run = run_wrk(url + "/mutate", body=body, connections=connections, seconds=seconds, workdir=work)
            split = cpu_split(process.pid, before, cpu_by_worker(process.pid))
            row[f"c{connections}"] = {
                "rps": round(run.requests_per_second, 1),
                "p50_ms": run.p50_ms,
                "p99_ms": run.p99_ms,
                "failed": run.failed,
                "cpu_ms_per_request": round(split.total * 1000 / max(run.requests, 1), 3),
                "worker_cpu_s": split.workers,
                "balance": round(split.balance, 2),
            }
        fixed = run_hey(url + "/mutate", body=body, connections=8, seconds=seconds, rate=25)
        row["fixed200"] = {
            "rps": round(fixed.requests_per_second, 1),
            "p99_ms": fixed.p99_ms,
            "failed": fixed.failed,
        }
        probe = stall_probe(url, ca_file=work / "ca.crt", path="/mutate", body=body.read_bytes(), fresh=5)
        row["stall"] = probe.to_json()
    finally:
        stop(process)
    return row


def _summary(rows: Sequence[dict[str, Any]]) -> str:
    by_model: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_model.setdefault(row["model"], []).append(row)
    lines = [
        "| model | c1 req/s | c16 req/s | c16 balance (min/max worker CPU) | CPU ms/req c16 | p99 ms @200/s "
        "| fresh req with 16 stalled: median / max ms | stalled closed by server |",
        "|---|---|---|---|---|---|---|---|",
    ]

    def med(values: list[float]) -> str:
        return f"{statistics.median(values):,.0f} ({min(values):,.0f}-{max(values):,.0f})"

    for model, runs in by_model.items():
        c1 = [r["c1"]["rps"] for r in runs]
        c16 = [r["c16"]["rps"] for r in runs]
        balance = ", ".join(f"{r['c16']['balance']:.2f}" for r in runs)
        cpu = statistics.median(r["c16"]["cpu_ms_per_request"] for r in runs)
        p99 = ", ".join(f"{r['fixed200']['p99_ms']:.1f}" for r in runs)
        fresh = ", ".join(
            f"{r['stall']['fresh_median_ms']:.0f} / {r['stall']['fresh_max_ms']:.0f}" for r in runs
        )
        closed = ", ".join(f"{r['stall']['closed_by_server']}/{r['stall']['stalled']}" for r in runs)
        lines.append(
            f"| {model} | {med(c1)} | {med(c16)} | {balance} | {cpu:.2f} | {p99} | {fresh} | {closed} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.serving_models", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated subset of the models")
    parser.add_argument(
        "--extra", action="append", default=[], help="NAME=module.Class:pythonpath, a worker to add"
    )
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=4.0, help="seconds per load run (at most 30)")
    parser.add_argument("--out", type=Path, help="append one JSON line per run")
    args = parser.parse_args(argv)
    if not 0 < args.seconds <= 30:
        parser.error("--seconds must be in (0, 30]")
    models = {name: MODELS[name] for name in args.models.split(",") if name}
    for extra in args.extra:
        name, _, spec = extra.partition("=")
        worker, _, path = spec.partition(":")
        models[name] = Model(worker, pythonpath=path or None)
    for name, model in list(models.items()):
        if missing := _missing(model):
            print(f"skipping {name}: missing {', '.join(missing)}", file=sys.stderr)
            del models[name]
    work = Path(tempfile.mkdtemp(prefix="imagegate-models-"))
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert.cert_chain_pems[0].write_to_path(str(work / "tls.crt"))
    cert.private_key_pem.write_to_path(str(work / "tls.key"))
    ca.cert_pem.write_to_path(str(work / "ca.crt"))
    body = write_body(work / "body.json", pod_review(pinned_images(5), uid="models"))
    rows = []
    for round_ in range(args.rounds):
        for name, model in models.items():
            row = {"round": round_, **_one_run(name, model, work=work, body=body, seconds=args.seconds)}
            print(json.dumps(row), flush=True)
            rows.append(row)
            if args.out is not None:
                with args.out.open("a") as out:
                    out.write(json.dumps(row) + "\n")
    print(_summary(rows))
    print(f"load average now {os.getloadavg()[0]:.1f}; logs in {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
