"""gunicorn settings for the TLS stall benchmark, shaped like production.

2 workers x 4 threads, keep-alive 30 s, one cached SSLContext (the floor's, ``bench/floor_conf.py``); the
worker class comes from ``-k``.
"""

from __future__ import annotations

from bench.floor_conf import ssl_context

__all__ = ["ssl_context"]

workers = 2
threads = 4
keepalive = 30
timeout = 30
accesslog = None
loglevel = "warning"
