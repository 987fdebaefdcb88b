"""gunicorn settings and hooks for imagegate (``gunicorn -c python:webhook.gunicorn_conf``).

- gthread workers with the fixes in :mod:`webhook.gunicorn_worker`: keep-alive connections, as the API
  server reuses them, without idle TLS connections pinning worker threads (the stalls seen under load).
- ``worker_tmp_dir`` on a memory filesystem: heartbeat files on a read-only or slow root filesystem
  stall workers (the trap that made Connaisseur drop gunicorn).
- ``timeout`` above the webhook's 10 s ``timeoutSeconds``: admissions end by their own 8 s deadline.
- TLS: one SSLContext per certificate generation instead of one per connection, rebuilt when the
  certificate or key file changes, so rotated certificates are served without a restart.
"""

from __future__ import annotations

import os
import shutil
import ssl
import threading
from typing import Any

bind = os.environ.get("IMAGEGATE_BIND", "127.0.0.1:8443")
workers = int(os.environ.get("IMAGEGATE_WORKERS", "2"))
worker_class = "webhook.gunicorn_worker.ThreadWorker"
threads = int(os.environ.get("IMAGEGATE_THREADS", "4"))
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: S108 - memory filesystem by design
timeout = 30
graceful_timeout = 20
keepalive = 30
max_requests = 0
accesslog = None
errorlog = "-"
loglevel = os.environ.get("IMAGEGATE_LOG_LEVEL", "info")
capture_output = False
# gunicorn's runtime control socket is an extra local management surface (and needs a writable home):
# imagegate is managed through Kubernetes instead.
control_socket_disable = True
logconfig_dict: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(process)d] %(message)s"},
        "audit": {"format": "%(message)s"},
    },
    "handlers": {
        "stderr": {"class": "logging.StreamHandler", "formatter": "plain", "stream": "ext://sys.stderr"},
        "audit": {"class": "logging.StreamHandler", "formatter": "audit", "stream": "ext://sys.stdout"},
    },
    "loggers": {
        "imagegate.audit": {"handlers": ["audit"], "level": "INFO", "propagate": False},
        "webhook": {"handlers": ["stderr"], "level": loglevel.upper(), "propagate": False},
        "gunicorn.error": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
    },
    "root": {"handlers": ["stderr"], "level": "WARNING"},
}

_ssl_lock = threading.Lock()
_ssl_cache: dict[str, Any] = {}


def _cert_signature(conf: Any) -> tuple[int, ...]:
    signature: list[int] = []
    for path in (conf.certfile, conf.keyfile):
        st = os.stat(path)
        signature += [st.st_ino, st.st_size, st.st_mtime_ns]
    return tuple(signature)


def ssl_context(conf: Any, default_ssl_context_factory: Any) -> ssl.SSLContext:
    """Reuse the context until the certificate files change (checked at most once a second)."""
    import time

    with _ssl_lock:
        now = time.monotonic()
        context = _ssl_cache.get("context")
        if context is not None and now - _ssl_cache.get("checked", 0.0) < 1.0:
            return context  # type: ignore[no-any-return]
        _ssl_cache["checked"] = now
        try:
            signature = _cert_signature(conf)
        except OSError:
            signature = ()
        if context is None or signature != _ssl_cache.get("signature"):
            try:
                context = default_ssl_context_factory()
            except (OSError, ssl.SSLError):
                if context is None:
                    raise
                # A half-written rotation: keep serving the previous certificate.
                return context  # type: ignore[no-any-return]
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            _ssl_cache["context"] = context
            _ssl_cache["signature"] = signature
        return context  # type: ignore[no-any-return]


def on_starting(server: Any) -> None:
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        # Stale files from an earlier run would be summed into this run's metrics.
        shutil.rmtree(directory, ignore_errors=True)
        os.makedirs(directory, exist_ok=True)


def child_exit(server: Any, worker: Any) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]
