"""The connection's header limits hold while a header is still arriving, not only once it is complete.

``Limits.header_field_size`` (gunicorn's ``limit_request_field_size``, 8190 bytes) bounds what one
request may make a worker hold. A client that sends a header line and never ends it must be refused
(431, connection closed) as soon as the line passes the limit; until then it costs the event loop a
copy of everything received so far with every TLS record (the parser concatenates the pieces).
"""

from __future__ import annotations

import asyncio

import pytest

from tests.support.front import connect, run

ANSWER = b"HTTP/1.1 200 OK\r\n"


def test_a_header_line_that_never_ends_is_refused_once_past_the_limit(
    serving_loop: asyncio.AbstractEventLoop,
) -> None:
    front, connection, transport = connect(serving_loop)
    limits = front.limits

    connection.data_received(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Endless: ")
    sent = 0
    while sent < 8 * limits.header_field_size and not transport.closed:
        connection.data_received(b"b" * 1024)
        sent += 1024

    assert transport.written.startswith(b"HTTP/1.1 431 "), (sent, bytes(transport.written[:80]))
    assert transport.closed


def test_an_endless_header_line_behind_an_answered_request_is_refused(
    serving_loop: asyncio.AbstractEventLoop,
) -> None:
    # The endless head begins in the same piece as a request with a body that ends no line.
    front, connection, transport = connect(serving_loop)
    body = b"x" * 100
    connection.data_received(
        b"POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\n" + body + b"GET /b HTTP/1.1\r\nX-E: "
    )
    run(serving_loop)
    sent = 0
    while sent < 8 * front.limits.header_field_size and not transport.closed:
        connection.data_received(b"b" * 1024)
        sent += 1024
    assert transport.written.count(ANSWER) == 1
    assert b"HTTP/1.1 431 " in transport.written
    assert transport.closed


LONG_VALUE = b"v" * 8000  # within the 8190-byte limit
STREAMS = {
    "pipelined GETs": b"GET /a HTTP/1.1\r\nHost: h\r\n\r\n" * 30,
    "long headers": b"GET /a HTTP/1.1\r\nHost: h\r\nX-A: "
    + LONG_VALUE
    + b"\r\nX-B: "
    + LONG_VALUE
    + b"\r\n\r\n",
    "long URL": b"GET /" + b"u" * 8100 + b" HTTP/1.1\r\nHost: h\r\n\r\n",
    # A body that ends no line, then a request whose head is long: the head is not charged the body.
    "body, then long headers": (
        b"POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 20000\r\n\r\n"
        + b"x" * 20000
        + b"GET /b HTTP/1.1\r\nHost: h\r\nX-A: "
        + LONG_VALUE
        + b"\r\n\r\n"
    ),
    # In pieces of 16000 bytes, the second holds 8000 bytes of the body and most of the next URL.
    "body, then a long URL": (
        b"POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 24000\r\n\r\n"
        + b"x" * 24000
        + b"GET /"
        + b"u" * 8100
        + b" HTTP/1.1\r\nHost: h\r\n\r\n"
    ),
}


@pytest.mark.parametrize("size", [1, 7, 1000, 4096, 16000, 16384, 1 << 20])
@pytest.mark.parametrize("name", list(STREAMS))
def test_requests_within_the_limits_are_answered_however_they_arrive(
    serving_loop: asyncio.AbstractEventLoop, name: str, size: int
) -> None:
    stream = STREAMS[name]
    _, connection, transport = connect(serving_loop)
    for start in range(0, len(stream), size):
        connection.data_received(stream[start : start + size])
    run(serving_loop)
    assert transport.written.count(ANSWER) == stream.count(b" HTTP/1.1\r\n"), bytes(transport.written[:80])
    assert not transport.closed
