"""Process settings: timeouts, cache sizes and TTLs, limits. Built once from the environment and CLI."""

from __future__ import annotations

__all__ = ["Settings", "check_server_env"]

import logging
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from webhook.errors import ConfigError

_logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Settings:
    """Every knob has an ``IMAGEGATE_<NAME>`` environment variable (upper-case field name).

    The admission deadline (8 s) stays below the API server's default webhook ``timeoutSeconds``
    of 10 so that a slow registry ends in a clear denial, not a webhook timeout.

    Bounds on one admission's work: ``max_images`` distinct images per object (beyond it the object
    is denied ``too-many-images`` before anything is planned or fetched; an UPDATE counts only those it
    does not leave running and checks no more than the limit), and ``fetches_per_request``
    image lookups of one admission at a time on the worker's pool of ``fetch_threads``, so one object
    with many images cannot hold the pool every other admission of the worker waits for.
    """

    policy_path: Path = Path("policies/default.yaml")
    deadline_seconds: float = 8.0
    max_request_bytes: int = 6 * 1024 * 1024
    tag_ttl: float = 60.0
    referrers_ttl: float = 30.0
    failure_ttl: float = 5.0
    verify_ttl: float = 300.0
    verify_failure_ttl: float = 10.0
    cache_size: int = 4096
    reload_interval: float = 2.0
    fetch_threads: int = 8
    fetches_per_request: int = 4
    max_images: int = 256
    audit_log: bool = True
    # Metrics: a namespace label (one series per namespace, so opt-in), and how many rules (in policy
    # order) get their own rule label value (images owed to later ones count as "(other)").
    metrics_namespaces: bool = False
    metrics_rules: int = 100
    # Quarantine markers seen by any worker, shared through files here (``imagegate serve`` makes one).
    seen_markers_dir: Path | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings from ``IMAGEGATE_*`` variables, then ``overrides`` (CLI flags) on top.

        Raises:
            ConfigError: a variable does not parse as the field's type.
        """
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(f"IMAGEGATE_{f.name.upper()}")
            if raw is None:
                continue
            try:
                values[f.name] = _convert(f.type, raw)
                _check_range(f.name, values[f.name])
            except ValueError as error:
                raise ConfigError(f"IMAGEGATE_{f.name.upper()}={raw!r} is not valid: {error}") from error
        values.update({k: v for k, v in overrides.items() if v is not None})
        return replace(cls(), **values)


# Knobs that must be positive: a zero deadline denies every image, zero threads or cache entries fail
# when the first worker builds its adapters (and gunicorn then stops every worker).
_POSITIVE = frozenset(
    {
        "deadline_seconds",
        "max_request_bytes",
        "cache_size",
        "fetch_threads",
        "fetches_per_request",
        "max_images",
    }
)


def _check_range(name: str, value: object) -> None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        if name in _POSITIVE and value <= 0:
            raise ValueError("must be greater than 0")
        if value < 0:
            raise ValueError("must not be negative")


# Read by webhook/gunicorn_conf.py rather than Settings.
_SERVER_VARIABLES = frozenset(
    {
        "IMAGEGATE_WORKERS",
        "IMAGEGATE_THREADS",
        "IMAGEGATE_LOG_LEVEL",
        "IMAGEGATE_BIND",
        "IMAGEGATE_ACCESS_LOG",
    }
)


def check_server_env(env: Mapping[str, str] | None = None) -> None:
    """Check the variables :mod:`webhook.gunicorn_conf` reads, before gunicorn starts.

    Raises:
        ConfigError: ``IMAGEGATE_WORKERS`` or ``IMAGEGATE_THREADS`` is not a positive integer, or
            ``IMAGEGATE_LOG_LEVEL`` is not a logging level name, or ``IMAGEGATE_ACCESS_LOG`` is not a
            boolean.
    """
    env = os.environ if env is None else env
    for name in ("IMAGEGATE_WORKERS", "IMAGEGATE_THREADS"):
        raw = env.get(name)
        if raw is None:
            continue
        try:
            valid = int(raw) >= 1
        except ValueError:
            valid = False
        if not valid:
            raise ConfigError(f"{name}={raw!r} is not valid: expected a positive integer")
    level = env.get("IMAGEGATE_LOG_LEVEL")
    if level is not None and not isinstance(logging.getLevelName(level.upper()), int):
        raise ConfigError(
            f"IMAGEGATE_LOG_LEVEL={level!r} is not valid: expected debug, info, warning, error or critical"
        )
    access_log = env.get("IMAGEGATE_ACCESS_LOG")
    if access_log is not None:
        try:
            _convert("bool", access_log)
        except ValueError as error:
            raise ConfigError(f"IMAGEGATE_ACCESS_LOG={access_log!r} is not valid: {error}") from error
    known = {f"IMAGEGATE_{f.name.upper()}" for f in fields(Settings)} | _SERVER_VARIABLES
    for name in sorted(n for n in env if n.startswith("IMAGEGATE_") and n not in known):
        # A misspelt knob silently keeps its default: say so (it is not fatal: newer or older variables).
        _logger.warning("%s is not a setting imagegate knows; it is ignored", name)


def _convert(kind: object, raw: str) -> object:
    kind = str(kind)
    if kind == "bool":
        if raw.lower() in {"1", "true", "yes", "on"}:
            return True
        if raw.lower() in {"0", "false", "no", "off"}:
            return False
        raise ValueError("expected true or false")
    if kind == "int":
        return int(raw)
    if kind == "float":
        value = float(raw)
        if not math.isfinite(value):
            raise ValueError("must be a finite number")
        return value
    if kind == "Path | None" and not raw:
        return None
    if kind in ("Path", "Path | None"):
        return Path(raw)
    return raw
