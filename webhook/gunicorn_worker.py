"""gunicorn gthread worker that never commits a thread to a connection with no request bytes to read.

Stock gunicorn 27.0.1 ``gthread`` hands every new connection straight to the thread pool. The thread waits
up to 5 s for the first bytes (``wait_for_data``), and over TLS the ClientHello satisfies that wait. The
thread then completes the handshake and blocks, *with no timeout*, reading a request that may never come.
Go HTTP clients (the API server, ``hey``) do exactly that: when a request waits for a connection, the
transport dials a new one, and if another connection frees up first, the new one is handshaken and parked
idle in the client's pool. Each such connection pins one of the worker's threads; once all of them are
pinned, requests on healthy keep-alive connections queue behind them until the client gives up (a 5 to 20 s
stall, seen by the API server as a webhook timeout). Over plain HTTP the same connection holds a thread for
the 5 s ``wait_for_data`` instead.

This worker changes five things and otherwise reuses gthread unchanged:

1. A new connection goes to the poller first; a thread takes it only once bytes are readable.
2. Over TLS the handshake runs with a timeout, and if no application data is ready afterwards the connection
   goes back to the poller instead of blocking the thread on ``recv``.
3. After a keep-alive response, bytes already decrypted inside the ``SSLSocket`` (``pending()``), which the
   poller cannot see, are moved into the parser's buffer so that gthread serves them at once instead of
   waiting for the socket to turn readable (it never does: they were already read from the kernel).
4. A connection that is done is closed gracefully (FIN, then up to 2 s waiting for the peer's) by its
   worker thread; stock gthread does that on the main thread, where a slow peer would stall the poller.
5. A request (line, headers and body) must arrive within ``REQUEST_READ_TIMEOUT`` seconds of a thread
   starting to read it. Stock gthread reads with no timeout at all, so a client that sends part of a body
   and stops, or sends it a byte at a time, holds the thread for as long as it likes; a few of them stop
   the worker. Past the deadline the connection is dropped (a body the application was reading ends in
   an error answer first).

Parked connections are closed by gthread's own pending-connection sweep after ``max(keepalive, 5 s)``.
Written against gunicorn 27.0.1 internals (``_DEFER``, ``TConn``, ``pending_conns``): pin that version.
Use with ``worker_class = "webhook.gunicorn_worker.ThreadWorker"``.
"""

from __future__ import annotations

import errno
import io
import logging
import selectors
import ssl
import time
from concurrent.futures import Future
from functools import partial
from typing import Any

from gunicorn import http
from gunicorn import sock as gunicorn_sock
from gunicorn.http.errors import NoMoreData
from gunicorn.workers import gthread

__all__ = ["REQUEST_READ_TIMEOUT", "ThreadWorker"]

_logger = logging.getLogger(__name__)

_NEEDED = ("_DEFER", "DEFAULT_WORKER_DATA_TIMEOUT", "TConn", "ThreadWorker")
if not all(hasattr(gthread, name) for name in _NEEDED) or not hasattr(
    gthread.ThreadWorker, "on_pending_socket_readable"
):
    # Fail at start-up rather than serve with a worker whose assumptions no longer hold.
    raise ImportError("webhook.gunicorn_worker needs the gthread internals of gunicorn 27.0")

# How long a client may take over the TLS handshake, and the shortest time a silent connection is kept.
_DATA_TIMEOUT: float = gthread.DEFAULT_WORKER_DATA_TIMEOUT
_DEFER: Any = gthread._DEFER  # gthread's "put this connection back on the poller" result
_CLOSED = object()  # handle() result: the worker thread has already closed the connection
_RETRYABLE_ACCEPT = frozenset({errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK})
#: Seconds a whole request may take to arrive once a thread reads it: the API server sends a review at
#: once and gives up on the webhook after its 10 s timeoutSeconds anyway.
REQUEST_READ_TIMEOUT = 10.0


class _TooSlow(TimeoutError, NoMoreData):  # type: ignore[misc]
    """The request did not arrive in time. gthread drops the connection quietly on a NoMoreData while
    reading a request, and stops draining an unread body on a TimeoutError; werkzeug turns any OSError
    while the application reads the body into a 400 answer."""

    def __init__(self) -> None:
        super().__init__(str(self))
        self.buf = b""

    def __str__(self) -> str:
        return f"the request did not arrive within {REQUEST_READ_TIMEOUT:g}s"


class _TimedSocket:
    """The socket as the request parser reads it: every read ends by ``deadline`` (monotonic)."""

    def __init__(self, sock: Any) -> None:
        self._sock = sock
        self.deadline = time.monotonic() + REQUEST_READ_TIMEOUT

    def recv(self, size: int) -> bytes:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise _TooSlow()
        current = self._sock.gettimeout()
        # A shorter timeout set by gthread itself (draining an unread body) still applies.
        self._sock.settimeout(min(left, current) if current else left)
        try:
            data: bytes = self._sock.recv(size)
        except (TimeoutError, ssl.SSLWantReadError):
            raise _TooSlow() from None
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


def _readable_now(sock: Any) -> bool:
    """Whether the kernel holds bytes for ``sock`` (or EOF), without waiting."""
    selector = selectors.DefaultSelector()
    try:
        selector.register(sock, selectors.EVENT_READ)
        return bool(selector.select(timeout=0))
    except (OSError, ValueError):
        return True  # a broken socket: let the reader find out and close it
    finally:
        selector.close()


class _Connection(gthread.TConn):  # type: ignore[misc]
    """A gthread connection whose TLS handshake has a timeout.

    ``TConn.init()`` makes the socket blocking (no timeout) before the handshake, so a client that stops
    half-way holds the thread for good. This is its TLS branch with a timeout; plain HTTP is unchanged.
    """

    cfg: Any
    sock: Any
    client: Any
    parser: Any
    initialized: bool
    is_http2: bool

    def init(self) -> None:
        if self.initialized:
            return
        self._init()
        if not self.is_http2 and self.parser is not None:
            self.parser.unreader.sock = _TimedSocket(self.parser.unreader.sock)

    def start_request(self) -> None:
        """A thread starts reading the next request: it has ``REQUEST_READ_TIMEOUT`` seconds to arrive."""
        source = getattr(self.parser.unreader, "sock", None) if self.parser is not None else None
        if isinstance(source, _TimedSocket):
            source.deadline = time.monotonic() + REQUEST_READ_TIMEOUT

    def _init(self) -> None:
        if not self.cfg.is_ssl:
            super().init()
            return
        self.initialized = True
        self.sock.settimeout(_DATA_TIMEOUT)  # wrap_socket keeps it
        self.sock = gunicorn_sock.ssl_wrap_socket(self.sock, self.cfg)
        if not self.cfg.do_handshake_on_connect:
            self.sock.do_handshake()
        self.sock.setblocking(True)
        if gunicorn_sock.is_http2_negotiated(self.sock):
            self.is_http2 = True
            self.parser = http.get_parser(self.cfg, self.sock, self.client, http2_connection=True)
            self.parser.initiate_connection()
            return
        self.parser = http.get_parser(self.cfg, self.sock, self.client)


class ThreadWorker(gthread.ThreadWorker):  # type: ignore[misc]
    """gthread with threads handed only to connections that have request bytes ready."""

    def accept(self, listener: Any) -> None:
        try:
            client_sock, client_addr = listener.accept()
        except OSError as exc:
            if exc.errno not in _RETRYABLE_ACCEPT:
                raise
            return
        self.nr_conns += 1
        # TConn makes the socket non-blocking, as the poller needs.
        self._park(_Connection(self.cfg, client_sock, client_addr, listener.getsockname()))

    def _park(self, conn: Any) -> None:
        """Wait on the poller (main thread) until the connection is readable or expires."""
        conn.sock.setblocking(False)
        # Never shorter than the data timeout: with keepalive=0 a fresh connection would otherwise be
        # swept before its first byte arrives. The same formula everywhere keeps pending_conns sorted.
        conn.timeout = time.monotonic() + max(self.cfg.keepalive, _DATA_TIMEOUT)
        self.pending_conns.append(conn)
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self.on_pending_socket_readable, conn))

    def finish_request(self, conn: Any, fs: Future[Any]) -> None:
        result = fs.result() if not fs.cancelled() and fs.exception() is None else None
        if result is _CLOSED:
            self.nr_conns -= 1
            return
        if result is _DEFER and self.alive:
            self._park(conn)
            return
        super().finish_request(conn, fs)

    def handle(self, conn: Any) -> Any:
        if self.cfg.is_ssl and not conn.initialized:
            if not self._handshake(conn):
                conn.close()  # no response to protect: no graceful linger
                return _CLOSED
            if not conn.is_http2 and not self._request_ready(conn):
                return _DEFER
        conn.start_request()
        result = super().handle(conn)
        if result is True and self._keep_decrypted_bytes(conn):
            return True
        if result is _DEFER:
            return _DEFER
        return self._close(conn)

    @staticmethod
    def _close(conn: Any) -> object:
        try:
            conn.close(graceful=True)
        except OSError:  # already closed by gthread's error handling
            conn.close()
        return _CLOSED

    @staticmethod
    def _handshake(conn: Any) -> bool:
        """Wrap and handshake with a timeout, so a stalled client cannot hold the thread."""
        try:
            conn.init()
        except OSError as exc:  # ssl.SSLError and TimeoutError included
            _logger.debug("TLS handshake with %s failed: %s", conn.client, exc)
            return False
        return True

    @staticmethod
    def _request_ready(conn: Any) -> bool:
        sock = conn.sock
        if isinstance(sock, ssl.SSLSocket) and sock.pending():
            return True
        return _readable_now(sock)

    @staticmethod
    def _keep_decrypted_bytes(conn: Any) -> bool:
        """Move what the SSL object holds into the parser's buffer; False if the connection broke."""
        sock = conn.sock
        if conn.is_http2 or conn.parser is None or not isinstance(sock, ssl.SSLSocket):
            return True
        buffer = conn.parser.unreader.buf
        try:
            pending = sock.pending()
            while pending:
                # Already decrypted: recv returns at once, without touching the kernel socket.
                data = sock.recv(pending)
                if not data:
                    return False
                buffer.seek(0, io.SEEK_END)
                buffer.write(data)
                pending = sock.pending()
        except OSError as exc:
            _logger.debug("Reading buffered TLS data from %s failed: %s", conn.client, exc)
            return False
        return True
