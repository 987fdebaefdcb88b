"""Signature + attestation verification, cold and cached, in-process and through ``POST /validate``.

Each signed image carries two keyless Sigstore bundles from the test Sigstore (a cosign v3 signature
and a SLSA provenance v1 attestation), found through the referrers tag-schema fallback of a TLS
registry with Basic auth. The rule is the benchmark policy's ``signed`` rule: one keyless signer
(issuer + exact subject), and the SLSA attestation with source repository and ref checks.

In-process, per image, with the policy's real adapters (``RegistryClient`` whose connection and
credentials are already warm, ``TrustMaterial`` built once, as after a policy load):

* ``cold``: a new :class:`CachingRegistry` and :class:`CachedVerifier`, then
  :meth:`CachedVerifier.verify_image`: discovery (referrers API 404, fallback index, the two referrer
  manifests and bundle blobs, legacy ``.sig``/``.att`` lookups) plus the cryptographic checks;
* ``discovery`` and ``crypto``: the two halves of ``cold`` timed apart (``discover()`` on fresh caches;
  :meth:`ImageVerifier.verify_rule` on the discovered artifacts);
* ``cached``: :meth:`CachedVerifier.verify_image` again (a cache hit, no network).

End to end (``imagegate serve``, 1 worker): ``POST /validate`` of a Pod with one pinned signed image
the server has never seen, then the same request again.
"""

from __future__ import annotations

__all__ = ["verification_e2e", "verification_micro"]

import functools
import json
import logging
import time
from datetime import UTC, datetime
from pathlib import Path
from statistics import median
from typing import Any

from bench.results import Metric, Result, Stopwatch, describe_samples
from bench.world import World, pod_review
from tests.support.server import Server
from webhook.deadline import Deadline
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


def _check(results: Any, what: str) -> None:
    if not results or not all(r.passed for r in results):
        raise AssertionError(f"{what} did not verify: {results}")


def verification_micro(world: World, *, policy_path: Path, images_per_run: int, runs: int) -> Result:
    """Cold / discovery / crypto / cached verification per image (see module docstring)."""
    policy = load_policy(policy_path, now=datetime.now(UTC)).policy
    rule: Rule = next(r for r in policy.rules if r.name == "signed")
    trust = TrustMaterial.from_policy(policy)
    inner = ImageVerifier(trust)
    cold: list[float] = []
    discovery: list[float] = []
    crypto: list[float] = []
    cached: list[float] = []
    details: list[dict[str, Any]] = []
    with RegistryClient(RegistrySettings.from_policy(policy)) as client:
        # The same images serve every run: each verification starts from new, empty caches.
        images = world.push_signed(count=images_per_run, prefix="micro")
        refs = [(ImageRef.parse(world.signed_ref(image)), image.digest) for image in images]
        # Warm the connection and credentials outside the measurement.
        client.resolve(refs[0][0], refs[0][1], deadline=Deadline.after(10))
        for run in range(runs):
            samples: dict[str, list[float]] = {"cold": [], "discovery": [], "crypto": [], "cached": []}
            for ref, digest in refs:
                verify = functools.partial(
                    CachedVerifier(inner, fingerprint=policy.fingerprint).verify_image,
                    registry=CachingRegistry(client),
                    image=ref,
                    digest=digest,
                    rules=(rule,),
                    now=datetime.now(UTC),
                )
                watch = Stopwatch()
                results = verify(deadline=Deadline.after(10))
                samples["cold"].append(watch.seconds * 1000)
                _check(results, f"{ref.name}@{digest} (cold)")
                hits = []
                for _ in range(CACHED_REPEATS):
                    started = time.perf_counter()
                    results = verify(deadline=Deadline.after(10))
                    hits.append((time.perf_counter() - started) * 1e6)
                _check(results, f"{ref.name}@{digest} (cached)")
                samples["cached"].append(median(hits))

                watch = Stopwatch()
                artifacts = discover(CachingRegistry(client), ref, digest, deadline=Deadline.after(10))
                samples["discovery"].append(watch.seconds * 1000)
                watch = Stopwatch()
                result = inner.verify_rule(
                    rule=rule, image=ref, digest=digest, artifacts=artifacts, now=datetime.now(UTC)
                )
                samples["crypto"].append(watch.seconds * 1000)
                _check((result,), f"{ref.name}@{digest} (crypto only)")
            cold.append(median(samples["cold"]))
            discovery.append(median(samples["discovery"]))
            crypto.append(median(samples["crypto"]))
            cached.append(median(samples["cached"]))
            details.append(
                {
                    "run": run,
                    **{
                        f"{k}_{'us' if k == 'cached' else 'ms'}": describe_samples(v)
                        for k, v in samples.items()
                    },
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
        metrics={
            "cold": Metric("ms", tuple(cold)),
            "discovery": Metric("ms", tuple(discovery)),
            "crypto": Metric("ms", tuple(crypto)),
            "cached": Metric("us", tuple(cached)),
        },
        details=details,
        notes=("cold reuses a RegistryClient with a warm connection (resolve-tls cold shows that cost)",),
    )


def _validate_timed(server: Server, image: str) -> float:
    body = pod_review([image], target_bytes=0)
    watch = Stopwatch()
    response = server.admit("/validate", body)
    elapsed = watch.seconds * 1000
    if response.get("allowed") is not True:
        raise AssertionError(f"/validate of {image} was not allowed: {response}")
    outcomes = [i["outcome"] for i in json.loads(response["auditAnnotations"]["images"])]
    if outcomes != ["verified"]:
        raise AssertionError(f"/validate of {image}: outcomes {outcomes}")
    return elapsed


def verification_e2e(world: World, server: Server, *, images_per_run: int, runs: int) -> Result:
    """``POST /validate``: a signed image never seen by the server, then the same image again."""
    first: list[float] = []
    again: list[float] = []
    details: list[dict[str, Any]] = []
    for run in range(runs):
        images = world.push_signed(count=images_per_run, prefix=f"e2e-r{run}")
        first_samples: list[float] = []
        again_samples: list[float] = []
        for image in images:
            ref = world.signed_ref(image)
            first_samples.append(_validate_timed(server, ref))
            again_samples.append(_validate_timed(server, ref))
        first.append(median(first_samples))
        again.append(median(again_samples))
        details.append(
            {
                "run": run,
                "cold_ms": describe_samples(first_samples),
                "warm_ms": describe_samples(again_samples),
            }
        )
    return Result(
        name="validate-signed-image",
        group="3. verification",
        description="POST /validate, 1-container Pod, pinned signed + attested image: cold vs warm",
        parameters={
            "server": "imagegate serve, 1 worker, TLS, keep-alive client (requests)",
            "registry": "docker-registry 2.8 over HTTPS + Basic auth",
            "images_per_run": images_per_run,
            "runs": runs,
            "per_run_value": "median over the run's requests",
        },
        primary="cold",
        metrics={"cold": Metric("ms", tuple(first)), "warm": Metric("ms", tuple(again))},
        details=details,
        notes=("client-side latency including the Python client's own ~1 ms per request",),
    )
