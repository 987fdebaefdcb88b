"""Fixtures for the registry client tests: real docker-registry processes (see tests.support.registry)."""

from __future__ import annotations

import pytest

from tests.support.registry import (  # noqa: F401 - pytest fixtures
    plain_registry,
    registry_factory,
    tls_registry,
    token_registry,
)
from webhook.deadline import Deadline


@pytest.fixture
def deadline() -> Deadline:
    """A generous per-test budget for calls that are expected to succeed."""
    return Deadline.after(10.0)
