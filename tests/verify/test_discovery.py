"""Discovery of bundle referrers and legacy cosign tags for one digest (in-memory registry)."""

from __future__ import annotations

import json

import pytest

from tests.support.fake_sigstore import (
    SLSA_PROVENANCE_V1,
    bundle_referrer_manifest,
    cosign_sign_statement,
    legacy_tag,
    slsa_provenance_v1,
    statement_v1,
)
from tests.support.verify_world import World, fixture_world  # noqa: F401 - pytest fixture
from webhook.deadline import Deadline
from webhook.errors import RegistryError
from webhook.reasons import Reason
from webhook.registry.port import Descriptor
from webhook.verify import discovery
from webhook.verify.discovery import BUNDLE_ARTIFACT_TYPE, discover

pytestmark = [pytest.mark.usefixtures("offline"), pytest.mark.sigstore]


def test_nothing_stored_finds_nothing(world: World) -> None:
    artifacts = world.discover()
    assert artifacts.empty
    assert artifacts.digest == world.image.digest
    # It looked in all three places.
    operations = [op for op, _ in world.registry.calls]
    assert "referrers" in operations
    assert ("manifest", legacy_tag(world.image.digest, "sig")) in world.registry.calls
    assert ("manifest", legacy_tag(world.image.digest, "att")) in world.registry.calls


def test_finds_bundles_and_legacy_layers(world: World) -> None:
    identity = world.identity()
    world.sign_bundle(identity)
    world.attest_bundle(identity, statement_v1(world.image.digest, SLSA_PROVENANCE_V1, slsa_provenance_v1()))
    world.sign_legacy(identity)
    world.sign_legacy(identity)
    world.attest_legacy(identity, statement_v1(world.image.digest, SLSA_PROVENANCE_V1, slsa_provenance_v1()))
    artifacts = world.discover()
    assert len(artifacts.bundles) == 2
    assert {b.predicate_type for b in artifacts.bundles} == {
        "https://sigstore.dev/cosign/sign/v1",
        SLSA_PROVENANCE_V1,
    }
    assert len(artifacts.signatures) == 2
    assert all(layer.kind == "sig" for layer in artifacts.signatures)
    assert len(artifacts.attestations) == 1
    assert artifacts.attestations[0].annotation("predicateType") == SLSA_PROVENANCE_V1
    assert (
        artifacts.attestations[0].annotation(
            "dev.sigstore.cosign/certificate",
        )
        is not None
    )
    assert (
        "2 Sigstore bundle referrer(s), 2 legacy .sig layer(s), 1 legacy .att layer(s)" in artifacts.summary()
    )


def test_filters_artifact_type_when_the_registry_ignores_the_filter(world: World) -> None:
    world.sign_bundle(world.identity())
    # Another kind of referrer (e.g. an SBOM) must not be taken for a bundle.
    other = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": "application/spdx+json",
        "config": {
            "mediaType": "application/vnd.oci.empty.v1+json",
            "digest": world.registry.put_blob(world.ref, b"{}"),
            "size": 2,
        },
        "layers": [],
        "subject": {
            "mediaType": world.image.media_type,
            "digest": world.image.digest,
            "size": world.image.size,
        },
    }
    world.registry.put_manifest(world.ref, json.dumps(other).encode())
    world.registry.ignore_artifact_type_filter = True
    artifacts = world.discover()
    assert len(artifacts.bundles) == 1


def test_referrer_whose_subject_is_another_digest_is_skipped(world: World) -> None:
    bundle = world.sigstore.bundle_dsse(world.identity(), cosign_sign_statement(world.image.digest))
    other = world.registry.push_image(world.ref, None, arch="arm64")
    artifact = bundle_referrer_manifest(bundle, subject_digest=other.digest, subject_size=other.size)
    world.registry.push_artifact(world.ref, artifact)

    class Lying:
        """A registry whose referrers list names a manifest about another digest."""

        def __getattr__(self, name: str) -> object:
            return getattr(world.registry, name)

        def referrers(self, repo, digest, *, deadline, artifact_type=None):  # type: ignore[no-untyped-def]
            return world.registry.referrers(
                repo, other.digest, deadline=deadline, artifact_type=artifact_type
            )

    artifacts = discover(Lying(), world.ref, world.image.digest, deadline=Deadline.after(5))  # type: ignore[arg-type]
    assert artifacts.bundles == ()
    assert any("subject is not" in note for note in artifacts.notes)


def test_referrer_listed_but_gone_is_skipped_and_the_others_still_count(world: World) -> None:
    bundle = world.sigstore.bundle_dsse(world.identity(), cosign_sign_statement(world.image.digest))
    artifact = bundle_referrer_manifest(
        bundle, subject_digest=world.image.digest, subject_size=world.image.size
    )
    world.registry.push_artifact(world.ref, artifact)
    gone = Descriptor(
        media_type="application/vnd.oci.image.manifest.v1+json",
        digest="sha256:" + "0" * 64,
        size=100,
        artifact_type=BUNDLE_ARTIFACT_TYPE,
    )

    class Stale:
        """A registry whose referrers index still lists a deleted manifest."""

        def __getattr__(self, name: str) -> object:
            return getattr(world.registry, name)

        def referrers(self, repo, digest, *, deadline, artifact_type=None):  # type: ignore[no-untyped-def]
            listed = world.registry.referrers(repo, digest, deadline=deadline, artifact_type=artifact_type)
            return (gone, *listed)

    artifacts = discover(Stale(), world.ref, world.image.digest, deadline=Deadline.after(5))  # type: ignore[arg-type]
    assert len(artifacts.bundles) == 1
    assert any("listed but not found" in note for note in artifacts.notes)


def test_blob_with_other_content_is_a_registry_error(world: World) -> None:
    world.sign_legacy(world.identity())
    layer = world.discover().signatures[0]
    world.registry.repo(world.ref).blobs[layer.layer] = b"something else"
    with pytest.raises(RegistryError) as raised:
        world.discover()
    assert raised.value.code == Reason.DIGEST_MISMATCH  # as the registry client says of such content


def test_registry_failure_propagates(world: World) -> None:
    world.registry.fail.add("referrers")
    with pytest.raises(RegistryError):
        world.discover()


def test_malformed_legacy_manifest_is_skipped_with_a_note(world: World) -> None:
    world.registry.put_manifest(world.ref, b"not json", tag=legacy_tag(world.image.digest, "sig"))
    artifacts = world.discover()
    assert artifacts.signatures == ()
    assert any("not a JSON manifest" in note for note in artifacts.notes)


def test_wrong_layer_media_types_are_ignored(world: World) -> None:
    payload, annotations = world.sigstore.legacy_sig_layer(
        world.identity(), image_name="x", digest=world.image.digest
    )
    # A .sig layer pushed under the .att tag is not an attestation.
    world.push_legacy("sig", (payload, annotations))
    sig_manifest = world.registry.manifest(
        world.ref, legacy_tag(world.image.digest, "sig"), deadline=Deadline.after(5)
    )
    world.registry.put_manifest(world.ref, sig_manifest.body, tag=legacy_tag(world.image.digest, "att"))
    artifacts = world.discover()
    assert len(artifacts.signatures) == 1
    assert artifacts.attestations == ()


def test_caps_bound_the_work(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(discovery, "MAX_REFERRERS", 2)
    identity = world.identity()
    for _ in range(3):
        world.sign_bundle(identity)
    artifacts = world.discover()
    assert len(artifacts.bundles) == 2
    assert any("only the first 2 of 3" in note for note in artifacts.notes)
    monkeypatch.setattr(discovery, "MAX_ARTIFACT_BYTES", 10)
    with pytest.raises(RegistryError):
        world.discover()


def test_rejects_a_non_sha256_digest(world: World) -> None:
    with pytest.raises(ValueError, match="sha256"):
        discover(world.registry, world.ref, "sha512:" + "0" * 128, deadline=Deadline.after(5))


def test_bundle_artifact_type_constant() -> None:
    assert BUNDLE_ARTIFACT_TYPE == "application/vnd.dev.sigstore.bundle.v0.3+json"
