"""webhook.gunicorn_worker.ThreadWorker under a real gunicorn over real TLS: no connection can pin a thread.

The server runs one worker with two threads, so two misbehaving connections would be enough to starve it
under stock gthread. Client timeouts below only bound a failure (stock gunicorn hangs on these); nothing
asserts how fast an answer comes.
"""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import pytest
import trustme

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[1]
THREADS = 2
FAILURE_BOUND = 25.0  # seconds; the worker's own timeouts are 5 s, stock gthread waits forever

ECHO_APP = """
def app(environ, start_response):
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    answer = str(len(body)).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(answer)))])
    return [answer]
"""


@dataclass
class Server:
    port: int
    context: ssl.SSLContext
    log: Path

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=FAILURE_BOUND)

    def connect_tls(self) -> ssl.SSLSocket:
        return self.context.wrap_socket(self.connect(), server_hostname="127.0.0.1")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    work = tmp_path_factory.mktemp("gunicorn_worker")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert.private_key_pem.write_to_path(str(work / "server.key"))
    cert.cert_chain_pems[0].write_to_path(str(work / "server.crt"))
    (work / "echo_app.py").write_text(ECHO_APP)
    context = ssl.create_default_context()
    ca.configure_trust(context)
    port = _free_port()
    log = work / "gunicorn.log"
    cmd = [
        sys.executable, "-m", "gunicorn", "-w", "1", "--threads", str(THREADS), "--keep-alive", "30",
        "-k", "webhook.gunicorn_worker.ThreadWorker", "-b", f"127.0.0.1:{port}",
        "--certfile", str(work / "server.crt"), "--keyfile", str(work / "server.key"),
        "--chdir", str(work), "--log-level", "info", "echo_app:app",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with log.open("wb") as log_file:
        process = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log_file, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while "Booting worker" not in log.read_text():
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        yield Server(port=port, context=context, log=log)
    finally:
        process.terminate()
        process.wait(timeout=30)


def request_bytes(body: bytes, *, total: int | None = None, close: bool = False) -> bytes:
    """A POST; with ``total``, padded with a header so the request is exactly ``total`` bytes long."""
    extra = "Connection: close\r\n" if close else ""

    def build(pad: int) -> bytes:
        head = (
            f"POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}X-Pad: {'p' * pad}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        return head.encode() + body

    data = build(0)
    if total is not None:
        data = build(total - len(data))
        assert len(data) == total
    return data


def read_response(stream: BinaryIO) -> tuple[int, bytes]:
    status = stream.readline()
    assert status, "connection closed without a response"
    length = 0
    while (line := stream.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode().partition(":")
        if name.lower() == "content-length":
            length = int(value)
    return int(status.split()[1]), stream.read(length)


def post_on_new_connection(server: Server) -> tuple[int, bytes]:
    with server.connect_tls() as tls:
        tls.sendall(request_bytes(b"x" * 300, close=True))
        return read_response(tls.makefile("rb"))


def test_server_runs_the_custom_worker(server: Server) -> None:
    assert "Using worker: webhook.gunicorn_worker.ThreadWorker" in server.log.read_text()
    assert post_on_new_connection(server) == (200, b"300")


def test_handshaken_idle_connections_do_not_hold_threads(server: Server) -> None:
    # A Go client's dial race leaves connections like these in its pool: TLS done, no request yet.
    idle = [server.connect_tls() for _ in range(3 * THREADS)]
    try:
        assert post_on_new_connection(server) == (200, b"300")
        # A parked connection is still served when its request finally comes.
        idle[0].sendall(request_bytes(b"y" * 20, close=True))
        assert read_response(idle[0].makefile("rb")) == (200, b"20")
    finally:
        for conn in idle:
            conn.close()


def test_stalled_handshakes_do_not_hold_threads_forever(server: Server) -> None:
    stalled = [server.connect() for _ in range(THREADS)]
    try:
        for conn in stalled:
            conn.sendall(b"\x16\x03\x01\x02\x00")  # the header of a ClientHello record, then silence
        assert post_on_new_connection(server) == (200, b"300")
    finally:
        for conn in stalled:
            conn.close()


def test_silent_tcp_connections_do_not_hold_threads(server: Server) -> None:
    # Stock gthread gives each of these a thread for 5 s in turn: 30 s in all, past the failure bound.
    silent = [server.connect() for _ in range(6 * THREADS)]
    try:
        assert post_on_new_connection(server) == (200, b"300")
    finally:
        for conn in silent:
            conn.close()


def test_request_decrypted_ahead_inside_tls_is_served(server: Server) -> None:
    # The first request is exactly one 8 KiB read, so the second is left decrypted inside the SSL object,
    # where the poller cannot see it. Both travel in a single TLS record (under 16 KiB).
    first = request_bytes(b"a" * 8000, total=8192)
    second = request_bytes(b"b" * 10, close=True)
    with server.connect_tls() as tls:
        tls.sendall(first + second)
        stream = tls.makefile("rb")
        assert read_response(stream) == (200, b"8000")
        assert read_response(stream) == (200, b"10")


def test_a_request_body_that_stops_or_trickles_does_not_hold_a_thread(server: Server) -> None:
    # One connection sends part of its body and goes silent, one sends a byte a second: under stock
    # gthread each holds its thread as long as the client likes, and with both threads held nothing
    # else is served. The worker gives a request a bounded time to arrive, then drops the connection.
    stalled = server.connect_tls()
    trickling = server.connect_tls()
    head = request_bytes(b"z" * 1000)[:-1000]
    stop = time.monotonic() + FAILURE_BOUND
    cut_off: list[float] = []

    def trickle() -> None:
        try:
            trickling.sendall(head)
            while time.monotonic() < stop:
                trickling.sendall(b"z")
                time.sleep(1.0)
        except OSError:
            cut_off.append(time.monotonic())

    stalled.sendall(head + b"z" * 10)
    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    try:
        time.sleep(0.5)  # both requests are being read by then
        assert post_on_new_connection(server) == (200, b"300")
        thread.join(FAILURE_BOUND)
        assert cut_off, "the trickling client was never cut off"
    finally:
        stalled.close()
        trickling.close()
    assert "Traceback" not in server.log.read_text()
