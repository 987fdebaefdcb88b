"""Fixtures for the verification tests: an offline guard, a test Sigstore instance and a World."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import NoReturn

import pytest

from tests.support.fake_sigstore import FakeSigstore
from tests.support.verify_world import World

__all__: list[str] = []


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any attempt to reach the network: verification must work fully offline."""

    def refuse(*args: object, **kwargs: object) -> NoReturn:
        raise OSError("network access attempted in an offline test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


@pytest.fixture
def sigstore_instance(tmp_path: Path) -> FakeSigstore:
    return FakeSigstore.create(tmp_path / "sigstore")


@pytest.fixture
def world(sigstore_instance: FakeSigstore, tmp_path: Path) -> World:
    return World(sigstore=sigstore_instance, tmp=tmp_path)
