"""gunicorn worker with an asyncio front: slow clients cost a socket, never a thread.

Use with ``worker_class = "webhook.serving.worker.FrontWorker"`` (``webhook/gunicorn_conf.py``). It builds
on gunicorn's documented worker interface only (``gunicorn.workers.base.Worker``: ``sockets``, ``wsgi``,
``cfg``, ``notify``, ``alive``); gunicorn keeps the process management (master, worker restarts,
``post_fork`` and ``child_exit`` hooks, graceful timeouts).

Per worker, one event loop thread does the network side (:mod:`webhook.serving.connection`): accepting,
TLS handshakes (5 s timeout), reading each request in full (5 s from its first byte), keep-alive, writing
answers. ``threads`` pool threads run the WSGI app on complete requests only. With ``reuse_port = True``
gunicorn gives every worker its own ``SO_REUSEPORT`` listener, so the kernel spreads new connections
over the workers instead of letting whichever wakes first take them all.

Signals, as for gunicorn's own workers: TERM stops accepting, answers what is in progress (up to
``graceful_timeout``) and exits; INT and QUIT exit at once; USR1 reopens log files.
"""

from __future__ import annotations

__all__ = ["FrontWorker"]

import asyncio
import os
import signal
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from gunicorn.workers.base import Worker

from webhook.serving.connection import HANDSHAKE_TIMEOUT, Connection, Front, Limits
from webhook.serving.tls import CertificateContexts
from webhook.settings import Settings

_TICK = 1.0  # seconds between heartbeats and deadline sweeps


class FrontWorker(Worker):  # type: ignore[misc]
    """An asyncio HTTP/1.1 front (TLS, keep-alive, read deadlines) running the WSGI app in threads."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._wake: asyncio.Event | None = None
        self._quick = False

    def run(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._serve(loop))
        finally:
            loop.close()

    async def _serve(self, loop: asyncio.AbstractEventLoop) -> None:
        cfg = self.cfg
        self._install_signals(loop)
        executor = ThreadPoolExecutor(max_workers=cfg.threads, thread_name_prefix="request")
        front = Front(
            loop=loop,
            app=self.wsgi,
            executor=executor,
            keepalive=float(cfg.keepalive),
            limits=Limits(
                request_line=cfg.limit_request_line or 8190,
                header_fields=cfg.limit_request_fields or 100,
                header_field_size=cfg.limit_request_field_size or 8190,
                # One byte over the app's own cap (as its MAX_CONTENT_LENGTH): the app refuses a body
                # over the cap with 413; a larger one is not read at all, the app answers from the headers.
                body=Settings.from_env().max_request_bytes + 1,
            ),
            url_scheme="https" if cfg.is_ssl else "http",
            multiprocess=cfg.workers > 1,
            max_connections=cfg.worker_connections,
            access_log=self.log.access_log if cfg.accesslog else None,
        )
        tls = (
            CertificateContexts(certfile=Path(cfg.certfile), keyfile=Path(cfg.keyfile))
            if cfg.is_ssl
            else None
        )
        servers = [
            await loop.create_server(
                lambda: Connection(front),
                sock=listener.sock if hasattr(listener, "sock") else listener,
                ssl=tls.listener if tls is not None else None,
                ssl_handshake_timeout=HANDSHAKE_TIMEOUT if tls is not None else None,
                backlog=cfg.backlog,
            )
            for listener in self.sockets
        ]
        try:
            await self._until_stopped(loop, front)
        finally:
            for server in servers:
                server.close()
            await self._drain(loop, front)
            for connection in list(front.connections):
                connection.close()
            executor.shutdown(wait=False, cancel_futures=True)

    async def _until_stopped(self, loop: asyncio.AbstractEventLoop, front: Front) -> None:
        wake = self._wake = asyncio.Event()
        while self.alive:
            self.notify()
            if self.ppid != os.getppid():
                self.log.info("Parent changed, shutting down: %s", self)
                return
            if front.requests >= self.max_requests:
                self.log.info("Autorestarting worker after current request.")
                return
            front.sweep(loop.time())
            try:
                await asyncio.wait_for(wake.wait(), _TICK)
            except TimeoutError:
                pass

    async def _drain(self, loop: asyncio.AbstractEventLoop, front: Front) -> None:
        """Answer the requests in progress (up to ``graceful_timeout``), closing idle connections."""
        front.stop()
        deadline = loop.time() + self.cfg.graceful_timeout
        while front.connections and not self._quick and loop.time() < deadline:
            self.notify()
            front.sweep(loop.time())
            await asyncio.sleep(0.05)

    def _install_signals(self, loop: asyncio.AbstractEventLoop) -> None:
        loop.add_signal_handler(signal.SIGTERM, self._stop, False)
        loop.add_signal_handler(signal.SIGINT, self._stop, True)
        loop.add_signal_handler(signal.SIGQUIT, self._stop, True)
        loop.add_signal_handler(signal.SIGABRT, self._abort)
        loop.add_signal_handler(signal.SIGUSR1, self.log.reopen_files)
        loop.add_signal_handler(signal.SIGWINCH, lambda: None)

    def _stop(self, quick: bool) -> None:
        self.alive = False
        if quick:
            self._quick = True
            self.cfg.worker_int(self)
        if self._wake is not None:
            self._wake.set()

    def _abort(self) -> None:
        self.alive = False
        self.cfg.worker_abort(self)
        sys.exit(1)
