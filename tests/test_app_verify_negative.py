"""End to end over real HTTPS: images whose signatures or attestations do not satisfy the policy are denied.

Same world as ``test_app_verify``: a real docker-registry, a trusted test Sigstore (``acme``), an
untrusted one (``rogue``), key ``release``, and ``imagegate serve`` under gunicorn. Each case admits a
Deployment by tag through ``/mutate`` and the digest-pinned reference through ``/validate``; both must
deny with the stated reason code and a message naming what was expected and what was found.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from tests.support.fake_sigstore import VSA_V1, tamper_payload
from tests.support.oci import Pushed
from tests.support.registry import RegistryServer, listening_socket
from tests.support.reviews import review
from tests.support.signing_world import Format, WithKey
from tests.support.verify_server import (
    BUILDER,
    ISSUER,
    UNANCHORED_REGEXP,
    WORKFLOW,
    WORKFLOW_REGEXP,
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
EXPECTED_SIGNER = f"expected #1 keyless ~/{WORKFLOW_REGEXP}/ (issuer {ISSUER}, root acme)"


@pytest.fixture(scope="module")
def env(
    tmp_path_factory: pytest.TempPathFactory,
    plain_registry: RegistryServer,
) -> Iterator[VerifyEnv]:
    with start_env(tmp_path_factory.mktemp("verify-deny"), plain_registry) as running:
        yield running


def denied(env: VerifyEnv, repo: str, image: Pushed, code: str, *, rule: str) -> str:
    """Admit ``repo:v1`` at /mutate and ``repo:v1@digest`` at /validate: both deny ``[code]`` under ``rule``.

    Returns the message between the reason code and the rule, for the case's expected-vs-found checks.
    """
    reference = env.world.ref(repo, "v1")
    pinned = env.world.ref(repo, "v1", image.digest)
    explained: list[str] = []
    for path, shown in (("/mutate", reference), ("/validate", pinned)):
        response = env.server.admit(path, review("Deployment", [shown], namespace="prod"))
        assert response["allowed"] is False, response
        assert response["status"]["code"] == 403
        assert "patch" not in response
        message: str = response["status"]["message"]
        head, tail = f'container "app" image "{shown}": [{code}] ', f" (rule {rule})"
        assert message.startswith(head), message
        assert message.endswith(tail), message
        assert "\n" not in message, message
        [annotation] = images_annotation(response)
        assert annotation["outcome"] == code
        assert annotation["digest"] == image.digest
        explained.append(message[len(head) : -len(tail)])
    assert explained[0] == explained[1]  # the tag and the pinned digest are judged alike
    return explained[1]


def found_signer(subject: str = WORKFLOW, issuer: str = ISSUER) -> str:
    return f"found keyless {subject} issuer {issuer} "


# -- signatures ------------------------------------------------------------------------------------------


def test_unsigned_image_is_denied(env: VerifyEnv) -> None:
    repo = "keyless/unsigned"
    image = env.world.push_image(repo, "v1")
    message = denied(env, repo, image, "unsigned", rule="acme-keyless")
    assert message.startswith(f"no signature found for {image.digest}; {EXPECTED_SIGNER}")


@pytest.mark.parametrize("fmt", FORMATS)
def test_signature_of_another_digest_replayed_onto_this_one(env: VerifyEnv, fmt: Format) -> None:
    """A genuine signature of image A, stored where signatures of image B are looked up."""
    repo = f"keyless/replayed-{fmt}"
    other = env.world.push_image(repo, "other", content=b"other")
    image = env.world.push_image(repo, "v1")
    env.world.sign_and_push(repo, image, by=env.workflow, fmt=fmt, signed_digest=other.digest)
    message = denied(env, repo, image, "signature-invalid", rule="acme-keyless")
    assert message.startswith(f"no valid signature for {image.digest}: ")
    assert f"valid signature by keyless {WORKFLOW}" in message
    assert f"but for {other.digest}, not {image.digest}" in message


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(
    ("case", "subject", "issuer"),
    [
        ("org", "https://github.com/evil/app/.github/workflows/release.yml@refs/tags/v1.0.0", ISSUER),
        ("branch", "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main", ISSUER),
        ("issuer", WORKFLOW, "https://gitlab.com"),
    ],
    ids=["other-org", "branch-not-tag", "other-issuer"],
)
def test_wrong_identity_or_issuer_is_identity_mismatch(
    env: VerifyEnv, fmt: Format, case: str, subject: str, issuer: str
) -> None:
    repo = f"keyless/identity-{case}-{fmt}"
    image = env.world.push_image(repo, "v1")
    env.world.sign_and_push(repo, image, by=env.keyless(subject, issuer=issuer), fmt=fmt)
    message = denied(env, repo, image, "identity-mismatch", rule="acme-keyless")
    assert message.startswith(EXPECTED_SIGNER + ", " + found_signer(subject, issuer))


@pytest.mark.parametrize("fmt", FORMATS)
def test_subject_regexp_is_matched_whole_never_searched(env: VerifyEnv, fmt: Format) -> None:
    """The rule says ``subjectRegExp: https://github.com/acme/app/``. A search would find it inside
    ``https://github.com/acme/app/.github/workflows/release.yml@refs/heads/evil``; imagegate matches the
    whole identity (``re.fullmatch``), so that branch workflow's signature does not count."""
    evil = "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/evil"
    assert re.search(UNANCHORED_REGEXP, evil) is not None  # the trap is real
    repo = f"unanchored/app-{fmt}"
    image = env.world.push_image(repo, "v1")
    env.world.sign_and_push(repo, image, by=env.keyless(evil), fmt=fmt)
    message = denied(env, repo, image, "identity-mismatch", rule="unanchored")
    expected = f"expected #1 keyless ~/{UNANCHORED_REGEXP}/ (issuer {ISSUER}, root acme), "
    assert message.startswith(expected + found_signer(evil))


@pytest.mark.parametrize("fmt", FORMATS)
def test_signature_from_an_untrusted_sigstore_is_invalid(env: VerifyEnv, fmt: Format) -> None:
    """The right identity, certified by another Sigstore instance (CA and log) than the pinned root."""
    repo = f"keyless/rogue-{fmt}"
    image = env.world.push_image(repo, "v1")
    env.world.sign_and_push(repo, image, by=env.keyless(sigstore=env.rogue), fmt=fmt)
    message = denied(env, repo, image, "signature-invalid", rule="acme-keyless")
    assert message.startswith(f"no valid signature for {image.digest}: ")
    assert f"not valid for keyless ~/{WORKFLOW_REGEXP}/ (root acme): " in message
    cause = {
        "bundle": "failed to build timestamp certificate chain",
        "legacy": "which no trusted root names",
    }[fmt]
    assert cause in message


def _retarget_bundle(digest: str) -> Callable[[bytes], bytes]:
    def rewrite(bundle: bytes) -> bytes:
        def subject(statement: dict[str, Any]) -> None:
            statement["subject"][0]["digest"]["sha256"] = digest.removeprefix("sha256:")

        return tamper_payload(bundle, subject)

    return rewrite


@pytest.mark.parametrize("fmt", FORMATS)
def test_tampered_signature_layer_is_invalid(env: VerifyEnv, fmt: Format) -> None:
    """A genuine signature of image A whose signed content (DSSE statement subject, or the legacy
    simple-signing ``docker-manifest-digest``) was rewritten to name image B, signature kept."""
    repo = f"keyless/tampered-{fmt}"
    other = env.world.push_image(repo, "other", content=b"other")
    image = env.world.push_image(repo, "v1")
    tamper = (
        _retarget_bundle(image.digest)
        if fmt == "bundle"
        else lambda payload: payload.replace(other.digest.encode(), image.digest.encode())
    )
    env.world.sign_and_push(repo, image, by=env.workflow, fmt=fmt, signed_digest=other.digest, tamper=tamper)
    message = denied(env, repo, image, "signature-invalid", rule="acme-keyless")
    assert f"not valid for keyless ~/{WORKFLOW_REGEXP}/ (root acme): " in message
    cause = {
        "bundle": "DSSE: invalid signature",
        "legacy": "the signature does not verify over the layer with the signing certificate",
    }[fmt]
    assert cause in message


@pytest.mark.parametrize("stray", [False, True], ids=["keyless-only", "keyless-and-untrusted-key"])
def test_two_of_two_not_met(env: VerifyEnv, stray: bool) -> None:
    repo = f"kofn/short-{'stray' if stray else 'one'}"
    image = env.world.push_image(repo, "v1")
    env.world.sign_and_push(repo, image, by=env.workflow, fmt="bundle")
    if stray:  # signed with a key, but not the trusted "release" key
        env.world.sign_and_push(repo, image, by=WithKey(env.acme, env.stray_key), fmt="legacy")
    message = denied(env, repo, image, "identity-mismatch", rule="two-signers")
    assert message.startswith(
        f"only 1 of minimum 2 signer(s) satisfied; {EXPECTED_SIGNER}; #2 key release (at least 2 of them), "
        + found_signer()
    )


# -- attestations ------------------------------------------------------------------------------------------


def _signed(env: VerifyEnv, repo: str) -> Pushed:
    image = env.world.push_image(repo, "v1")
    env.world.sign_and_push(repo, image, by=env.workflow, fmt="bundle")
    return image


@pytest.mark.parametrize("fmt", FORMATS)
def test_attestation_about_another_digest_is_invalid(env: VerifyEnv, fmt: Format) -> None:
    repo = f"release/provenance-of-other-{fmt}"
    other = env.world.push_image(repo, "other", content=b"other")
    image = _signed(env, repo)
    statement = provenance(image, name=env.world.name(repo), subject_digest=other.digest)
    env.world.attest_and_push(repo, image, statement, by=env.workflow, fmt=fmt)
    message = denied(env, repo, image, "attestation-invalid", rule="provenance")
    assert message.startswith(
        f"attestation https://slsa.dev/provenance/v1: no valid attestation of type "
        f"https://slsa.dev/provenance/v1 for {image.digest}: "
    )
    assert f"valid attestation by keyless {WORKFLOW}" in message
    assert f"but for {other.digest}, not {image.digest}" in message


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        (
            "builder_id",
            "https://github.com/evil/runner",
            f"builder id 'https://github.com/evil/runner' (from runDetails.builder.id) "
            f"is not one of builderIds ['{BUILDER}']",
        ),
        (
            "repository",
            "https://github.com/acme/app-fork",
            "source repository 'github.com/acme/app-fork' (from buildDefinition.externalParameters.workflow"
            ".repository: 'https://github.com/acme/app-fork') is not one of sourceRepositories "
            "['github.com/acme/app']",
        ),
        (
            "ref",
            "refs/heads/feature",
            "source ref 'refs/heads/feature' (from buildDefinition.externalParameters.workflow.ref) "
            "does not match sourceRefs ['refs/tags/v*']",
        ),
    ],
    ids=["builder", "source", "ref"],
)
def test_provenance_mismatch(env: VerifyEnv, fmt: Format, field: str, value: str, expected: str) -> None:
    repo = f"release/wrong-{field.replace('_', '-')}-{fmt}"
    image = _signed(env, repo)
    statement = provenance(image, name=env.world.name(repo), **{field: value})
    env.world.attest_and_push(repo, image, statement, by=env.workflow, fmt=fmt)
    message = denied(env, repo, image, "provenance-mismatch", rule="provenance")
    assert message == f"attestation https://slsa.dev/provenance/v1: {expected}"


def test_provenance_is_required_besides_the_signature(env: VerifyEnv) -> None:
    repo = "release/no-provenance"
    image = _signed(env, repo)
    message = denied(env, repo, image, "attestation-missing", rule="provenance")
    assert message.startswith(
        f"attestation https://slsa.dev/provenance/v1: no attestation of type https://slsa.dev/provenance/v1 "
        f"found for {image.digest}; {EXPECTED_SIGNER}"
    )


@pytest.mark.parametrize("fmt", FORMATS)
def test_failed_verification_summary(env: VerifyEnv, fmt: Format) -> None:
    repo = f"promoted/failed-{fmt}"
    image = env.world.push_image(repo, "v1")
    statement = vsa(image, name=env.world.name(repo), result="FAILED")
    env.world.attest_and_push(repo, image, statement, by=env.release, fmt=fmt)
    message = denied(env, repo, image, "provenance-mismatch", rule="promotion")
    assert message == (f"attestation {VSA_V1}: verificationResult is 'FAILED', expected 'PASSED'")


def test_verification_summary_too_old(env: VerifyEnv) -> None:
    repo = "promoted/stale"
    image = env.world.push_image(repo, "v1")
    verified = (datetime.now(UTC) - timedelta(days=3)).replace(microsecond=0)
    statement = vsa(image, name=env.world.name(repo), time_verified=verified)
    env.world.attest_and_push(repo, image, statement, by=env.release, fmt="legacy")
    message = denied(env, repo, image, "provenance-mismatch", rule="promotion")
    stamp = verified.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert re.fullmatch(
        rf"attestation {re.escape(VSA_V1)}: timeVerified '{stamp}' is 3d0h00m[0-9]{{2}}s old, "
        r"more than maxAge 1d0h00m00s",
        message,
    ), message


def test_verification_summary_signed_by_an_untrusted_key(env: VerifyEnv) -> None:
    repo = "promoted/stray-key"
    image = env.world.push_image(repo, "v1")
    statement = vsa(image, name=env.world.name(repo))
    env.world.attest_and_push(repo, image, statement, by=WithKey(env.acme, env.stray_key), fmt="bundle")
    message = denied(env, repo, image, "attestation-invalid", rule="promotion")
    assert "not valid for key release" in message


@pytest.mark.parametrize("fmt", FORMATS)
def test_vulnerability_above_threshold(env: VerifyEnv, fmt: Format) -> None:
    repo = f"scanned/high-{fmt}"
    image = env.world.push_image(repo, "v1")
    statement = vulnerability_scan(image, name=env.world.name(repo), severities=("LOW", "HIGH"))
    env.world.attest_and_push(repo, image, statement, by=env.workflow, fmt=fmt)
    message = denied(env, repo, image, "provenance-mismatch", rule="scanned")
    assert message == (
        "attestation https://in-toto.io/attestation/vulns/v0.1: 1 of 2 vulnerabilities are above "
        "maxSeverity MEDIUM: CVE-2026-1001 (HIGH)"
    )


# -- multi-arch, warn mode, allowlist ---------------------------------------------------------------------


def test_multiarch_index_digest_is_pinned_and_verified(env: VerifyEnv) -> None:
    """A multi-arch tag resolves to the INDEX digest, and that digest is pinned and verified.

    The kubelet may pull any platform listed in the index, so only a signature over the index
    vouches for all of them: an index whose amd64 manifest alone is signed (both formats) is denied
    ``[unsigned]``, while an index signed at its own digest (``cosign sign`` default) is admitted
    and pinned to the index digest even though its platform manifests carry no signature.
    """
    world = env.world
    repo = "multi/platform-only"
    index, amd64, _ = world.push_multiarch(repo, "v1")
    world.sign_and_push(repo, amd64, by=env.workflow, fmt="bundle")
    world.sign_and_push(repo, amd64, by=env.workflow, fmt="legacy")
    message = denied(env, repo, index, "unsigned", rule="acme-keyless")
    assert message.startswith(f"no signature found for {index.digest}; {EXPECTED_SIGNER}")
    assert amd64.digest not in message

    repo = "multi/index-signed"
    index, amd64, arm64 = world.push_multiarch(repo, "v1")
    world.sign_and_push(repo, index, by=env.workflow, fmt="bundle")
    body = review("Pod", [world.ref(repo, "v1")], namespace="prod")
    response = env.server.admit("/mutate", body)
    assert response["allowed"] is True, response
    patched = apply_patch(body, response)
    assert patched["spec"]["containers"][0]["image"] == world.ref(repo, "v1", index.digest)
    annotation = images_annotation(response)[0]
    assert annotation["outcome"] == "verified"
    assert annotation["digest"] == index.digest not in (amd64.digest, arm64.digest)


def test_warn_mode_rule_admits_and_reports_a_warning(env: VerifyEnv) -> None:
    world = env.world
    repo = "warned/app"
    image = world.push_image(repo, "v1")
    body = review("Deployment", [world.ref(repo, "v1")], namespace="dev")
    response = env.server.admit("/mutate", body)
    assert response["allowed"] is True
    assert "status" not in response
    [warning] = response["warnings"]
    assert warning == (
        f'container "app" image "{world.ref(repo, "v1")}": [unsigned] no signature found for '
        f"{image.digest}; {EXPECTED_SIGNER} (rule dev-keyless)"
    )
    # Still pinned: warn mode relaxes the signature check, not digest pinning.
    patched = apply_patch(body, response)
    assert patched["spec"]["template"]["spec"]["containers"][0]["image"] == world.ref(
        repo, "v1", image.digest
    )
    assert images_annotation(response)[0]["outcome"] == "unsigned"


def _urls(document: object) -> Iterator[str]:
    if isinstance(document, dict):
        for value in document.values():
            yield from _urls(value)
    elif isinstance(document, list):
        for value in document:
            yield from _urls(value)
    elif isinstance(document, str) and "://" in document:
        yield document


def test_only_the_allowlisted_registry_is_contacted(env: VerifyEnv) -> None:
    """The policy allows exactly one host, the test registry, and every Rekor, Fulcio and CT URL of
    the pinned trust root is on a ``.invalid`` host (never resolvable), so every verification in this
    module ran offline. An image on another loopback port is denied before any connection to it."""
    spec = yaml.safe_load(env.policy_path.read_text())["spec"]
    assert spec["registries"]["allow"] == [env.registry.host]
    root_file = env.policy_path.parent / spec["trust"]["roots"][0]["file"]
    urls = list(_urls(json.loads(root_file.read_text())))
    assert urls and all((urlsplit(url).hostname or "").endswith(".invalid") for url in urls), urls
    with listening_socket() as (host, sock):
        image = f"{host}/keyless/app:v1"
        response = env.server.admit("/mutate", review("Pod", [image], namespace="prod"))
        assert response["allowed"] is False
        assert response["status"]["message"].startswith(
            f'container "app" image "{image}": [registry-not-allowed]'
        )
        with pytest.raises(BlockingIOError):
            sock.accept()  # nothing ever connected
