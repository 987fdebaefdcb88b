"""Real registries and broken ones for tests: Debian's ``docker-registry`` (distribution 2.8) on loopback.

Start one (each on a free 127.0.0.1 port, config and data in the given directory):

    server = start_registry(tmp_path, mode="plain")   # plain HTTP, no auth
    server = start_registry(tmp_path, mode="tls")     # HTTPS (trustme CA) + htpasswd Basic auth
    server = start_registry(tmp_path, mode="token")   # HTTPS + Bearer tokens from a TokenServer (HTTPS)
    ...
    server.stop()                                      # or: with start_registry(...) as server:

or use the pytest fixtures (import them into a conftest.py):

    from tests.support.registry import plain_registry, registry_factory, tls_registry, token_registry

``plain_registry``/``tls_registry``/``token_registry`` are session-scoped; ``registry_factory(mode)``
starts extra, function-scoped registries (stopped at teardown; use these to stop or break one).

A :class:`RegistryServer` gives ``host`` (``127.0.0.1:PORT``), ``ref(repo, tag)``, ``ca_file`` (PEM
trusting registry and token server), ``username``/``password`` and ``credentials_file`` (a
dockerconfigjson with them), ``pusher()`` (an authenticated :class:`tests.support.oci.OciPusher`),
``settings(**overrides)`` (imagegate ``RegistrySettings`` that reach it) and ``requests(...)``, a
request counter read from the registry's access log. In token mode the anonymous user may pull
repositories outside ``private/``; the configured user may do anything.

Fault servers (context managers with ``host``/``ref()`` like a registry): :func:`hanging_server`,
:func:`dripping_server`, :func:`status_server`, :func:`wrong_digest_server`,
:func:`oversized_server`, :func:`redirect_server`, :func:`untrusted_tls_server`, and
:func:`refused_address` (a port nothing listens on).

The fixtures install nothing. When ``docker-registry`` is missing they fail with the install command
(``make test`` installs it).
"""

from __future__ import annotations

__all__ = [
    "FaultServer",
    "RegistryServer",
    "dripping_server",
    "free_port",
    "hanging_server",
    "http_response",
    "listening_socket",
    "oversized_server",
    "plain_registry",
    "redirect_server",
    "refused_address",
    "registry_factory",
    "require_registry_binary",
    "shared_ca",
    "start_registry",
    "status_server",
    "tls_registry",
    "token_registry",
    "untrusted_tls_server",
    "wrong_digest_server",
]

import base64
import hashlib
import json
import re
import shutil
import socket
import socketserver
import ssl
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import bcrypt
import pytest
import requests
import trustme

from tests.support.markers import require
from tests.support.oci import OciPusher
from tests.support.tokenserver import TokenServer

Mode = Literal["plain", "tls", "token"]
BINARY = "docker-registry"
USERNAME = "alice"
PASSWORD = "s3cret-Pa55"  # a distinctive string: tests search error texts and logs for it


def require_registry_binary() -> str:
    """The path of ``docker-registry``; a missing binary fails the test (`make test` installs it)."""
    path = shutil.which(BINARY)
    if path is None:
        reason = (
            f"{BINARY} not found: install Debian's registry with "
            "`apt-get install -y docker-registry` (the .ci/run script does)"
        )
        pytest.fail(reason, pytrace=False)
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --- access log counter --------------------------------------------------------------------------

_LOG_LINE = re.compile(r'"(?P<method>[A-Z]+) (?P<path>\S+) HTTP/[0-9.]+" (?P<status>[0-9]{3})')


@dataclass(frozen=True)
class LoggedRequest:
    method: str
    path: str
    status: int


class AccessLog:
    """Requests the registry served, read from its access log on stdout."""

    def __init__(self) -> None:
        self._lines: list[LoggedRequest] = []
        self._condition = threading.Condition()

    def feed(self, stream: Any) -> None:
        for raw in iter(stream.readline, b""):
            match = _LOG_LINE.search(raw.decode("utf-8", "replace"))
            if match is None:
                continue
            with self._condition:
                self._lines.append(LoggedRequest(match["method"], match["path"], int(match["status"])))
                self._condition.notify_all()

    def entries(self) -> list[LoggedRequest]:
        with self._condition:
            return list(self._lines)

    def wait_for(self, predicate: Callable[[LoggedRequest], bool], timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        with self._condition:
            while not any(predicate(line) for line in self._lines):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._condition.wait(left)
            return True


# --- the registry --------------------------------------------------------------------------------


@dataclass
class RegistryServer:
    """A running docker-registry. See the module docstring."""

    mode: Mode
    host: str
    root: Path
    config_file: Path
    process: subprocess.Popen[bytes]
    ca_file: Path | None = None
    username: str | None = None
    password: str | None = None
    credentials_file: Path | None = None
    token_server: TokenServer | None = None
    access_log: AccessLog = field(default_factory=AccessLog)
    _reader: threading.Thread | None = None

    @property
    def scheme(self) -> str:
        return "http" if self.mode == "plain" else "https"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}"

    def ref(self, repo: str, tag: str | None = None, digest: str | None = None) -> str:
        text = f"{self.host}/{repo}"
        if tag is not None:
            text += f":{tag}"
        if digest is not None:
            text += f"@{digest}"
        return text

    def pusher(self, *, authenticated: bool = True) -> OciPusher:
        return OciPusher(
            self.url,
            verify=str(self.ca_file) if self.ca_file is not None else True,
            username=self.username if authenticated else None,
            password=self.password if authenticated else None,
        )

    def allowed_hosts(self) -> frozenset[str]:
        hosts = {self.host}
        if self.token_server is not None:
            hosts.add(self.token_server.address)
        return frozenset(hosts)

    def settings(self, *, with_credentials: bool = True, **overrides: Any) -> Any:
        """imagegate ``RegistrySettings`` that reach this registry (credentials unless told otherwise)."""
        from webhook.registry.credentials import DockerCredentials
        from webhook.registry.settings import RegistrySettings

        values: dict[str, Any] = {
            "allow": self.allowed_hosts(),
            "insecure": frozenset({self.host}) if self.mode == "plain" else frozenset(),
            "ca_file": self.ca_file,
        }
        if with_credentials and self.credentials_file is not None:
            values["credentials"] = DockerCredentials.from_file(self.credentials_file)
        values.update(overrides)
        return RegistrySettings(**values)

    def requests(self, *, method: str | None = None, path: str | None = None) -> int:
        """How many requests the registry logged (optionally by method and path regex).

        Synchronises with the log first: it sends a marker request and waits until it is logged,
        so every request answered before this call is counted.
        """
        marker = f"/v2/?count-sync={uuid.uuid4().hex}"
        verify: str | bool = str(self.ca_file) if self.ca_file is not None else False
        with requests.Session() as session:
            session.trust_env = False
            session.get(self.url + marker, verify=verify, timeout=5)
        if not self.access_log.wait_for(lambda line: line.path == marker):
            raise AssertionError("the registry did not log the synchronisation request within 5 s")
        pattern = re.compile(path) if path is not None else None
        return sum(
            1
            for line in self.access_log.entries()
            if "count-sync=" not in line.path
            and (method is None or line.method == method)
            and (pattern is None or pattern.search(line.path))
        )

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        if self.process.stdout is not None:
            self.process.stdout.close()
        if self.token_server is not None:
            self.token_server.stop()

    def __enter__(self) -> RegistryServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


_CA: trustme.CA | None = None


def shared_ca() -> trustme.CA:
    """The CA that issues all test registry and token-server certificates (one per process)."""
    global _CA
    if _CA is None:
        _CA = trustme.CA()
    return _CA


def _server_context(directory: Path, name: str) -> tuple[Path, Path, ssl.SSLContext]:
    cert = shared_ca().issue_cert("127.0.0.1", "localhost")
    cert_path, key_path = directory / f"{name}.crt", directory / f"{name}.key"
    cert.cert_chain_pems[0].write_to_path(str(cert_path))
    cert.private_key_pem.write_to_path(str(key_path))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    return cert_path, key_path, context


def start_registry(
    directory: Path, mode: Mode = "plain", *, token_expires_in: int = 300, attempts: int = 3
) -> RegistryServer:
    """Start ``docker-registry serve`` in ``mode`` with config and data under ``directory``."""
    require("registry", "starts a docker-registry")
    binary = require_registry_binary()
    directory.mkdir(parents=True, exist_ok=True)
    last_error = ""
    for attempt in range(attempts):
        workdir = directory / f"registry-{mode}-{attempt}-{uuid.uuid4().hex[:6]}"
        workdir.mkdir()
        try:
            return _start_once(binary, workdir, mode, token_expires_in=token_expires_in)
        except _StartFailed as error:  # a port taken between probing and binding: try another
            last_error = str(error)
    raise RuntimeError(f"docker-registry did not start in {attempts} attempts: {last_error}")


class _StartFailed(Exception):
    pass


def _start_once(binary: str, workdir: Path, mode: Mode, *, token_expires_in: int) -> RegistryServer:
    port = free_port()
    host = f"127.0.0.1:{port}"
    http: dict[str, Any] = {"addr": host, "secret": "imagegate-test-secret"}
    config: dict[str, Any] = {
        "version": 0.1,
        "log": {"level": "error", "accesslog": {"disabled": False}},
        "storage": {
            "filesystem": {"rootdirectory": str(workdir / "data")},
            "delete": {"enabled": True},
            "cache": {"blobdescriptor": "inmemory"},
        },
        "http": http,
    }
    ca_file: Path | None = None
    username = password = None
    credentials_file: Path | None = None
    token_server: TokenServer | None = None
    if mode in ("tls", "token"):
        cert_path, key_path, _ = _server_context(workdir, "registry")
        http["tls"] = {"certificate": str(cert_path), "key": str(key_path)}
        ca_file = workdir / "ca.pem"
        shared_ca().cert_pem.write_to_path(str(ca_file))
        username, password = USERNAME, PASSWORD
        credentials_file = workdir / "dockerconfig.json"
        auth = base64.b64encode(f"{username}:{password}".encode()).decode()
        credentials_file.write_text(json.dumps({"auths": {host: {"auth": auth}}}))
    if mode == "tls":
        hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=5)).decode()
        (workdir / "htpasswd").write_text(f"{USERNAME}:{hashed}\n")
        config["auth"] = {"htpasswd": {"realm": "test-realm", "path": str(workdir / "htpasswd")}}
    if mode == "token":
        _, _, token_tls = _server_context(workdir, "token")
        token_server = TokenServer(
            workdir / "token", users={USERNAME: PASSWORD}, expires_in=token_expires_in, tls=token_tls
        ).start()
        config["auth"] = {
            "token": {
                "realm": token_server.realm,
                "service": token_server.service,
                "issuer": token_server.issuer,
                "rootcertbundle": str(token_server.signing_cert),
            }
        }
    config_file = workdir / "config.yml"
    # JSON is YAML: no YAML writer needed.
    config_file.write_text(json.dumps(config, indent=2))
    with (workdir / "registry.err").open("wb") as errors:  # the child keeps its own copy
        process = subprocess.Popen(
            [binary, "serve", str(config_file)],
            stdout=subprocess.PIPE,
            stderr=errors,
            stdin=subprocess.DEVNULL,
        )
    server = RegistryServer(
        mode=mode,
        host=host,
        root=workdir,
        config_file=config_file,
        process=process,
        ca_file=ca_file,
        username=username,
        password=password,
        credentials_file=credentials_file,
        token_server=token_server,
    )
    assert process.stdout is not None
    server._reader = threading.Thread(target=server.access_log.feed, args=(process.stdout,), daemon=True)
    server._reader.start()
    try:
        _wait_ready(server)
    except _StartFailed:
        server.stop()
        raise
    return server


def _wait_ready(server: RegistryServer, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    verify: str | bool = str(server.ca_file) if server.ca_file is not None else False
    with requests.Session() as session:
        session.trust_env = False
        while time.monotonic() < deadline:
            if not server.alive():
                errors = (server.root / "registry.err").read_text(errors="replace")[-2000:]
                raise _StartFailed(f"docker-registry exited with {server.process.returncode}: {errors}")
            try:
                answer = session.get(server.url + "/v2/", verify=verify, timeout=1)
            except requests.RequestException:
                time.sleep(0.01)
                continue
            if answer.status_code in (200, 401):
                return
            time.sleep(0.01)
    raise _StartFailed(f"docker-registry at {server.host} not ready after {timeout} s")


# --- pytest fixtures -----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def plain_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    """A plain-HTTP registry without auth, shared by the session."""
    with start_registry(tmp_path_factory.mktemp("plain-registry"), "plain") as server:
        yield server


@pytest.fixture(scope="session")
def tls_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    """An HTTPS registry with htpasswd Basic auth (``USERNAME``/``PASSWORD``), shared by the session."""
    with start_registry(tmp_path_factory.mktemp("tls-registry"), "tls") as server:
        yield server


@pytest.fixture(scope="session")
def token_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    """An HTTPS registry with Bearer-token auth from an HTTPS :class:`TokenServer`, shared by the session."""
    with start_registry(tmp_path_factory.mktemp("token-registry"), "token") as server:
        yield server


@pytest.fixture
def registry_factory(tmp_path: Path) -> Iterator[Callable[..., RegistryServer]]:
    """``registry_factory(mode="plain", **kwargs)`` starts a fresh registry, stopped at teardown."""
    started: list[RegistryServer] = []

    def make(mode: Mode = "plain", **kwargs: Any) -> RegistryServer:
        server = start_registry(tmp_path / f"r{len(started)}", mode, **kwargs)
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


# --- fault servers -------------------------------------------------------------------------------


@dataclass
class FaultRequest:
    method: str
    path: str
    headers: dict[str, str]


Behaviour = Callable[[FaultRequest, socket.socket, threading.Event], None]


class FaultServer:
    """A threaded TCP server on 127.0.0.1 that answers every request with ``behaviour``.

    ``behaviour(request, sock, stopping)`` writes raw bytes to ``sock`` (it may wait on
    ``stopping``, set when the server stops). ``requests`` lists the requests received.
    """

    def __init__(self, behaviour: Behaviour, *, tls: ssl.SSLContext | None = None) -> None:
        self.behaviour = behaviour
        self.requests: list[FaultRequest] = []
        self.connections = 0
        self._tls = tls
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        outer = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                outer._handle(self.request)

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True
            block_on_close = False

        self._server = Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True, name="fault-server"
        )
        self._thread.start()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self._server.server_address[1]}"

    @property
    def scheme(self) -> str:
        return "https" if self._tls is not None else "http"

    def ref(self, repo: str = "demo/app", tag: str = "v1") -> str:
        return f"{self.host}/{repo}:{tag}"

    def _handle(self, sock: socket.socket) -> None:
        with self._lock:
            self.connections += 1
        try:
            if self._tls is not None:
                sock = self._tls.wrap_socket(sock, server_side=True)
            sock.settimeout(10)
            reader = sock.makefile("rb")
            while not self._stopping.is_set():
                request = _read_request(reader)
                if request is None:
                    return
                with self._lock:
                    self.requests.append(request)
                self.behaviour(request, sock, self._stopping)
        except (OSError, ssl.SSLError):
            return

    def stop(self) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FaultServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _read_request(reader: Any) -> FaultRequest | None:
    line = reader.readline(65536)
    if not line:
        return None
    method, path, _ = line.decode("latin-1").split(" ", 2)
    headers: dict[str, str] = {}
    while True:
        header = reader.readline(65536)
        if header in (b"\r\n", b"\n", b""):
            break
        name, _, value = header.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0") or 0)
    if length:
        reader.read(length)
    return FaultRequest(method, path, headers)


def http_response(status: int, headers: dict[str, str], body: bytes = b"", *, reason: str = "X") -> bytes:
    lines = [f"HTTP/1.1 {status} {reason}"]
    merged = {"Content-Length": str(len(body)), **headers}
    lines += [f"{k}: {v}" for k, v in merged.items() if v is not None]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def hanging_server() -> FaultServer:
    """Accepts connections and reads requests but never answers."""

    def behaviour(request: FaultRequest, sock: socket.socket, stopping: threading.Event) -> None:
        stopping.wait(30)

    return FaultServer(behaviour)


def dripping_server(*, phase: Literal["headers", "body"] = "body", interval: float = 0.2) -> FaultServer:
    """Answers one byte per ``interval``: in the status line and headers, or in a 200 body."""

    def behaviour(request: FaultRequest, sock: socket.socket, stopping: threading.Event) -> None:
        body = b"x" * 4096
        head = http_response(200, {"Content-Type": "application/vnd.oci.image.manifest.v1+json"}, b"")
        head = head.replace(b"Content-Length: 0", f"Content-Length: {len(body)}".encode())
        if phase == "body":
            sock.sendall(head)
            data = body
        else:
            data = head + body
        for byte in data:
            if stopping.wait(interval):
                return
            sock.sendall(bytes([byte]))

    return FaultServer(behaviour)


def status_server(status: int, headers: dict[str, str] | None = None) -> FaultServer:
    """Answers every request with ``status`` (e.g. 500, or 429 with ``Retry-After``)."""

    def behaviour(request: FaultRequest, sock: socket.socket, stopping: threading.Event) -> None:
        body = json.dumps({"errors": [{"code": "UNAVAILABLE", "message": "try later"}]}).encode()
        sock.sendall(http_response(status, {"Content-Type": "application/json", **(headers or {})}, body))

    return FaultServer(behaviour)


def wrong_digest_server() -> FaultServer:
    """Serves a manifest whose Docker-Content-Digest names other content (HEAD and GET)."""
    body = b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}'
    wrong = "sha256:" + hashlib.sha256(b"something else").hexdigest()

    def behaviour(request: FaultRequest, sock: socket.socket, stopping: threading.Event) -> None:
        headers = {
            "Content-Type": "application/vnd.oci.image.manifest.v1+json",
            "Docker-Content-Digest": wrong,
        }
        if request.method == "HEAD":
            # No digest header on HEAD: the client must fetch and check the body.
            headers.pop("Docker-Content-Digest")
            sock.sendall(
                http_response(200, headers, b"").replace(
                    b"Content-Length: 0", f"Content-Length: {len(body)}".encode()
                )
            )
        else:
            sock.sendall(http_response(200, headers, body))

    return FaultServer(behaviour)


def oversized_server(size: int, *, declare_length: bool = True) -> FaultServer:
    """Serves a manifest of ``size`` bytes, with or without a Content-Length (then until close)."""

    def behaviour(request: FaultRequest, sock: socket.socket, stopping: threading.Event) -> None:
        headers = {"Content-Type": "application/vnd.oci.image.manifest.v1+json"}
        if request.method == "HEAD":
            sock.sendall(http_response(200, headers))
            return
        if declare_length:
            head = http_response(200, headers).replace(
                b"Content-Length: 0", f"Content-Length: {size}".encode()
            )
        else:
            head = http_response(200, {**headers, "Connection": "close"}).replace(
                b"Content-Length: 0\r\n", b""
            )
        sock.sendall(head)
        chunk = b" " * 65536
        sent = 0
        while sent < size and not stopping.is_set():
            piece = chunk[: min(len(chunk), size - sent)]
            sock.sendall(piece)
            sent += len(piece)
        sock.close()

    return FaultServer(behaviour)


def redirect_server(location: str, *, status: int = 307) -> FaultServer:
    """Answers every request with a redirect to ``location``; records the Authorization it got."""

    def behaviour(request: FaultRequest, sock: socket.socket, stopping: threading.Event) -> None:
        sock.sendall(http_response(status, {"Location": location}))

    return FaultServer(behaviour)


def untrusted_tls_server() -> FaultServer:
    """An HTTPS server whose certificate comes from a CA nobody trusts (answers 200 to /v2/)."""
    stranger = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    stranger.issue_cert("127.0.0.1", "localhost").configure_cert(context)

    def behaviour(request: FaultRequest, sock: socket.socket, stopping: threading.Event) -> None:
        sock.sendall(http_response(200, {"Docker-Content-Digest": "sha256:" + "0" * 64}))

    return FaultServer(behaviour, tls=context)


def refused_address() -> str:
    """``127.0.0.1:PORT`` of a port that nothing listens on (connections are refused)."""
    return f"127.0.0.1:{free_port()}"


@contextmanager
def listening_socket() -> Iterator[tuple[str, socket.socket]]:
    """A bound, listening, non-blocking socket: ``accept()`` raising BlockingIOError proves no connection."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        sock.setblocking(False)
        yield f"127.0.0.1:{sock.getsockname()[1]}", sock
    finally:
        sock.close()
