"""gunicorn settings for the TLS stall benchmark, shaped like production.

2 workers x 4 threads, keep-alive 30 s, one cached SSLContext; the worker class comes from ``-k``.
"""

from __future__ import annotations

import ssl
from typing import Any

__all__ = ["ssl_context"]

workers = 2
threads = 4
keepalive = 30
timeout = 30
accesslog = None
loglevel = "warning"

_context: list[ssl.SSLContext] = []


def ssl_context(conf: Any, default_ssl_context_factory: Any) -> ssl.SSLContext:
    # Built once per worker instead of once per connection, as in webhook/gunicorn_conf.py.
    if not _context:
        context = default_ssl_context_factory()
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        _context.append(context)
    return _context[0]
