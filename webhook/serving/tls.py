"""The server's TLS context, rebuilt when the certificate or key file changes (rotation without restart).

Every handshake goes through :meth:`CertificateContexts.select` (the context's ``sni_callback``, which
OpenSSL calls for every ClientHello, with or without a server name). It switches the connection to the
context of the newest certificate generation. The files are looked at (``stat``) at most once a second; a
half-written rotation (the pair does not load) keeps the previous certificate in service.
"""

from __future__ import annotations

__all__ = ["CertificateContexts"]

import logging
import os
import ssl
import threading
import time
from pathlib import Path

_logger = logging.getLogger(__name__)
_CHECK_INTERVAL = 1.0  # seconds between looks at the certificate files


class CertificateContexts:
    """One :class:`ssl.SSLContext` per certificate generation; :attr:`listener` is the one to serve with."""

    def __init__(self, *, certfile: Path, keyfile: Path) -> None:
        self._certfile, self._keyfile = certfile, keyfile
        self._lock = threading.Lock()
        self._signature = self._file_signature()
        self._current = self._build()  # raises: the first certificate must load
        self._checked = time.monotonic()
        self.listener = self._build()
        self.listener.sni_callback = self.select

    def current(self) -> ssl.SSLContext:
        """The context of the newest loadable certificate generation."""
        now = time.monotonic()
        if now - self._checked < _CHECK_INTERVAL:
            return self._current
        with self._lock:
            if now - self._checked < _CHECK_INTERVAL:
                return self._current
            self._checked = now
            signature = self._file_signature()
            if signature != self._signature:
                try:
                    self._current = self._build()
                except (OSError, ssl.SSLError) as error:
                    # Written one file at a time: the next look may find a matching pair.
                    _logger.warning("the rotated TLS certificate does not load yet: %s", error)
                    return self._current
                self._signature = signature
                _logger.info("serving the rotated TLS certificate %s", self._certfile)
            return self._current

    def select(self, connection: ssl.SSLObject | ssl.SSLSocket, server_name: str | None, _: object) -> None:
        context = self.current()
        if connection.context is not context:
            connection.context = context

    def _build(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self._certfile, self._keyfile)
        return context

    def _file_signature(self) -> tuple[int, ...]:
        signature: list[int] = []
        for path in (self._certfile, self._keyfile):
            try:
                st = os.stat(path)
            except OSError:
                return ()
            signature += [st.st_ino, st.st_size, st.st_mtime_ns]
        return tuple(signature)
