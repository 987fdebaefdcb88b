"""webhook.serving.worker.FrontWorker under a real gunicorn over real TLS: HTTP/1.1 as clients use it,
and no connection can pin a thread.

The server runs one worker with two threads, so two misbehaving connections would be enough to starve it
under stock gthread. Client timeouts below only bound a failure (stock gunicorn hangs on some of these);
nothing asserts how fast an answer comes.
"""

from __future__ import annotations

import json
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import pytest
import trustme

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
THREADS = 2
FAILURE_BOUND = 25.0  # seconds; the worker's own timeouts are 5 s, stock gthread waits forever
WORKER = "webhook.serving.worker.FrontWorker"

ECHO_APP = """
import json
import time

def app(environ, start_response):
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    if environ["PATH_INFO"] == "/slow":
        time.sleep(2)
    if environ["PATH_INFO"] == "/big":
        answer = str(length).encode() * 65536
    elif environ["PATH_INFO"] == "/environ":
        keys = ("REQUEST_METHOD", "PATH_INFO", "QUERY_STRING", "CONTENT_TYPE", "CONTENT_LENGTH",
                "SERVER_PROTOCOL", "HTTP_X_TWICE", "HTTP_X_ONE", "wsgi.url_scheme")
        answer = json.dumps({k: environ.get(k) for k in keys} | {"body": body.decode()}).encode()
    else:
        answer = str(len(body)).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(answer)))])
    return [answer]
"""


@dataclass
class Server:
    port: int
    context: ssl.SSLContext
    log: Path
    process: subprocess.Popen[bytes]

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
    with serving(tmp_path_factory.mktemp("serving_worker")) as running:
        yield running


@contextmanager
def serving(work: Path, *, tls: bool = True) -> Iterator[Server]:
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
        "-k", WORKER, "--reuse-port", "-b", f"127.0.0.1:{port}",
        "--chdir", str(work), "--log-level", "info", "echo_app:app",
    ]  # fmt: skip
    if tls:
        cmd += ["--certfile", str(work / "server.crt"), "--keyfile", str(work / "server.key")]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with log.open("wb") as log_file:
        process = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log_file, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:  # the worker binds its own listener (reuse_port): wait until it accepts
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        yield Server(port=port, context=context, log=log, process=process)
    finally:
        if process.poll() is None:
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
    assert f"Using worker: {WORKER}" in server.log.read_text()
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


def exchange(server: Server, data: bytes) -> tuple[int, bytes]:
    """Send raw bytes on a new TLS connection; the first response."""
    with server.connect_tls() as tls:
        tls.sendall(data)
        return read_response(tls.makefile("rb"))


def test_wsgi_environ(server: Server) -> None:
    status, body = exchange(
        server,
        b"POST /environ?a=1&b=%20 HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"X-Twice: 1\r\nX-Twice: 2\r\nX_One: spoofed\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}",
    )
    assert status == 200
    assert json.loads(body) == {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/environ",
        "QUERY_STRING": "a=1&b=%20",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": "2",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_X_TWICE": "1,2",
        "HTTP_X_ONE": None,  # a header with "_" is dropped: X_One and X-One would be the same key
        "wsgi.url_scheme": "https",
        "body": "{}",
    }


def test_chunked_body_reaches_the_app_whole(server: Server) -> None:
    status, body = exchange(
        server,
        b"POST /environ HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
        b"Connection: close\r\n\r\n3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n",
    )
    assert status == 200
    answer = json.loads(body)
    assert (answer["body"], answer["CONTENT_LENGTH"]) == ("abcdefg", "7")


def test_keep_alive_serves_requests_in_order_on_one_connection(server: Server) -> None:
    with server.connect_tls() as tls:
        stream = tls.makefile("rb")
        for size in (1, 500, 20_000, 3):
            tls.sendall(request_bytes(b"z" * size))
            assert read_response(stream) == (200, str(size).encode())
        # Pipelined: three requests in one write, answered in order.
        tls.sendall(request_bytes(b"a") + request_bytes(b"bb") + request_bytes(b"ccc", close=True))
        assert [read_response(stream) for _ in range(3)] == [(200, b"1"), (200, b"2"), (200, b"3")]
        assert stream.read() == b""  # closed after "Connection: close"


def test_a_client_that_reads_its_answers_late_gets_them_all_in_order(server: Server) -> None:
    # 200 answers of 64 KiB are more than the socket buffers and the transport's write buffer hold:
    # the server stops writing (and reading) while they are unread and goes on as the client reads.
    count = 200
    sizes = [i % 10 for i in range(count)]
    requests = b"".join(
        b"POST /big HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: %d\r\n%s\r\n%s"
        % (size, b"Connection: close\r\n" if i == count - 1 else b"", b"x" * size)
        for i, size in enumerate(sizes)
    )
    with server.connect_tls() as tls:
        tls.sendall(requests)
        time.sleep(1.0)  # the answers pile up unread meanwhile
        stream = tls.makefile("rb")
        answers = [read_response(stream) for _ in range(count)]
        assert stream.read() == b""
    assert answers == [(200, str(size).encode() * 65536) for size in sizes]


def test_expect_continue_is_honoured(server: Server) -> None:
    with server.connect_tls() as tls:
        tls.sendall(
            b"POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nExpect: 100-continue\r\nContent-Length: 4\r\n"
            b"Connection: close\r\n\r\n"
        )
        stream = tls.makefile("rb")
        assert stream.readline().startswith(b"HTTP/1.1 100")
        assert stream.readline() == b"\r\n"
        tls.sendall(b"abcd")
        assert read_response(stream) == (200, b"4")


def test_expect_continue_from_an_http_1_0_client_gets_no_100(server: Server) -> None:
    # An HTTP/1.0 client knows no interim answers: the first status line it reads is its answer.
    with server.connect_tls() as tls:
        tls.sendall(
            b"POST /echo HTTP/1.0\r\nHost: 127.0.0.1\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\nabcd"
        )
        stream = tls.makefile("rb")
        assert read_response(stream) == (200, b"4")
        assert stream.read() == b""


def test_expect_continue_behind_a_pipelined_request_waits_for_its_answer(server: Server) -> None:
    # The 100 for the second request must not overtake the answer to the first (still in the app).
    with server.connect_tls() as tls:
        tls.sendall(
            b"POST /slow HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 3\r\n\r\nabc"
            b"POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nExpect: 100-continue\r\nContent-Length: 4\r\n"
            b"Connection: close\r\n\r\n"
        )
        stream = tls.makefile("rb")
        assert read_response(stream) == (200, b"3")
        assert stream.readline().startswith(b"HTTP/1.1 100")
        assert stream.readline() == b"\r\n"
        tls.sendall(b"abcd")
        assert read_response(stream) == (200, b"4")


def test_http_1_0_closes_unless_kept_alive(server: Server) -> None:
    with server.connect_tls() as tls:
        tls.sendall(b"GET /echo HTTP/1.0\r\n\r\n")
        stream = tls.makefile("rb")
        assert read_response(stream) == (200, b"0")
        assert stream.read() == b""


def test_malformed_request_gets_400_and_a_close(server: Server) -> None:
    with server.connect_tls() as tls:
        tls.sendall(b"POST /echo HTTP/1.1\r\nContent-Length: nope\r\n\r\n")
        stream = tls.makefile("rb")
        status, _ = read_response(stream)
        assert status == 400
        assert stream.read() == b""


def test_oversized_headers_are_refused(server: Server) -> None:
    status, _ = exchange(server, b"GET /echo HTTP/1.1\r\nX-Big: " + b"b" * 9000 + b"\r\n\r\n")
    assert status == 431
    many = b"".join(b"X-H%d: v\r\n" % i for i in range(150))
    status, _ = exchange(server, b"GET /echo HTTP/1.1\r\n" + many + b"\r\n")
    assert status == 431
    status, _ = exchange(server, b"GET /" + b"u" * 9000 + b" HTTP/1.1\r\n\r\n")
    assert status == 414


def test_request_stalled_in_its_body_is_never_served_as_complete(server: Server) -> None:
    # Headers complete, 3 of 10 body bytes, then silence: after the request timeout the app gets the
    # request, but reading past the 3 bytes fails (werkzeug answers 400 itself; for this plain app,
    # which does not catch it, the server answers 400), and the connection is closed.
    with server.connect_tls() as tls:
        tls.sendall(b"POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 10\r\n\r\nabc")
        stream = tls.makefile("rb")
        assert read_response(stream)[0] == 400
        assert stream.read() == b""


def test_request_stalled_in_its_headers_is_dropped_without_an_answer(server: Server) -> None:
    with server.connect_tls() as tls:
        tls.sendall(b"POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Len")
        tls.settimeout(FAILURE_BOUND)
        assert tls.recv(100) == b""


def test_graceful_stop_answers_the_request_in_progress(tmp_path: Path) -> None:
    with serving(tmp_path) as server:
        with server.connect_tls() as busy, server.connect_tls() as idle:
            busy.sendall(b"POST /slow HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 3\r\n\r\nabc")
            idle.sendall(request_bytes(b"i"))
            assert read_response(idle.makefile("rb")) == (200, b"1")  # now idle, kept alive
            time.sleep(0.5)  # the slow request is in the app
            server.process.terminate()  # SIGTERM: gunicorn's graceful stop
            assert read_response(busy.makefile("rb")) == (200, b"3")
            idle.settimeout(FAILURE_BOUND)
            assert idle.recv(1) == b""  # the idle keep-alive connection is closed, not kept
        assert server.process.wait(timeout=FAILURE_BOUND) == 0


def test_plain_http_client_that_half_closes_still_gets_its_answer(tmp_path: Path) -> None:
    with serving(tmp_path, tls=False) as server:
        with server.connect() as conn:
            # /slow: the answer is still being made when the end of the client's stream arrives.
            conn.sendall(b"POST /slow HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 4\r\n\r\nhalf")
            conn.shutdown(socket.SHUT_WR)  # the request is all there is
            stream = conn.makefile("rb")
            assert read_response(stream) == (200, b"4")
            assert stream.read() == b""


def test_partial_request_behind_an_answered_one_is_dropped(server: Server) -> None:
    # A whole request, then the start of another in the same write: once the first is answered the
    # second is a stalled request like any other.
    with server.connect_tls() as tls:
        tls.sendall(request_bytes(b"first") + b"POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        stream = tls.makefile("rb")
        assert read_response(stream) == (200, b"5")
        tls.settimeout(FAILURE_BOUND)
        assert tls.recv(100) == b""
