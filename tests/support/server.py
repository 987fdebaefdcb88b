"""Run ``imagegate serve`` for real (gunicorn, TLS) on a free loopback port, as a cluster would."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
import trustme

from tests.support.markers import require


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    """A running webhook. ``post`` plays the API server: CA-verified HTTPS with a timeout."""

    url: str
    ca_file: Path
    process: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path
    session: requests.Session

    def post(self, path: str, body: Any, *, timeout: float = 15.0) -> requests.Response:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        return self.session.post(
            self.url + path, data=data, headers={"Content-Type": "application/json"}, timeout=timeout
        )

    def get(self, path: str, *, timeout: float = 10.0) -> requests.Response:
        return self.session.get(self.url + path, timeout=timeout)

    def admit(self, path: str, review: Mapping[str, Any]) -> dict[str, Any]:
        """POST a review, require HTTP 200, and return ``response`` after checking the envelope."""
        answer = self.post(path, review)
        assert answer.status_code == 200, answer.text
        payload = answer.json()
        assert payload["apiVersion"] == "admission.k8s.io/v1"
        assert payload["kind"] == "AdmissionReview"
        assert payload["response"]["uid"] == review["request"]["uid"]
        return payload["response"]  # type: ignore[no-any-return]

    def audit_lines(self, *, uid: str | None = None, timeout: float = 10.0) -> list[dict[str, Any]]:
        """The audit records on stdout; with ``uid``, those of that admission, waiting (bounded) for one.

        The server writes audit lines from a writer thread: a line may land just after its answer, and a
        long one may be read while it is half written (only lines that end are read).
        """
        end = time.monotonic() + timeout
        while True:
            text = self.stdout.read_text()
            lines = text[: text.rfind("\n") + 1].splitlines()
            records = [json.loads(line) for line in lines if line.startswith("{")]
            if uid is None:
                return records
            mine = [record for record in records if record.get("uid") == uid]
            if mine or time.monotonic() > end:
                return mine
            time.sleep(0.05)


@contextmanager
def running_server(
    tmp_path: Path,
    policy: Path,
    *,
    env: Mapping[str, str] | None = None,
    workers: int = 1,
    ready_timeout: float = 30.0,
) -> Iterator[Server]:
    require("e2e", "starts imagegate under gunicorn over HTTPS")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert_file, key_file, ca_file = tmp_path / "tls.crt", tmp_path / "tls.key", tmp_path / "ca.crt"
    cert.private_key_and_cert_chain_pem.write_to_path(str(key_file))
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    ca.cert_pem.write_to_path(str(ca_file))
    port = free_port()
    stdout, stderr = tmp_path / "server.out", tmp_path / "server.err"
    full_env = {
        **os.environ,
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
        "IMAGEGATE_SEEN_MARKERS_DIR": str(tmp_path / "seen-markers"),
        **(env or {}),
    }
    with stdout.open("wb") as out, stderr.open("wb") as err:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "webhook",
                "serve",
                "--policy",
                str(policy),
                "--cert",
                str(cert_file),
                "--key",
                str(key_file),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                str(workers),
            ],
            stdout=out,
            stderr=err,
            env=full_env,
        )
    session = requests.Session()
    session.trust_env = False
    session.verify = str(ca_file)
    server = Server(f"https://127.0.0.1:{port}", ca_file, process, stdout, stderr, session)
    try:
        _wait_ready(server, ready_timeout)
        yield server
    finally:
        # SIGINT is gunicorn's quick shutdown; the graceful SIGTERM path lingers for keep-alive clients.
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        session.close()


def _wait_ready(server: Server, timeout: float) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"imagegate serve exited {server.process.returncode}:\n{server.stderr.read_text()}"
            )
        try:
            if server.get("/readyz", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"imagegate serve not ready after {timeout}s:\n{server.stderr.read_text()}")
