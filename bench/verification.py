"""Signature + attestation verification, cold and cached, in-process and through ``POST /validate``.

Each signed image carries two keyless Sigstore bundles from the test Sigstore (a cosign v3 signature
and a SLSA provenance v1 attestation), found through the referrers tag-schema fallback (registry 2.8
has no referrers API). The rule is the benchmark's ``signed`` rule: one keyless signer (issuer + exact
subject), and the SLSA attestation with source repository and ref checks.

In-process, per image, against the TLS registry with Basic auth, with the policy's real adapters
(``RegistryClient`` whose connection and credentials are already warm, ``TrustMaterial`` built once,
the lookup pool, as after a policy load):

* ``cold``: a new :class:`CachingRegistry` and :class:`CachedVerifier`, then
  :meth:`CachedVerifier.verify_image`: discovery (the fallback index, the two referrer manifests and
  bundle blobs, concurrently where independent; the legacy tags are not needed) plus the cryptographic
  checks; ``requests``: the registry requests it made (from the registry's access log);
* ``discovery`` and ``crypto``: the two halves of ``cold`` timed apart (``discover()`` of every part on
  fresh caches; :meth:`ImageVerifier.verify_rule` on the discovered artifacts);
* ``cached``: :meth:`CachedVerifier.verify_image` again (a cache hit, no network).

End to end (``imagegate serve``, 1 worker, the cold-path policy: the ``signed`` rule on every registry),
``POST /validate`` of a Pod with one pinned signed image the server has never seen (``cold``), then the
same request again (``warm``), per registry: ``validate-signed-image`` on the TLS registry with Basic
auth (the target), ``-plain`` (HTTP, anonymous), ``-token`` (HTTPS, bearer tokens), and
``-markers`` (TLS, with registry quarantine markers on: the manifest is read too, to see whether it is
an index). Each admission's registry requests (and token requests) are counted from the registry's
access log (and the token server's), which makes them exact: ``requests`` is per cold admission after
the server's first contact with the registry, whose own count and latency are in the notes.
"""

from __future__ import annotations

__all__ = ["COLD_SCENARIOS", "verification_e2e", "verification_micro"]

import contextlib
import functools
import http.client
import json
import logging
import ssl
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from statistics import median
from typing import Any
from urllib.parse import urlsplit

from bench.results import Metric, Result, Stopwatch, describe_samples
from bench.world import World, pod_review
from tests.support.registry import RegistryServer
from tests.support.server import Server
from webhook.deadline import Deadline
from webhook.fanout import FanOut
from webhook.images.reference import ImageRef
from webhook.policy.loader import load_policy
from webhook.policy.model import Rule
from webhook.registry.cached import CachingRegistry
from webhook.registry.client import RegistryClient
from webhook.registry.settings import RegistrySettings
from webhook.verify.cached import CachedVerifier
from webhook.verify.discovery import discover
from webhook.verify.trust import TrustMaterial
from webhook.verify.verifier import ImageVerifier

_logger = logging.getLogger(__name__)

CACHED_REPEATS = 50
# (registry mode, quarantine markers on) of each end-to-end cold scenario, the target's first.
COLD_SCENARIOS: tuple[tuple[str, bool], ...] = (
    ("tls", False),
    ("plain", False),
    ("token", False),
    ("tls", True),
)


def _check(results: Any, what: str) -> None:
    if not results or not all(r.passed for r in results):
        raise AssertionError(f"{what} did not verify: {results}")


def verification_micro(world: World, *, policy_path: Path, images_per_run: int, runs: int) -> Result:
    """Cold / discovery / crypto / cached verification per image (see module docstring)."""
    policy = load_policy(policy_path, now=datetime.now(UTC)).policy
    rule: Rule = next(r for r in policy.rules if r.name == "signed")
    trust = TrustMaterial.from_policy(policy)
    inner = ImageVerifier(trust)
    metrics: dict[str, list[float]] = {
        "cold": [],
        "discovery": [],
        "crypto": [],
        "cached": [],
        "requests": [],
    }
    details: list[dict[str, Any]] = []
    with (
        RegistryClient(RegistrySettings.from_policy(policy)) as client,
        ThreadPoolExecutor(max_workers=8, thread_name_prefix="imagegate-lookups") as pool,
    ):
        fanout = FanOut(pool)
        # The same images serve every run: each verification starts from new, empty caches.
        images = world.push_signed(count=images_per_run, prefix="micro")
        refs = [(ImageRef.parse(world.signed_ref(image)), image.digest) for image in images]
        # Warm the connection, the credentials and what the client learns of the host (no referrers API).
        for ref, digest in refs[:1]:
            CachedVerifier(inner, fanout=fanout).verify_image(
                registry=CachingRegistry(client),
                image=ref,
                digest=digest,
                rules=(rule,),
                deadline=Deadline.after(10),
                now=datetime.now(UTC),
            )
        for run in range(runs):
            samples: dict[str, list[float]] = {k: [] for k in metrics}
            for ref, digest in refs:
                verify = functools.partial(
                    CachedVerifier(inner, fingerprint=policy.fingerprint, fanout=fanout).verify_image,
                    registry=CachingRegistry(client),
                    image=ref,
                    digest=digest,
                    rules=(rule,),
                    now=datetime.now(UTC),
                )
                before = world.tls.requests()
                watch = Stopwatch()
                results = verify(deadline=Deadline.after(10))
                samples["cold"].append(watch.seconds * 1000)
                samples["requests"].append(world.tls.requests() - before)
                _check(results, f"{ref.name}@{digest} (cold)")
                hits = []
                for _ in range(CACHED_REPEATS):
                    started = time.perf_counter()
                    results = verify(deadline=Deadline.after(10))
                    hits.append((time.perf_counter() - started) * 1e6)
                _check(results, f"{ref.name}@{digest} (cached)")
                samples["cached"].append(median(hits))

                watch = Stopwatch()
                artifacts = discover(
                    CachingRegistry(client), ref, digest, deadline=Deadline.after(10), fanout=fanout
                )
                samples["discovery"].append(watch.seconds * 1000)
                watch = Stopwatch()
                result = inner.verify_rule(
                    rule=rule, image=ref, digest=digest, artifacts=artifacts, now=datetime.now(UTC)
                )
                samples["crypto"].append(watch.seconds * 1000)
                _check((result,), f"{ref.name}@{digest} (crypto only)")
            for name, values in samples.items():
                metrics[name].append(median(values))
            details.append(
                {
                    "run": run,
                    **{f"{k}_{_UNITS[k]}": describe_samples(v) for k, v in samples.items()},
                }
            )
    return Result(
        name="verify-signature-and-slsa",
        group="3. verification",
        description="CachedVerifier.verify_image: keyless signature bundle + SLSA provenance v1 bundle",
        parameters={
            "registry": "docker-registry 2.8 over HTTPS + Basic auth, referrers tag-schema fallback",
            "artifacts_per_image": 2,
            "rule": "1 keyless signer (issuer + subject); SLSA v1 attestation (source repository, ref)",
            "images_per_run": images_per_run,
            "cached_repeats_per_image": CACHED_REPEATS,
            "runs": runs,
            "per_run_value": "median over the run's images",
        },
        primary="cold",
        metrics={name: Metric(_UNITS[name], tuple(values)) for name, values in metrics.items()},
        details=details,
        notes=(
            "cold reuses a RegistryClient with a warm connection (resolve-tls cold shows that cost); "
            "discovery looks up every part (referrers, .sig, .att), as cold does not need to",
        ),
    )


_UNITS = {"cold": "ms", "discovery": "ms", "crypto": "ms", "cached": "us", "requests": "requests"}


class _Caller:
    """One CA-verified keep-alive HTTPS connection to the server, as the API server holds.

    Only the request's send and the answer's read are timed: the review is encoded before and the
    answer decoded after, so the client's own JSON and HTTP-library work (about 1 ms per request with
    ``requests``) is not counted as the webhook's latency.
    """

    def __init__(self, server: Server) -> None:
        url = urlsplit(server.url)
        context = ssl.create_default_context(cafile=str(server.ca_file))
        self._connection = http.client.HTTPSConnection(
            url.hostname or "127.0.0.1", url.port, timeout=30, context=context
        )

    def validate(self, review: dict[str, Any]) -> tuple[float, dict[str, Any]]:
        body = json.dumps(review).encode()
        headers = {"Content-Type": "application/json", "Content-Length": str(len(body))}
        watch = Stopwatch()
        self._connection.request("POST", "/validate", body=body, headers=headers)
        answer = self._connection.getresponse()
        data = answer.read()
        elapsed = watch.seconds * 1000
        if answer.status != 200:
            raise AssertionError(f"/validate answered {answer.status}: {data[:500]!r}")
        payload = json.loads(data)
        if payload["response"]["uid"] != review["request"]["uid"]:
            raise AssertionError(f"/validate answered another review: {payload}")
        return elapsed, payload["response"]

    def close(self) -> None:
        self._connection.close()


def _validate_timed(caller: _Caller, image: str) -> float:
    elapsed, response = caller.validate(pod_review([image], target_bytes=0))
    if response.get("allowed") is not True:
        raise AssertionError(f"/validate of {image} was not allowed: {response}")
    outcomes = [i["outcome"] for i in json.loads(response["auditAnnotations"]["images"])]
    if outcomes != ["verified"]:
        raise AssertionError(f"/validate of {image}: outcomes {outcomes}")
    return elapsed


def _counted(registry: RegistryServer, admit: Callable[[], float]) -> tuple[float, int, int]:
    """``admit()``'s latency, and the registry and token requests it made."""
    token_server = registry.token_server
    tokens = token_server.count() if token_server is not None else 0
    before = registry.requests()
    elapsed = admit()
    made = registry.requests() - before
    return elapsed, made, (token_server.count() - tokens if token_server is not None else 0)


def cold_name(mode: str, markers: bool) -> str:
    """``validate-signed-image`` (TLS + Basic auth, markers off: the target), else with suffixes."""
    return "validate-signed-image" + ("" if mode == "tls" else f"-{mode}") + ("-markers" if markers else "")


def verification_e2e(
    world: World, server: Server, *, mode: str, markers: bool, images_per_run: int, runs: int
) -> Result:
    """``POST /validate``: a signed image never seen by the server, then the same image again."""
    registry = world.registries[mode]
    with contextlib.closing(_Caller(server)) as caller:
        # The server's first contact with this registry: a probe of the referrers API, a 401 and
        # credentials (or a token), a new TLS connection per concurrent lookup.
        (first,) = world.push_signed(count=1, prefix=f"first-{mode}-{int(markers)}", mode=mode)
        first_ms, first_requests, first_tokens = _counted(
            registry, lambda: _validate_timed(caller, world.signed_ref(first, mode=mode))
        )
        metrics: dict[str, list[float]] = {"cold": [], "warm": [], "requests": [], "token_requests": []}
        details: list[dict[str, Any]] = []
        for run in range(runs):
            images = world.push_signed(
                count=images_per_run, prefix=f"e2e-{mode}-{int(markers)}-r{run}", mode=mode
            )
            samples: dict[str, list[float]] = {k: [] for k in metrics}
            for image in images:
                ref = world.signed_ref(image, mode=mode)
                elapsed, made, tokens = _counted(registry, functools.partial(_validate_timed, caller, ref))
                samples["cold"].append(elapsed)
                samples["requests"].append(made)
                samples["token_requests"].append(tokens)
                samples["warm"].append(_validate_timed(caller, ref))
            for name, values in samples.items():
                metrics[name].append(median(values))
            details.append(
                {"run": run, **{f"{k}_{_E2E_UNITS[k]}": describe_samples(v) for k, v in samples.items()}}
            )
    description = {
        "tls": "docker-registry 2.8 over HTTPS + Basic auth (htpasswd, bcrypt)",
        "plain": "docker-registry 2.8 over plain HTTP, anonymous",
        "token": "docker-registry 2.8 over HTTPS + bearer tokens (test token server)",
    }[mode]
    return Result(
        name=cold_name(mode, markers),
        group="3. verification",
        description="POST /validate, 1-container Pod, pinned signed + attested image: cold vs warm",
        parameters={
            "server": "imagegate serve, 1 worker, TLS, one keep-alive connection (http.client)",
            "registry": description,
            "quarantine_markers": markers,
            "images_per_run": images_per_run,
            "runs": runs,
            "per_run_value": "median over the run's requests",
        },
        primary="cold",
        metrics={name: Metric(_E2E_UNITS[name], tuple(values)) for name, values in metrics.items()},
        details=[
            {
                "first_contact": {
                    "ms": round(first_ms, 2),
                    "registry_requests": first_requests,
                    "token_requests": first_tokens,
                }
            },
            *details,
        ],
        notes=(
            "client-side latency from sending the encoded review to reading the whole answer",
            f"first contact with the registry (one admission, not in the runs): {first_ms:.1f} ms, "
            f"{first_requests} registry requests, {first_tokens} token requests",
        ),
    )


_E2E_UNITS = {"cold": "ms", "warm": "ms", "requests": "requests", "token_requests": "requests"}
