"""End to end over real HTTPS: a keyless signature made after its trusted root retired a key is refused.

A trusted root bounds each key with ``validFor``: when Sigstore rotates the Rekor log key, the Fulcio CA
or a CT log key, the old one gets an ``end`` (``imagegate trust refresh`` reports it as ``expired``),
and whatever that key vouches for after the end must not count, or a retired (or compromised) key keeps
its power. The legacy ``.sig`` path honours every window (webhook/verify/legacy.py: ``verify_legacy_set``,
``_verify_chain``, ``_verify_sct``), and key signers honour the Rekor window (webhook/verify/rekor.py);
a keyless Sigstore bundle, the format cosign v3 stores by default, goes to sigstore-python's
``Verifier`` alone (webhook/verify/bundles.py ``verify_keyless_bundle``), which does not compare the
entry's integrated time or the certificate's issuance with these windows: the signature is admitted.

The test Sigstore signs now; the pinned root is that instance's own, with one key's window ended an hour
ago. A control rule pins the unmodified root, so the signature itself is sound.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import yaml

from tests.support.fake_sigstore import FakeSigstore, Identity
from tests.support.oci import Pushed
from tests.support.registry import RegistryServer
from tests.support.reviews import review
from tests.support.server import Server, running_server
from tests.support.signing_world import Format, Keyless, SigningWorld
from tests.support.trust_roots import KEY_PARTS, with_window_ended

pytestmark = [pytest.mark.e2e, pytest.mark.registry, pytest.mark.sigstore]

ISSUER = "https://token.actions.githubusercontent.com"
WORKFLOW = "https://github.com/acme/app/.github/workflows/release.yml@refs/tags/v1.0.0"
PARTS = KEY_PARTS


@dataclass(frozen=True)
class Env:
    server: Server
    world: SigningWorld
    identity: Keyless


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, plain_registry: RegistryServer) -> Iterator[Env]:
    directory = tmp_path_factory.mktemp("expired-keys")
    sigstore = FakeSigstore.create(directory / "sigstore", name="rotated")
    signer: Identity = sigstore.issue_cert(subject=WORKFLOW, issuer=ISSUER)
    policy_dir = directory / "policy"
    policy_dir.mkdir()
    roots = {"fresh": sigstore.trusted_root()} | {
        part: with_window_ended(sigstore.trusted_root(), part) for part in PARTS
    }
    for name, document in roots.items():
        (policy_dir / f"{name}.json").write_text(json.dumps(document))
    host = plain_registry.host
    policy = {
        "apiVersion": "imagegate.dev/v1alpha1",
        "kind": "ImagePolicy",
        "metadata": {"name": "expired-keys"},
        "spec": {
            "registries": {"allow": [host], "insecure": [host]},
            "trust": {"roots": [{"name": name, "file": f"{name}.json"} for name in roots]},
            "rules": [
                {
                    "name": name,
                    "images": [f"{host}/{name}/**"],
                    "signatures": {
                        "signers": [{"keyless": {"root": name, "issuer": ISSUER, "subject": WORKFLOW}}]
                    },
                }
                for name in roots
            ],
        },
    }
    (policy_dir / "policy.yaml").write_text(yaml.safe_dump(policy, sort_keys=False))
    world = SigningWorld(pusher=plain_registry.pusher(), host=host)
    server_dir = directory / "server"
    server_dir.mkdir()
    try:
        with running_server(server_dir, policy_dir / "policy.yaml") as server:
            yield Env(server, world, Keyless(sigstore, signer))
    finally:
        world.pusher.close()


def _signed(env: Env, repo: str, fmt: Format) -> Pushed:
    image = env.world.push_image(repo, None, content=f"{repo} {fmt}".encode())
    env.world.sign_and_push(repo, image, by=env.identity, fmt=fmt)
    return image


def _validate(env: Env, repo: str, image: Pushed) -> dict[str, Any]:
    return env.server.admit("/validate", review("Pod", [env.world.ref(repo, digest=image.digest)]))


@pytest.mark.parametrize("part", PARTS)
def test_a_bundle_signed_after_its_root_retired_a_key_is_refused(env: Env, part: str) -> None:
    # The signer's bundle is admitted under the unmodified root: the signature itself is sound.
    fresh_repo = f"fresh/{part}"
    fresh = _validate(env, fresh_repo, _signed(env, fresh_repo, "bundle"))
    assert fresh["allowed"] is True, fresh.get("status")
    # The legacy .sig layer of the same signer is refused for this root: it is the bundle that is not.
    legacy_repo = f"{part}/legacy"
    legacy = _validate(env, legacy_repo, _signed(env, legacy_repo, "legacy"))
    assert legacy["allowed"] is False
    assert "[signature-invalid]" in legacy["status"]["message"]

    repo = f"{part}/bundle"
    answer = _validate(env, repo, _signed(env, repo, "bundle"))
    assert answer["allowed"] is False, (
        f"a keyless bundle signed after the trusted root's {part} stopped being valid was admitted"
    )
    assert "[signature-invalid]" in answer["status"]["message"]
