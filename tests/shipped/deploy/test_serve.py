"""The installation as the pod sees it: rendered ConfigMaps and Secrets, laid out where the Deployment mounts
them, lint clean and serve over HTTPS with the certificate from `imagegate certs` (the API server's view).
"""

from __future__ import annotations

import json
import os
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.deploy import NAMESPACE, SERVICE, PodView, StaticCerts
from tests.support.reviews import review


def https_request(port: int, ca_file: Path, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
    """One HTTP/1.1 request over TLS verified against ``ca_file`` alone, for the Service's DNS name."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cafile=str(ca_file))
    host = f"{SERVICE}.{NAMESPACE}.svc"
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    with (
        socket.create_connection(("127.0.0.1", port), timeout=15) as raw,
        context.wrap_socket(raw, server_hostname=host) as conn,
    ):
        conn.sendall(head + body)
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
    response = b"".join(chunks)
    status_line, _, rest = response.partition(b"\r\n")
    _headers, _, payload = rest.partition(b"\r\n\r\n")
    return int(status_line.split()[1]), payload


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Running:
    port: int
    ca_file: Path
    stdout: Path


@pytest.fixture(scope="module")
def served(
    pod_view: PodView, static_certs: StaticCerts, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Running]:
    """`imagegate serve` with the Deployment's arguments and environment (loopback instead of 0.0.0.0)."""
    work = tmp_path_factory.mktemp("serve")
    args = list(pod_view.args)
    args[args.index("--host") + 1] = "127.0.0.1"
    port = free_port()
    args[args.index("--port") + 1] = str(port)
    env = {
        **os.environ,
        **pod_view.env,
        "PROMETHEUS_MULTIPROC_DIR": str(work / "metrics"),
        "IMAGEGATE_SEEN_MARKERS_DIR": str(work / "seen-markers"),
    }
    stdout, stderr = work / "server.out", work / "server.err"
    with stdout.open("wb") as out, stderr.open("wb") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "webhook", "serve", *args, "--workers", "1"],
            stdout=out,
            stderr=err,
            env=env,
        )
    ca_file = static_certs.out / "ca.crt"
    try:
        end = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                pytest.fail(f"imagegate serve exited {process.returncode}:\n{stderr.read_text()}")
            try:
                if https_request(port, ca_file, "GET", "/readyz")[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > end:
                pytest.fail(f"imagegate serve never became ready:\n{stderr.read_text()}")
            time.sleep(0.1)
        yield Running(port=port, ca_file=ca_file, stdout=stdout)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.mark.e2e
def test_server_is_healthy_and_ready_over_the_generated_certificate(served: Running) -> None:
    for path in ("/healthz", "/readyz"):
        status, _ = https_request(served.port, served.ca_file, "GET", path)
        assert status == 200, path


@pytest.mark.e2e
def test_metrics_name_the_shipped_policy(served: Running) -> None:
    status, body = https_request(served.port, served.ca_file, "GET", "/metrics")
    assert status == 200
    assert b"imagegate_policy_info" in body
    assert b'name="default"' in body


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("image", "reason"),
    [
        ("ghcr.io/acme/app:latest", "[tag-denied]"),
        ("registry.invalid/acme/app:1.0", "[registry-not-allowed]"),
    ],
)
def test_shipped_policy_denies_before_any_registry_access(served: Running, image: str, reason: str) -> None:
    request = review("Pod", [image], namespace="team-a")
    status, body = https_request(
        served.port, served.ca_file, "POST", "/validate", json.dumps(request).encode()
    )
    assert status == 200
    answer = json.loads(body)
    assert answer["response"]["uid"] == request["request"]["uid"]
    assert answer["response"]["allowed"] is False
    assert reason in answer["response"]["status"]["message"]
