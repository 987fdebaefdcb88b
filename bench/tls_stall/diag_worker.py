"""Stock gthread plus evidence: which connections hold a thread for long, and is SSL-buffered data ever left.

Run with ``-k diag_worker.DiagThreadWorker``. Logs at WARNING (gunicorn's error log):
- ``HELD`` when one ``handle()`` call kept a thread for more than 1 s, saying whether the connection was new
  (first request: TLS handshake + first read) and how many requests it had served before;
- ``PENDING`` when a keep-alive connection goes back to the poller with bytes inside the SSL object.
"""

from __future__ import annotations

import ssl
import time
from typing import Any

from gunicorn.workers import gthread

__all__ = ["DiagThreadWorker"]


class DiagThreadWorker(gthread.ThreadWorker):  # type: ignore[misc]
    def handle(self, conn: Any) -> Any:
        fresh = not conn.initialized
        served = getattr(conn, "diag_served", 0)
        waited = [0.0]
        plain_wait = conn.wait_for_data

        def timed_wait(timeout: float) -> bool:
            begun = time.monotonic()
            try:
                return bool(plain_wait(timeout))
            finally:
                waited[0] = time.monotonic() - begun

        conn.wait_for_data = timed_wait
        started = time.monotonic()
        result = super().handle(conn)
        held = time.monotonic() - started
        conn.diag_served = served + (1 if result is True else 0)
        if held > 1.0:
            self.log.warning(
                "HELD %.2fs (%.2fs in wait_for_data) fresh=%s served_before=%d result=%s client=%s",
                held, waited[0], fresh, served, result if result in (True, False) else "DEFER", conn.client,
            )  # fmt: skip
        if result is True and isinstance(conn.sock, ssl.SSLSocket) and conn.sock.pending():
            self.log.warning("PENDING %d bytes in SSL object at keep-alive", conn.sock.pending())
        return result
