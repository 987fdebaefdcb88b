"""One client connection of the asyncio front: HTTP/1.1 with keep-alive, read deadlines, WSGI in threads.

The event loop does all socket work: TLS handshakes, reading and parsing requests (``httptools``, the
llhttp parser), writing responses. A request reaches the thread pool only once it has been read in full,
so a client that stalls (in the handshake, in the headers, in the body, or idle between requests) costs
a socket and a little memory, never a thread. Deadlines, enforced by :meth:`Front.sweep` once a second:

- TLS handshake: ``HANDSHAKE_TIMEOUT`` (asyncio's own ``ssl_handshake_timeout``);
- a request, from its first byte to its last: ``REQUEST_TIMEOUT``. Past it a request without complete
  headers is dropped; one whose body stopped coming goes to the app with a body stream that fails past
  what came (the app answers 400, it never sees a short body as complete), then the connection closes;
- idle between requests (keep-alive): gunicorn's ``keepalive``.

A body over ``Limits.body`` is not read: the app gets the headers (and answers 413; ``Expect:
100-continue`` gets no "100 Continue" then, nor from an HTTP/1.0 client). After refusing or cutting off a
body the connection reads and drops what still comes for ``_LINGER`` seconds before it closes, so that
closing on unread data (a TCP reset) does not destroy the answer. The head of a request is bounded as it
arrives, not only once a line of it is complete: a line longer than the request line or header field
limit, or a head longer than all of them together, gets 431 and a close.

Requests on one connection are answered in order, one at a time (pipelined requests wait their turn;
a "100 Continue" follows the answers to the requests before its own). Bytes that are no request, after
requests read in full, are refused (400, or 414/431) only once those requests are answered.
Reading stops while ``_MAX_PIPELINED`` requests wait, or while the transport's write buffer is over its
high-water mark (asyncio's ``pause_writing``: the client does not read its answers); what was received
and not yet parsed waits unparsed. So a client that sends and never reads costs a bounded buffer, and
is dropped once ``REQUEST_TIMEOUT`` passes without it reading; a closed connection whose answer the
client never reads is dropped the same way.
"""

from __future__ import annotations

__all__ = ["BODY_KEY", "HANDSHAKE_TIMEOUT", "REQUEST_TIMEOUT", "Connection", "Front"]

import asyncio
import io
import logging
import math
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from email.utils import formatdate
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote_to_bytes

import httptools

_logger = logging.getLogger(__name__)

HANDSHAKE_TIMEOUT = 5.0  # seconds for a client to complete the TLS handshake
REQUEST_TIMEOUT = 5.0  # seconds from a request's first byte to its last (headers and body)
_MAX_PIPELINED = 8  # complete requests queued on one connection before it stops being read
_LINGER = 2.0  # seconds a refused body is read and discarded after the answer, before closing
_FEED = 16 * 1024  # bytes given to the parser at a time, so that reading can stop between requests
_LINE_SLACK = 64  # bytes a head line may have besides its URL or header name and value (method, OWS)
_NEVER = math.inf
# A WSGI environ extension: a request body read in full (bytes), so the app need not read wsgi.input.
# Absent when the body was not read in full (over the size limit, or cut short: see Connection.expire).
BODY_KEY = "imagegate.body"

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


@dataclass(slots=True, kw_only=True)
class Limits:
    """Request size limits (gunicorn's ``limit_request_*`` settings, plus a body cap)."""

    request_line: int = 8190
    header_fields: int = 100
    header_field_size: int = 8190
    body: int = 8 * 1024 * 1024


@dataclass(slots=True, kw_only=True)
class Front:
    """What the connections of one worker share: the app, its threads, limits, and the open connections."""

    loop: asyncio.AbstractEventLoop
    app: WSGIApp
    executor: Executor
    keepalive: float
    limits: Limits
    url_scheme: str = "https"
    multiprocess: bool = True
    max_connections: int = 1000
    access_log: logging.Logger | None = None
    connections: set[Connection] = field(default_factory=set)
    requests: int = 0
    stopping: bool = False

    def sweep(self, now: float) -> None:
        """Close every connection whose deadline has passed."""
        for connection in [c for c in self.connections if c.deadline <= now]:
            connection.expire()

    def stop(self) -> None:
        """Graceful shutdown: close idle connections now, the others once their answer is written."""
        self.stopping = True
        for connection in list(self.connections):
            if not connection.busy:
                connection.close()


class _TooLarge(Exception):
    """The body is over the limit: the app answers (413) from the headers; the body is never read."""


class _Reject(Exception):
    """A request the server answers itself (too large, malformed) and then closes the connection."""

    def __init__(self, status: HTTPStatus) -> None:
        super().__init__(status.phrase)
        self.status = status


@dataclass(slots=True)
class _Request:
    method: str
    target: bytes
    version: str
    headers: list[tuple[bytes, bytes]]
    body: bytes
    keep_alive: bool
    declared_length: int | None = None  # set when the body was too large to read, or did not all come
    truncated: bool = False  # the body stopped coming: the app must find it short (and answer 400)


class Connection(asyncio.Protocol):
    """An HTTP/1.1 server connection (TLS already established by the transport)."""

    def __init__(self, front: Front) -> None:
        self._front = front
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._peer: tuple[str, int] = ("", 0)
        self._server: tuple[str, int] = ("", 0)
        self._pending: deque[_Request] = deque()
        self.busy = False
        self.deadline = _NEVER
        self._reading = False  # a request has begun and is not complete
        self._discarding = False  # a refused or cut-off request is being answered: read nothing more
        self._eof = False  # the client half-closed: close once the queued requests are answered
        self._paused = False  # reading is paused
        self._write_paused = False  # the transport's write buffer is over its high-water mark
        self._backlog = b""  # received while reading was held, not yet parsed
        self._continue_owed = False  # "100 Continue" is due once the answers before it are written
        self._refusal: HTTPStatus | None = None  # malformed bytes followed the requests being answered
        # Where the parser is in the head of a request (counted as data arrives, see _count_head).
        self._messages = 0  # requests begun
        self._completed = False  # a request was completed by the piece being parsed
        self._ends_line = True  # the last request completed ended with a line end
        self._line = 0  # bytes of the head line not yet ended
        self._head = 0  # bytes of the head so far
        # The request being parsed.
        self._target = bytearray()
        self._headers: list[tuple[bytes, bytes]] = []
        self._body: list[bytes] = []
        self._body_size = 0
        self._headers_done = False
        self._declared_length: int | None = None

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # a stream server's transports are Transports
        front = self._front
        if front.stopping or len(front.connections) >= front.max_connections:
            transport.close()
            return
        front.connections.add(self)
        peer, server = transport.get_extra_info("peername"), transport.get_extra_info("sockname")
        if isinstance(peer, tuple):
            self._peer = (str(peer[0]), int(peer[1]))
        if isinstance(server, tuple):
            self._server = (str(server[0]), int(server[1]))
        self.deadline = time.monotonic() + max(front.keepalive, REQUEST_TIMEOUT)

    def connection_lost(self, exc: Exception | None) -> None:
        self._front.connections.discard(self)
        self._transport = None
        self.deadline = _NEVER

    def data_received(self, data: bytes) -> None:
        if self._discarding:  # after a refused or cut-off request: read and dropped, deadline unchanged
            return
        if self._backlog or self._held():  # reading is held: parse it once the hold lifts
            self._backlog += data
            self._pause_reading()
            return
        if not self._reading and not self.busy and not self._pending:
            self.deadline = time.monotonic() + REQUEST_TIMEOUT
        self._feed(data)

    def pause_writing(self) -> None:
        # The client is not reading its answers as fast as they come: read no more requests.
        self._write_paused = True
        if not self._discarding:
            self._pause_reading()
        if not self.busy:
            self.deadline = time.monotonic() + REQUEST_TIMEOUT

    def resume_writing(self) -> None:
        self._write_paused = False
        self._release()

    def eof_received(self) -> bool | None:
        # The client will send nothing more (a half-close): answer what is queued, then close. Over
        # TLS asyncio closes the transport anyway (TLS has no half-close).
        if not self.busy and not self._pending and not self._backlog:
            self.close()
            return None
        self._eof = True
        transport = self._transport
        return transport is not None and transport.get_extra_info("sslcontext") is None

    # reading

    def _held(self) -> bool:
        """Whether to read no more: enough requests wait, or the client is not reading the answers."""
        return self._write_paused or len(self._pending) >= _MAX_PIPELINED

    def _feed(self, data: bytes) -> None:
        """Parse ``data`` a piece at a time; once reading is held, keep the rest for :meth:`_release`."""
        for start in range(0, len(data), _FEED):
            transport = self._transport
            if self._discarding or transport is None or transport.is_closing():
                return
            if self._held():
                self._backlog = data[start:]
                self._pause_reading()
                return
            self._parse(data[start : start + _FEED])

    def _parse(self, piece: bytes) -> None:
        messages, self._completed = self._messages, False
        try:
            self._parser.feed_data(piece)
            self._count_head(piece, began=self._messages != messages)
        except _Reject as reject:
            self._refuse(reject.status)
        except httptools.HttpParserUpgrade:
            self._refuse(HTTPStatus.BAD_REQUEST)
        except httptools.HttpParserError as error:
            context = error.__context__
            if isinstance(context, _TooLarge):
                self._too_large()
            else:
                self._refuse(context.status if isinstance(context, _Reject) else HTTPStatus.BAD_REQUEST)

    def _count_head(self, piece: bytes, *, began: bool) -> None:
        """Bound the head of the request being read by what has arrived of it, line end or not.

        httptools reports a header only once its line has ended, joining the pieces of it that came
        until then; a line that never ends would grow (and be recopied) without bound. llhttp reports no
        offsets, so where the head begins inside ``piece`` is found from what the piece completed: a
        head that began in an earlier piece owns all of it; one that began here starts after the last
        line end, or after the body of the request before it, which need not end a line (then its
        first line is bounded by the URL the parser reported, and the check catches up with the next
        piece).
        """
        if not self._reading or self._headers_done:
            self._line = self._head = 0
            return
        limits = self._front.limits
        end = piece.rfind(b"\n")
        tail = len(piece) - end - 1
        if not began:
            self._line = self._line + len(piece) if end < 0 else tail
            self._head += len(piece)
        elif not self._completed:  # the piece is all this head's (but for line ends before it)
            self._line, self._head = tail, len(piece)
        elif self._ends_line:
            self._line = self._head = tail
        else:
            self._line = self._head = min(tail, len(self._target) + _LINE_SLACK)
        line_limit = max(limits.request_line, limits.header_field_size) + _LINE_SLACK
        head_limit = line_limit + limits.header_fields * (limits.header_field_size + _LINE_SLACK)
        if self._line > line_limit or self._head > head_limit:
            raise _Reject(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE)

    def _pause_reading(self) -> None:
        if self._transport is not None and not self._paused:
            self._transport.pause_reading()
            self._paused = True

    def _release(self) -> None:
        """A hold on reading may have lifted: answer, parse what waits, read on."""
        transport = self._transport
        if transport is None or transport.is_closing() or self._write_paused:
            return
        if not self.busy and self._pending:
            self._dispatch()
        if self._backlog and not self._held():
            backlog, self._backlog = self._backlog, b""
            self._feed(backlog)
        if self._paused and not self._held() and not self._backlog and not self._discarding:
            transport.resume_reading()
            self._paused = False
        if not self.busy and not self._pending and not self._discarding:
            # Idle: the keep-alive timeout. A request already begun (sent behind the answered ones)
            # has until the request timeout from now.
            self.deadline = time.monotonic() + (REQUEST_TIMEOUT if self._reading else self._front.keepalive)

    # httptools callbacks

    def on_message_begin(self) -> None:
        self._messages += 1
        self._reading = True
        self._headers_done = False
        self._declared_length = None
        self._continue_owed = False
        self._target.clear()
        self._headers = []
        self._body = []
        self._body_size = 0

    def on_url(self, url: bytes) -> None:
        self._target += url
        if len(self._target) > self._front.limits.request_line:
            raise _Reject(HTTPStatus.REQUEST_URI_TOO_LONG)

    def on_header(self, name: bytes, value: bytes) -> None:
        limits = self._front.limits
        if len(name) + len(value) > limits.header_field_size:
            raise _Reject(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE)
        self._headers.append((name, value))
        if len(self._headers) > limits.header_fields:
            raise _Reject(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE)

    def on_headers_complete(self) -> None:
        self._headers_done = True
        expects_continue = False
        for name, value in self._headers:
            lowered = name.lower()
            if lowered == b"content-length" and value.strip().isdigit():
                self._declared_length = int(value)
                if int(value) > self._front.limits.body:
                    self._body_size = int(value)
                    raise _TooLarge  # answered (413) without "100 Continue": the body is not wanted
            elif lowered == b"expect" and value.strip().lower() == b"100-continue":
                expects_continue = True
        # An HTTP/1.0 client knows no 100 (RFC 9110, 10.1.1). Behind answers not yet written, the
        # 100 waits for them: the client takes the first status line it reads as its first request's.
        if expects_continue and self._parser.get_http_version() != "1.0":
            if self.busy or self._pending:
                self._continue_owed = True
            elif self._transport is not None:
                self._transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        self._body_size += len(body)
        if self._body_size > self._front.limits.body:
            raise _TooLarge
        self._body.append(body)

    def on_message_complete(self) -> None:
        parser = self._parser
        self._reading = False
        self._completed = True
        self._ends_line = not self._body or self._body[-1].endswith(b"\n")
        self._continue_owed = False
        self._pending.append(
            _Request(
                method=parser.get_method().decode("ascii"),
                target=bytes(self._target),
                version=parser.get_http_version(),
                headers=self._headers,
                body=b"".join(self._body),
                keep_alive=parser.should_keep_alive(),
            )
        )
        if self._held():
            self._pause_reading()
        if not self.busy and not self._write_paused:
            self._dispatch()

    def _too_large(self) -> None:
        """Hand the headers to the app without the body (it answers 413), then close the connection."""
        self._hand_over(body=b"", declared_length=self._body_size, truncated=False)

    def _hand_over(self, *, body: bytes, declared_length: int | None, truncated: bool) -> None:
        """Give the app a request whose body will not be read in full; nothing more is read after it."""
        parser = self._parser
        self._reading = False
        self._discarding = True
        request = _Request(
            method=parser.get_method().decode("ascii"),
            target=bytes(self._target),
            version=parser.get_http_version(),
            headers=self._headers,
            body=body,
            keep_alive=False,
            declared_length=declared_length,
            truncated=truncated,
        )
        self._pause_reading()
        self._pending.append(request)
        if not self.busy and not self._write_paused:
            self._dispatch()

    # serving

    def _dispatch(self) -> None:
        request = self._pending.popleft()
        self.busy = True
        self.deadline = _NEVER  # the app has its own deadline; the worker timeout bounds the rest
        self._front.executor.submit(self._call_app, request)

    def _call_app(self, request: _Request) -> None:
        """In a pool thread: run the WSGI app on a complete request, hand the answer to the loop."""
        started = time.monotonic()
        try:
            status, headers, body = _run_wsgi(self._front.app, self._environ(request))
        except Exception as error:
            if request.truncated and isinstance(error, OSError):
                # The app read past what came of the body and did not catch that: the client's fault.
                _logger.debug("%s %r: %s", request.method, request.target, error)
                status, headers, body = (
                    "400 Bad Request",
                    [("Content-Type", "text/plain")],
                    b"incomplete body\n",
                )
            else:
                _logger.exception("the application failed on %s %r", request.method, request.target)
                status, headers, body = (
                    "500 Internal Server Error",
                    [("Content-Type", "text/plain")],
                    b"error\n",
                )
        if request.method == "HEAD":
            body = b""
        access = self._front.access_log
        if access is not None:
            access.info(
                '%s "%s %s HTTP/%s" %s %d %.1fms',
                self._peer[0],
                request.method,
                request.target.decode("latin-1"),
                request.version,
                status.split(" ", 1)[0],
                len(body),
                (time.monotonic() - started) * 1000,
            )
        try:
            self._front.loop.call_soon_threadsafe(self._respond, request, status, headers, body)
        except RuntimeError:  # the loop has closed: the worker is exiting
            pass

    def _respond(self, request: _Request, status: str, headers: list[tuple[str, str]], body: bytes) -> None:
        self.busy = False
        front = self._front
        front.requests += 1
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        keep_alive = request.keep_alive and front.keepalive > 0 and not front.stopping
        if self._eof and not self._pending and not self._backlog:
            keep_alive = False
        answer = _head(status, headers, body, request=request, keep_alive=keep_alive) + body
        if keep_alive and self._continue_owed and not self._pending:
            self._continue_owed = False  # the request reading its body is next in line
            answer += b"HTTP/1.1 100 Continue\r\n\r\n"
        transport.write(answer)  # may pause writing (pause_writing): then nothing more is read
        if keep_alive and self._refusal is not None and not self._pending:
            self._refuse(self._refusal)  # the last request before the malformed bytes is answered
        elif not keep_alive and self._discarding:
            self._linger()
        elif not keep_alive:
            self.close()
        elif self._write_paused:
            # The client is not reading: the next request waits until it does, or the deadline passes.
            self.deadline = time.monotonic() + REQUEST_TIMEOUT
        else:
            self._release()

    def _environ(self, request: _Request) -> dict[str, Any]:
        path, _, query = request.target.partition(b"?")
        if not path.startswith(b"/"):  # absolute-form: http://host/path
            path = httptools.parse_url(request.target).path or b"/"
        environ: dict[str, Any] = {
            "REQUEST_METHOD": request.method,
            "SCRIPT_NAME": "",
            "PATH_INFO": unquote_to_bytes(path).decode("latin-1"),
            "QUERY_STRING": query.decode("latin-1"),
            "SERVER_NAME": self._server[0],
            "SERVER_PORT": str(self._server[1]),
            "SERVER_PROTOCOL": f"HTTP/{request.version}",
            "REMOTE_ADDR": self._peer[0],
            "REMOTE_PORT": str(self._peer[1]),
            "CONTENT_LENGTH": str(
                len(request.body) if request.declared_length is None else request.declared_length
            ),
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": self._front.url_scheme,
            "wsgi.input": _CutShortBody(request.body) if request.truncated else io.BytesIO(request.body),
            "wsgi.input_terminated": not request.truncated,
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": self._front.multiprocess,
            "wsgi.run_once": False,
        }
        if not request.truncated and request.declared_length is None:
            environ[BODY_KEY] = request.body  # read in full: the app need not read wsgi.input
        for raw_name, raw_value in request.headers:
            name = raw_name.decode("latin-1").upper()
            if "_" in name:
                continue  # HTTP_X_A could be X-A or X_A: drop the ambiguous spelling, as gunicorn does
            value = raw_value.decode("latin-1").strip()
            if name == "CONTENT-TYPE":
                environ["CONTENT_TYPE"] = value
            elif name in ("CONTENT-LENGTH", "TRANSFER-ENCODING"):
                continue  # the body is complete and de-chunked: CONTENT_LENGTH above is its length
            else:
                key = "HTTP_" + name.replace("-", "_")
                environ[key] = f"{environ[key]},{value}" if key in environ else value
        return environ

    # closing

    def _refuse(self, status: HTTPStatus) -> None:
        """Answer what follows the requests read so far with ``status``, then close.

        Requests read in full before it (in the same read, or waiting their turn) are answered first,
        in order: the app may already have decided on them.
        """
        transport = self._transport
        self._reading = False
        if transport is None or transport.is_closing():
            return
        if self.busy or self._pending:
            self._refusal = status
            self._discarding = True  # nothing more is read; _respond refuses after the last answer
            self._pause_reading()
            return
        body = f"{status.value} {status.phrase}\n".encode()
        transport.write(
            _head(f"{status.value} {status.phrase}", [("Content-Type", "text/plain")], body, keep_alive=False)
            + body
        )
        self.close()

    def _linger(self) -> None:
        """After refusing a body the client may still be sending: read and discard it for a moment
        before closing, so that closing with unread data (a TCP reset) does not destroy the answer."""
        transport = self._transport
        if transport is None:
            return
        if self._paused:
            transport.resume_reading()
            self._paused = False
        self.deadline = time.monotonic() + _LINGER

    def _drop(self) -> None:
        transport = self._transport
        if transport is not None:
            transport.abort()
        self.deadline = _NEVER

    def expire(self) -> None:
        """The deadline passed: a stalled request is dropped, an idle connection closed.

        A request whose headers came but whose body stopped coming goes to the app with the body it has
        and its declared length, marked unterminated: the app finds it short and answers 400.
        """
        transport = self._transport
        if transport is None:
            return
        if transport.is_closing() or (self._write_paused and not self.busy):
            # Closed, or answered, and the client has not read its answers: no more waiting for it.
            _logger.debug("dropping %s:%d: answers unread for %.0f s", *self._peer, REQUEST_TIMEOUT)
            self._drop()
            return
        if self._reading and self._headers_done and not self.busy and not self._discarding:
            _logger.debug("%s:%d: request body incomplete after %.0f s", *self._peer, REQUEST_TIMEOUT)
            # Without a Content-Length (chunked) any length past what came makes the body short.
            declared = self._declared_length if self._declared_length is not None else self._body_size + 1
            self._hand_over(body=b"".join(self._body), declared_length=declared, truncated=True)
            return
        if self._reading:
            _logger.debug("dropping %s:%d: request incomplete after %.0f s", *self._peer, REQUEST_TIMEOUT)
            self._drop()
        else:
            self.close()

    def close(self) -> None:
        """Close once what was written is sent; a client that does not read it is dropped at the deadline."""
        if self._transport is not None and not self._transport.is_closing():
            self._transport.close()
            self.deadline = time.monotonic() + REQUEST_TIMEOUT


class _CutShortBody(io.BytesIO):
    """The part of a body that came before the client stopped sending: reading past it is an error
    (werkzeug answers 400), never a silently short body."""

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        if size is None or size < 0 or len(data) < size:
            raise ConnectionResetError("the request body stopped coming")
        return data

    def read1(self, size: int | None = -1) -> bytes:
        return self.read(size)

    def readinto(self, buffer: Any) -> int:
        count = super().readinto(buffer)
        if count < len(buffer):
            raise ConnectionResetError("the request body stopped coming")
        return count

    def readline(self, size: int | None = -1) -> bytes:
        line = super().readline(size)
        if not line.endswith(b"\n") and (size is None or size < 0 or len(line) < size):
            raise ConnectionResetError("the request body stopped coming")
        return line


def _run_wsgi(app: WSGIApp, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
    started: list[Any] = []

    def start_response(
        status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Callable[..., Any]:
        if exc_info is not None and started:
            raise exc_info[1].with_traceback(exc_info[2])
        started[:] = [status, headers]
        return _no_write

    result = app(environ, start_response)
    try:
        body = b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    if not started:
        raise RuntimeError("the application returned without calling start_response")
    return started[0], started[1], body


def _no_write(data: bytes) -> None:
    raise NotImplementedError("the legacy WSGI write() callable is not supported")


_date: list[Any] = [0, b""]


def _http_date() -> bytes:
    now = int(time.time())
    if _date[0] != now:
        _date[:] = [now, formatdate(now, usegmt=True).encode("ascii")]
    return _date[1]  # type: ignore[no-any-return]


def _head(
    status: str,
    headers: list[tuple[str, str]],
    body: bytes,
    *,
    keep_alive: bool,
    request: _Request | None = None,
) -> bytes:
    lines = [f"HTTP/1.1 {status}"]
    has_length = False
    for name, value in headers:
        lowered = name.lower()
        if lowered in ("connection", "transfer-encoding", "keep-alive"):
            continue  # hop-by-hop: the server decides these
        has_length = has_length or lowered == "content-length"
        lines.append(f"{name}: {value}")
    if not has_length:
        lines.append(f"Content-Length: {len(body)}")
    if not keep_alive:
        lines.append("Connection: close")
    elif request is not None and request.version == "1.0":
        lines.append("Connection: keep-alive")
    return "\r\n".join(lines).encode("latin-1") + b"\r\nDate: " + _http_date() + b"\r\n\r\n"
