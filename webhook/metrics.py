"""Prometheus metrics (``imagegate_`` prefix), safe under gunicorn's multiple worker processes.

With ``PROMETHEUS_MULTIPROC_DIR`` set (``imagegate serve`` sets it before workers start), every worker
writes its samples to memory-mapped files there and ``/metrics`` aggregates them.

Label values stay bounded: no image names, and no namespaces unless asked for (``namespaces``); kinds
are those imagegate checks (else ``(other)``), registries those ``registries.allow`` names (else
``(other)``), rules the first ``max_rules`` rules of the policy in force (else ``(other)``); ``""`` is
the rule of an outcome no rule owns. ``(other)`` cannot be a kind, host or rule name.

prometheus_client's own process collector reads only the process that serves the scrape, and its
samples are lost in multiprocess mode; :class:`ServerProcesses` instead reads ``/proc`` for the
gunicorn master and every live worker, each sample labelled with the process's role and pid. The
processes say they are alive through files in ``<PROMETHEUS_MULTIPROC_DIR>/processes`` (the gunicorn
hooks call :func:`process_started` and :func:`process_exited`).
"""

from __future__ import annotations

__all__ = ["OTHER", "Metrics", "ServerProcesses", "process_exited", "process_started"]

import functools
import os
import platform
from collections import Counter as Tally
from collections.abc import Iterator, Mapping
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as prometheus_multiprocess
from prometheus_client import process_collector as prometheus_process
from prometheus_client.metrics_core import Metric
from prometheus_client.samples import Sample

from webhook import __version__
from webhook.admission.review import AdmissionContext
from webhook.admission.workloads import SUPPORTED_KINDS
from webhook.decision import Decision, Stage
from webhook.policy.model import Policy

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 8.0, 10.0)
#: The label value of everything beyond the bounds: not a valid kind, registry host or rule name.
OTHER = "(other)"
_PROCESSES = "processes"


class Metrics:
    """All metrics of one process, registered in a private registry (no import-time globals).

    Args:
        namespaces: add a ``resource_namespace`` label (the admitted object's namespace) to the admission
            and image-decision counters: one series per namespace, so opt in only where the number of
            namespaces is known to be small.
        max_rules: rules of the policy in force (in file order) whose names are ``rule`` label values;
            images owed to later rules are counted as ``(other)``.
    """

    content_type = CONTENT_TYPE_LATEST

    def __init__(self, *, namespaces: bool = False, max_rules: int = 100) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self._namespaces = namespaces
        self._max_rules = max_rules
        # Not "namespace" nor "endpoint": Prometheus gives every scraped series those of the target (the
        # Prometheus Operator's ServiceMonitor sets both), and renames a clashing label to exported_*.
        where = ["resource_namespace"] if namespaces else []
        self.requests = Counter(
            "imagegate_admission_requests_total",
            "AdmissionReviews answered, by stage (mutate, validate), kind, operation, dry run and outcome "
            "(allowed, warned, denied, error).",
            ["stage", "kind", "operation", "dry_run", "outcome", *where],
            registry=r,
        )
        self.latency = Histogram(
            "imagegate_admission_duration_seconds",
            "Time to answer an AdmissionReview, by stage (mutate, validate).",
            ["stage"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.images = Counter(
            "imagegate_image_decisions_total",
            "Images decided, once per webhook call: by stage (mutate, validate), kind, operation, dry run, "
            "outcome (a reason code, or verified / admitted / exempted / unmatched-allowed), the mode of "
            "the failure that decided it (enforce, warn, audit; none) and the rule it is owed to.",
            ["stage", "kind", "operation", "dry_run", "outcome", "mode", "rule", *where],
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
            "Registry HTTP requests, by registry and operation.",
            ["registry", "operation"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.registry_errors = Counter(
            "imagegate_registry_errors_total",
            "Failed registry operations, by registry and reason code.",
            ["registry", "code"],
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
        self.build_info = Gauge(
            "imagegate_build_info",
            "The imagegate being served: 1 for its version and those of Python and sigstore-python.",
            ["version", "python", "sigstore"],
            registry=r,
            multiprocess_mode="livemax",
        )
        self.build_info.labels(__version__, platform.python_version(), _version_of("sigstore")).set(1)
        r.register(ServerProcesses(None))
        self._policy_labels: tuple[str, str] | None = None
        self._rules: Mapping[str, str] = {}
        # Label children by label values: looked up once per new combination, then a dict read.
        self._children: dict[tuple[object, ...], Any] = {}

    # AdmissionObserver
    def admission(self, *, stage: Stage, context: AdmissionContext, outcome: str, seconds: float) -> None:
        where = (context.namespace,) if self._namespaces else ()
        labels = (stage, _kind(context), context.operation, _flag(context.dry_run), outcome, *where)
        self._child(self.requests, labels).inc()
        self._child(self.latency, (stage,)).observe(seconds)

    def decided(self, *, stage: Stage, context: AdmissionContext, decision: Decision) -> None:
        """Count each image of ``decision`` once, under what decided it (outcome, mode and rule of
        :class:`~webhook.decision.ImageDecision`)."""
        head = (stage, _kind(context), context.operation, _flag(context.dry_run))
        where = (context.namespace,) if self._namespaces else ()
        rules = self._rules
        tally = Tally(
            (d.outcome, d.mode or "none", "" if d.rule is None else rules.get(d.rule, OTHER))
            for d in decision.images
        )
        for labels, count in tally.items():
            self._child(self.images, (*head, *labels, *where)).inc(count)

    def cache_lookup(self, cache: str, hit: bool) -> None:
        self._child(self.cache, (cache, "hit" if hit else "miss")).inc()

    # webhook.registry.client.Observer
    def registry_request(
        self, operation: str, registry: str | None, seconds: float, error_code: str | None
    ) -> None:
        host = registry or OTHER
        self._child(self.registry_latency, (host, operation)).observe(seconds)
        if error_code is not None:
            self._child(self.registry_errors, (host, error_code)).inc()

    def policy_reload(self, result: str, policy: Policy | None) -> None:
        self.reloads.labels(result).inc()
        if policy is not None:
            self._rules = {rule.name: rule.name for rule in policy.rules[: self._max_rules]}
            labels = (policy.name, policy.fingerprint[:16])
            if self._policy_labels is not None and self._policy_labels != labels:
                self.policy_info.labels(*self._policy_labels).set(0)
            self.policy_info.labels(*labels).set(1)
            self._policy_labels = labels

    def bad_request(self, status: int) -> None:
        self._child(self.bad_requests, (str(status),)).inc()

    def exposition(self) -> bytes:
        directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        if directory:
            registry = CollectorRegistry()
            prometheus_multiprocess.MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
            registry.register(ServerProcesses(Path(directory)))
            return generate_latest(registry)
        return generate_latest(self.registry)

    def _child(self, metric: Any, labels: tuple[str, ...]) -> Any:
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child


class ServerProcesses:
    """CPU, memory, file descriptors and start time of each process of the server, from ``/proc``.

    ``imagegate_process_*`` as prometheus_client's process collector names them, labelled ``process``
    (``master`` or ``worker``) and ``pid``. With ``directory`` (the multiprocess directory), the
    processes that said they are alive there (:func:`process_started`); without, this process alone.
    """

    def __init__(self, directory: Path | None) -> None:
        self._directory = directory

    def collect(self) -> Iterator[Metric]:
        families: dict[str, Metric] = {}
        for role, pid in self._processes():
            reader = prometheus_process.ProcessCollector(
                namespace="imagegate", pid=functools.partial(int, pid), registry=None
            )
            for family in reader.collect():
                merged = families.setdefault(
                    family.name, Metric(family.name, family.documentation, family.type)
                )
                merged.samples += [
                    Sample(s.name, {**s.labels, "process": role, "pid": str(pid)}, s.value, s.timestamp)
                    for s in family.samples
                ]
        yield from families.values()

    def _processes(self) -> list[tuple[str, int]]:
        if self._directory is None:
            return [("worker", os.getpid())]
        found = []
        try:
            names = os.listdir(self._directory / _PROCESSES)
        except OSError:
            names = []
        for name in names:
            role, _, pid = name.partition("-")
            if role in ("master", "worker") and pid.isdigit():
                found.append((role, int(pid)))
        return sorted(found) or [("worker", os.getpid())]


def process_started(directory: str | Path, *, role: str, pid: int) -> None:
    """Record that ``pid`` (``master`` or ``worker``) is alive, for :class:`ServerProcesses`."""
    processes = Path(directory) / _PROCESSES
    processes.mkdir(exist_ok=True)
    (processes / f"{role}-{pid}").touch()


def process_exited(directory: str | Path, *, pid: int) -> None:
    """A worker ended: its live gauges and its process samples go (gunicorn's ``child_exit``)."""
    prometheus_multiprocess.mark_process_dead(pid, str(directory))  # type: ignore[no-untyped-call]
    (Path(directory) / _PROCESSES / f"worker-{pid}").unlink(missing_ok=True)


def _kind(context: AdmissionContext) -> str:
    kind = context.kind.kind
    return kind if kind in SUPPORTED_KINDS else OTHER


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _version_of(distribution: str) -> str:
    try:
        return version(distribution)
    except PackageNotFoundError:
        return "unknown"
