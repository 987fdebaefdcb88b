"""gunicorn settings of the live floor (``bench/floor.py``): gthread, 2 workers x 4 threads, over TLS.

Like imagegate's server where it matters for a fair comparison: TLS 1.2+, one SSLContext per worker
(not one per connection), keep-alive 30 s, no access log. The worker class and ``--reuse-port`` come
from the command line.
"""

from __future__ import annotations

import ssl
from typing import Any

__all__ = ["ssl_context"]

worker_class = "gthread"
workers = 2
threads = 4
keepalive = 30
timeout = 30
accesslog = None
loglevel = "warning"
control_socket_disable = True

_context: list[ssl.SSLContext] = []


def ssl_context(conf: Any, default_ssl_context_factory: Any) -> ssl.SSLContext:
    if not _context:
        context = default_ssl_context_factory()
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        _context.append(context)
    return _context[0]
