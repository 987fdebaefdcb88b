"""Fixtures for the end-to-end tests: real docker-registry processes (see tests.support.registry)."""

from __future__ import annotations

from tests.support.registry import (  # noqa: F401 - pytest fixtures
    plain_registry,
    registry_factory,
    tls_registry,
    token_registry,
)
