"""A request read in full is answered even when what follows it on the connection is malformed.

The front parses everything a read delivers. When a complete request is followed, in the same read, by
bytes that are no request (the parser fails), the connection refuses the rest and closes; the request
before it has already gone to the app, which decided on it (for an admission: an audit line, counted in
the metrics), so its answer must still be written before the close. Pipelining makes "the same read"
a matter of how the client's writes were segmented, so this is not the client's choice to make.
"""

from __future__ import annotations

import asyncio
from typing import Any

from tests.support.front import connect, run

REQUEST = b"POST /validate HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\n{}"


def test_the_request_before_malformed_bytes_is_answered(serving_loop: asyncio.AbstractEventLoop) -> None:
    called: list[bytes] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        called.append(environ["wsgi.input"].read())
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"decided"]

    _, connection, transport = connect(serving_loop, app=app)
    connection.data_received(REQUEST + b"{not a request}\r\n\r\n")
    run(serving_loop)

    assert called == [b"{}"]  # the app decided on the first request...
    assert transport.written.startswith(b"HTTP/1.1 200 OK\r\n")  # ...and its answer is sent
    assert b"decided" in transport.written
    assert transport.closed  # then the malformed rest closes the connection


def test_the_same_bytes_in_two_reads_are_answered(serving_loop: asyncio.AbstractEventLoop) -> None:
    # The same stream, split where a client's second write would begin: answered, then 400 and a close.
    _, connection, transport = connect(serving_loop)
    connection.data_received(REQUEST)
    run(serving_loop)
    connection.data_received(b"{not a request}\r\n\r\n")
    run(serving_loop)
    assert transport.written.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"HTTP/1.1 400 " in transport.written
    assert transport.closed
