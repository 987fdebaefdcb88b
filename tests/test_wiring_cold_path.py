"""The cold path against real registries: what a first-seen signed image costs, and that it stays bounded.

The gatherer ``serve`` builds (:func:`webhook.wiring.build_services`) checks a pinned image signed and
attested the way cosign v3 stores it (two Sigstore bundles, listed in the ``sha256-<hex>`` fallback index
of docker-registry 2.8, which has no referrers API). Counted on the registry's access log, the token
server's log and a TCP proxy in front of the registry:

* registry requests per first-seen image: the fallback index, each referrer's manifest and bundle, plus
  the manifest itself when quarantine markers are on (to see whether it is an index); the legacy tags
  are not asked for, because the bundles settle the rule;
* a first contact: one probe of the referrers API per host, one 401 per host and one token per scope
  however many lookups run at the same time;
* connections: reused across admissions (keep-alive), never one per request;
* a registry that stalls one image's lookups: that image is denied at its deadline, the others are not
  held up, and nothing about the stall is remembered.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from tests.support.fake_sigstore import SLSA_PROVENANCE_V1, FakeSigstore, slsa_provenance_v1, statement_v1
from tests.support.oci import Pushed
from tests.support.registry import LoggedRequest, RegistryServer
from tests.support.registry_proxy import RegistryProxy
from tests.support.signing_world import Keyless, SigningWorld
from webhook.deadline import Deadline
from webhook.decision import plan_image
from webhook.facts import ImageFacts
from webhook.policy.loader import load_policy
from webhook.settings import Settings
from webhook.wiring import Gatherer, build_services

pytestmark = [pytest.mark.registry, pytest.mark.sigstore]

ISSUER = "https://token.actions.githubusercontent.com"
WORKFLOW = "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main"


@dataclass
class Cold:
    """Signed images in one registry, and gatherers built as ``serve`` builds them."""

    registry: RegistryServer
    sigstore: FakeSigstore
    directory: Path
    host: str  # the host images are named with (the registry's, or a proxy's in front of it)

    def push_signed(self, repo: str) -> Pushed:
        world = SigningWorld(pusher=self.registry.pusher(), host=self.host)
        try:
            image = world.push_image(repo, None, content=uuid.uuid4().bytes)
            signer = Keyless(self.sigstore, self.sigstore.issue_cert(subject=WORKFLOW, issuer=ISSUER))
            world.sign_and_push(repo, image, by=signer, fmt="bundle")
            statement = statement_v1(image.digest, SLSA_PROVENANCE_V1, slsa_provenance_v1())
            world.attest_and_push(repo, image, statement, by=signer, fmt="bundle")
        finally:
            world.pusher.close()
        return image

    def gatherer(self, *, markers: bool = False, settings: Settings | None = None) -> Gatherer:
        keyless = {"root": "test", "issuer": ISSUER, "subject": WORKFLOW}
        registries: dict[str, object] = {"allow": sorted({self.host, *self.registry.allowed_hosts()})}
        if self.registry.mode == "plain":
            registries["insecure"] = [self.host]
        else:
            # The registry's credentials, for the host the images are named with.
            auth = base64.b64encode(f"{self.registry.username}:{self.registry.password}".encode()).decode()
            credentials = self.directory / "dockerconfig.json"
            credentials.write_text(json.dumps({"auths": {self.host: {"auth": auth}}}))
            registries["caFile"] = str(self.registry.ca_file)
            registries["credentialsFile"] = str(credentials)
        spec: dict[str, object] = {
            "mode": "enforce",
            "registries": registries,
            "trust": {"roots": [{"name": "test", "file": str(self.sigstore.trusted_root_path)}]},
            "rules": [
                {
                    "name": "signed",
                    "images": [f"{self.host}/cold/**"],
                    "signatures": {"signers": [{"keyless": keyless}]},
                    "attestations": [
                        {"predicateType": SLSA_PROVENANCE_V1, "signers": [{"keyless": keyless}]}
                    ],
                }
            ],
        }
        if markers:
            spec["quarantine"] = {"registryMarkers": True}
        path = self.directory / f"policy-{uuid.uuid4().hex[:8]}.yaml"
        document = {
            "apiVersion": "imagegate.dev/v1alpha1",
            "kind": "ImagePolicy",
            "metadata": {"name": "cold"},
        }
        path.write_text(yaml.safe_dump({**document, "spec": spec}))
        policy = load_policy(path, now=datetime.now(UTC)).policy
        return build_services(policy, settings=settings or Settings()).gatherer

    def admit(self, gatherer: Gatherer, repo: str, image: Pushed, *, seconds: float = 10.0) -> ImageFacts:
        now = datetime.now(UTC)
        plan = plan_image(
            f"{self.host}/{repo}@{image.digest}",
            policy=gatherer.policy,
            namespace="prod",
            now=now,
            stage="validate",
        )
        return gatherer(plan, deadline=Deadline.after(seconds), now=now)


def verified(facts: ImageFacts) -> bool:
    return (
        facts.gathering_error is None
        and bool(facts.verifications)
        and all(v.passed for v in facts.verifications)
    )


@pytest.fixture
def sigstore(sigstore_instance: FakeSigstore) -> FakeSigstore:
    return sigstore_instance


def _cold(registry: RegistryServer, sigstore: FakeSigstore, tmp_path: Path, host: str | None = None) -> Cold:
    return Cold(registry, sigstore, tmp_path, host or registry.host)


def _repo() -> str:
    return f"cold/app-{uuid.uuid4().hex[:8]}"


def _lines(registry: RegistryServer) -> list[LoggedRequest]:
    """The requests the registry logged for the cold repositories, in order."""
    registry.requests()  # synchronise with the access log
    return [line for line in registry.access_log.entries() if line.path.startswith("/v2/cold/")]


@pytest.mark.parametrize("markers", [False, True], ids=["verification", "verification+markers"])
@pytest.mark.parametrize("mode", ["plain", "tls", "token"])
def test_a_first_seen_signed_image_costs_a_fixed_number_of_requests(
    mode: str, markers: bool, request: pytest.FixtureRequest, sigstore: FakeSigstore, tmp_path: Path
) -> None:
    registry: RegistryServer = request.getfixturevalue(f"{mode}_registry")
    cold = _cold(registry, sigstore, tmp_path)
    repo = _repo()
    images = [cold.push_signed(repo) for _ in range(3)]
    gatherer = cold.gatherer(markers=markers)

    before = len(_lines(registry))
    tokens = registry.token_server.count() if registry.token_server is not None else 0
    assert verified(cold.admit(gatherer, repo, images[0]))
    first = _lines(registry)[before:]
    # Per image: the fallback index, 2 referrer manifests, 2 bundles (+ the manifest with markers on).
    per_image = 5 + int(markers)
    # First contact: the referrers API probe (distribution 2.8 answers 404), and a 401 unless anonymous.
    probe = [line for line in first if "/referrers/" in line.path]
    unauthorized = [line for line in first if line.status == 401]
    assert [line.status for line in probe] == [404]
    assert len(unauthorized) == (0 if mode == "plain" else 1), first
    assert len(first) == per_image + 1 + len(unauthorized), first
    if registry.token_server is not None:
        assert registry.token_server.count() - tokens == 1  # one scope: pull on the repository

    for image in images[1:]:
        before = len(_lines(registry))
        assert verified(cold.admit(gatherer, repo, image))
        after = _lines(registry)[before:]
        assert len(after) == per_image, after
        assert all(line.status == 200 for line in after), after
        assert not [line for line in after if line.path.endswith((".sig", ".att"))]
    if registry.token_server is not None:
        assert registry.token_server.count() - tokens == 1  # the token is reused until it expires


def test_a_token_registry_first_contact_costs_one_token_per_scope(
    token_registry: RegistryServer, sigstore: FakeSigstore, tmp_path: Path
) -> None:
    assert token_registry.token_server is not None
    cold = _cold(token_registry, sigstore, tmp_path)
    pushed = [(repo, cold.push_signed(repo)) for repo in (_repo(), _repo(), _repo())]
    gatherer = cold.gatherer(markers=True)
    tokens = token_registry.token_server.count()
    before = len(_lines(token_registry))
    start = threading.Barrier(len(pushed))
    results: dict[str, ImageFacts] = {}

    def admit(repo: str, image: Pushed) -> None:
        start.wait(5)
        results[repo] = cold.admit(gatherer, repo, image)

    threads = [threading.Thread(target=admit, args=item) for item in pushed]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert all(verified(results[repo]) for repo, _ in pushed)
    # Three repositories (three pull scopes), about 20 requests at the same time: one 401, three tokens.
    assert token_registry.token_server.count() - tokens == 3
    assert sorted(
        scope for _, scopes in token_registry.token_server.requests[tokens:] for scope in scopes
    ) == sorted(f"repository:{repo}:pull" for repo, _ in pushed)
    assert len([line for line in _lines(token_registry)[before:] if line.status == 401]) == 1


@pytest.mark.parametrize("mode", ["plain", "tls"])
def test_connections_are_kept_and_reused_across_admissions(
    mode: str, request: pytest.FixtureRequest, sigstore: FakeSigstore, tmp_path: Path
) -> None:
    registry: RegistryServer = request.getfixturevalue(f"{mode}_registry")
    with RegistryProxy(registry.host) as proxy:
        cold = _cold(registry, sigstore, tmp_path, host=proxy.host)
        repo = _repo()
        images = [cold.push_signed(repo) for _ in range(8)]
        gatherer = cold.gatherer(markers=True)
        before = len(_lines(registry))
        for image in images:
            assert verified(cold.admit(gatherer, repo, image))
        requests = len(_lines(registry)) - before
        # Each admission runs up to 4 lookups at a time; 8 of them make about 50 requests.
        assert requests >= 8 * 6
        assert proxy.connections <= 6, (proxy.connections, requests)


def test_a_stalled_lookup_ends_at_the_deadline_and_holds_up_no_other_image(
    plain_registry: RegistryServer, sigstore: FakeSigstore, tmp_path: Path
) -> None:
    with RegistryProxy(plain_registry.host) as proxy:
        cold = _cold(plain_registry, sigstore, tmp_path, host=proxy.host)
        slow_repo, fast_repo = _repo(), _repo()
        slow, fast = cold.push_signed(slow_repo), cold.push_signed(fast_repo)
        gatherer = cold.gatherer(markers=True)
        # Warm the connection and the referrers probe: what follows is about the two images only.
        assert verified(cold.admit(gatherer, fast_repo, cold.push_signed(fast_repo)))
        proxy.stall(f"/v2/{slow_repo}/blobs/")  # the slow image's bundles never come

        results: dict[str, tuple[ImageFacts, float]] = {}

        def admit(repo: str, image: Pushed, seconds: float) -> None:
            started = time.monotonic()
            facts = cold.admit(gatherer, repo, image, seconds=seconds)
            results[repo] = (facts, time.monotonic() - started)

        threads = [
            threading.Thread(target=admit, args=(slow_repo, slow, 1.5)),
            threading.Thread(target=admit, args=(fast_repo, fast, 10.0)),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)

        fast_facts, fast_seconds = results[fast_repo]
        assert verified(fast_facts)
        assert fast_seconds < 1.5  # done while the other image still waited
        slow_facts, slow_seconds = results[slow_repo]
        assert slow_seconds < 1.5 + 1.0  # its deadline ended it
        assert slow_facts.marker_error is None and slow_facts.listing_error is None  # those lookups finished
        assert [f.code for v in slow_facts.verifications for f in v.findings] == ["registry-error"]

        proxy.release()
        assert verified(cold.admit(gatherer, slow_repo, slow))  # nothing about the stall was kept


def test_each_fan_out_of_the_served_gatherer_is_bounded_by_fetches_per_request(
    plain_registry: RegistryServer, sigstore: FakeSigstore, tmp_path: Path
) -> None:
    cold = _cold(plain_registry, sigstore, tmp_path)
    repo = _repo()
    image = cold.push_signed(repo)
    for limit in (1, 3):
        gatherer = cold.gatherer(settings=Settings(fetches_per_request=limit))
        assert gatherer.fanout.helpers == limit
        assert verified(cold.admit(gatherer, repo, image))
