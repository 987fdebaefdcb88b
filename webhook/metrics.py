"""Prometheus metrics (``imagegate_`` prefix), safe under gunicorn's multiple worker processes.

With ``PROMETHEUS_MULTIPROC_DIR`` set (``imagegate serve`` sets it before workers start), every worker
writes its samples to memory-mapped files there and ``/metrics`` aggregates them. Labels carry no
image names or namespaces: cardinality stays bounded by endpoints, operations and reason codes.
"""

from __future__ import annotations

__all__ = ["Metrics"]

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as prometheus_multiprocess

from webhook.policy.model import Policy

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 8.0, 10.0)


class Metrics:
    """All metrics of one process, registered in a private registry (no import-time globals)."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "imagegate_admission_requests_total",
            "AdmissionReviews answered, by endpoint, operation and outcome (allowed, warned, denied, error).",
            ["endpoint", "operation", "outcome"],
            registry=r,
        )
        self.latency = Histogram(
            "imagegate_admission_duration_seconds",
            "Time to answer an AdmissionReview.",
            ["endpoint"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.images = Counter(
            "imagegate_image_decisions_total",
            "Per-image decisions by outcome "
            "(a reason code, or verified / admitted / exempted / unmatched-allowed).",
            ["outcome"],
            registry=r,
        )
        self.bad_requests = Counter(
            "imagegate_bad_requests_total",
            "Requests rejected with HTTP 4xx, by status code.",
            ["code"],
            registry=r,
        )
        self.registry_latency = Histogram(
            "imagegate_registry_request_duration_seconds",
            "Registry HTTP requests, by operation.",
            ["operation"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.registry_errors = Counter(
            "imagegate_registry_errors_total",
            "Failed registry operations, by reason code.",
            ["code"],
            registry=r,
        )
        self.cache = Counter(
            "imagegate_cache_lookups_total",
            "Cache lookups by cache and result (hit, miss).",
            ["cache", "result"],
            registry=r,
        )
        self.reloads = Counter(
            "imagegate_policy_reloads_total",
            "Policy (re)loads by result (success, rejected).",
            ["result"],
            registry=r,
        )
        self.policy_info = Gauge(
            "imagegate_policy_info",
            "The policy being served: 1 for its name and fingerprint.",
            ["name", "fingerprint"],
            registry=r,
            multiprocess_mode="livemax",
        )
        self._policy_labels: tuple[str, str] | None = None

    # AdmissionObserver
    def admission(self, *, stage: str, operation: str, outcome: str, seconds: float) -> None:
        self.requests.labels(stage, operation or "unknown", outcome).inc()
        self.latency.labels(stage).observe(seconds)

    def image(self, *, outcome: str, count: int = 1) -> None:
        self.images.labels(outcome).inc(count)

    def cache_lookup(self, cache: str, hit: bool) -> None:
        self.cache.labels(cache, "hit" if hit else "miss").inc()

    def registry_request(self, operation: str, seconds: float, error_code: str | None) -> None:
        self.registry_latency.labels(operation).observe(seconds)
        if error_code is not None:
            self.registry_errors.labels(error_code).inc()

    def policy_reload(self, result: str, policy: Policy | None) -> None:
        self.reloads.labels(result).inc()
        if policy is not None:
            labels = (policy.name, policy.fingerprint[:16])
            if self._policy_labels is not None and self._policy_labels != labels:
                self.policy_info.labels(*self._policy_labels).set(0)
            self.policy_info.labels(*labels).set(1)
            self._policy_labels = labels

    def exposition(self) -> bytes:
        directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        if directory:
            registry = CollectorRegistry()
            prometheus_multiprocess.MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
            return generate_latest(registry)
        return generate_latest(self.registry)
