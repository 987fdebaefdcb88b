"""Reproduce (or rule out) request stalls of gunicorn gthread over TLS under keep-alive load.

Starts gunicorn (2 workers x 4 threads, keep-alive 30 s, cached SSLContext) on 127.0.0.1 for each
configuration, drives it with ``hey`` (or ``wrk``) for a bounded time, and records per run: requests,
client timeouts/errors, slowest request, wall time, and how many connections the client had open.
Configurations are interleaved run by run so drift on the shared 2-core box hits all of them alike.

    python bench/tls_stall/run.py --runs 8 --configs stock-tls,front-tls,http --out results.json
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import trustme

__all__ = ["main"]

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
CONFIGS: dict[str, tuple[str, bool]] = {
    "stock-tls": ("gthread", True),
    "front-tls": ("webhook.serving.worker.FrontWorker", True),
    "http": ("gthread", False),
    "front-http": ("webhook.serving.worker.FrontWorker", False),
    "diag-tls": ("diag_worker.DiagThreadWorker", True),
    "diag-http": ("diag_worker.DiagThreadWorker", False),
}


def make_body(path: Path, *, size: int) -> None:
    """A Pod AdmissionReview with 5 containers, padded with env vars to about ``size`` bytes."""
    containers = [
        {
            "name": f"c{i}",
            "image": f"registry.example.com/team/app{i}:1.2.{i}",
            "env": [],
            "resources": {"limits": {"cpu": "500m", "memory": "256Mi"}},
        }
        for i in range(5)
    ]
    review: dict[str, Any] = {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "0b6b9a52-5f3e-4d8e-9a57-6f1c1d2a3b4c",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": "prod",
            "operation": "CREATE",
            "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller"},
            "object": {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "web", "namespace": "prod", "labels": {"app": "web"}},
                "spec": {"containers": containers},
            },
        },
    }
    n = 0
    while len(json.dumps(review)) < size:
        containers[n % 5]["env"].append({"name": f"SETTING_{n:04d}", "value": "x" * 40})
        n += 1
    path.write_text(json.dumps(review))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(*, worker: str, tls: bool, certs: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    cmd = [
        sys.executable, "-m", "gunicorn", "-c", str(HERE / "gunicorn_bench_conf.py"), "-k", worker,
        "-b", f"127.0.0.1:{port}", "--chdir", str(HERE), "app:app",
    ]  # fmt: skip
    if tls:
        cmd += ["--certfile", str(certs / "server.crt"), "--keyfile", str(certs / "server.key")]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stderr=log.open("ab"), stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            time.sleep(0.5)  # both workers up
            return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("gunicorn did not start, see " + str(log))


def established(port: int) -> int:
    """Client connections the server holds right now (ESTABLISHED, server side)."""
    cmd = ["ss", "-Htn", "state", "established", f"( sport = :{port} )"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False).stdout
    return len([line for line in out.splitlines() if line.strip()])


def parse_hey(text: str) -> dict[str, Any]:
    def num(pattern: str) -> float | None:
        m = re.search(pattern, text)
        return float(m.group(1)) if m else None

    errors = 0
    if "Error distribution:" in text:
        tail = text.split("Error distribution:")[-1]
        errors = sum(int(n) for n in re.findall(r"^\s+\[(\d+)\]\s", tail, re.M))
    ok = sum(int(n) for n in re.findall(r"\[200\]\s+(\d+) responses", text))
    return {
        "ok": ok,
        "errors": errors,
        "error_kinds": sorted(set(re.findall(r"\((Client\.Timeout[^)]*)\)", text))),
        "rps": num(r"Requests/sec:\s+([\d.]+)"),
        "total_s": num(r"Total:\s+([\d.]+) secs"),
        "slowest_s": num(r"Slowest:\s+([\d.]+) secs"),
        "p99_s": num(r"99% in ([\d.]+) secs"),
    }


def parse_wrk(text: str) -> dict[str, Any]:
    m = re.search(r"(\d+) requests in ([\d.]+)s", text)
    sock_err = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    mx = re.search(r"Latency\s+\S+\s+\S+\s+([\d.]+)(us|ms|s)", text)
    scale = {"us": 1e-6, "ms": 1e-3, "s": 1.0}
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", text)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    return {
        "ok": int(m.group(1)) if m else 0,
        "errors": sum(int(x) for x in sock_err.groups()) if sock_err else 0,
        "error_kinds": [sock_err.group(0)] if sock_err else [],
        "rps": float(rps.group(1)) if rps else None,
        "total_s": float(m.group(2)) if m else None,
        "slowest_s": float(mx.group(1)) * scale[mx.group(2)] if mx else None,
        "p99_s": float(p99.group(1)) * scale[p99.group(2)] if p99 else None,
    }


def load(
    *, tool: str, url: str, args: argparse.Namespace, body: Path, port: int
) -> tuple[dict[str, Any], str]:
    if tool == "hey":
        cmd = ["hey", "-t", str(args.timeout), "-z", f"{args.duration}s", "-c", str(args.concurrency),
               "-m", "POST", "-T", "application/json", "-D", str(body)]  # fmt: skip
        if args.disable_keepalive:
            cmd.append("-disable-keepalive")
        cmd.append(url)
    else:
        lua = body.with_suffix(".lua")
        lua.write_text(
            f'wrk.method = "POST"; local f = io.open("{body}"); wrk.body = f:read("*all"); f:close()\n'
            'wrk.headers["Content-Type"] = "application/json"\n'
        )
        cmd = ["wrk", "-t1", f"-c{args.concurrency}", f"-d{args.duration}s", f"--timeout={args.timeout}s",
               "--latency", "-s", str(lua), url]  # fmt: skip
    started = time.monotonic()
    # Bounded twice: by the tool's own duration and by a hard cap here.
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    time.sleep(max(args.duration - 1.5, 0.5))
    conns = established(port)
    try:
        out, _ = proc.communicate(timeout=args.duration + args.timeout + 30)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    result = parse_hey(out) if tool == "hey" else parse_wrk(out)
    result["wall_s"] = round(time.monotonic() - started, 2)
    result["conns_near_end"] = conns
    return result, out


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--configs", default="stock-tls,front-tls,http")
    parser.add_argument("--tool", choices=["hey", "wrk"], default="hey")
    parser.add_argument("-c", "--concurrency", type=int, default=16)
    parser.add_argument("-z", "--duration", type=int, default=8)
    parser.add_argument("-t", "--timeout", type=int, default=5)
    parser.add_argument("--body-size", type=int, default=8000)
    parser.add_argument("--disable-keepalive", action="store_true")
    parser.add_argument("--out", type=Path, default=None, help="append results as JSON lines")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="tls_stall_"))
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert.private_key_pem.write_to_path(str(work / "server.key"))
    cert.cert_chain_pems[0].write_to_path(str(work / "server.crt"))
    body = work / "body.json"
    make_body(body, size=args.body_size)
    log = work / "gunicorn.log"
    configs = args.configs.split(",")
    size = body.stat().st_size
    print(f"work dir {work}, body {size} B, tool {args.tool}, c={args.concurrency}", flush=True)

    for run in range(1, args.runs + 1):
        for name in configs:
            worker, tls = CONFIGS[name]
            port = free_port()
            server = start_server(worker=worker, tls=tls, certs=work, port=port, log=log)
            try:
                url = f"{'https' if tls else 'http'}://127.0.0.1:{port}/mutate"
                result, raw = load(tool=args.tool, url=url, args=args, body=body, port=port)
            finally:
                server.terminate()
                server.wait(timeout=30)
            if result["ok"] == 0:
                print(raw, flush=True)
            row = {
                "config": name, "run": run, "tool": args.tool, "c": args.concurrency, "z": args.duration,
                "t": args.timeout, "body": size, "keepalive": not args.disable_keepalive, **result,
            }  # fmt: skip
            print(json.dumps(row), flush=True)
            if args.out:
                with args.out.open("a") as f:
                    f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
