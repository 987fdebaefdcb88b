"""The live Python floor: a bare Flask admission app under gunicorn gthread (2 workers x 4 threads), TLS.

It does what the app of the published floor did: parse the ~8 KB AdmissionReview, answer ``allowed``
with a 1-op base64 JSONPatch, nothing else. Settings in ``bench/floor_conf.py`` (gthread 2 x 4,
keep-alive 30 s, one cached SSLContext per worker) plus ``--reuse-port``, so that its keep-alive
connections spread over both workers as imagegate's do: a floor that sometimes runs on one worker
would flatter every ratio to it. Loading it next to imagegate, interleaved, gives the floor *under the
same machine conditions*: on a shared 2-core machine absolute numbers move with everything else.

    gunicorn -c bench/floor_conf.py --reuse-port bench.floor:app

``asgi_app`` is the same app behind ``a2wsgi`` (for ASGI workers in ``bench/serving_models.py``).
"""

from __future__ import annotations

__all__ = ["app", "running_floor", "stop", "wait_ready"]

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


def __getattr__(name: str) -> Any:
    if name == "asgi_app":  # built on demand: a2wsgi is needed only by the ASGI workers compared
        from a2wsgi import WSGIMiddleware

        return WSGIMiddleware(app)  # type: ignore[arg-type]
    raise AttributeError(name)


@app.get("/healthz")
def healthz() -> Response:
    return Response('{"status":"ok"}', mimetype="application/json")


@contextmanager
def running_floor(directory: Path, *, port: int, workers: int = 2) -> Iterator[tuple[str, int]]:
    """Serve the floor app on ``https://127.0.0.1:<port>``; yields the base URL and the master's pid."""
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
        str(repo / "bench" / "floor_conf.py"),
        "--reuse-port",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--certfile",
        str(cert_file),
        "--keyfile",
        str(key_file),
        "bench.floor:app",
    ]
    with (directory / "floor.err").open("wb") as errors:
        process = subprocess.Popen(argv, cwd=repo, env=env, stdout=subprocess.DEVNULL, stderr=errors)
    url = f"https://127.0.0.1:{port}"
    try:
        wait_ready(url, ca_file=ca_file, process=process, log=directory / "floor.err")
        yield url, process.pid
    finally:
        stop(process)


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM (gunicorn's graceful stop), then SIGKILL after 25 s."""
    process.terminate()
    try:
        process.wait(timeout=25)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def wait_ready(url: str, *, ca_file: Path, process: subprocess.Popen[bytes], log: Path) -> None:
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
