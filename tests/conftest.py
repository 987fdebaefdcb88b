"""Fixtures and checks for every test, wherever its file sits (see tests/README.md)."""

from __future__ import annotations

pytest_plugins = [
    "pytester",
    "tests.support.markers",
    "tests.support.fixtures",
    "tests.support.registry",
    "tests.support.deploy",
    "tests.support.front",
]
