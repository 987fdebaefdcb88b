"""Key signers require transparency-log evidence unless the policy says ``requireTlog: false`` (as cosign).

Admission level, with real parts: a real registry holding the third-party sigstore-go
``public-key-validity`` bundle (key-signed, an RFC 3161 timestamp only, no log entry, outside its key's
validity window upstream) as an OCI 1.1 referrer of the digest it signs, and the server's admission path
(``DryRun``: /mutate then /validate with the real adapters) under a key-only policy.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.oci import Pushed
from tests.support.registry import RegistryServer
from tests.support.reviews import review
from tests.support.signing_world import SigningWorld
from webhook.dryrun import DryRun

pytestmark = [pytest.mark.registry, pytest.mark.sigstore]

CASE = (
    Path(__file__).resolve().parents[0] / "verify" / "data" / "conformance" / "sigstore-go" / "testing-data"
)
BUNDLE = CASE / "bundles" / "public-key-validity.sigstore.json"
KEY = CASE / "public-keys" / "public-key-validity.pem"
REPO = "conformance/public-key-validity"


def _signed_digest() -> str:
    signed = json.loads(BUNDLE.read_text())["messageSignature"]["messageDigest"]["digest"]
    return "sha256:" + base64.b64decode(signed).hex()


@pytest.fixture(scope="module")
def image(plain_registry: RegistryServer) -> str:
    # The bundle signs a digest whose content nobody has: store it as a referrer of that digest, as
    # cosign would next to the image (discovery looks the referrers up by digest only).
    digest = _signed_digest()
    subject = Pushed(digest=digest, media_type="application/vnd.oci.image.manifest.v1+json", body=b"{}")
    world = SigningWorld(pusher=plain_registry.pusher(), host=plain_registry.host)
    world.push_bundle(REPO, subject, BUNDLE.read_bytes())
    return world.ref(REPO, digest=digest)


def _policy(directory: Path, host: str, key: dict[str, Any]) -> Path:
    (directory / "key.pem").write_bytes(KEY.read_bytes())
    policy = {
        "apiVersion": "imagegate.dev/v1alpha1",
        "kind": "ImagePolicy",
        "metadata": {"name": "key-only"},
        "spec": {
            "registries": {"allow": [host], "insecure": [host]},
            "trust": {"keys": [{"name": "pkv", "file": "key.pem"}]},
            "rules": [
                {"name": "signed", "images": [f"{host}/**"], "signatures": {"signers": [{"key": key}]}}
            ],
        },
    }
    path = directory / "policy.yaml"
    path.write_text(yaml.safe_dump(policy, sort_keys=False))
    return path


def _admit(policy: Path, image: str) -> dict[str, Any]:
    dry_run = DryRun(policy)
    try:
        result = dry_run.admit(review("Pod", [image], namespace="prod"))
    finally:
        dry_run.close()
    response: dict[str, Any] = result.final.review["response"]
    return response


def test_a_key_signature_without_log_evidence_is_refused_by_default(
    tmp_path: Path, plain_registry: RegistryServer, image: str
) -> None:
    response = _admit(_policy(tmp_path, plain_registry.host, {"name": "pkv"}), image)

    assert response["allowed"] is False
    message = response["status"]["message"]
    assert "[signature-invalid]" in message, message
    assert "transparency log evidence is required: bundle has no transparency log entry" in message


def test_require_tlog_false_is_the_explicit_opt_out(
    tmp_path: Path, plain_registry: RegistryServer, image: str
) -> None:
    # What an air-gapped signer without a log asks for, and gets, knowingly (lint warns about it).
    response = _admit(_policy(tmp_path, plain_registry.host, {"name": "pkv", "requireTlog": False}), image)

    assert response["allowed"] is True, response.get("status")
    assert json.loads(response["auditAnnotations"]["images"])[0]["outcome"] == "verified"
