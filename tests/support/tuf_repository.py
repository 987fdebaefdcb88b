"""A local TUF repository for tests, built with python-tuf's Metadata API and served over loopback HTTP.

It is laid out like Sigstore's (``consistent_snapshot: true``): ``N.root.json``, ``timestamp.json``,
``N.snapshot.json``, ``N.targets.json`` and ``targets/<sha256>.<name>``. Keys are ECDSA P-256
(securesystemslib's ``CryptoSigner``); root is 2-of-3, the other roles 1-of-1, as in many deployments.

``TufRepository(directory)``
    A fresh repository with version 1 of every role and no targets. ``initial_root`` is the bytes of
    ``1.root.json`` (what a client is bootstrapped with).
``publish({name: data})``
    Adds or replaces targets and publishes new targets, snapshot and timestamp versions.
``rotate_root()``
    Publishes root version N+1 with new root and timestamp keys, signed by a threshold of the old and
    of the new root keys, and re-signs the timestamp with its new key.
``expire_timestamp()``
    Publishes a timestamp that expired an hour ago (a frozen or replayed repository).
``tamper(name, data)``
    Replaces the served bytes of a target without touching the metadata (a hash mismatch).
``serve()`` (context manager) -> ``TufServer``
    Serves the directory on 127.0.0.1; ``url``, ``requests`` (paths asked for) and ``faults`` (path ->
    ``Fault``: answer with a status, stall before answering, drip the body, or pad it past a size).
"""

from __future__ import annotations

__all__ = ["Fault", "TufRepository", "TufServer"]

import contextlib
import hashlib
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from securesystemslib.signer import CryptoSigner  # type: ignore[attr-defined]  # exported, not in __all__
from tuf.api.metadata import (  # type: ignore[attr-defined]  # re-exported by tuf, not in __all__
    Metadata,
    MetaFile,
    Root,
    Snapshot,
    TargetFile,
    Targets,
    Timestamp,
)

_ROLES = (Root.type, Targets.type, Snapshot.type, Timestamp.type)


def _expiry(days: int = 30) -> datetime:
    return datetime.now(UTC).replace(microsecond=0) + timedelta(days=days)


class TufRepository:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        (directory / "targets").mkdir(parents=True, exist_ok=True)
        self.signers: dict[str, list[CryptoSigner]] = {
            Root.type: [CryptoSigner.generate_ecdsa() for _ in range(3)],
            Targets.type: [CryptoSigner.generate_ecdsa()],
            Snapshot.type: [CryptoSigner.generate_ecdsa()],
            Timestamp.type: [CryptoSigner.generate_ecdsa()],
        }
        root = Root(expires=_expiry(365), consistent_snapshot=True)
        for role in _ROLES:
            for signer in self.signers[role]:
                root.add_key(signer.public_key, role)
        root.roles[Root.type].threshold = 2
        self.root = Metadata(root)
        self.targets = Metadata(Targets(expires=_expiry()))
        self.snapshot = Metadata(Snapshot(expires=_expiry()))
        self.timestamp = Metadata(Timestamp(expires=_expiry(7)))
        self._write_root(signers=self.signers[Root.type])
        self.initial_root = (directory / "1.root.json").read_bytes()
        self._write_targets_chain()

    # -- publishing ----------------------------------------------------------------------------------

    def publish(self, targets: Mapping[str, bytes]) -> None:
        for name, data in targets.items():
            (self.directory / "targets" / f"{hashlib.sha256(data).hexdigest()}.{name}").write_bytes(data)
            self.targets.signed.targets[name] = TargetFile.from_data(name, data, ["sha256"])
        self.targets.signed.version += 1
        self._write_targets_chain()

    def rotate_root(self) -> None:
        old_root_signers = self.signers[Root.type]
        new_root_signers = [CryptoSigner.generate_ecdsa() for _ in range(3)]
        new_timestamp_signer = CryptoSigner.generate_ecdsa()
        root = self.root.signed
        for signer in old_root_signers:
            root.revoke_key(signer.public_key.keyid, Root.type)
        for signer in self.signers[Timestamp.type]:
            root.revoke_key(signer.public_key.keyid, Timestamp.type)
        for signer in new_root_signers:
            root.add_key(signer.public_key, Root.type)
        root.add_key(new_timestamp_signer.public_key, Timestamp.type)
        root.version += 1
        # A threshold of the previous root's keys vouches for the new root, which also signs itself.
        self._write_root(signers=[*old_root_signers[:2], *new_root_signers[:2]])
        self.signers[Root.type] = new_root_signers
        self.signers[Timestamp.type] = [new_timestamp_signer]
        self._write_timestamp()

    def expire_timestamp(self) -> None:
        self.timestamp.signed.expires = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
        self._write_timestamp()

    def tamper(self, name: str, data: bytes) -> None:
        info = self.targets.signed.targets[name]
        (self.directory / "targets" / f"{info.hashes['sha256']}.{name}").write_bytes(data)

    # -- files ---------------------------------------------------------------------------------------

    def _write_root(self, *, signers: list[CryptoSigner]) -> None:
        self.root.signatures.clear()
        for signer in signers:
            self.root.sign(signer, append=True)
        self.root.to_file(str(self.directory / f"{self.root.signed.version}.root.json"))

    def _write_targets_chain(self) -> None:
        self._sign(self.targets, Targets.type)
        self.targets.to_file(str(self.directory / f"{self.targets.signed.version}.targets.json"))
        self.snapshot.signed.meta["targets.json"] = MetaFile(version=self.targets.signed.version)
        self.snapshot.signed.version += 1
        self._sign(self.snapshot, Snapshot.type)
        self.snapshot.to_file(str(self.directory / f"{self.snapshot.signed.version}.snapshot.json"))
        self.timestamp.signed.snapshot_meta = MetaFile(version=self.snapshot.signed.version)
        self._write_timestamp()

    def _write_timestamp(self) -> None:
        self.timestamp.signed.version += 1
        self._sign(self.timestamp, Timestamp.type)
        self.timestamp.to_file(str(self.directory / "timestamp.json"))

    def _sign(self, metadata: Metadata[Any], role: str) -> None:
        metadata.signatures.clear()
        for signer in self.signers[role]:
            metadata.sign(signer, append=True)

    # -- serving -------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def serve(self) -> Iterator[TufServer]:
        server = TufServer(self.directory)
        server.start()
        try:
            yield server
        finally:
            server.stop()


@dataclass(frozen=True)
class Fault:
    """How to misanswer one path: ``status`` instead of the file, ``stall`` seconds before answering,
    ``drip`` seconds between single body bytes, or ``pad_to`` bytes of body."""

    status: int | None = None
    stall: float = 0.0
    drip: float = 0.0
    pad_to: int = 0


class TufServer:
    def __init__(self, directory: Path) -> None:
        self.requests: list[str] = []
        self.faults: dict[str, Fault] = {}
        self._stop = threading.Event()
        server = self

        class Handler(SimpleHTTPRequestHandler):
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, directory=str(directory), **kwargs)

            def do_GET(self) -> None:
                server.requests.append(self.path)
                fault = server.faults.get(self.path)
                if fault is None:
                    super().do_GET()
                    return
                if fault.stall:
                    server._stop.wait(fault.stall)
                if fault.status is not None:
                    self.send_error(fault.status)
                    return
                body = (directory / self.path.lstrip("/")).read_bytes()
                body += b" " * max(0, fault.pad_to - len(body))
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                with contextlib.suppress(OSError):
                    for index in range(len(body)):
                        if server._stop.is_set():
                            return
                        self.wfile.write(body[index : index + 1])
                        self.wfile.flush()
                        if fault.drip:
                            server._stop.wait(fault.drip)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=10)
