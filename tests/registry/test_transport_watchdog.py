"""The deadline watchdog: a connection still busy at its deadline is cut; one done in time never is."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from webhook.registry.transport import _Watchdog


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    ours, theirs = socket.socketpair()
    theirs.settimeout(5)
    try:
        yield ours, theirs
    finally:
        ours.close()
        theirs.close()


def _conn(sock: socket.socket) -> Any:
    return SimpleNamespace(sock=sock)  # what the watchdog reads of a urllib3 connection


def test_a_connection_past_its_deadline_is_shut_down(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, theirs = pair
    started = time.monotonic()
    _Watchdog().watch(_conn(ours), time.monotonic() + 0.1)
    assert theirs.recv(1) == b""  # the peer sees the shutdown: end of stream
    assert 0.05 < time.monotonic() - started < 4


def test_a_watch_cancelled_in_time_never_cuts(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, theirs = pair
    watchdog = _Watchdog()
    for _ in range(200):  # enough cancelled watches to make the heap rebuild itself
        watchdog.cancel(watchdog.watch(_conn(ours), time.monotonic() + 0.2))
    # A later watch still fires: the earlier ones left nothing behind that would stop it.
    other_ours, other_theirs = socket.socketpair()
    try:
        other_theirs.settimeout(5)
        watchdog.watch(_conn(other_ours), time.monotonic() + 0.3)
        assert other_theirs.recv(1) == b""
    finally:
        other_ours.close()
        other_theirs.close()
    ours.sendall(b"x")
    assert theirs.recv(1) == b"x"  # the cancelled connection was never cut
