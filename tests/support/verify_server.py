"""Shared set-up of the end-to-end verification tests: test Sigstores, keys, the policy, a running server.

Used by ``tests/test_app_verify*.py``, whose module-scoped ``env`` fixture starts one :class:`VerifyEnv`:

* ``acme``: the FakeSigstore whose ``trusted_root.json`` the policy trusts (root ``acme``); its
  ``workflow`` identity is the acme release workflow signing from tag ``v1.0.0`` on GitHub Actions;
* ``rogue``: a second, independent FakeSigstore nobody trusts;
* ``release``: an ECDSA P-256 key trusted as key ``release``; ``stray``: a P-256 key nobody trusts;
* one policy (:func:`verify_policy`) whose rules govern repository prefixes of the test registry (see
  ``RULES``), served by ``imagegate serve`` (gunicorn, TLS) with ``registries.allow`` = only that registry.
"""

from __future__ import annotations

__all__ = [
    "BUILDER",
    "ISSUER",
    "SOURCE",
    "VERIFIER",
    "WORKFLOW",
    "WORKFLOW_EXTENSIONS",
    "WORKFLOW_REGEXP",
    "VerifyEnv",
    "apply_patch",
    "images_annotation",
    "provenance",
    "start_env",
    "verify_policy",
    "vsa",
    "vulnerability_scan",
]

import base64
import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonpatch
import kubernetes_validate  # type: ignore[import-untyped]
import yaml

from tests.support.fake_sigstore import (
    SLSA_PROVENANCE_V1,
    VSA_V1,
    VULNS_V01,
    FakeSigstore,
    SigningKey,
    slsa_provenance_v1,
    statement_v1,
    vsa_v1,
    vuln,
    vulns_v01,
)
from tests.support.oci import Pushed
from tests.support.registry import RegistryServer
from tests.support.server import Server, running_server
from tests.support.signing_world import Keyless, SigningWorld, WithKey

ISSUER = "https://token.actions.githubusercontent.com"
WORKFLOW = "https://github.com/acme/app/.github/workflows/release.yml@refs/tags/v1.0.0"
SOURCE = "https://github.com/acme/app"
WORKFLOW_EXTENSIONS = {
    "sourceRepositoryURI": SOURCE,
    "sourceRepositoryRef": "refs/tags/v1.0.0",
    "buildSignerURI": WORKFLOW,
    "runnerEnvironment": "github-hosted",
}
# Anchored on purpose (imagegate also full-matches): acme's release workflows, from version tags only.
WORKFLOW_REGEXP = (
    r"^https://github\.com/acme/[^/]+/\.github/workflows/release\.yml@refs/tags/v[0-9]+(\.[0-9]+)*$"
)
# An expression an unanchored search would accept for any acme/app workflow on any ref.
UNANCHORED_REGEXP = "https://github.com/acme/app/"
BUILDER = "https://github.com/actions/runner/github-hosted"
VERIFIER = "https://acme.example.com/promotion/staging"

_KEYLESS = {"keyless": {"root": "acme", "issuer": ISSUER, "subjectRegExp": WORKFLOW_REGEXP}}
_KEY = {"key": {"name": "release"}}


def verify_policy(host: str) -> dict[str, Any]:
    """The policy: trust root ``acme``, key ``release``, and one rule per repository prefix of ``host``.

    ``keyless/ release/ multi/ attested/``: keyless signature by an acme release workflow; ``key/``:
    signed with key ``release``; ``kofn/ full/``: both (2 of [keyless, key]); ``release/ full/
    attested/``: SLSA provenance v1 from ``BUILDER`` for github.com/acme/app at a version tag;
    ``promoted/ full/ attested/``: a PASSED SLSA build level 3 verification summary from ``VERIFIER``
    under a day old, signed with key ``release``; ``scanned/ full/ attested/``: a keyless-signed
    vulnerability scan under a week old with nothing above MEDIUM;
    ``unanchored/``: a keyless signer whose subjectRegExp is ``UNANCHORED_REGEXP``; ``warned/``: the
    keyless signature in warn mode. Anything else is unmatched and denied.
    """

    def prefix(*names: str) -> list[str]:
        return [f"{host}/{name}/**" for name in names]

    rules: list[dict[str, Any]] = [
        {
            "name": "acme-keyless",
            "images": prefix("keyless", "release", "multi", "attested"),
            "signatures": {"signers": [_KEYLESS]},
        },
        {"name": "release-key", "images": prefix("key"), "signatures": {"signers": [_KEY]}},
        {
            "name": "two-signers",
            "images": prefix("kofn", "full"),
            "signatures": {"minimum": 2, "signers": [_KEYLESS, _KEY]},
        },
        {
            "name": "provenance",
            "images": prefix("release", "full", "attested"),
            "attestations": [
                {
                    "predicateType": SLSA_PROVENANCE_V1,
                    "signers": [_KEYLESS],
                    "slsa": {
                        "builderIds": [BUILDER],
                        "sourceRepositories": ["github.com/acme/app"],
                        "sourceRefs": ["refs/tags/v*"],
                    },
                }
            ],
        },
        {
            "name": "promotion",
            "images": prefix("promoted", "full", "attested"),
            "attestations": [
                {
                    "predicateType": VSA_V1,
                    "signers": [_KEY],
                    "verificationSummary": {
                        "verifierIds": [VERIFIER],
                        "minLevel": "SLSA_BUILD_LEVEL_3",
                        "maxAge": "24h",
                    },
                }
            ],
        },
        {
            "name": "scanned",
            "images": prefix("scanned", "full", "attested"),
            "attestations": [
                {
                    "predicateType": VULNS_V01,
                    "signers": [_KEYLESS],
                    "vulnerabilities": {"maxSeverity": "MEDIUM", "maxAge": "168h"},
                }
            ],
        },
        {
            "name": "unanchored",
            "images": prefix("unanchored"),
            "signatures": {
                "signers": [
                    {"keyless": {"root": "acme", "issuer": ISSUER, "subjectRegExp": UNANCHORED_REGEXP}}
                ]
            },
        },
        {
            "name": "dev-keyless",
            "images": prefix("warned"),
            "mode": "warn",
            "signatures": {"signers": [_KEYLESS]},
        },
    ]
    return {
        "apiVersion": "imagegate.dev/v1alpha1",
        "kind": "ImagePolicy",
        "metadata": {"name": "e2e-verify"},
        "spec": {
            "mode": "enforce",
            "unmatched": "deny",
            # The only host imagegate may contact; the trust root's Rekor/Fulcio/CT URLs are *.invalid.
            "registries": {"allow": [host], "insecure": [host]},
            "tags": {"resolve": True, "deny": ["latest"]},
            "trust": {
                "roots": [{"name": "acme", "file": "trust/acme_trusted_root.json"}],
                "keys": [{"name": "release", "file": "trust/release.pub"}],
            },
            "rules": rules,
        },
    }


@dataclass
class VerifyEnv:
    """Everything a verification test needs; see the module docstring."""

    registry: RegistryServer
    world: SigningWorld
    acme: FakeSigstore
    rogue: FakeSigstore
    release_key: SigningKey
    stray_key: SigningKey
    policy_path: Path
    server: Server

    @property
    def workflow(self) -> Keyless:
        """The expected signer: acme's release workflow at v1.0.0, certified by the trusted instance."""
        return self.keyless()

    @property
    def release(self) -> WithKey:
        return WithKey(self.acme, self.release_key)

    def keyless(
        self,
        subject: str = WORKFLOW,
        *,
        issuer: str = ISSUER,
        sigstore: FakeSigstore | None = None,
        extensions: Mapping[str, str] | None = None,
    ) -> Keyless:
        instance = sigstore or self.acme
        identity = instance.issue_cert(
            subject=subject, issuer=issuer, extensions=dict(extensions or WORKFLOW_EXTENSIONS)
        )
        return Keyless(instance, identity)


@contextmanager
def start_env(
    directory: Path, registry: RegistryServer, *, server_env: Mapping[str, str] | None = None
) -> Iterator[VerifyEnv]:
    """Create both Sigstores and the keys, write the policy and its trust files, and run the server."""
    acme = FakeSigstore.create(directory / "sigstore", name="acme")
    rogue = FakeSigstore.create(directory / "sigstore", name="rogue")
    release_key = FakeSigstore.generate_key("ecdsa-p256")
    stray_key = FakeSigstore.generate_key("ecdsa-p256")
    policy_dir = directory / "policy"
    (policy_dir / "trust").mkdir(parents=True)
    (policy_dir / "trust" / "acme_trusted_root.json").write_bytes(acme.trusted_root_path.read_bytes())
    (policy_dir / "trust" / "release.pub").write_bytes(release_key.public_pem)
    policy_path = policy_dir / "policy.yaml"
    policy_path.write_text(yaml.safe_dump(verify_policy(registry.host), sort_keys=False))
    server_dir = directory / "server"
    server_dir.mkdir()
    world = SigningWorld(pusher=registry.pusher(), host=registry.host)
    try:
        with running_server(server_dir, policy_path, env=server_env) as server:
            yield VerifyEnv(
                registry=registry,
                world=world,
                acme=acme,
                rogue=rogue,
                release_key=release_key,
                stray_key=stray_key,
                policy_path=policy_path,
                server=server,
            )
            # Drop the keep-alive connection first, so that gunicorn's graceful stop need not wait for it.
            server.session.close()
    finally:
        world.pusher.close()


# -- statements ------------------------------------------------------------------------------------------


def provenance(
    image: Pushed,
    *,
    name: str,
    builder_id: str = BUILDER,
    repository: str = SOURCE,
    ref: str = "refs/tags/v1.0.0",
    subject_digest: str | None = None,
) -> dict[str, Any]:
    """An SLSA provenance v1 statement as GitHub's attest-build-provenance writes it for ``image``."""
    predicate = slsa_provenance_v1(repository=repository, ref=ref, builder_id=builder_id)
    return statement_v1(subject_digest or image.digest, SLSA_PROVENANCE_V1, predicate, name=name)


def vsa(
    image: Pushed,
    *,
    name: str,
    verifier_id: str = VERIFIER,
    result: str = "PASSED",
    levels: Sequence[str] = ("SLSA_BUILD_LEVEL_3",),
    time_verified: datetime | None = None,
) -> dict[str, Any]:
    """A verification summary v1 from the staging promotion gate about ``image`` (``name`` = host/repo)."""
    predicate = vsa_v1(
        verifier_id=verifier_id,
        time_verified=time_verified or datetime.now(UTC),
        resource_uri=f"oci://{name}@{image.digest}",
        verification_result=result,
        verified_levels=list(levels),
    )
    return statement_v1(image.digest, VSA_V1, predicate, name=name)


def vulnerability_scan(
    image: Pushed,
    *,
    name: str,
    severities: Sequence[str] = ("LOW", "MEDIUM"),
    finished: datetime | None = None,
) -> dict[str, Any]:
    """A vulns v0.1 statement with one finding per severity in ``severities``."""
    results = [vuln(f"CVE-2026-{1000 + i}", severity) for i, severity in enumerate(severities)]
    predicate = vulns_v01(results=results, scan_finished=finished or datetime.now(UTC))
    return statement_v1(image.digest, VULNS_V01, predicate, name=name)


# -- responses ---------------------------------------------------------------------------------------------


def apply_patch(review: Mapping[str, Any], response: Mapping[str, Any]) -> dict[str, Any]:
    """The object of ``review`` after the JSONPatch of ``response``, validated as Kubernetes 1.33 would."""
    assert response.get("patchType") == "JSONPatch", response
    operations = json.loads(base64.b64decode(response["patch"]))
    patched: dict[str, Any] = jsonpatch.apply_patch(review["request"]["object"], operations)
    kubernetes_validate.validate(patched, "1.33.0", strict=True)
    return patched


def images_annotation(response: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The per-image audit annotation (outcome, digest, rules) of an admission response."""
    images: list[dict[str, Any]] = json.loads(response["auditAnnotations"]["images"])
    return images
