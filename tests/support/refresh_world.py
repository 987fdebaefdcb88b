"""The world of a refresh test: a served TUF repository, its initial root, and where a refresh writes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

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


@pytest.fixture(name="world")
def fixture_world(tmp_path: Path, run_cli: Callable[..., Run]) -> Iterator[RefreshWorld]:
    """A served TUF repository (import this fixture: ``verify_world`` has a ``world`` too)."""
    repo = TufRepository(tmp_path / "repository")
    root_file = tmp_path / "initial-root.json"
    root_file.write_bytes(repo.initial_root)
    (tmp_path / "trust").mkdir()
    with repo.serve() as server:
        yield RefreshWorld(
            repo=repo,
            server=server,
            root_file=root_file,
            metadata_dir=tmp_path / "tuf-metadata",
            out=tmp_path / "trust" / "trusted_root.json",
            run=run_cli,
        )
