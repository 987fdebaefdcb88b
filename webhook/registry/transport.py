"""HTTP transport to registries: host allowlist, TLS trust, deadlines, byte caps, retries, clear errors.

Every request the registry client makes goes through :meth:`Transport.request`, which

* refuses hosts outside ``allow`` (and plain HTTP to hosts outside ``insecure``) before any socket
  is opened;
* takes its connect/read timeouts from the caller's :class:`Deadline` and enforces the deadline even
  against servers that drip or stall: a watchdog shuts the socket down if the TLS handshake, the
  response headers or the body are still incomplete when the deadline passes, and the body is read
  in pieces with the deadline checked between them;
* reads at most ``max_bytes`` of body (a larger ``Content-Length`` is refused up front);
* retries idempotent requests answered 429/5xx with backoff (honouring ``Retry-After``) only while
  the deadline allows;
* follows redirects only when asked (blobs), only to HTTPS (or HTTP hosts in ``insecure``), never
  carrying credentials to another origin;
* turns every failure into a :class:`RegistryError` whose message says what was asked and why it
  failed, and never contains request headers (credentials).
"""

from __future__ import annotations

__all__ = ["DeadlineExceeded", "HttpResponse", "Transport", "describe_status", "origin"]

import contextlib
import email.utils
import heapq
import http.client
import itertools
import json
import logging
import os
import socket
import ssl
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urljoin, urlsplit

import urllib3
import urllib3.connection
import urllib3.exceptions
import urllib3.response

from webhook.deadline import Deadline
from webhook.errors import RegistryError, causes
from webhook.reasons import Reason
from webhook.registry.settings import RegistrySettings, normalise_netloc

_logger = logging.getLogger(__name__)

_RETRYABLE = frozenset({429, 500, 502, 503, 504})
_IDEMPOTENT = frozenset({"GET", "HEAD", "DELETE"})
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_ERROR_BODY_MAX = 64 * 1024
_CHUNK = 64 * 1024
# Leave this much of the budget for the request that follows a retry delay.
_RETRY_MARGIN = 0.1


class DeadlineExceeded(RegistryError):
    """The caller's deadline passed before the registry answered (a per-request, not a registry, fault)."""

    def __init__(self, user_message: str, *, details: str = "") -> None:
        super().__init__(user_message, code=Reason.REGISTRY_ERROR, details=details)


@dataclass(frozen=True, slots=True)
class HttpResponse:
    """A fully read response. ``headers`` are case-insensitive."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    url: str
    method: str

    @property
    def what(self) -> str:
        return _what(self.method, self.url)

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    @property
    def content_type(self) -> str:
        """The media type of ``Content-Type`` without parameters, lower-case ('' when absent)."""
        return (self.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()


def describe_status(response: HttpResponse) -> str:
    """``HTTP 404 Not Found (MANIFEST_UNKNOWN)``: the status and the registry's error codes.

    Only the machine-readable error codes of a distribution error body are quoted: free-text
    messages could echo request data back.
    """
    reason = http.client.responses.get(response.status, "")
    text = f"HTTP {response.status} {reason}".rstrip()
    codes = _error_codes(response.body)
    if codes:
        text += f" ({', '.join(codes)})"
    return text


def _error_codes(body: bytes) -> list[str]:
    if not body or len(body) > _ERROR_BODY_MAX:
        return []
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return []
    errors = document.get("errors") if isinstance(document, dict) else None
    if not isinstance(errors, list):
        return []
    codes = []
    for item in errors[:5]:
        code = item.get("code") if isinstance(item, dict) else None
        if isinstance(code, str) and code.replace("_", "").isalnum() and code.isupper() and len(code) <= 40:
            codes.append(code)
    return codes


def _what(method: str, url: str) -> str:
    parts = urlsplit(url)
    # The query is left out: upload state and token scopes only add noise to a message.
    return f"{method} {parts.scheme}://{parts.netloc}{parts.path}"


# --- deadline watchdog --------------------------------------------------------------------------

_guard = threading.local()


class _Watch:
    __slots__ = ("cancelled", "conn")

    def __init__(self, conn: urllib3.connection.HTTPConnection) -> None:
        self.conn = conn
        self.cancelled = False


class _Watchdog:
    """One thread per process that cuts the connections whose deadline passed.

    A timer thread per request would cost a thread start (and, on a busy machine, a wait for the new
    thread to be scheduled) twice per request; this keeps a heap of deadlines instead. Cancelled
    watches are dropped lazily, and the heap is rebuilt when most of it is cancelled.
    """

    def __init__(self) -> None:
        self._reset()
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, _Watch]] = []
        self._order = itertools.count()
        self._stale = 0
        self._thread: threading.Thread | None = None

    def watch(self, conn: urllib3.connection.HTTPConnection, expires_at: float) -> _Watch:
        watch = _Watch(conn)
        with self._cond:
            heapq.heappush(self._heap, (expires_at, next(self._order), watch))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="imagegate-deadlines", daemon=True)
                self._thread.start()
            if self._heap[0][2] is watch:
                self._cond.notify()
        return watch

    def cancel(self, watch: _Watch) -> None:
        with self._cond:
            if watch.cancelled:
                return  # its deadline passed: it left the heap when its connection was cut
            watch.cancelled = True
            self._stale += 1
            if self._stale > 64 and self._stale * 2 > len(self._heap):
                self._heap = [entry for entry in self._heap if not entry[2].cancelled]
                heapq.heapify(self._heap)
                self._stale = 0

    def _run(self) -> None:
        while True:
            with self._cond:
                # Cut while holding the condition: once cancel() returns, its connection is never cut
                # (it may go back to the pool for another request).
                _cut(self._next_due().conn)

    def _next_due(self) -> _Watch:
        """Wait (holding the condition) until a watch's deadline passes; pop and return it."""
        while True:
            while self._heap and self._heap[0][2].cancelled:
                heapq.heappop(self._heap)
                self._stale -= 1
            if not self._heap:
                self._cond.wait()
                continue
            expires_at, _, watch = self._heap[0]
            delay = expires_at - time.monotonic()
            if delay <= 0:
                heapq.heappop(self._heap)
                watch.cancelled = True  # spent: a later cancel() has nothing to do
                return watch
            self._cond.wait(delay)


_WATCHDOG = _Watchdog()


def _cut(conn: urllib3.connection.HTTPConnection) -> None:
    sock = getattr(conn, "sock", None)
    if sock is not None:
        _logger.debug("deadline passed during handshake or headers: shutting the socket down")
        # The plain socket method: SSLSocket.shutdown would also tear down SSL state another thread uses.
        with contextlib.suppress(OSError, ValueError):
            socket.socket.shutdown(sock, socket.SHUT_RDWR)


@contextlib.contextmanager
def _watchdog(conn: urllib3.connection.HTTPConnection) -> Iterator[None]:
    """Cut the connection if the deadline passes in ``connect``, ``getresponse`` or a body read."""
    expires_at: float | None = getattr(_guard, "expires_at", None)
    if expires_at is None:
        yield
        return
    watch = _WATCHDOG.watch(conn, expires_at)
    try:
        yield
    finally:
        _WATCHDOG.cancel(watch)


class _GuardedHTTPConnection(urllib3.connection.HTTPConnection):
    def connect(self) -> None:
        with _watchdog(self):
            super().connect()

    def getresponse(self) -> urllib3.response.HTTPResponse:  # type: ignore[override]
        with _watchdog(self):
            return super().getresponse()


class _GuardedHTTPSConnection(urllib3.connection.HTTPSConnection):
    def connect(self) -> None:
        with _watchdog(self):
            super().connect()

    def getresponse(self) -> urllib3.response.HTTPResponse:  # type: ignore[override]
        with _watchdog(self):
            return super().getresponse()


class _HTTPPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _GuardedHTTPConnection


class _HTTPSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _GuardedHTTPSConnection


def _pools(settings: RegistrySettings) -> urllib3.PoolManager:
    """Keep-alive pools of guarded connections, one per host; TLS trust from one SSL context (the system
    store plus the policy's ``caFile``), never from the environment or certifi."""
    pools = urllib3.PoolManager(
        num_pools=16,
        maxsize=settings.pool_maxsize,
        ssl_context=_ssl_context(settings),
        cert_reqs="CERT_REQUIRED",
    )
    pools.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}
    return pools


def _ssl_context(settings: RegistrySettings) -> ssl.SSLContext:
    # The CA as the policy loader read and checked it (webhook.policy.material): no file is opened here.
    return settings.ca.context() if settings.ca is not None else ssl.create_default_context()


# --- transport ----------------------------------------------------------------------------------


class Transport:
    """One set of keep-alive connection pools for all registries; safe to share between threads."""

    def __init__(self, settings: RegistrySettings) -> None:
        self._settings = settings
        # urllib3's pools directly: nothing comes from the environment (no proxies, no
        # REQUESTS_CA_BUNDLE), no cookies are kept, and there is no per-request session machinery.
        self._pools = _pools(settings)
        # Identity encoding: byte caps and digests then apply to the bytes on the wire, and there is
        # no decompression bomb to defuse.
        self._headers = {"User-Agent": settings.user_agent, "Accept-Encoding": "identity"}

    @property
    def settings(self) -> RegistrySettings:
        return self._settings

    def close(self) -> None:
        self._pools.clear()

    def check_url(self, url: str) -> None:
        """Refuse a URL outside the allowlist or using plain HTTP to a host not in ``insecure``.

        Raises:
            RegistryError: code ``registry-not-allowed``.
        """
        parts = urlsplit(url)
        netloc = normalise_netloc(parts.netloc, scheme=parts.scheme)
        if parts.username is not None or parts.password is not None:
            raise RegistryError(
                f"refusing URL with embedded credentials for {netloc}", code=Reason.REGISTRY_NOT_ALLOWED
            )
        # ``host:443`` and ``host`` name the same HTTPS endpoint; either spelling in the allowlist admits it.
        if not (self._settings.host_allowed(netloc) or self._settings.host_allowed(parts.netloc.lower())):
            raise RegistryError(
                f"registry host {netloc} is not in registries.allow: refusing to contact it",
                code=Reason.REGISTRY_NOT_ALLOWED,
            )
        if not self._settings.scheme_allowed(parts.scheme, netloc):
            raise RegistryError(
                f"refusing {parts.scheme or 'unknown'} scheme for {netloc}: plain HTTP only for hosts in "
                "registries.insecure",
                code=Reason.REGISTRY_NOT_ALLOWED,
            )

    def request(
        self,
        method: str,
        url: str,
        *,
        deadline: Deadline,
        max_bytes: int,
        headers: Mapping[str, str] | None = None,
        data: bytes | None = None,
        redirects: int = 0,
    ) -> HttpResponse:
        """Send one request (with retries) and read its body.

        Args:
            max_bytes: cap for a 2xx body; error bodies are read up to 64 KiB and truncated.
            redirects: how many redirects to follow (0: a 3xx is returned to the caller). Redirect
                targets need not be allowed hosts (use only for digest-verified content) but must
                be HTTPS or an ``insecure`` host; credentials are dropped when the origin changes.

        Raises:
            RegistryError: refused host, connection failure, timeout, oversized body, or a 429/5xx
                that persisted while the deadline allowed retries.
        """
        self.check_url(url)
        response = self._with_retries(
            method, url, deadline=deadline, max_bytes=max_bytes, headers=headers, data=data
        )
        hops = 0
        while response.status in _REDIRECTS and redirects > 0:
            hops += 1
            if hops > redirects:
                raise RegistryError(
                    f"{response.what}: more than {redirects} redirects", code=Reason.REGISTRY_ERROR
                )
            target = self._redirect_target(response)
            same_origin = origin(target) == origin(url)
            hop_headers = dict(headers or {})
            if not same_origin:
                hop_headers = {k: v for k, v in hop_headers.items() if k.lower() != "authorization"}
            _logger.debug("following redirect %s -> %s", response.what, _what("GET", target))
            response = self._with_retries(
                "GET", target, deadline=deadline, max_bytes=max_bytes, headers=hop_headers, data=None
            )
        return response

    def _redirect_target(self, response: HttpResponse) -> str:
        location = response.header("Location")
        if not location:
            raise RegistryError(
                f"{response.what}: {describe_status(response)} without a Location header",
                code=Reason.REGISTRY_ERROR,
            )
        target = urljoin(response.url, location)
        parts = urlsplit(target)
        netloc = normalise_netloc(parts.netloc, scheme=parts.scheme)
        if parts.username is not None or parts.password is not None or not parts.hostname:
            raise RegistryError(
                f"{response.what}: refusing redirect to a malformed URL", code=Reason.REGISTRY_ERROR
            )
        if not self._settings.scheme_allowed(parts.scheme, netloc):
            raise RegistryError(
                f"{response.what}: refusing redirect to {parts.scheme}://{netloc}: only HTTPS "
                "(or plain HTTP to hosts in registries.insecure)",
                code=Reason.REGISTRY_NOT_ALLOWED,
            )
        return target

    def _with_retries(
        self,
        method: str,
        url: str,
        *,
        deadline: Deadline,
        max_bytes: int,
        headers: Mapping[str, str] | None,
        data: bytes | None,
    ) -> HttpResponse:
        attempts = self._settings.max_attempts if method in _IDEMPOTENT else 1
        attempt = 0
        while True:
            attempt += 1
            response = self._send(
                method, url, deadline=deadline, max_bytes=max_bytes, headers=headers, data=data
            )
            if response.status not in _RETRYABLE:
                return response
            retry_after = _retry_after(response.header("Retry-After"))
            delay = retry_after if retry_after is not None else self._settings.backoff * (2 ** (attempt - 1))
            if attempt >= attempts:
                tries = f"gave up after {attempt} attempts" if attempt > 1 else "not retried"
                raise RegistryError(
                    f"{response.what}: {describe_status(response)} ({tries})", code=Reason.REGISTRY_ERROR
                )
            if delay + _RETRY_MARGIN >= deadline.remaining():
                hint = f"Retry-After {retry_after:g}s" if retry_after is not None else f"retry in {delay:g}s"
                # Attempts were left: it is this caller's budget that ends here, and a caller with
                # more time may still get an answer (so this must not be cached as a registry failure).
                raise DeadlineExceeded(
                    f"{response.what}: {describe_status(response)} ({hint} would pass the deadline; "
                    f"{attempt} attempt{'s' if attempt > 1 else ''})"
                )
            _logger.debug("%s answered %d: retrying in %.2fs", response.what, response.status, delay)
            time.sleep(delay)

    def _timeout(self, deadline: Deadline, cap: float, what: str) -> float:
        try:
            return deadline.timeout(cap)
        except RegistryError:
            raise DeadlineExceeded(
                f"{what}: timed out: the deadline passed before the registry answered"
            ) from None

    def _send(
        self,
        method: str,
        url: str,
        *,
        deadline: Deadline,
        max_bytes: int,
        headers: Mapping[str, str] | None,
        data: bytes | None,
    ) -> HttpResponse:
        what = _what(method, url)
        connect = self._timeout(deadline, self._settings.connect_timeout, what)
        read = self._timeout(deadline, self._settings.read_timeout, what)
        started = time.monotonic()
        _guard.expires_at = deadline.expires_at
        try:
            try:
                raw = self._pools.urlopen(
                    method,
                    url,
                    body=data,
                    headers=self._headers | dict(headers or {}),
                    timeout=urllib3.Timeout(connect=connect, read=read),
                    retries=False,
                    redirect=False,
                    preload_content=False,
                    decode_content=False,
                )
            except (urllib3.exceptions.HTTPError, OSError, ValueError) as error:
                raise self._failure(error, what=what, deadline=deadline) from None
            try:
                # One blocking read may wait a whole read timeout, which was taken from the budget
                # left when the request started: only the watchdog stops a body stalling near the end.
                connection = raw.connection
                with (
                    _watchdog(connection)
                    if isinstance(connection, urllib3.connection.HTTPConnection)
                    else contextlib.nullcontext()
                ):
                    body = self._read_body(
                        raw, what=what, deadline=deadline, max_bytes=max_bytes, method=method
                    )
            finally:
                # Read to the end, the connection went back to the pool as the body ended; otherwise
                # (an error body cut at its cap, a failure) it is closed, never reused half read.
                raw.close()
        finally:
            _guard.expires_at = None
        _logger.debug(
            "%s -> %d (%d bytes, %.1f ms)",
            what,
            raw.status,
            len(body),
            (time.monotonic() - started) * 1000,
        )
        return HttpResponse(status=raw.status, headers=raw.headers, body=body, url=url, method=method)

    def _read_body(
        self, raw: urllib3.BaseHTTPResponse, *, what: str, deadline: Deadline, max_bytes: int, method: str
    ) -> bytes:
        # HEAD too goes through the loop: reading the (empty) body is what lets the connection go back
        # to the pool instead of being closed.
        success = 200 <= raw.status < 300
        cap = max_bytes if success else _ERROR_BODY_MAX
        if success:
            encoding = (raw.headers.get("Content-Encoding") or "identity").strip().lower()
            if encoding != "identity":
                raise RegistryError(
                    f"{what}: unsupported Content-Encoding {encoding[:40]!r}", code=Reason.REGISTRY_ERROR
                )
            # For HEAD, Content-Length describes the body a GET would return.
            length = raw.headers.get("Content-Length") if method != "HEAD" else None
            if length is not None:
                try:
                    declared = int(length)
                except ValueError:
                    raise RegistryError(
                        f"{what}: malformed Content-Length", code=Reason.REGISTRY_ERROR
                    ) from None
                if declared > cap:
                    raise RegistryError(
                        f"{what}: response of {declared} bytes exceeds the limit of {cap} bytes",
                        code=Reason.REGISTRY_ERROR,
                    )
        buffer = bytearray()
        try:
            while True:
                if deadline.expired():
                    raise DeadlineExceeded(
                        f"{what}: timed out: the deadline passed while reading the response"
                    )
                chunk = raw.read1(_CHUNK, decode_content=False)
                if not chunk:
                    break
                buffer += chunk
                if len(buffer) > cap:
                    if not success:
                        del buffer[cap:]
                        break
                    raise RegistryError(
                        f"{what}: response exceeds the limit of {cap} bytes", code=Reason.REGISTRY_ERROR
                    )
        except (urllib3.exceptions.HTTPError, OSError, ValueError) as error:
            raise self._failure(error, what=what, deadline=deadline) from None
        if deadline.expired():
            # The watchdog may have cut a body without a length short: that is no complete answer.
            raise DeadlineExceeded(f"{what}: timed out: the deadline passed while reading the response")
        return bytes(buffer)

    def _failure(self, error: BaseException, *, what: str, deadline: Deadline) -> RegistryError:
        if deadline.expired():
            return DeadlineExceeded(f"{what}: timed out: the deadline passed before the registry answered")
        cause = _describe(error)
        _logger.debug("%s failed: %s", what, cause)
        return RegistryError(f"{what}: {cause}", code=Reason.REGISTRY_ERROR)


def origin(url: str) -> tuple[str, str]:
    """The origin of ``url`` as a comparable pair: scheme, and host[:port] lower-cased without userinfo
    and without the scheme's default port (``https://Reg:443/x`` and ``https://reg/y`` are one origin)."""
    parts = urlsplit(url)
    return parts.scheme, normalise_netloc(parts.netloc, scheme=parts.scheme)


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    # str.isdigit() also accepts characters such as "\xb2" that float() refuses.
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _describe(error: BaseException) -> str:
    """A short, credential-free cause: 'connection refused', 'certificate verify failed: ...', ..."""
    chain = causes(error)
    for item in chain:
        if isinstance(item, ssl.SSLCertVerificationError):
            detail = item.verify_message or "unknown reason"
            return f"TLS error: certificate verify failed: {detail}"
    for item in chain:
        if isinstance(item, ConnectionRefusedError):
            return "connection refused"
    for item in chain:
        if isinstance(item, urllib3.exceptions.ConnectTimeoutError):
            return "timed out connecting"
    for item in chain:
        if isinstance(item, urllib3.exceptions.ReadTimeoutError | TimeoutError):
            return "timed out waiting for the registry to answer"
    for item in chain:
        if isinstance(item, socket.gaierror):
            return "host name could not be resolved"
    for item in chain:
        if isinstance(item, ssl.SSLError):
            return f"TLS error: {item.reason or type(item).__name__}"
    for item in chain:
        if isinstance(item, ConnectionResetError):
            return "connection reset by the registry"
    for item in chain:
        if isinstance(item, http.client.RemoteDisconnected):
            return "connection closed by the registry without an answer"
    for item in chain:
        if isinstance(item, urllib3.exceptions.ProtocolError | http.client.IncompleteRead):
            return "connection broken while reading the answer"
    return f"connection failed ({type(error).__name__})"
