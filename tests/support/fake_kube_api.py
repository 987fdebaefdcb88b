"""A stand-in for the two ConfigMap calls of the Kubernetes API, over TLS (no kube-apiserver runs here).

It holds one ConfigMap and answers like the API server: ``GET`` returns it; a JSON merge ``PATCH``
(``application/merge-patch+json``) applies to it, fails with 409 when the patch carries a
``resourceVersion`` other than the current one, and bumps the version. Requests without the expected
bearer token get 401; ``forbid`` names verbs answered 403 (missing RBAC); ``after_get`` runs after
each GET is answered (someone else editing the ConfigMap meanwhile). Every request is recorded.
``service_account_dir`` holds ``token`` and ``ca.crt`` as a pod's service account volume does.
"""

from __future__ import annotations

__all__ = ["FakeKubeApi", "Recorded"]

import contextlib
import json
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import trustme


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    content_type: str
    body: Any


@dataclass
class FakeKubeApi:
    directory: Path
    namespace: str = "imagegate"
    name: str = "imagegate-trust"
    data: dict[str, str] = field(default_factory=dict)
    resource_version: int = 100
    token: str = "test-service-account-token"
    forbid: set[str] = field(default_factory=set)
    requests: list[Recorded] = field(default_factory=list)
    after_get: Callable[[], None] | None = None

    @property
    def service_account_dir(self) -> Path:
        return self.directory / "serviceaccount"

    @property
    def path(self) -> str:
        return f"/api/v1/namespaces/{self.namespace}/configmaps/{self.name}"

    def document(self) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": self.name,
                "namespace": self.namespace,
                "resourceVersion": str(self.resource_version),
            },
            "data": dict(self.data),
        }

    @contextlib.contextmanager
    def serve(self) -> Iterator[tuple[str, str]]:
        """Runs the server; yields (host, port) for KUBERNETES_SERVICE_HOST/PORT."""
        ca = trustme.CA()
        self.service_account_dir.mkdir(parents=True, exist_ok=True)
        ca.cert_pem.write_to_path(str(self.service_account_dir / "ca.crt"))
        (self.service_account_dir / "token").write_text(self.token + "\n")
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ca.issue_cert("127.0.0.1").configure_cert(context)
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
        thread = threading.Thread(target=httpd.serve_forever, daemon=True)
        thread.start()
        try:
            yield "127.0.0.1", str(httpd.server_address[1])
        finally:
            httpd.shutdown()
            httpd.server_close()
            thread.join(timeout=10)


def _handler(api: FakeKubeApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._handle("GET")

        def do_PATCH(self) -> None:
            self._handle("PATCH")

        def _handle(self, method: str) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            content_type = self.headers.get("Content-Type") or ""
            api.requests.append(
                Recorded(
                    method, parts.path, parse_qs(parts.query), content_type, json.loads(raw) if raw else None
                )
            )
            if self.headers.get("Authorization") != f"Bearer {api.token}":
                return self._status(401, "Unauthorized")
            verb = method.lower()
            if verb in api.forbid:
                return self._status(403, f'configmaps "{api.name}" is forbidden: cannot {verb}')
            if parts.path != api.path:
                return self._status(404, "not found")
            if method == "PATCH":
                if content_type != "application/merge-patch+json":
                    return self._status(415, f"unsupported media type {content_type}")
                patch = json.loads(raw)
                wanted = patch.get("metadata", {}).get("resourceVersion")
                if wanted is not None and wanted != str(api.resource_version):
                    return self._status(409, "the object has been modified")
                api.data.update(patch.get("data", {}))
                api.resource_version += 1
            self._send(200, api.document())
            if method == "GET" and api.after_get is not None:
                api.after_get()

        def _status(self, code: int, message: str) -> None:
            self._send(code, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message})

        def _send(self, code: int, document: dict[str, Any]) -> None:
            body = json.dumps(document).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler
