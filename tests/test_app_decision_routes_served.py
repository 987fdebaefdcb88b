"""The decision routes through the real server (gunicorn + the serving front over TLS), spelled every way
a client may spell them.

The front hands the app a body it read in full, and the app answers ``POST /mutate`` and ``/validate``
in front of Flask when the path is exactly one of theirs (after percent-decoding, without the query or
the scheme and authority of an absolute-form target). Each spelling here must get the very answer a
plain ``POST /validate`` gets, with one audit line; the ones that name no decision route must get
Flask's 404/405; a body over the limit gets the same 413 whether it was read (one byte over) or not.
"""

from __future__ import annotations

import json
import re
import socket
import ssl
import time
from collections.abc import Callable, Iterator

import pytest

from tests.support.reviews import review
from tests.support.server import Server, running_server

pytestmark = pytest.mark.e2e

LIMIT = 4096
DIGEST = "sha256:" + "d" * 64
POLICY = """\
apiVersion: imagegate.dev/v1alpha1
kind: ImagePolicy
metadata: {name: spellings}
spec:
  registries: {allow: [ghcr.io]}
  rules:
    - {name: all, images: ["ghcr.io/**"]}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("spellings")
    policy = tmp / "policy.yaml"
    policy.write_text(POLICY)
    with running_server(tmp, policy, env={"IMAGEGATE_MAX_REQUEST_BYTES": str(LIMIT)}) as running:
        yield running


def _body(uid: str) -> bytes:
    return json.dumps(review("Pod", [f"ghcr.io/acme/app@{DIGEST}"], uid=uid)).encode()


def _request(
    target: str, body: bytes, *, method: str = "POST", version: str = "1.1", extra: bytes = b""
) -> bytes:
    head = f"{method} {target} HTTP/{version}\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    return head.encode() + extra + b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body


def _chunked(target: str, body: bytes) -> bytes:
    head = f"POST {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
    head += "Connection: close\r\n\r\n"
    chunks = b"".join(
        b"%x\r\n%s\r\n" % (len(body[i : i + 100]), body[i : i + 100]) for i in range(0, len(body), 100)
    )
    return head.encode() + chunks + b"0\r\n\r\n"


def _exchange(server: Server, data: bytes) -> tuple[str, bytes]:
    """Send ``data`` on a fresh TLS connection; the last status line and the body after it."""
    host, port = server.url.removeprefix("https://").split(":")
    context = ssl.create_default_context(cafile=str(server.ca_file))
    with context.wrap_socket(
        socket.create_connection((host, int(port)), timeout=20), server_hostname=host
    ) as conn:
        conn.sendall(data)
        received = b""
        while chunk := conn.recv(65536):
            received += chunk
    received = re.sub(rb"^HTTP/1.1 100 Continue\r\n\r\n", b"", received)
    head, _, payload = received.partition(b"\r\n\r\n")
    return head.split(b"\r\n", 1)[0].decode(), payload


SPELLINGS: dict[str, Callable[[bytes], bytes]] = {
    "plain": lambda body: _request("/validate", body),
    "percent-encoded": lambda body: _request("/%76alidate", body),
    "percent-encoded, upper case": lambda body: _request("/%76%61lidate", body),
    "query string": lambda body: _request("/validate?timeout=10s", body),
    "absolute-form": lambda body: _request("https://127.0.0.1/validate", body),
    "absolute-form with a query": lambda body: _request("https://127.0.0.1/validate?x=1", body),
    "double slash": lambda body: _request("//validate", body),
    "HTTP/1.0": lambda body: _request("/validate", body, version="1.0"),
    "chunked": lambda body: _chunked("/validate", body),
    "Expect: 100-continue": lambda body: _request("/validate", body, extra=b"Expect: 100-continue\r\n"),
}


@pytest.mark.parametrize("spelling", list(SPELLINGS))
def test_every_spelling_of_a_decision_route_gets_the_plain_answer(server: Server, spelling: str) -> None:
    uid = "spelling-" + re.sub(r"\W+", "-", spelling)
    status, payload = _exchange(server, SPELLINGS[spelling](_body(uid)))
    plain_status, plain = _exchange(server, _request("/validate", _body(uid)))
    assert (status, payload) == (plain_status, plain)
    response = json.loads(payload)["response"]
    assert status == "HTTP/1.1 200 OK" and response["uid"] == uid and response["allowed"] is True
    assert _audited(server, uid) == 2  # this spelling's decision and the plain one's


def _audited(server: Server, uid: str) -> int:
    """How many audit lines name ``uid``, waiting (bounded) for a second: the writer is a thread."""
    end = time.monotonic() + 10
    while len(lines := server.audit_lines(uid=uid)) < 2 and time.monotonic() < end:
        time.sleep(0.05)
    return len(lines)


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (_request("/validate/", _body("x")), "HTTP/1.1 404 NOT FOUND"),
        (_request("/Validate", _body("x")), "HTTP/1.1 404 NOT FOUND"),
        (_request("/validate%2F", _body("x")), "HTTP/1.1 404 NOT FOUND"),
        (_request("/x/../validate", _body("x")), "HTTP/1.1 404 NOT FOUND"),
        (_request("/validate;x", _body("x")), "HTTP/1.1 404 NOT FOUND"),
        (_request("/validate", _body("x"), method="PUT"), "HTTP/1.1 405 METHOD NOT ALLOWED"),
        (_request("/mutate", _body("x"), method="HEAD"), "HTTP/1.1 405 METHOD NOT ALLOWED"),
        (_request("/validate", b"", method="GET"), "HTTP/1.1 405 METHOD NOT ALLOWED"),
    ],
    ids=["trailing slash", "upper case", "encoded slash", "dot segment", "semicolon", "PUT", "HEAD", "GET"],
)
def test_what_names_no_decision_route_gets_flasks_refusal(server: Server, data: bytes, status: str) -> None:
    assert _exchange(server, data)[0] == status


@pytest.mark.parametrize(
    "data",
    [
        _request("/validate", b" " * (LIMIT - 1) + b"{}"),  # one byte over: read, then refused
        _request("/validate", b" " * (2 * LIMIT) + b"{}"),  # far over: refused from the headers
        _chunked("/mutate", b" " * (LIMIT - 1) + b"{}"),  # chunked, one byte over
        _chunked("/mutate", b" " * (2 * LIMIT) + b"{}"),  # chunked, far over
    ],
    ids=["read", "unread", "chunked read", "chunked unread"],
)
def test_a_body_over_the_limit_gets_one_413_however_it_came(server: Server, data: bytes) -> None:
    status, payload = _exchange(server, data)
    assert status == "HTTP/1.1 413 REQUEST ENTITY TOO LARGE"
    assert json.loads(payload) == {"error": f"request body is larger than {LIMIT} bytes", "status": 413}


def test_a_decision_followed_by_garbage_in_one_write_is_answered_then_refused(server: Server) -> None:
    # The app decides on the complete request (an audit line) before the parser meets what follows it:
    # that decision is answered, then the garbage gets a 400 and the connection closes.
    body = _body("followed-by-garbage")
    keep_alive = b"POST /validate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: %d\r\n\r\n" % len(body)
    host, port = server.url.removeprefix("https://").split(":")
    context = ssl.create_default_context(cafile=str(server.ca_file))
    with context.wrap_socket(
        socket.create_connection((host, int(port)), timeout=20), server_hostname=host
    ) as conn:
        conn.sendall(keep_alive + body + b"{garbage}\r\n\r\n")
        received = b""
        while chunk := conn.recv(65536):  # ends: the server closes
            received += chunk
    head, _, rest = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    length = int(re.search(rb"\r\nContent-Length: (\d+)", head).group(1))  # type: ignore[union-attr]
    assert json.loads(rest[:length])["response"]["uid"] == "followed-by-garbage"
    assert rest[length:].startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert server.audit_lines(uid="followed-by-garbage")
