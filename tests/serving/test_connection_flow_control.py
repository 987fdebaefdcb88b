"""The connection reads no requests while its answers are not read, and drops a client that never reads.

asyncio tells a protocol that its transport's write buffer is over the high-water mark (``pause_writing``)
and that it drained (``resume_writing``); here the test says so, as the transport would
(tests.support.front: no sockets, no threads, no timing).
"""

from __future__ import annotations

import asyncio
import time

from tests.support.front import connect, run
from webhook.serving.connection import REQUEST_TIMEOUT

REQUEST = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
ANSWER = b"HTTP/1.1 200 OK\r\n"


def test_no_request_is_read_while_the_answers_are_not(serving_loop: asyncio.AbstractEventLoop) -> None:
    _, connection, transport = connect(serving_loop)
    connection.data_received(REQUEST)
    run(serving_loop)
    assert transport.written.count(ANSWER) == 1

    connection.pause_writing()  # the client stopped reading: its answers fill the write buffer
    assert not transport.reading
    connection.data_received(REQUEST * 20)  # already on its way
    run(serving_loop)
    assert transport.written.count(ANSWER) == 1

    connection.resume_writing()  # the client read them
    run(serving_loop)
    assert transport.written.count(ANSWER) == 21
    assert transport.reading
    assert not transport.closed


def test_pipelined_requests_are_not_parsed_while_the_answers_are_not_read(
    serving_loop: asyncio.AbstractEventLoop,
) -> None:
    _, connection, transport = connect(serving_loop)
    connection.data_received(REQUEST)
    connection.pause_writing()  # while the first answer is being made
    run(serving_loop)
    connection.data_received(REQUEST * 20)
    run(serving_loop)
    assert transport.written.count(ANSWER) == 1
    connection.resume_writing()
    run(serving_loop)
    assert transport.written.count(ANSWER) == 21


def test_a_client_that_never_reads_is_dropped_at_the_request_timeout(
    serving_loop: asyncio.AbstractEventLoop,
) -> None:
    front, connection, transport = connect(serving_loop)
    connection.data_received(REQUEST)
    connection.pause_writing()
    run(serving_loop)
    assert transport.written.count(ANSWER) == 1
    front.sweep(time.monotonic() + REQUEST_TIMEOUT + 1)  # well within the keep-alive timeout (30 s)
    assert transport.aborted  # not closed gracefully: that would wait for the client to read


def test_a_closed_connection_whose_answer_is_not_read_is_dropped(
    serving_loop: asyncio.AbstractEventLoop,
) -> None:
    front, connection, transport = connect(serving_loop)
    connection.data_received(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    run(serving_loop)
    assert transport.written.count(ANSWER) == 1
    assert transport.closed and not transport.aborted  # closing: the answer is flushed first
    front.sweep(time.monotonic() + REQUEST_TIMEOUT + 1)
    assert transport.aborted
