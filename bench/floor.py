"""The live Python floor: a trivial Flask admission app under imagegate's own gunicorn settings, over TLS.

It does what the app of the recorded floor (bench/README.md, "The floor") did: parse the ~8 KB
AdmissionReview, answer ``allowed`` with a 1-op base64 JSONPatch, nothing else. It runs with
``webhook.gunicorn_conf`` (same worker class, threads, keep-alive and cached SSLContext) and 2 workers.
Loading it next to imagegate, interleaved, gives the floor *under the same machine conditions*, which
the recorded floor cannot: on a shared 2-core machine the absolute numbers move with everything else
that runs.

    gunicorn -c python:webhook.gunicorn_conf bench.floor:app
"""

from __future__ import annotations

__all__ = ["app", "running_floor"]

import base64
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests
import trustme
from flask import Flask, Response, request

app = Flask(__name__)
_PATCH = base64.b64encode(
    json.dumps([{"op": "add", "path": "/metadata/labels/floor", "value": "1"}]).encode()
).decode()


@app.post("/mutate")
def mutate() -> Response:
    review: Any = request.get_json(force=True)
    answer = {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": {
            "uid": review["request"]["uid"],
            "allowed": True,
            "patchType": "JSONPatch",
            "patch": _PATCH,
        },
    }
    return Response(json.dumps(answer), mimetype="application/json")


@app.get("/healthz")
def healthz() -> Response:
    return Response('{"status":"ok"}', mimetype="application/json")


@contextmanager
def running_floor(directory: Path, *, port: int, workers: int = 2) -> Iterator[str]:
    """Serve the floor app on ``https://127.0.0.1:<port>``; yields the base URL."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert_file, key_file, ca_file = directory / "tls.crt", directory / "tls.key", directory / "ca.crt"
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    ca.cert_pem.write_to_path(str(ca_file))
    repo = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(repo), "IMAGEGATE_LOG_LEVEL": "warning"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    argv = [
        sys.executable,
        "-m",
        "gunicorn",
        "-c",
        "python:webhook.gunicorn_conf",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--certfile",
        str(cert_file),
        "--keyfile",
        str(key_file),
        "--no-control-socket",
        "bench.floor:app",
    ]
    with (directory / "floor.err").open("wb") as errors:
        process = subprocess.Popen(argv, cwd=repo, env=env, stdout=subprocess.DEVNULL, stderr=errors)
    url = f"https://127.0.0.1:{port}"
    try:
        _wait_ready(url, ca_file=ca_file, process=process, log=directory / "floor.err")
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_ready(url: str, *, ca_file: Path, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    with requests.Session() as session:
        session.trust_env = False
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"the floor app exited {process.returncode}: {log.read_text()[-2000:]}")
            try:
                if session.get(url + "/healthz", verify=str(ca_file), timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
    raise RuntimeError(f"the floor app was not ready after 30 s: {log.read_text()[-2000:]}")
