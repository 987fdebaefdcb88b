"""A client that sends requests and never reads the answers: the connection stops reading.

The front answers pipelined requests one at a time and writes each answer to the transport. When the
client does not read them, those answers must not pile up in the worker without bound: once the
transport's write buffer is full (asyncio's ``pause_writing``), the connection has to stop reading
requests until the client drains it, as it does for more than a few pipelined requests, and drop the
connection once the client has read nothing for the request timeout. Served as shipped (gunicorn, TLS),
on loopback; what is measured is the worker's peak memory, not time.
"""

from __future__ import annotations

import socket
import ssl
from pathlib import Path

import pytest

from tests.support.server import running_server

pytestmark = pytest.mark.e2e

POLICY = """\
apiVersion: imagegate.dev/v1alpha1
kind: ImagePolicy
metadata: {name: unread}
spec:
  registries: {allow: [ghcr.io]}
  rules:
    - {name: all, images: ["ghcr.io/**"]}
"""
REQUEST = b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
BATCH = 100
REQUESTS = 200_000  # ~8 MB of requests; their answers are ~100 MB
STALL = 10.0  # seconds without the server reading: it stopped, as it should
BOUND_KIB = 32 * 1024  # what one connection's unread answers may add to a worker


def _memory_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} for {pid}")


def _worker(master: int) -> int:
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    assert len(children) == 1, children
    return int(children[0])


def test_answers_a_client_never_reads_do_not_pile_up_in_the_worker(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    with running_server(tmp_path, policy, workers=1) as server:
        assert server.get("/metrics").status_code == 200
        worker = _worker(server.process.pid)
        before = _memory_kib(worker, "VmRSS")
        host, port = server.url.removeprefix("https://").split(":")
        raw = socket.socket()
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        raw.connect((host, int(port)))
        client = ssl.create_default_context(cafile=str(server.ca_file)).wrap_socket(
            raw, server_hostname="127.0.0.1"
        )
        client.settimeout(STALL)
        sent = 0
        try:
            while sent < REQUESTS:
                client.sendall(REQUEST * BATCH)
                sent += BATCH
        except OSError:
            pass  # the server stopped reading (the client timed out), or it dropped the connection
        # The peak, not the present size: a dropped connection's answers are freed by now.
        grown = _memory_kib(worker, "VmHWM") - before
        client.close()

    assert sent < REQUESTS, "the server read every request of a client that read no answer"
    assert grown < BOUND_KIB, f"{sent} requests sent unread: the worker grew by {grown} KiB"
