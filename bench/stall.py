"""The stall probe: stalled connections held open while fresh clients are timed (loopback TLS only).

``stalled`` TLS connections send a request line and nothing more, and ``stalled`` TCP connections send
the 5-byte header of a TLS ClientHello record and nothing more. With all of them open, ``fresh``
requests are POSTed one after another, each on a new TLS connection (handshake included in its
latency). Afterwards the probe waits (bounded) for the server to close each stalled connection.
"""

from __future__ import annotations

__all__ = ["StallResult", "stall_probe"]

import select
import socket
import ssl
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.load import check_local

FRESH_TIMEOUT = 10.0  # seconds a fresh request may take before it counts as blocked
OPEN_TIMEOUT = 5.0  # seconds for a stalled connection's own handshake
CLOSE_BOUND = 15.0  # seconds to wait for the server to close the stalled connections


@dataclass(frozen=True, slots=True)
class StallResult:
    """Fresh-request latencies (ms; ``FRESH_TIMEOUT`` for a request that got no answer) and closings."""

    stalled: int
    unopened: int  # request-line stalls whose own handshake the server never completed
    fresh_ms: tuple[float, ...]
    fresh_failed: int
    closed_by_server: int
    seconds_to_close: float | None

    @property
    def fresh_median_ms(self) -> float:
        return float(statistics.median(self.fresh_ms))

    @property
    def fresh_max_ms(self) -> float:
        return max(self.fresh_ms)

    def to_json(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "fresh_median_ms": round(self.fresh_median_ms, 2),
            "fresh_max_ms": round(self.fresh_max_ms, 2),
        }


def _post(url_host: str, port: int, context: ssl.SSLContext, *, path: str, body: bytes) -> bool:
    request = (
        f"POST {path} HTTP/1.1\r\nHost: {url_host}\r\nContent-Type: application/json\r\n"
        f"Connection: close\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    with socket.create_connection((url_host, port), timeout=FRESH_TIMEOUT) as raw:
        with context.wrap_socket(raw, server_hostname=url_host) as tls:
            tls.sendall(request)
            status = tls.makefile("rb").readline()
    return status.startswith(b"HTTP/1.1 200")


def stall_probe(
    base_url: str, *, ca_file: Path | None, path: str, body: bytes, stalled: int = 8, fresh: int = 10
) -> StallResult:
    """Open ``stalled`` request-line stalls and ``stalled`` handshake stalls, then time ``fresh`` POSTs."""
    check_local(base_url)
    host, port = base_url.removeprefix("https://").split(":")
    context = ssl.create_default_context(cafile=str(ca_file)) if ca_file else ssl._create_unverified_context()  # noqa: S323
    held: list[socket.socket] = []
    unopened = 0
    try:
        for _ in range(stalled):
            raw = socket.create_connection((host, int(port)), timeout=OPEN_TIMEOUT)
            try:
                tls = context.wrap_socket(raw, server_hostname=host)
            except OSError:  # the earlier stalls already block the server's handshakes
                raw.close()
                unopened += 1
                continue
            tls.sendall(f"POST {path} HTTP/1.1\r\n".encode())
            held.append(tls)
        for _ in range(stalled):
            raw = socket.create_connection((host, int(port)), timeout=10)
            raw.sendall(b"\x16\x03\x01\x02\x00")
            held.append(raw)
        time.sleep(0.3)  # let the server take them all in
        latencies, failed = [], 0
        for _ in range(fresh):
            started = time.monotonic()
            try:
                ok = _post(host, int(port), context, path=path, body=body)
            except OSError:
                ok = False
            elapsed = time.monotonic() - started
            failed += not ok
            latencies.append(round(min(elapsed, FRESH_TIMEOUT) * 1000, 3))
        closed, seconds = _wait_closed(held)
        return StallResult(
            stalled=len(held),
            unopened=unopened,
            fresh_ms=tuple(latencies),
            fresh_failed=failed,
            closed_by_server=closed,
            seconds_to_close=seconds,
        )
    finally:
        for conn in held:
            conn.close()


def _wait_closed(held: list[socket.socket]) -> tuple[int, float | None]:
    """How many of ``held`` the server closed within ``CLOSE_BOUND`` s, and when the last one went."""
    started = time.monotonic()
    open_ = {conn.fileno(): conn for conn in held}
    last = None
    while open_ and time.monotonic() - started < CLOSE_BOUND:
        readable, _, _ = select.select(list(open_), [], [], 0.2)
        for fd in readable:
            conn = open_[fd]
            try:
                conn.setblocking(False)
                data = conn.recv(1)
            except (BlockingIOError, ssl.SSLWantReadError):
                continue
            except OSError:
                data = b""
            if not data:
                del open_[fd]
                last = time.monotonic() - started
    return len(held) - len(open_), (round(last, 2) if last is not None else None)
