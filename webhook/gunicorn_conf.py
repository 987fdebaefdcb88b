"""gunicorn settings and hooks for imagegate (``gunicorn -c python:webhook.gunicorn_conf``).

- The worker is :class:`webhook.serving.worker.FrontWorker`: an asyncio front does the network side
  (TLS handshakes, reading requests, keep-alive) and hands only complete requests to ``threads`` threads,
  so a slow or stalled client costs a socket, never a thread. It serves TLS from
  :class:`webhook.serving.tls.CertificateContexts`, which picks up rotated certificate files without
  a restart.
- ``reuse_port``: every worker opens its own ``SO_REUSEPORT`` listener, so the kernel spreads the API
  server's long-lived keep-alive connections over the workers instead of one worker taking them all.
- No access log unless ``IMAGEGATE_ACCESS_LOG`` asks for one (on stderr: stdout holds the audit log,
  one JSON line per admission, written by :class:`webhook.serving.logs.LineHandler`).
- ``worker_tmp_dir`` on a memory filesystem: heartbeat files on a read-only or slow root filesystem
  stall workers (the trap that made Connaisseur drop gunicorn).
- ``timeout`` above the webhook's 10 s ``timeoutSeconds``: admissions end by their own 8 s deadline.
"""

from __future__ import annotations

import os
import shutil
from typing import Any

from webhook.metrics import process_exited, process_started

bind = os.environ.get("IMAGEGATE_BIND", "127.0.0.1:8443")
workers = int(os.environ.get("IMAGEGATE_WORKERS", "2"))
worker_class = "webhook.serving.worker.FrontWorker"
threads = int(os.environ.get("IMAGEGATE_THREADS", "4"))
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: S108 - memory filesystem by design
timeout = 30
graceful_timeout = 20
keepalive = 30
max_requests = 0
reuse_port = True
accesslog = (
    "/dev/stderr"
    if os.environ.get("IMAGEGATE_ACCESS_LOG", "").lower() in ("1", "true", "yes", "on")
    else None
)
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
        "audit": {
            "class": "webhook.serving.logs.LineHandler",
            "formatter": "audit",
            "stream": "ext://sys.stdout",
        },
    },
    "loggers": {
        "imagegate.audit": {"handlers": ["audit"], "level": "INFO", "propagate": False},
        "webhook": {"handlers": ["stderr"], "level": loglevel.upper(), "propagate": False},
        "gunicorn.error": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
    },
    "root": {"handlers": ["stderr"], "level": "WARNING"},
}


def on_starting(server: Any) -> None:
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        # Stale files from an earlier run would be summed into this run's metrics.
        shutil.rmtree(directory, ignore_errors=True)
        os.makedirs(directory, exist_ok=True)
        process_started(directory, role="master", pid=os.getpid())


def post_fork(server: Any, worker: Any) -> None:
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        process_started(directory, role="worker", pid=os.getpid())


def child_exit(server: Any, worker: Any) -> None:
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        process_exited(directory, pid=worker.pid)
