"""HTTP reads of the trust refresh: one deadline for the whole refresh, a timeout per operation, byte caps.

Each connect and each read waits at most ``min(operation timeout, time left)``; bodies are read from
the wire piece by piece (no decompression: ``Accept-Encoding: identity``) with the deadline checked
between pieces, so a refresh ends at its deadline, or at most one operation timeout after it when a
server drips bytes.
"""

from __future__ import annotations

__all__ = ["body_chunks", "describe", "operation_timeout", "read_body"]

import socket
import ssl
from collections.abc import Iterator

import requests
import urllib3.exceptions

from webhook.deadline import Deadline
from webhook.errors import TrustRefreshFailed, causes
from webhook.text import first_line

_CHUNK = 64 * 1024


def operation_timeout(deadline: Deadline, cap: float, *, what: str) -> float:
    """The timeout for one connect or read: at most ``cap``, never past the deadline.

    Raises:
        TrustRefreshFailed: the refresh's time is already spent.
    """
    left = deadline.remaining()
    if left <= 0.05:
        raise TrustRefreshFailed(f"{what}: timed out: the refresh ran out of time")
    return min(cap, left)


def body_chunks(response: requests.Response, *, what: str, deadline: Deadline) -> Iterator[bytes]:
    """The body of a ``stream=True`` response as it arrives; closes the response when done.

    Raises:
        TrustRefreshFailed: the body is encoded, the deadline passed, or the connection failed.
    """
    try:
        encoding = (response.headers.get("Content-Encoding") or "identity").strip().lower()
        if encoding != "identity":
            raise TrustRefreshFailed(f"{what}: unsupported Content-Encoding {encoding[:40]!r}")
        raw: urllib3.response.BaseHTTPResponse = response.raw
        while True:
            if deadline.expired():
                raise TrustRefreshFailed(f"{what}: timed out: the refresh ran out of time while reading")
            chunk = raw.read1(_CHUNK, decode_content=False)
            if not chunk:
                return
            yield chunk
    except (urllib3.exceptions.HTTPError, OSError, ValueError) as error:
        raise TrustRefreshFailed(f"{what}: {describe(error)}") from None
    finally:
        response.close()


def read_body(response: requests.Response, *, what: str, deadline: Deadline, max_bytes: int) -> bytes:
    """The whole body of a ``stream=True`` response, at most ``max_bytes``.

    Raises:
        TrustRefreshFailed: as :func:`body_chunks`, or the body is larger than ``max_bytes``.
    """
    declared = response.headers.get("Content-Length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        response.close()
        raise TrustRefreshFailed(f"{what}: response of {declared} bytes exceeds the limit of {max_bytes}")
    body = bytearray()
    for chunk in body_chunks(response, what=what, deadline=deadline):
        body += chunk
        if len(body) > max_bytes:
            response.close()
            raise TrustRefreshFailed(f"{what}: response exceeds the limit of {max_bytes} bytes")
    return bytes(body)


def describe(error: BaseException) -> str:
    """A short reason for a failed request: the innermost cause that says something to a person."""
    chain = causes(error, limit=16)
    for cause in chain:
        if isinstance(cause, (socket.gaierror, urllib3.exceptions.NameResolutionError)):
            return "cannot resolve the host name"
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cause, ssl.SSLCertVerificationError):
            return f"TLS certificate not trusted: {cause.verify_message or cause.reason}"
        if isinstance(cause, ssl.SSLError):
            return f"TLS error: {cause.reason or cause}"
    # Checked second: urllib3's NewConnectionError (refused, unresolvable) is also a ConnectTimeoutError.
    for cause in chain:
        if isinstance(cause, (requests.Timeout, TimeoutError)) or (
            isinstance(cause, urllib3.exceptions.TimeoutError)
            and not isinstance(cause, urllib3.exceptions.NewConnectionError)
        ):
            return "timed out"
    for cause in reversed(chain):
        if isinstance(cause, OSError) and cause.strerror:
            return cause.strerror.lower()
    return first_line(error)[:200]
