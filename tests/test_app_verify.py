"""End to end over real HTTPS: images signed and attested like cosign does are admitted and pinned.

A real docker-registry (no referrers API: the ``sha256-<hex>`` fallback index is used), a local test
Sigstore whose trusted root the policy pins, and ``imagegate serve`` under gunicorn. Every image is
admitted by TAG through ``/mutate`` (the patch pins the digest), then the patched object goes through
``/validate``, as the API server would send it.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.fake_sigstore import SLSA_PROVENANCE_V1
from tests.support.oci import Pushed
from tests.support.registry import RegistryServer
from tests.support.reviews import review
from tests.support.signing_world import Format
from tests.support.verify_server import (
    ISSUER,
    WORKFLOW,
    WORKFLOW_EXTENSIONS,
    VerifyEnv,
    apply_patch,
    images_annotation,
    provenance,
    start_env,
    vsa,
    vulnerability_scan,
)

pytestmark = [pytest.mark.e2e, pytest.mark.registry, pytest.mark.sigstore]

FORMATS: tuple[Format, ...] = ("bundle", "legacy")
# How findings and steps show the workflow certificate's source extensions.
_SHOWN = "({})".format(
    ", ".join(
        f"{name}={WORKFLOW_EXTENSIONS[name]}"
        for name in ("sourceRepositoryURI", "sourceRepositoryRef", "buildSignerURI")
    )
)


@pytest.fixture(scope="module")
def env(
    tmp_path_factory: pytest.TempPathFactory,
    plain_registry: RegistryServer,
) -> Iterator[VerifyEnv]:
    # Registry-level caches off: what a second admission does not fetch, the verification cache saved.
    server_env = {"IMAGEGATE_TAG_TTL": "0", "IMAGEGATE_REFERRERS_TTL": "0"}
    with start_env(tmp_path_factory.mktemp("verify-ok"), plain_registry, server_env=server_env) as running:
        yield running


def admit_by_tag(
    env: VerifyEnv, repo: str, image: Pushed, *, tag: str = "v1", kind: str = "Deployment"
) -> dict[str, Any]:
    """Admit ``repo:tag`` through /mutate then the patched object through /validate; both must allow.

    Returns the /validate response.
    """
    reference = env.world.ref(repo, tag)
    pinned = env.world.ref(repo, tag, image.digest)
    body = review(kind, [reference], namespace="prod")
    mutated = env.server.admit("/mutate", body)
    assert mutated["allowed"] is True, mutated.get("status")
    assert images_annotation(mutated)[0]["outcome"] == "verified"
    pointer = "/spec/containers/0/image" if kind == "Pod" else "/spec/template/spec/containers/0/image"
    pin, *annotations = json.loads(base64.b64decode(mutated["patch"]))
    assert pin == {"op": "replace", "path": pointer, "value": pinned}
    patched = apply_patch(body, mutated)
    # Images the "provenance" rule governs get the source commit their provenance names recorded.
    if repo.split("/")[0] in ("release", "full", "attested"):
        meta = patched["metadata"] if kind == "Pod" else patched["spec"]["template"]["metadata"]
        recorded = json.loads(meta["annotations"]["provenance.imagegate.dev/app"])
        assert (recorded["digest"], recorded["rule"]) == (image.digest, "provenance")
        assert recorded["commit"] == "4d329c75e7ec1725f7c9ce917a8799d408d06be3"
    else:
        assert annotations == []

    validate_body = review(kind, [pinned], namespace="prod")
    validate_body["request"]["object"] = patched
    validated = env.server.admit("/validate", validate_body)
    assert validated["allowed"] is True, validated.get("status")
    assert "warnings" not in validated
    [annotation] = images_annotation(validated)
    assert annotation["image"] == pinned
    assert annotation["outcome"] == "verified"
    assert annotation["digest"] == image.digest
    return validated


def test_done_keyless_workflow_signature_and_slsa_provenance_admit_and_pin(env: VerifyEnv) -> None:
    """THE acceptance case: signed keylessly by acme's release workflow, provenance from the expected
    builder and source, stored as cosign v3 does (bundle referrers): admitted and pinned."""
    repo = "release/app"
    world = env.world
    image = world.push_image(repo, "v1")
    world.sign_and_push(repo, image, by=env.workflow, fmt="bundle")
    world.attest_and_push(
        repo, image, provenance(image, name=world.name(repo)), by=env.workflow, fmt="bundle"
    )

    validated = admit_by_tag(env, repo, image, kind="Pod")
    rules = images_annotation(validated)[0]["rules"]
    assert set(rules) == {"acme-keyless", "provenance"}


@pytest.mark.parametrize("fmt", FORMATS)
def test_everything_in_one_format_is_admitted(env: VerifyEnv, fmt: Format) -> None:
    """Keyless and key signatures (2 of 2), SLSA provenance, a promotion VSA and a vulnerability scan,
    all in the new bundle format, or all in the legacy .sig/.att format."""
    repo = f"full/app-{fmt}"
    world = env.world
    name = world.name(repo)
    image = world.push_image(repo, "v1")
    world.sign_and_push(repo, image, by=env.workflow, fmt=fmt)
    world.sign_and_push(repo, image, by=env.release, fmt=fmt)
    world.attest_and_push(repo, image, provenance(image, name=name), by=env.workflow, fmt=fmt)
    world.attest_and_push(repo, image, vsa(image, name=name), by=env.release, fmt=fmt)
    world.attest_and_push(repo, image, vulnerability_scan(image, name=name), by=env.workflow, fmt=fmt)

    validated = admit_by_tag(env, repo, image)
    assert set(images_annotation(validated)[0]["rules"]) == {
        "two-signers",
        "provenance",
        "promotion",
        "scanned",
    }


@pytest.mark.parametrize("fmt", FORMATS)
def test_attestations_in_one_format_are_admitted(env: VerifyEnv, fmt: Format) -> None:
    """A keyless signature plus SLSA provenance, a key-signed VSA and a keyless vulnerability scan."""
    repo = f"attested/app-{fmt}"
    world = env.world
    name = world.name(repo)
    image = world.push_image(repo, "v1")
    world.sign_and_push(repo, image, by=env.workflow, fmt=fmt)
    world.attest_and_push(repo, image, provenance(image, name=name), by=env.workflow, fmt=fmt)
    world.attest_and_push(repo, image, vsa(image, name=name), by=env.release, fmt=fmt)
    world.attest_and_push(repo, image, vulnerability_scan(image, name=name), by=env.workflow, fmt=fmt)

    validated = admit_by_tag(env, repo, image)
    rules = set(images_annotation(validated)[0]["rules"])
    assert rules == {"acme-keyless", "provenance", "promotion", "scanned"}


@pytest.mark.parametrize("prefix", ["kofn", "key"], ids=["two-of-two", "key-only-rule"])
def test_each_legacy_signature_layer_counts_even_with_identical_payloads(env: VerifyEnv, prefix: str) -> None:
    """``cosign sign`` writes the same simple-signing payload for every signer of one image, so the
    ``.sig`` manifest holds layers with the SAME blob digest that differ only in their annotations
    (signature, certificate, Rekor bundle). Each layer is its own signature: keyless then key
    satisfies 2 of [keyless, key] (``kofn/``) and, alone, the key-only rule (``key/``)."""
    repo = f"{prefix}/legacy-pair"
    image = env.world.push_image(repo, "v1")
    env.world.sign_and_push(repo, image, by=env.workflow, fmt="legacy")
    env.world.sign_and_push(repo, image, by=env.release, fmt="legacy")
    layers = env.world.legacy_layers(repo, image, "sig")
    assert len(layers) == 2 and layers[0][0] == layers[1][0]  # identical payloads, as cosign writes them
    admit_by_tag(env, repo, image)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("signer", ["keyless", "key"])
def test_single_signature_is_admitted(env: VerifyEnv, signer: str, fmt: Format) -> None:
    repo = f"{signer}/single-{fmt}"
    image = env.world.push_image(repo, "v1")
    env.world.sign_and_push(repo, image, by=env.workflow if signer == "keyless" else env.release, fmt=fmt)
    admit_by_tag(env, repo, image)


def test_two_of_two_across_formats_is_admitted(env: VerifyEnv) -> None:
    """k-of-n counts signers, not storage: a keyless bundle plus a legacy key signature make 2 of 2."""
    repo = "kofn/mixed"
    image = env.world.push_image(repo, "v1")
    env.world.sign_and_push(repo, image, by=env.workflow, fmt="bundle")
    env.world.sign_and_push(repo, image, by=env.release, fmt="legacy")
    admit_by_tag(env, repo, image)


@pytest.mark.parametrize(
    ("prefix", "attest"),
    [("promoted", "vsa"), ("scanned", "vulns")],
)
def test_promotion_and_vulnerability_gates_alone(env: VerifyEnv, prefix: str, attest: str) -> None:
    repo = f"{prefix}/app"
    world = env.world
    image = world.push_image(repo, "v1")
    if attest == "vsa":
        world.attest_and_push(repo, image, vsa(image, name=world.name(repo)), by=env.release, fmt="bundle")
    else:
        statement = vulnerability_scan(image, name=world.name(repo), severities=("MEDIUM",))
        world.attest_and_push(repo, image, statement, by=env.workflow, fmt="legacy")
    admit_by_tag(env, repo, image)


def _signature_requests(registry: RegistryServer, repo: str) -> int:
    # Signature discovery: the sha256-<hex> fallback index, the .sig/.att tags, referrer manifests, blobs.
    return registry.requests(path=rf"^/v2/{re.escape(repo)}/(manifests/sha256[-:]|blobs/)")


def test_second_admission_uses_the_verification_cache(env: VerifyEnv) -> None:
    """With the registry caches off (TTL 0), a second admission still resolves the tag at the registry,
    but fetches no signature or attestation: the verification result is cached. (The server runs one
    worker, running_server's default; each gunicorn worker has its own caches.)"""
    repo = "release/cached"
    world = env.world
    image = world.push_image(repo, "v1")
    world.sign_and_push(repo, image, by=env.workflow, fmt="legacy")
    world.attest_and_push(
        repo, image, provenance(image, name=world.name(repo)), by=env.workflow, fmt="bundle"
    )
    registry = env.registry

    before = _signature_requests(registry, repo)
    admit_by_tag(env, repo, image)
    after_first = _signature_requests(registry, repo)
    assert after_first > before  # the first admission did discover the signatures

    tag_lookups = registry.requests(path=rf"^/v2/{re.escape(repo)}/manifests/v1$")
    admit_by_tag(env, repo, image)
    assert _signature_requests(registry, repo) == after_first
    # ... while the tag was resolved again, so the registry was reachable and asked.
    assert registry.requests(path=rf"^/v2/{re.escape(repo)}/manifests/v1$") > tag_lookups


def _imagegate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "webhook", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=Path(__file__).resolve().parents[1],
    )


def test_imagegate_verify_explains_and_exits_0_then_1(env: VerifyEnv) -> None:
    repo = "release/cli"
    world = env.world
    good = world.push_image(repo, "good", content=b"good")
    world.sign_and_push(repo, good, by=env.workflow, fmt="bundle")
    world.attest_and_push(repo, good, provenance(good, name=world.name(repo)), by=env.workflow, fmt="legacy")
    bad = world.push_image(repo, "bad", content=b"bad")  # neither signed nor attested

    result = _imagegate("verify", "--policy", str(env.policy_path), world.ref(repo, "good"))
    assert result.returncode == 0, result.stdout + result.stderr
    lines = [line.strip() for line in result.stdout.splitlines()]
    pinned = world.ref(repo, "good", good.digest)
    assert f"digest: tag good resolved to {good.digest}, pinned to {pinned}" in lines
    assert "rules: governed by acme-keyless (enforce), provenance (enforce)" in lines
    # Which artifact satisfied which signer, and who signed it, with the certificate's source.
    bundle = lines.index(next(line for line in lines if line.startswith("bundle ")))
    assert lines[bundle].endswith("satisfies signer #1")
    assert lines[bundle + 1] == f"signed by keyless {WORKFLOW} issuer {ISSUER}"
    assert "sourceRepositoryURI=https://github.com/acme/app" in lines[bundle + 2]
    assert "sourceRepositoryRef=refs/tags/v1.0.0" in lines[bundle + 2]
    legacy = next(line for line in lines if line.startswith("legacy .att layer "))
    assert legacy.endswith("satisfies signer #1")
    assert "signatures: passed (1 of minimum 1 signer(s) satisfied)" in lines
    assert f"attestation {SLSA_PROVENANCE_V1}: passed (1 of minimum 1 signer(s) satisfied)" in lines
    assert "rule acme-keyless: passed: signatures" in lines
    assert f"rule provenance: passed: attestation {SLSA_PROVENANCE_V1}" in lines
    assert lines[-1] == "result: PASS: verified"

    result = _imagegate("verify", "--policy", str(env.policy_path), world.ref(repo, "bad"))
    assert result.returncode == 1, result.stdout + result.stderr
    lines = [line.strip() for line in result.stdout.splitlines()]
    assert "rule acme-keyless: FAILED (enforce) [unsigned]: signatures" in lines
    assert (
        f"rule provenance: FAILED (enforce) [attestation-missing]: attestation {SLSA_PROVENANCE_V1}" in lines
    )
    failures = [line for line in lines if line.startswith("FAILED [")]
    assert [line.split()[1] for line in failures] == ["[unsigned]", "[attestation-missing]"]
    assert all(bad.digest in line for line in failures)
    assert lines[-1] == "result: FAIL (denied): unsigned"
