"""A TCP proxy in front of a real registry that counts connections and can hold requests back.

    with RegistryProxy(plain_registry.host) as proxy:
        proxy.host                          # 127.0.0.1:PORT: name images with it (and allow it)
        proxy.connections                   # TCP connections the client opened through it
        proxy.stall(r"/blobs/sha256:ab")    # requests whose request line matches wait until released
        proxy.delay(r"/manifests/", 0.2)    # ... or wait that long
        proxy.release()                     # let stalled requests through

Bytes pass through untouched, so a TLS registry behind it works (connections are counted; request lines
are encrypted, so ``stall``/``delay``/``request_lines`` work for plain HTTP registries only). It relies on
what imagegate's client sends: GET and HEAD requests without bodies, one at a time per connection, each
request head arriving in one read.
"""

from __future__ import annotations

__all__ = ["RegistryProxy"]

import re
import socket
import threading
from types import TracebackType

from tests.support.registry import serve_on_loopback


class RegistryProxy:
    """See the module docstring. Stopping it releases everything it holds back."""

    def __init__(self, upstream: str) -> None:
        host, _, port = upstream.rpartition(":")
        self._upstream = (host, int(port))
        self.connections = 0
        self.request_lines: list[str] = []
        self._rules: list[tuple[re.Pattern[str], float | None]] = []
        self._released = threading.Event()
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._server = serve_on_loopback(self._handle, name="registry-proxy")

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self._server.server_address[1]}"

    def stall(self, pattern: str) -> None:
        """Hold requests whose request line matches ``pattern`` until :meth:`release` (or stop)."""
        with self._lock:
            self._rules.append((re.compile(pattern), None))

    def delay(self, pattern: str, seconds: float) -> None:
        """Hold requests whose request line matches ``pattern`` for ``seconds``."""
        with self._lock:
            self._rules.append((re.compile(pattern), seconds))

    def release(self) -> None:
        """Let every stalled request through, and stall or delay nothing from now on."""
        with self._lock:
            self._rules.clear()
        self._released.set()

    def stop(self) -> None:
        self._stopping.set()
        self._released.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> RegistryProxy:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _handle(self, client: socket.socket) -> None:
        with self._lock:
            self.connections += 1
        try:
            upstream = socket.create_connection(self._upstream, timeout=10)
        except OSError:
            client.close()
            return
        back = threading.Thread(target=self._pump, args=(upstream, client), daemon=True)
        back.start()
        try:
            while not self._stopping.is_set():
                data = client.recv(65536)
                if not data:
                    break
                self._hold(data)
                upstream.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (upstream, client):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()

    def _hold(self, data: bytes) -> None:
        line = data.split(b"\r\n", 1)[0].decode("latin-1")
        if not re.match(r"[A-Z]+ \S+ HTTP/1\.[01]$", line):
            return  # TLS records, or not the start of a request
        with self._lock:
            self.request_lines.append(line)
            waits = [seconds for pattern, seconds in self._rules if pattern.search(line)]
        for seconds in waits:
            if seconds is None:
                self._released.wait(30)
            else:
                self._stopping.wait(seconds)

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                target.sendall(data)
        except OSError:
            pass
        finally:
            try:
                target.shutdown(socket.SHUT_WR)
            except OSError:
                pass
