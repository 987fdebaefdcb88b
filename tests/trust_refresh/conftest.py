"""Fixtures for ``imagegate trust refresh``: a local TUF repository served over loopback, realistic roots."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.refresh_world import RefreshWorld, Run
from tests.support.tuf_repository import TufRepository
from webhook.cli import main


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., Run]:
    def run(*args: str) -> Run:
        code = main(list(args))
        captured = capsys.readouterr()
        return Run(code=code, out=captured.out, err=captured.err)

    return run


@pytest.fixture
def world(tmp_path: Path, run_cli: Callable[..., Run]) -> Iterator[RefreshWorld]:
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
