"""Deterministic probes: what holds a gthread thread, stock worker against webhook.serving.worker.FrontWorker.

One worker with 2 threads, keep-alive 30 s. Each scenario first opens ``threads`` troublesome connections,
then times one ordinary POST on a fresh connection (client timeout 40 s):

- idle-tls:     TLS connections that finish the handshake and send no request (what a Go client's dial race
                leaves in its idle pool).
- slow-handshake: connections that send 5 bytes of a TLS record header and stop.
- silent-tcp:   TCP connections that send nothing at all.
- pipelined:    no extra connections; two requests pipelined in one TLS record, the first exactly 8192 bytes,
                so the second sits decrypted inside the SSL object when the first is answered.

    python bench/tls_stall/probe.py
"""

from __future__ import annotations

import json
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import trustme

__all__ = ["main"]

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
THREADS = 2
WORKERS = {"stock": "gthread", "front": "webhook.serving.worker.FrontWorker"}


def request_bytes(body: bytes, *, total: int | None = None, close: bool = False) -> bytes:
    """A POST /echo; with ``total``, padded by a header so the whole request is exactly that long."""
    extra = "Connection: close\r\n" if close else ""

    def build(pad: int) -> bytes:
        head = (
            f"POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/octet-stream\r\n{extra}"
            f"X-Pad: {'p' * pad}\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        return head.encode() + body

    if total is None:
        return build(0)
    data = build(0)
    data = build(total - len(data))
    assert len(data) == total
    return data


def read_response(stream: object) -> tuple[int, bytes]:
    status = stream.readline()  # type: ignore[attr-defined]
    if not status:
        raise ConnectionError("connection closed before a response")
    length = 0
    while (line := stream.readline()) not in (b"\r\n", b""):  # type: ignore[attr-defined]
        name, _, value = line.decode().partition(":")
        if name.lower() == "content-length":
            length = int(value)
    return int(status.split()[1]), stream.read(length)  # type: ignore[attr-defined]


def timed_post(port: int, ctx: ssl.SSLContext) -> str:
    started = time.monotonic()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=40) as raw:
            with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                tls.sendall(request_bytes(b"x" * 100, close=True))
                status, body = read_response(tls.makefile("rb"))
        return f"HTTP {status} {body.decode()!r} after {time.monotonic() - started:.2f} s"
    except OSError as exc:
        return f"FAILED ({type(exc).__name__}: {exc}) after {time.monotonic() - started:.2f} s"


def scenario(name: str, port: int, ctx: ssl.SSLContext) -> str:
    held: list[socket.socket] = []
    try:
        if name == "pipelined":
            started = time.monotonic()
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=40) as raw:
                    with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                        first = request_bytes(b"a" * 8000, total=8192)
                        tls.sendall(first + request_bytes(b"b" * 10, close=True))  # one TLS record
                        stream = tls.makefile("rb")
                        one, two = read_response(stream), read_response(stream)
                return (
                    f"answers {one[1].decode()}, {two[1].decode()} after {time.monotonic() - started:.2f} s"
                )
            except OSError as exc:
                return f"FAILED ({type(exc).__name__}: {exc}) after {time.monotonic() - started:.2f} s"
        for _ in range(THREADS):
            raw = socket.create_connection(("127.0.0.1", port), timeout=40)
            if name == "idle-tls":
                held.append(ctx.wrap_socket(raw, server_hostname="127.0.0.1"))
            else:
                if name == "slow-handshake":
                    raw.sendall(b"\x16\x03\x01\x02\x00")  # a ClientHello record header, and nothing more
                held.append(raw)
        time.sleep(0.2)  # let the server pick them up
        return timed_post(port, ctx)
    finally:
        for s in held:
            s.close()


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="tls_probe_"))
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert.private_key_pem.write_to_path(str(work / "server.key"))
    cert.cert_chain_pems[0].write_to_path(str(work / "server.crt"))
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    results = []
    for scen in ("idle-tls", "slow-handshake", "silent-tcp", "pipelined"):
        for label, worker in WORKERS.items():
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            cmd = [
                sys.executable, "-m", "gunicorn", "-w", "1", "--threads", str(THREADS), "--keep-alive", "30",
                "-k", worker, "-b", f"127.0.0.1:{port}", "--certfile", str(work / "server.crt"),
                "--keyfile", str(work / "server.key"), "--chdir", str(HERE), "--log-level", "warning",
                "echo_app:app",
            ]  # fmt: skip
            server = subprocess.Popen(cmd, cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)))
            try:
                for _ in range(300):
                    try:
                        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                        break
                    except OSError:
                        time.sleep(0.05)
                time.sleep(0.3)
                outcome = scenario(scen, port, ctx)
            finally:
                server.terminate()
                server.wait(timeout=30)
            row = {"scenario": scen, "worker": label, "outcome": outcome}
            results.append(row)
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
