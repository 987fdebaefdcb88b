"""The serving model end to end: ``imagegate serve`` as shipped (2 workers x 4 threads, TLS, loopback).

Slow and stalled clients: eight connections that stop after the request line, eight that stop in the
TLS handshake and eight that stop half-way through the body (24 in all, three times the server's 8
threads) must not keep a fresh client from being answered, and the server must close each of them by
itself. Client-side timeouts only bound a failure; nothing here asserts how fast anything is (that is
for ``make bench``). Also: access logging only when asked for.
"""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.reviews import review
from tests.support.server import Server, running_server

pytestmark = pytest.mark.e2e

STALLED = 8  # per kind; the default server has 2 workers x 4 threads
FAILURE_BOUND = 30.0  # seconds; the server drops a stalled request after 5 s
DIGEST = "sha256:" + "d" * 64
POLICY = """\
apiVersion: imagegate.dev/v1alpha1
kind: ImagePolicy
metadata: {name: slow-clients}
spec:
  registries: {allow: [ghcr.io]}
  rules:
    - {name: all, images: ["ghcr.io/**"]}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("slow_clients")
    policy = tmp / "policy.yaml"
    policy.write_text(POLICY)
    with running_server(tmp, policy, workers=2) as running:
        yield running


def _address(server: Server) -> tuple[str, int]:
    host, port = server.url.removeprefix("https://").split(":")
    return host, int(port)


def _tls(server: Server) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(server.ca_file))


def _open_tls(server: Server) -> ssl.SSLSocket:
    raw = socket.create_connection(_address(server), timeout=FAILURE_BOUND)
    return _tls(server).wrap_socket(raw, server_hostname="127.0.0.1")


def _stall_after_request_line(server: Server) -> socket.socket:
    conn = _open_tls(server)
    conn.sendall(b"POST /validate HTTP/1.1\r\n")
    return conn


def _stall_in_handshake(server: Server) -> socket.socket:
    conn = socket.create_connection(_address(server), timeout=FAILURE_BOUND)
    conn.sendall(b"\x16\x03\x01\x02\x00")  # the header of a ClientHello record, then silence
    return conn


def _stall_in_body(server: Server) -> socket.socket:
    conn = _open_tls(server)
    conn.sendall(
        b"POST /validate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: 1000\r\n\r\n" + b'{"apiVersion": "admission.k8s.io/v1"'
    )
    return conn


def _closed_by_server(conn: socket.socket) -> bytes | None:
    """Wait (bounded) for the server to close the connection: what it sent before, None if it did not."""
    conn.settimeout(FAILURE_BOUND)
    received = b""
    try:
        while chunk := conn.recv(4096):
            received += chunk
    except (ConnectionResetError, ssl.SSLEOFError, ssl.SSLZeroReturnError):
        pass
    except (TimeoutError, ssl.SSLError):
        return None
    return received


def _fresh_admission(server: Server) -> dict[str, object]:
    image = f"ghcr.io/acme/app@{DIGEST}"
    return server.admit("/validate", review("Pod", [image], uid="fresh"))


# What the server sends a stalled connection before closing it: nothing when the request line or the
# handshake stopped; when the body stopped, the app's 400 (it finds the body short, never decides on it).
ANSWERS = {"request-line": b"", "handshake": b"", "body": b"HTTP/1.1 400"}


@pytest.mark.parametrize(
    "stall",
    [_stall_after_request_line, _stall_in_handshake, _stall_in_body],
    ids=["request-line", "handshake", "body"],
)
def test_stalled_connections_neither_block_others_nor_stay_open(
    server: Server, stall: object, request: pytest.FixtureRequest
) -> None:
    assert callable(stall)
    expected = ANSWERS[request.node.callspec.id]
    stalled = [stall(server) for _ in range(STALLED)]
    try:
        time.sleep(0.2)  # let both workers take their share
        response = _fresh_admission(server)
        assert response["allowed"] is True
        closing = [_closed_by_server(conn) for conn in stalled]
        assert None not in closing  # the server closed every one of them
        assert [answer[: len(expected)] for answer in closing if answer is not None] == [expected] * STALLED
        # Once they are gone the server still answers.
        assert _fresh_admission(server)["allowed"] is True
    finally:
        for conn in stalled:
            conn.close()


def test_all_kinds_of_stall_at_once(server: Server) -> None:
    stalled = [
        make(server)
        for make in (_stall_after_request_line, _stall_in_handshake, _stall_in_body)
        for _ in range(STALLED)
    ]
    try:
        time.sleep(0.2)
        # Several fresh clients, each on its own connection, while 24 stalled ones are open.
        for _ in range(4):
            with _open_tls(server) as conn:
                body = json.dumps(review("Pod", [f"ghcr.io/acme/app@{DIGEST}"], uid="fresh")).encode()
                conn.sendall(
                    b"POST /validate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                    b"Connection: close\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
                )
                status = conn.makefile("rb").readline()
                assert status.startswith(b"HTTP/1.1 200"), status
    finally:
        for conn in stalled:
            conn.close()


def test_idle_keep_alive_connections_stay_open_and_are_served_later(server: Server) -> None:
    # What a Go client's connection pool holds between admissions: handshaken, idle. They cost a socket;
    # they are not dropped after the request timeout, only after the keep-alive timeout (30 s).
    idle = [_open_tls(server) for _ in range(STALLED)]
    try:
        time.sleep(6.0)  # past the 5 s request timeout
        assert _fresh_admission(server)["allowed"] is True
        body = json.dumps(review("Pod", [f"ghcr.io/acme/app@{DIGEST}"], uid="late")).encode()
        for conn in idle:
            conn.sendall(
                b"POST /validate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
            )
            assert conn.makefile("rb").readline().startswith(b"HTTP/1.1 200")
    finally:
        for conn in idle:
            conn.close()


def _access_lines(server: Server) -> list[str]:
    return [
        line for line in server.stderr.read_text().splitlines() if '"POST /validate HTTP/1.1" 200' in line
    ]


def test_no_access_log_unless_asked_for(server: Server) -> None:
    _fresh_admission(server)
    assert _access_lines(server) == []


def test_access_log_on_stderr_when_asked_for(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    with running_server(tmp_path, policy, env={"IMAGEGATE_ACCESS_LOG": "true"}) as running:
        _fresh_admission(running)
        deadline = time.monotonic() + 10
        while not _access_lines(running) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(_access_lines(running)) == 1
        assert all(
            not line.startswith("{") or "audit" in line for line in running.stdout.read_text().splitlines()
        )


def test_serve_refuses_a_port_another_process_listens_on(tmp_path: Path) -> None:
    # Workers bind their own listeners: a busy port must stop serve at once, not make gunicorn restart
    # workers that cannot boot, forever.
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        argv = [sys.executable, "-m", "webhook", "serve", "--policy", str(policy), "--dev-cert", "--port"]
        serve = subprocess.run(
            [*argv, str(port)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert serve.returncode == 2, serve.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in serve.stderr
    assert "Traceback" not in serve.stderr


def test_expect_continue_with_a_body_over_the_limit_gets_413_without_100(server: Server) -> None:
    # The body would be refused: no "100 Continue" invites it; the answer comes from the headers alone.
    with _open_tls(server) as conn:
        conn.sendall(
            b"POST /validate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Expect: 100-continue\r\nContent-Length: 1000000000\r\n\r\n"
        )
        answer = _closed_by_server(conn)
    assert answer is not None, "the server kept the connection open"
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
