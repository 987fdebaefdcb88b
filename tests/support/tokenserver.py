"""A small Docker-style token server for registry tests (the Bearer-token flow of docker-registry).

It answers ``GET /token?service=...&scope=...`` with a JWT (ES256, signing certificate in the ``x5c``
header) that docker-registry accepts when its config lists :attr:`TokenServer.signing_cert` as
``rootcertbundle``. Access rules:

* a request with valid Basic credentials of ``users`` gets every action it asks for;
* a request with wrong credentials gets 401;
* an anonymous request gets ``pull`` on repositories outside ``private_prefixes`` and nothing else.

``requests`` records every token request as ``(username or None, [scopes])`` for assertions.
"""

from __future__ import annotations

__all__ = ["TokenServer"]

import base64
import datetime
import json
import ssl
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


class TokenServer:
    """Issues registry tokens; use as a context manager or call :meth:`start` / :meth:`stop`."""

    def __init__(
        self,
        directory: Path,
        *,
        users: dict[str, str],
        service: str = "test-registry",
        issuer: str = "test-issuer",
        private_prefixes: tuple[str, ...] = ("private/",),
        expires_in: int = 300,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.users = dict(users)
        self.service = service
        self.issuer = issuer
        self.private_prefixes = private_prefixes
        self.expires_in = expires_in
        self.requests: list[tuple[str | None, list[str]]] = []
        self._lock = threading.Lock()
        self._tls = tls
        self._key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "imagegate test token signer")])
        now = datetime.datetime.now(datetime.UTC)
        self._cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .sign(self._key, hashes.SHA256())
        )
        directory.mkdir(parents=True, exist_ok=True)
        self.signing_cert = directory / "token-signing.crt"
        self.signing_cert.write_bytes(self._cert.public_bytes(serialization.Encoding.PEM))
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> str:
        if self._server is None:
            raise RuntimeError("token server not started")
        host, port = self._server.server_address[:2]
        assert isinstance(host, str)  # an AF_INET server
        return f"{host}:{port}"

    @property
    def realm(self) -> str:
        scheme = "https" if self._tls is not None else "http"
        return f"{scheme}://{self.address}/token"

    def start(self) -> TokenServer:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        server.daemon_threads = True
        if self._tls is not None:
            server.socket = self._tls.wrap_socket(server.socket, server_side=True)
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="token-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> TokenServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def count(self) -> int:
        with self._lock:
            return len(self.requests)

    # --- issuing ---------------------------------------------------------------------------------

    def issue(self, username: str | None, scopes: list[str]) -> str:
        access = []
        for scope in scopes:
            parts = scope.split(":")
            if len(parts) < 3 or parts[0] != "repository":
                continue
            name, actions = ":".join(parts[1:-1]), parts[-1].split(",")
            if username is None:
                if name.startswith(self.private_prefixes):
                    actions = []
                else:
                    actions = [a for a in actions if a == "pull"]
            if actions:
                access.append({"type": "repository", "name": name, "actions": actions})
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": username or "",
            "aud": self.service,
            "exp": now + self.expires_in,
            "nbf": now - 10,
            "iat": now,
            "jti": uuid.uuid4().hex,
            "access": access,
        }
        x5c = base64.b64encode(self._cert.public_bytes(serialization.Encoding.DER)).decode()
        return jwt.encode(claims, self._key, algorithm="ES256", headers={"x5c": [x5c]})

    def record(self, username: str | None, scopes: list[str]) -> None:
        with self._lock:
            self.requests.append((username, scopes))


def _handler(server: TokenServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            if parts.path != "/token":
                self._answer(404, {"error": "not found"})
                return
            query = parse_qs(parts.query)
            username = self._authenticate()
            if username is False:
                self._answer(401, {"errors": [{"code": "UNAUTHORIZED", "message": "bad credentials"}]})
                return
            user = username if isinstance(username, str) else None
            scopes = query.get("scope", [])
            server.record(user, scopes)
            token = server.issue(user, scopes)
            self._answer(200, {"token": token, "access_token": token, "expires_in": server.expires_in})

        def _authenticate(self) -> str | bool | None:
            header = self.headers.get("Authorization", "")
            if not header:
                return None
            scheme, _, value = header.partition(" ")
            if scheme.lower() != "basic":
                return False
            try:
                user, _, password = base64.b64decode(value).decode().partition(":")
            except ValueError:
                return False
            return user if server.users.get(user) == password else False

        def _answer(self, status: int, document: dict[str, Any]) -> None:
            body = json.dumps(document).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler
