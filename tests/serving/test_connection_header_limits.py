"""The connection's header limits hold while a header is still arriving, not only once it is complete.

``Limits.header_field_size`` (gunicorn's ``limit_request_field_size``, 8190 bytes) bounds what one
request may make a worker hold. A client that sends a header line and never ends it must be refused
(431, connection closed) as soon as the line passes the limit; until then it costs the event loop a
copy of everything received so far with every TLS record (the parser concatenates the pieces).
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from webhook.serving.connection import Connection, Front, Limits


class _Transport(asyncio.Transport):
    """What the connection writes, and whether it closed."""

    def __init__(self) -> None:
        super().__init__()
        self.written = bytearray()
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += data

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 40000), "sockname": ("127.0.0.1", 8443)}.get(name, default)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def _app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]


def test_a_header_line_that_never_ends_is_refused_once_past_the_limit() -> None:
    loop = asyncio.new_event_loop()
    executor = ThreadPoolExecutor(max_workers=1)
    try:
        limits = Limits()
        front = Front(loop=loop, app=_app, executor=executor, keepalive=5.0, limits=limits)
        connection = Connection(front)
        transport = _Transport()
        connection.connection_made(transport)

        connection.data_received(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Endless: ")
        sent = 0
        while sent < 8 * limits.header_field_size and not transport.closed:
            connection.data_received(b"b" * 1024)
            sent += 1024

        assert transport.written.startswith(b"HTTP/1.1 431 "), (sent, bytes(transport.written[:80]))
        assert transport.closed
    finally:
        executor.shutdown()
        loop.close()
