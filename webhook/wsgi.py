"""WSGI entry point for gunicorn: ``webhook.wsgi:create_from_env()`` builds one app per worker."""

from __future__ import annotations

__all__ = ["create_from_env"]

import logging

from flask import Flask

from webhook.app import create_app
from webhook.errors import ConfigError
from webhook.metrics import Metrics
from webhook.policy.model import Policy
from webhook.reload import PolicyStore
from webhook.service import AdmissionService
from webhook.settings import Settings
from webhook.wiring import RuntimeAdapter, Services, build_services

_logger = logging.getLogger(__name__)


def create_from_env(settings: Settings | None = None, *, last_good: Policy | None = None) -> Flask:
    """Load the policy named by ``IMAGEGATE_POLICY_PATH`` and build the app around it.

    When the files do not load, the worker serves ``last_good`` (the policy the gunicorn master last
    loaded, inherited through fork) if there is one; otherwise it stays unready (``/readyz`` 503) and
    denies. Either way the watcher keeps trying, so fixed files take effect without a restart.
    """
    settings = settings or Settings.from_env()
    metrics = Metrics(namespaces=settings.metrics_namespaces, max_rules=settings.metrics_rules)
    store = PolicyStore(
        settings.policy_path,
        build=lambda policy: build_services(policy, settings=settings, metrics=metrics),
        interval=settings.reload_interval,
        on_reload=metrics.policy_reload,
    )
    try:
        runtime = store.load()
        metrics.policy_reload("success", runtime.policy)
    except ConfigError as error:
        metrics.policy_reload("rejected", None)
        _logger.error("policy %s did not load: %s", settings.policy_path, error.user_message)
        for problem in error.problems:
            _logger.error("  %s", problem)
        if last_good is not None:
            _adopt(store, last_good, metrics)
    store.start()
    service = AdmissionService(settings=settings, runtime=RuntimeAdapter(store), observer=metrics)
    return create_app(
        settings=settings, service=service, metrics=metrics, ready=lambda: store.current() is not None
    )


def _adopt(store: PolicyStore[Services], last_good: Policy, metrics: Metrics) -> None:
    # Building the adapters can still refuse it (sigstore's reading of a trusted root it carries); then
    # the worker stays unready (and denies) instead of failing to boot, which would stop every worker.
    try:
        store.adopt(last_good)
    except ConfigError as error:
        _logger.error(
            "the last good policy %s cannot be served either: %s", last_good.name, error.user_message
        )
        return
    metrics.policy_reload("success", last_good)
    _logger.warning("serving the last good policy %s until the files load again", last_good.name)
