"""The world of a refresh test: a served TUF repository, its initial root, and where a refresh writes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests.support.tuf_repository import TufRepository, TufServer


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str


@dataclass
class RefreshWorld:
    """A TUF repository being served, its initial root in a file, and where a refresh caches and writes."""

    repo: TufRepository
    server: TufServer
    root_file: Path
    metadata_dir: Path
    out: Path
    run: Callable[..., Run]

    def refresh(self, *extra: str, out: Path | None = None, metadata_dir: Path | None = None) -> Run:
        return self.run(
            "trust",
            "refresh",
            "--url",
            self.server.url,
            "--root",
            str(self.root_file),
            "--metadata-dir",
            str(metadata_dir or self.metadata_dir),
            "--out",
            str(out or self.out),
            *extra,
        )
