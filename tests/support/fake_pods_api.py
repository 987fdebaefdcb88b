"""A stand-in for the pod reads of the Kubernetes API, enough for ``kubectl get pods`` (no kube-apiserver
runs here).

It serves discovery (``/version``, ``/api``, ``/apis``, ``/api/v1``) and pods: the list of a namespace or
of all namespaces, and one pod by name, as plain JSON over HTTP on loopback. kubectl's own printers
(``-o jsonpath``, ``-o custom-columns``, ``-o json``) then run over what it returns, as they do against a
cluster:

    with FakePodsApi(pods).serve() as server:
        subprocess.run([kubectl, "--server", server, "get", "pods", "-o", "json"], ...)
"""

from __future__ import annotations

__all__ = ["FakePodsApi"]

import contextlib
import json
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_POD_RESOURCE = {
    "name": "pods",
    "singularName": "pod",
    "namespaced": True,
    "kind": "Pod",
    "verbs": ["get", "list"],
    "shortNames": ["po"],
}


@dataclass(frozen=True)
class FakePodsApi:
    """Serves ``pods`` (each with ``metadata.namespace`` and ``metadata.name``)."""

    pods: Sequence[Mapping[str, Any]]

    @contextlib.contextmanager
    def serve(self) -> Iterator[str]:
        """Runs the server; yields its URL for ``kubectl --server``."""
        server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}"
        finally:
            server.shutdown()
            server.server_close()
            thread.join(5)

    def answer(self, path: str) -> Mapping[str, Any] | None:
        """The document at ``path`` (no query), or None for 404."""
        parts = path.strip("/").split("/")
        if path == "/version":
            return {"major": "1", "minor": "33", "gitVersion": "v1.33.0"}
        if path == "/api":
            return {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}
        if path == "/apis":
            return {"kind": "APIGroupList", "apiVersion": "v1", "groups": []}
        if path == "/api/v1":
            return {"kind": "APIResourceList", "groupVersion": "v1", "resources": [_POD_RESOURCE]}
        if parts == ["api", "v1", "pods"]:
            return self._list(self.pods)
        if parts[:3] == ["api", "v1", "namespaces"] and len(parts) >= 5 and parts[4] == "pods":
            found = [pod for pod in self.pods if pod["metadata"]["namespace"] == parts[3]]
            if len(parts) == 5:
                return self._list(found)
            return next((pod for pod in found if pod["metadata"]["name"] == parts[5]), None)
        return None

    @staticmethod
    def _list(pods: Sequence[Mapping[str, Any]]) -> Mapping[str, Any]:
        return {
            "kind": "PodList",
            "apiVersion": "v1",
            "metadata": {"resourceVersion": "1"},
            "items": list(pods),
        }

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                document = api.answer(self.path.split("?", 1)[0])
                if document is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = json.dumps(document).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        return Handler
