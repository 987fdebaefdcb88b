"""Real provenance shapes, verified, recorded on the admitted object: the commit each build names.

* The predicates GitHub Actions (slsa-github-generator v0.2 and v1 build types, GitHub artifact
  attestations) and Google Cloud Build (SLSA v1 and v0.1) write, copied from their projects (see
  ``tests/verify/data/SOURCES.md``), signed with the local test Sigstore as cosign attests, pushed
  to a real docker-registry and admitted through ``/mutate`` then ``/validate`` offline (``DryRun``:
  the server's admission path and adapters, minus HTTP).
* Real Sigstore bundles of the conformance data (a GitHub artifact attestation and slsa-github-generator's
  generic provenance, both signed on Sigstore's public-good instance), stored as cosign v3 stores them
  in a real docker-registry and admitted offline (``tests.support.conformance``).
* The real legacy cosign attestation of slsa-verifier's test data (slsa-github-generator's container
  generator, signed on Sigstore's public-good instance), verified against the production trusted root
  through the admission service and the real verifier.
"""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Mapping
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.conformance import admit, cases
from tests.support.fake_sigstore import FakeSigstore
from tests.support.memory_registry import InMemoryRegistry
from tests.support.registry import RegistryServer
from tests.support.reviews import admission_review, review
from tests.support.signing_world import Keyless, SigningWorld
from webhook.admission.provenance import PREFIX
from webhook.dryrun import DryRun, review_for
from webhook.images.reference import ImageRef
from webhook.policy.material import TrustedRootMaterial
from webhook.policy.model import (
    AttestationRequirement,
    KeylessSigner,
    Policy,
    Registries,
    Rule,
    SlsaCheck,
    Trust,
    TrustRoot,
)
from webhook.quarantine_facts import QuarantineReader
from webhook.service import AdmissionService
from webhook.settings import Settings
from webhook.verify.cached import CachedVerifier
from webhook.verify.trust import TrustMaterial
from webhook.verify.verifier import ImageVerifier
from webhook.wiring import Gatherer

TESTS = Path(__file__).resolve().parent
STATEMENTS = TESTS / "verify" / "data"
CONFORMANCE = TESTS / "verify" / "data" / "conformance"
ISSUER = "https://token.actions.githubusercontent.com"
SIGNER = "https://github.com/acme/builds/.github/workflows/attest.yml@refs/heads/main"
GENERATOR = "https://github.com/slsa-framework/slsa-github-generator/.github/workflows/"
TYPES = {
    "v1": "https://slsa.dev/provenance/v1",
    "v02": "https://slsa.dev/provenance/v0.2",
    "v01": "https://slsa.dev/provenance/v0.1",
}

# (statement file, what the annotation records of it)
SHAPES = [
    (
        "statement-slsa-v1-github-attestation.json",
        {
            "repository": "github.com/loosebazooka/aa-test",
            "ref": "refs/heads/main",
            "commit": "ebff8dfbd609b7b22237c7719ce07f2dc7934f5f",
            "builder": "https://github.com/loosebazooka/aa-test/.github/workflows/provenance.yaml@refs/heads/main",
        },
    ),
    (
        "statement-slsa-v1-npm-sigstorejs2.0.0.json",
        {
            "repository": "github.com/sigstore/sigstore-js",
            "ref": "refs/heads/main",
            "commit": "f0b49a04e5a62250e0f60fb128004a73110fe311",
            "builder": "https://github.com/actions/runner/github-hosted",
        },
    ),
    (
        "statement-slsa-v02-generic-generator.json",
        {
            "repository": "github.com/slsa-framework/example-package",
            "ref": "refs/heads/main",
            "commit": "0bf409adc654198ef6bf3c3823df82963a83068c",
            "builder": GENERATOR + "generator_generic_slsa3.yml@refs/heads/main",
        },
    ),
    (
        "statement-gcb-v1.json",
        {
            "repository": "github.com/khalkie/gcb-prod-prov",
            "ref": "refs/heads/main",
            "commit": "2ce3f90facdb51aeb950d5bc641e981be61fdf48",
            "builder": "https://cloudbuild.googleapis.com/GoogleHostedWorker",
            "finished": "2023-08-08T18:40:29Z",
        },
    ),
    (
        "statement-gcb-v01.json",
        {
            "repository": "github.com/slsa-framework/example-package",
            "ref": "refs/tags/v33.0.3",
            "commit": "d8e834cecc09efb7099196b005441606298e47b9",
            "builder": "https://cloudbuild.googleapis.com/GoogleHostedWorker@v0.3",
            "finished": "2023-03-08T21:38:05Z",
        },
    ),
]


def _policy(directory: Path, registry: RegistryServer, sigstore: FakeSigstore) -> Path:
    signer = {"keyless": {"root": "builders", "issuer": ISSUER, "subjectRegExp": "https://.+"}}
    repositories = sorted({expected["repository"] for _, expected in SHAPES})
    rules = [
        {
            "name": f"provenance-{version}",
            "images": [f"{registry.host}/{version}/**"],
            "attestations": [
                {"predicateType": kind, "signers": [signer], "slsa": {"sourceRepositories": repositories}}
            ],
        }
        for version, kind in TYPES.items()
    ]
    policy = {
        "apiVersion": "imagegate.dev/v1alpha1",
        "kind": "ImagePolicy",
        "metadata": {"name": "builders"},
        "spec": {
            "registries": {"allow": [registry.host], "insecure": [registry.host]},
            "trust": {"roots": [{"name": "builders", "file": str(sigstore.trusted_root_path)}]},
            "rules": rules,
        },
    }
    path = directory / "policy.yaml"
    path.write_text(yaml.safe_dump(policy))
    return path


def _annotations(response: Mapping[str, Any]) -> dict[str, str]:
    ops = json.loads(base64.b64decode(response["patch"]))
    [added] = [op for op in ops if op["path"] == "/metadata/annotations"]
    annotations: dict[str, str] = added["value"]
    return annotations


@pytest.mark.registry
@pytest.mark.sigstore
@pytest.mark.parametrize(("file", "expected"), SHAPES, ids=[file for file, _ in SHAPES])
def test_real_provenance_shapes_are_recorded_on_the_admitted_pod(
    tmp_path: Path,
    plain_registry: RegistryServer,
    file: str,
    expected: dict[str, str],
) -> None:
    statement = json.loads((STATEMENTS / file).read_text())
    version = next(v for v, kind in TYPES.items() if kind == statement["predicateType"])
    sigstore = FakeSigstore.create(tmp_path / "sigstore", name="builders")
    world = SigningWorld(pusher=plain_registry.pusher(), host=plain_registry.host)
    repo = f"{version}/{tmp_path.name.lower().replace('_', '-')}"
    image = world.push_image(repo, "1.0", content=file.encode())
    # The real predicate, about the pushed image, signed by the builder's workflow identity.
    statement["subject"] = [
        {"name": world.name(repo), "digest": {"sha256": image.digest.removeprefix("sha256:")}}
    ]
    identity = sigstore.issue_cert(subject=SIGNER, issuer=ISSUER)
    world.attest_and_push(repo, image, statement, by=Keyless(sigstore, identity), fmt="bundle")

    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web", "namespace": "prod"},
        "spec": {"containers": [{"name": "web", "image": world.ref(repo, "1.0")}]},
    }
    dry_run = DryRun(_policy(tmp_path, plain_registry, sigstore))
    try:
        result = dry_run.admit(review_for(pod))
    finally:
        dry_run.close()
    assert result.allowed, result.final.review["response"].get("status")
    recorded = json.loads(_annotations(result.mutated.review["response"])[f"{PREFIX}web"])
    # The attestation's log time (the test Sigstore logs a signature a second into its certificate).
    logged = identity.not_before + timedelta(seconds=1)
    assert recorded.pop("attested") == logged.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert recorded == {
        "digest": image.digest,
        **{
            key: expected[key]
            for key in ("repository", "ref", "commit", "builder", "finished")
            if key in expected
        },
        "policy": "builders",
        "rule": f"provenance-{version}",
    }


# --- real public-good bundles of the conformance data ----------------------------------------------

PUBLIC_GOOD = [
    (
        # GitHub's artifact attestation (actions/attest-build-provenance) shape, SLSA v1.
        "conformance/happy-path-intoto-in-dsse-v3",
        {
            "digest": "sha256:a0cfc71271d6e278e57cd332ff957c3f7043fdda354c4cbb190a30d56efa01bf",
            "repository": "github.com/loosebazooka/aa-test",
            "ref": "refs/heads/main",
            "commit": "ebff8dfbd609b7b22237c7719ce07f2dc7934f5f",
            "builder": "https://github.com/loosebazooka/aa-test/.github/workflows/provenance.yaml@refs/heads/main",
            "attested": "2024-12-16T18:42:56Z",  # the Rekor entry's integrated time
        },
    ),
    (
        # slsa-github-generator's generic generator, SLSA v0.2, a bundle v0.3 with an inclusion proof.
        "slsa-verifier/gha-bundle/valid-v0.3",
        {
            "digest": "sha256:2892146b063a94cb4a4318c0e98d38af12dcf2b1e29237486b58463b59607bbd",
            "repository": "github.com/slsa-framework/example-package",
            "ref": "refs/heads/main",
            "commit": "0bf409adc654198ef6bf3c3823df82963a83068c",
            "builder": GENERATOR + "generator_generic_slsa3.yml@refs/heads/main",
            "attested": "2024-10-25T03:12:16Z",
        },
    ),
]


@pytest.mark.registry
@pytest.mark.sigstore
@pytest.mark.parametrize(("case_id", "expected"), PUBLIC_GOOD, ids=[case_id for case_id, _ in PUBLIC_GOOD])
def test_real_public_good_bundles_are_recorded_on_the_admitted_pod(
    tmp_path: Path,
    plain_registry: RegistryServer,
    case_id: str,
    expected: dict[str, str],
) -> None:
    [case] = [case for case in cases() if case["id"] == case_id]
    admission = admit(case, registry=plain_registry, directory=tmp_path)
    assert admission.allowed, admission.message
    [added] = admission.patch  # pinned by digest: the annotations are the only change
    assert added["path"] == "/metadata/annotations"
    assert json.loads(added["value"][f"{PREFIX}app"]) == {**expected, "policy": "conformance", "rule": "case"}


# --- the real legacy attestation from slsa-verifier's test data ------------------------------------

LAYOUT = CONFORMANCE / "slsa-verifier" / "oci-layout-generic-container-v2.1.0"
IDENTITY = GENERATOR + "generator_container_slsa3.yml@refs/tags/v2.1.0"


def _layout_registry() -> tuple[InMemoryRegistry, str]:
    """The cosign-saved image as cosign pushed it: its index, its ``.att`` tag and their blobs."""
    registry = InMemoryRegistry()
    ref = ImageRef.parse("ghcr.io/slsa-framework/example-package:main")
    digest = (LAYOUT / "image.digest").read_text().strip()
    index = json.loads((LAYOUT / "index.json").read_text())
    for path in (LAYOUT / "blobs" / "sha256").iterdir():
        registry.put_blob(ref, path.read_bytes())
    for entry in index["manifests"]:
        body = (LAYOUT / "blobs" / "sha256" / entry["digest"].split(":", 1)[1]).read_bytes()
        kind = entry["annotations"]["kind"]
        tag = (
            "main"
            if kind == "dev.cosignproject.cosign/imageIndex"
            else "sha256-" + digest.split(":", 1)[1] + ".att"
        )
        registry.put_manifest(ref, body, entry["mediaType"], tag)
    return registry, digest


def test_real_public_good_provenance_is_recorded_on_the_admitted_pod() -> None:
    registry, digest = _layout_registry()
    root = TrustRoot(
        "public-good",
        TrustedRootMaterial.read(STATEMENTS / "trusted_root.production.json"),
    )
    signer = KeylessSigner(root="public-good", issuer=ISSUER, subject=IDENTITY)
    requirement = AttestationRequirement(
        TYPES["v02"],
        (signer,),
        slsa=SlsaCheck(
            builder_ids=(IDENTITY,), source_repositories=("github.com/slsa-framework/example-package",)
        ),
    )
    policy = Policy(
        name="public-good",
        source="policy.yaml",
        registries=Registries(allow=("ghcr.io",)),
        trust=Trust(roots=(root,)),
        rules=(
            Rule(name="slsa-generator", images=("ghcr.io/slsa-framework/**",), attestations=(requirement,)),
        ),
        fingerprint="real",
    )
    verifier = CachedVerifier(ImageVerifier(TrustMaterial.from_policy(policy)), ttl=0.0, failure_ttl=0.0)
    gatherer = Gatherer(
        policy, registry, verifier, QuarantineReader.create(policy, registry, seen_dir=None, threads=1)
    )

    class Runtime:
        def current(self) -> tuple[Policy, Gatherer]:
            return policy, gatherer

    service = AdmissionService(settings=Settings(audit_log=False), runtime=Runtime())
    try:
        body = review("Deployment", [("app", f"ghcr.io/slsa-framework/example-package@{digest}")])
        response = service.admit(body, stage="mutate").review["response"]
        assert response["allowed"] is True, response.get("status")
        ops = json.loads(base64.b64decode(response["patch"]))
        [added] = ops
        assert added["path"] == "/spec/template/metadata/annotations"
        assert json.loads(added["value"][f"{PREFIX}app"]) == {
            "digest": digest,
            "repository": "github.com/slsa-framework/example-package",
            "ref": "refs/heads/main",
            "commit": "4d329c75e7ec1725f7c9ce917a8799d408d06be3",
            "builder": IDENTITY,
            "attested": "2025-02-25T21:58:07Z",  # the Rekor entry's integrated time, its SET verified
            "policy": "public-good",
            "rule": "slsa-generator",
        }
        # Admitted again as patched (reinvocation), nothing changes.
        patched = copy.deepcopy(body["request"]["object"])
        patched["spec"]["template"]["metadata"]["annotations"] = added["value"]
        again = service.admit(admission_review(patched, kind="Deployment"), stage="mutate").review["response"]
        assert again["allowed"] is True and "patch" not in again
    finally:
        service.close()
