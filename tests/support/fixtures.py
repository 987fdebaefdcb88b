"""Fixtures any test may request, registered for the whole suite by ``tests/conftest.py``.

Infrastructure fixtures live next to what they start (registries: ``tests.support.registry``; the
installation: ``tests.support.deploy``); this module holds the small ones shared across packages. A test
world (``world``) is not registered here: two worlds share that name, so a test module imports the one it
uses (``from tests.support.verify_world import fixture_world``).
"""

from __future__ import annotations

__all__ = ["deadline", "github_identity", "offline", "run_cli", "sigstore_instance", "verifier"]

import socket
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

import pytest
from sigstore.models import TrustedRoot
from sigstore.verify import Verifier

from tests.support.fake_sigstore import FakeSigstore, Identity, github_actions_extensions
from tests.support.refresh_world import Run
from webhook.cli import main
from webhook.deadline import Deadline

_GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
_WORKFLOW_IDENTITY = "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main"


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any attempt to reach the network: verification and the test Sigstore work fully offline."""

    def refuse(*args: object, **kwargs: object) -> NoReturn:
        raise OSError("network access attempted in an offline test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


@pytest.fixture
def deadline() -> Deadline:
    """A generous per-test budget for calls that are expected to succeed."""
    return Deadline.after(10.0)


@pytest.fixture
def sigstore_instance(tmp_path: Path) -> FakeSigstore:
    """A fresh local test Sigstore per test, so log indexes and trust never leak between tests."""
    return FakeSigstore.create(tmp_path / "sigstore")


@pytest.fixture
def verifier(sigstore_instance: FakeSigstore) -> Verifier:
    """sigstore-python's real Verifier, trusting only ``sigstore_instance``."""
    return Verifier(trusted_root=TrustedRoot.from_file(str(sigstore_instance.trusted_root_path)))


@pytest.fixture
def github_identity(sigstore_instance: FakeSigstore) -> Identity:
    """A GitHub Actions release-workflow identity with the usual Fulcio extensions."""
    return sigstore_instance.issue_cert(
        subject=_WORKFLOW_IDENTITY, issuer=_GITHUB_ISSUER, extensions=github_actions_extensions()
    )


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., Run]:
    """``run_cli(*args)`` runs ``imagegate ARGS...`` in process and returns its exit code and output."""

    def run(*args: str) -> Run:
        code = main(list(args))
        captured = capsys.readouterr()
        return Run(code=code, out=captured.out, err=captured.err)

    return run
