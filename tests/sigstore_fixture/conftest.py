"""Fixtures for the tests of the local test Sigstore instance (tests/support/fake_sigstore.py)."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import NoReturn

import pytest
from sigstore.models import TrustedRoot
from sigstore.verify import Verifier

from tests.support.fake_sigstore import FakeSigstore, Identity, github_actions_extensions

__all__: list[str] = []

_GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
_WORKFLOW_IDENTITY = "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main"


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any attempt to reach the network: the test instance and verification must be fully offline."""

    def refuse(*args: object, **kwargs: object) -> NoReturn:
        raise OSError("network access attempted in an offline test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


@pytest.fixture
def sigstore_instance(tmp_path: Path) -> FakeSigstore:
    """A fresh instance per test, so log indexes and trust never leak between tests."""
    return FakeSigstore.create(tmp_path)


@pytest.fixture
def verifier(sigstore_instance: FakeSigstore) -> Verifier:
    """sigstore-python's real Verifier, trusting only `sigstore_instance`."""
    return Verifier(trusted_root=TrustedRoot.from_file(str(sigstore_instance.trusted_root_path)))


@pytest.fixture
def github_identity(sigstore_instance: FakeSigstore) -> Identity:
    """A GitHub Actions release-workflow identity with the usual Fulcio extensions."""
    return sigstore_instance.issue_cert(
        subject=_WORKFLOW_IDENTITY, issuer=_GITHUB_ISSUER, extensions=github_actions_extensions()
    )
