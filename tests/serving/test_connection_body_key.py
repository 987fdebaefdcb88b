"""The front hands the app a body it read in full under ``BODY_KEY``, and only such a body.

The decision routes answer from that key in front of Flask (webhook/app.py): a body that was too large
to read, or that stopped coming, must never be there, or a cut-off AdmissionReview could be judged.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from tests.support.front import connect, run
from webhook.serving.connection import BODY_KEY, REQUEST_TIMEOUT, Limits


class Recorder:
    """A WSGI app that keeps the environ of each request it is given."""

    def __init__(self) -> None:
        self.environs: list[dict[str, Any]] = []

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        self.environs.append(environ)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]


def _post(body: bytes, *, length: int | None = None) -> bytes:
    size = len(body) if length is None else length
    return b"POST /validate HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (size, body)


def test_a_body_read_in_full_is_under_the_key(serving_loop: asyncio.AbstractEventLoop) -> None:
    app = Recorder()
    _, connection, _ = connect(serving_loop, app=app)
    connection.data_received(_post(b'{"a": 1}'))
    connection.data_received(b"POST /mutate HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
    connection.data_received(b"3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n")
    run(serving_loop)
    assert [e[BODY_KEY] for e in app.environs] == [b'{"a": 1}', b"abcdefg"]
    assert app.environs[0]["wsgi.input"].read() == b'{"a": 1}'  # wsgi.input is still there too


def test_a_body_over_the_limit_is_not_under_the_key(serving_loop: asyncio.AbstractEventLoop) -> None:
    app = Recorder()
    _, connection, _ = connect(serving_loop, app=app, limits=Limits(body=100))
    connection.data_received(_post(b"x" * 101))
    run(serving_loop)
    assert len(app.environs) == 1
    assert BODY_KEY not in app.environs[0]
    assert app.environs[0]["CONTENT_LENGTH"] == "101"  # the app answers 413 from the headers


def test_a_chunked_body_over_the_limit_is_not_under_the_key(serving_loop: asyncio.AbstractEventLoop) -> None:
    app = Recorder()
    _, connection, _ = connect(serving_loop, app=app, limits=Limits(body=100))
    connection.data_received(b"POST /validate HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
    connection.data_received(b"65\r\n" + b"x" * 101 + b"\r\n0\r\n\r\n")
    run(serving_loop)
    assert len(app.environs) == 1 and BODY_KEY not in app.environs[0]


def test_a_body_that_stopped_coming_is_not_under_the_key(serving_loop: asyncio.AbstractEventLoop) -> None:
    app = Recorder()
    front, connection, _ = connect(serving_loop, app=app)
    connection.data_received(_post(b'{"request": {"uid": "u", "object"', length=200))
    run(serving_loop)
    assert app.environs == []  # not complete: not handed over yet
    front.sweep(time.monotonic() + REQUEST_TIMEOUT + 1)
    run(serving_loop)
    assert len(app.environs) == 1
    assert BODY_KEY not in app.environs[0]
    assert app.environs[0]["wsgi.input_terminated"] is False
