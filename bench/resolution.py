"""Tag -> digest resolution with webhook.registry's real client: cold, warm connection, cached; and /mutate.

In-process, per image (one resolve = one timed call of :meth:`CachingRegistry.resolve`):

* ``cold``: a new :class:`RegistryClient` and :class:`CachingRegistry` per image, so the call pays TCP
  connect, TLS handshake, the 401 challenge and credentials (Basic, or a token from the token server)
  and the manifest HEAD. This is the first admission after a worker starts.
* ``first-seen``: one long-lived client whose connection and credentials are warm, asked for tags it
  never saw: what a first-seen tag costs a running webhook.
* ``cached``: the same tags again: a :class:`CachingRegistry` hit (no network).

End to end (``imagegate serve``, 1 worker, TLS registry with Basic auth): the client-side latency of
``POST /mutate`` for a one-container pod whose tag the server has never seen, then of the same
request again (served from the tag cache). One keep-alive connection, as the API server keeps.
"""

from __future__ import annotations

__all__ = ["resolution_e2e", "resolution_micro"]

import base64
import json
import logging
import time
from statistics import median
from typing import Any

from bench.results import Metric, Result, Stopwatch, describe_samples
from bench.world import RESOLVE_REPO, World, pod_review
from tests.support.server import Server
from webhook.deadline import Deadline
from webhook.images.reference import ImageRef
from webhook.registry.cached import CachingRegistry
from webhook.registry.client import RegistryClient

_logger = logging.getLogger(__name__)

CACHED_REPEATS = 50  # per tag and run: hits take microseconds, so each is timed many times


def _resolve_timed(registry: CachingRegistry, ref: ImageRef, *, tag: str, expected: str) -> float:
    started = time.perf_counter()
    digest = registry.resolve(ref, tag, deadline=Deadline.after(10))
    elapsed = time.perf_counter() - started
    if digest != expected:
        raise AssertionError(f"{ref.name}:{tag} resolved to {digest}, pushed {expected}")
    return elapsed * 1000


def resolution_micro(world: World, *, mode: str, tags_per_run: int, runs: int) -> Result:
    """Cold / first-seen / cached resolution against the ``mode`` registry (see module docstring)."""
    server = world.registries[mode]
    settings = server.settings()
    repo = ImageRef.parse(server.ref(RESOLVE_REPO, "x"))
    cold: list[float] = []
    first: list[float] = []
    cached: list[float] = []
    details: list[dict[str, Any]] = []
    # The same tags serve every run: "cold" and "first-seen" are about the client's state, which
    # each run builds afresh (new clients, cleared caches).
    pushed = world.push_tags(mode, count=tags_per_run, prefix=f"{mode}-micro")
    for run in range(runs):
        cold_samples = []
        for tag, image in pushed:
            with RegistryClient(settings) as client:
                cold_samples.append(
                    _resolve_timed(CachingRegistry(client), repo, tag=tag, expected=image.digest)
                )
        with RegistryClient(settings) as client:
            registry = CachingRegistry(client)
            # Warm the connection and credentials, then forget the answer.
            registry.resolve(repo, pushed[0][0], deadline=Deadline.after(10))
            registry.clear()
            first_samples = [
                _resolve_timed(registry, repo, tag=tag, expected=image.digest) for tag, image in pushed
            ]
            hit_samples = [
                _resolve_timed(registry, repo, tag=tag, expected=image.digest)
                for tag, image in pushed
                for _ in range(CACHED_REPEATS)
            ]
        cold.append(median(cold_samples))
        first.append(median(first_samples))
        cached.append(median(hit_samples) * 1000)
        details.append(
            {
                "run": run,
                "cold_ms": describe_samples(cold_samples),
                "first_seen_ms": describe_samples(first_samples),
                "cached_us": describe_samples([s * 1000 for s in hit_samples]),
            }
        )
    auth = {"plain": "none (plain HTTP)", "tls": "HTTPS + Basic", "token": "HTTPS + Bearer token"}[mode]
    return Result(
        name=f"resolve-{mode}",
        group="2. resolution",
        description=f"tag -> digest, RegistryClient + CachingRegistry, registry {auth}",
        parameters={
            "registry": f"docker-registry 2.8 ({mode}, {auth})",
            "tags_per_run": tags_per_run,
            "cached_repeats_per_tag": CACHED_REPEATS,
            "runs": runs,
            "per_run_value": "median over the run's resolves",
        },
        primary="cold",
        metrics={
            "cold": Metric("ms", tuple(cold)),
            "first_seen": Metric("ms", tuple(first)),
            "cached": Metric("us", tuple(cached)),
        },
        details=details,
    )


def _mutate_timed(server: Server, image: str, *, expected_digest: str) -> float:
    body = pod_review([image], target_bytes=0)
    watch = Stopwatch()
    response = server.admit("/mutate", body)
    elapsed = watch.seconds * 1000
    if response.get("allowed") is not True or "patch" not in response:
        raise AssertionError(f"/mutate of {image} was not allowed with a patch: {response}")
    patch = json.loads(base64.b64decode(response["patch"]))
    if not any(str(op.get("value", "")).endswith("@" + expected_digest) for op in patch):
        raise AssertionError(f"/mutate of {image} did not pin {expected_digest}: {patch}")
    return elapsed


def resolution_e2e(world: World, server: Server, *, tags_per_run: int, runs: int) -> Result:
    """``POST /mutate``: a first-seen tag, then the same tag again, on one keep-alive connection."""
    first: list[float] = []
    again: list[float] = []
    details: list[dict[str, Any]] = []
    for run in range(runs):
        pushed = world.push_tags("tls", count=tags_per_run, prefix=f"e2e-r{run}")
        first_samples: list[float] = []
        again_samples: list[float] = []
        for tag, image in pushed:
            ref = world.tls.ref(RESOLVE_REPO, tag)
            first_samples.append(_mutate_timed(server, ref, expected_digest=image.digest))
            again_samples.append(_mutate_timed(server, ref, expected_digest=image.digest))
        first.append(median(first_samples))
        again.append(median(again_samples))
        details.append(
            {
                "run": run,
                "first_seen_ms": describe_samples(first_samples),
                "same_tag_again_ms": describe_samples(again_samples),
            }
        )
    return Result(
        name="mutate-first-seen-tag",
        group="2. resolution",
        description="POST /mutate of a 1-container Pod: tag never seen by the server vs the same tag again",
        parameters={
            "server": "imagegate serve, 1 worker, TLS, keep-alive client (requests)",
            "registry": "docker-registry 2.8 over HTTPS + Basic auth",
            "tags_per_run": tags_per_run,
            "runs": runs,
            "per_run_value": "median over the run's requests",
        },
        primary="first_seen",
        metrics={"first_seen": Metric("ms", tuple(first)), "same_tag_again": Metric("ms", tuple(again))},
        details=details,
        notes=("client-side latency including the Python client's own ~1 ms per request",),
    )
