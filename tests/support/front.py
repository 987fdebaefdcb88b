"""The serving front without sockets or threads: one ``Connection`` on a transport that records what it
does, the app run inline, the loop stepped by hand. Nothing depends on timing; deadlines are checked by
sweeping at a chosen time."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future
from typing import Any

import pytest

from webhook.serving.connection import Connection, Front, Limits, WSGIApp


class RecordingTransport(asyncio.Transport):
    """What the connection writes, whether it reads, and how it ended (closed, or aborted)."""

    def __init__(self) -> None:
        super().__init__()
        self.written = bytearray()
        self.closed = False
        self.aborted = False
        self.reading = True

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += data

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True
        self.aborted = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 40000), "sockname": ("127.0.0.1", 8443)}.get(name, default)

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True


class InlineExecutor(Executor):
    """Runs the app at once, in the calling thread."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        future.set_result(fn(*args, **kwargs))
        return future


def ok_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """Answers 200 with the length of the body it read."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [str(len(body)).encode()]


@pytest.fixture
def serving_loop() -> Iterator[asyncio.AbstractEventLoop]:
    """An event loop of its own for the connection under test, stepped by :func:`run`."""
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def connect(
    loop: asyncio.AbstractEventLoop,
    *,
    keepalive: float = 30.0,
    app: WSGIApp = ok_app,
    limits: Limits | None = None,
) -> tuple[Front, Connection, RecordingTransport]:
    """A connection of a front serving ``app`` (:func:`ok_app`), just made."""
    front = Front(
        loop=loop, app=app, executor=InlineExecutor(), keepalive=keepalive, limits=limits or Limits()
    )
    connection = Connection(front)
    transport = RecordingTransport()
    connection.connection_made(transport)
    return front, connection, transport


def run(loop: asyncio.AbstractEventLoop) -> None:
    """Let the loop deliver the answers the app made (each is handed over with call_soon_threadsafe)."""
    for _ in range(100):
        loop.run_until_complete(asyncio.sleep(0))
