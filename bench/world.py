"""What the benchmarks run against: local registries, a test Sigstore, pushed and signed images, the policy.

Everything is built from the test support modules (``tests/support``), so the benchmarks exercise the
same real parts as the end-to-end tests: Debian's ``docker-registry`` on 127.0.0.1 (plain HTTP, TLS +
htpasswd, TLS + bearer tokens), keyless Sigstore bundles and SLSA provenance attestations from
``FakeSigstore`` stored as OCI referrers (tag-schema fallback, as registry 2.8 has no referrers API),
and AdmissionReviews from ``tests.support.reviews``.
"""

from __future__ import annotations

__all__ = [
    "GITHUB_ISSUER",
    "RESOLVE_REPO",
    "SIGNED_REPO",
    "WORKFLOW",
    "World",
    "pinned_images",
    "pod_review",
    "workload_review",
    "write_body",
]

import json
import logging
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.support.fake_sigstore import (
    SLSA_PROVENANCE_V1,
    FakeSigstore,
    Identity,
    OciArtifact,
    bundle_referrer_manifest,
    cosign_sign_statement,
    slsa_provenance_v1,
    statement_v1,
)
from tests.support.oci import OciPusher, Pushed
from tests.support.registry import BINARY, Mode, RegistryServer, start_registry
from tests.support.reviews import review

_logger = logging.getLogger(__name__)

GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
WORKFLOW = "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main"
BUNDLE_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
RESOLVE_REPO = "bench/resolve"
SIGNED_REPO = "bench/signed"
# Governed images that are never fetched: pinned, under a rule without signature requirements.
PINNED_REGISTRY = "ghcr.io"


def pod_review(images: Sequence[str], *, target_bytes: int = 8192, uid: str | None = None) -> dict[str, Any]:
    """A Pod CREATE AdmissionReview with one container per image, padded to about ``target_bytes``.

    The padding is what real pods carry (env vars, resources, probes, mounts), so the JSON parser
    and the pod-spec walk see a realistic object, not just a short image list.
    """
    return workload_review("Pod", images, target_bytes=target_bytes, uid=uid)


def workload_review(
    kind: str, images: Sequence[str], *, target_bytes: int | None = None, uid: str | None = None
) -> dict[str, Any]:
    """A CREATE AdmissionReview of ``kind`` (Pod, Deployment, ...) with one container per image, padded.

    Without ``target_bytes``: 800 bytes per container (a Deployment of 10 containers is about 8 KB).
    """
    body = review(kind, list(images), name="bench", namespace="prod", uid=uid)
    obj = body["request"]["object"]
    spec = obj["spec"] if kind == "Pod" else obj["spec"]["template"]["spec"]
    target_bytes = target_bytes if target_bytes is not None else 800 * len(images)
    containers = spec["containers"]
    for index, container in enumerate(containers):
        container["resources"] = {
            "requests": {"cpu": "100m", "memory": "128Mi"},
            "limits": {"cpu": "500m", "memory": "256Mi"},
        }
        container["ports"] = [{"containerPort": 8080 + index, "name": f"http-{index}", "protocol": "TCP"}]
        container["readinessProbe"] = {"httpGet": {"path": "/readyz", "port": 8080 + index}}
        container["volumeMounts"] = [{"name": "config", "mountPath": "/etc/app", "readOnly": True}]
        container["env"] = []
    spec["volumes"] = [{"name": "config", "configMap": {"name": "bench-config"}}]
    counter = 0
    while len(json.dumps(body)) < target_bytes:
        container = containers[counter % len(containers)]
        container["env"].append(
            {"name": f"SETTING_{counter:03d}", "value": f"value-{counter:03d}-of-the-benchmark-pod"}
        )
        counter += 1
    return body


def write_body(path: Path, body: dict[str, Any]) -> Path:
    path.write_bytes(json.dumps(body).encode())
    return path


def _push_artifact(pusher: OciPusher, repo: str, artifact: OciArtifact) -> Pushed:
    for data in artifact.blobs.values():
        pusher.push_blob(repo, data)
    return pusher.push_manifest(repo, artifact.manifest, artifact.media_type)


@dataclass
class World:
    """Registries by mode, the test Sigstore and identity, and what was pushed. Build with :meth:`create`."""

    directory: Path
    registries: dict[str, RegistryServer]
    sigstore: FakeSigstore
    identity: Identity
    tags: dict[str, list[tuple[str, Pushed]]] = field(default_factory=dict)
    signed: list[Pushed] = field(default_factory=list)

    @property
    def tls(self) -> RegistryServer:
        """The registry of the end-to-end runs: HTTPS with htpasswd Basic auth, as in production."""
        return self.registries["tls"]

    @classmethod
    @contextmanager
    def create(cls, directory: Path, *, modes: Sequence[Mode] = ("plain", "tls", "token")) -> Iterator[World]:
        if shutil.which(BINARY) is None:
            raise RuntimeError(f"{BINARY} not found: install it with `make system-deps`")
        registries: dict[str, RegistryServer] = {}
        try:
            for mode in modes:
                registries[mode] = start_registry(directory / f"registry-{mode}", mode)
            sigstore = FakeSigstore.create(directory / "sigstore")
            identity = sigstore.issue_cert(subject=WORKFLOW, issuer=GITHUB_ISSUER)
            yield cls(directory=directory, registries=registries, sigstore=sigstore, identity=identity)
        finally:
            for server in registries.values():
                server.stop()

    # --- content ---------------------------------------------------------------------------------

    def push_tags(self, mode: str, *, count: int, prefix: str) -> list[tuple[str, Pushed]]:
        """``count`` distinct images in ``RESOLVE_REPO`` tagged ``<prefix>-<n>``: first-seen tags.

        They share config and layer (already in the registry after the first) and differ by an
        annotation, so each costs one manifest PUT and has its own digest.
        """
        server = self.registries[mode]
        pusher = server.pusher()
        try:
            pushed = []
            for n in range(count):
                tag = f"{prefix}-{n}"
                image = pusher.push_image(
                    RESOLVE_REPO, tag, content=b"bench", annotations={"dev.imagegate.bench/tag": tag}
                )
                pushed.append((tag, image))
        finally:
            pusher.close()
        self.tags.setdefault(mode, []).extend(pushed)
        return pushed

    def push_signed(self, *, count: int, prefix: str, mode: str = "tls") -> list[Pushed]:
        """``count`` images in ``SIGNED_REPO`` on the ``mode`` registry (TLS unless told), each with a
        keyless signature bundle and a keyless SLSA provenance v1 bundle, stored as cosign v3 does
        without a referrers API."""
        pusher = self.registries[mode].pusher()
        out = []
        try:
            for n in range(count):
                image = pusher.push_image(
                    SIGNED_REPO, f"{prefix}-{n}", content=f"signed-{prefix}-{n}".encode()
                )
                entries = []
                for statement in (
                    cosign_sign_statement(image.digest),
                    statement_v1(image.digest, SLSA_PROVENANCE_V1, slsa_provenance_v1()),
                ):
                    bundle = self.sigstore.bundle_dsse(self.identity, statement)
                    artifact = bundle_referrer_manifest(
                        bundle, subject_digest=image.digest, subject_size=image.size
                    )
                    pushed = _push_artifact(pusher, SIGNED_REPO, artifact)
                    annotations = json.loads(artifact.manifest).get("annotations", {})
                    entries.append(pushed.descriptor(artifactType=BUNDLE_TYPE, annotations=annotations))
                pusher.put_fallback_index(SIGNED_REPO, image.digest, entries)
                out.append(image)
        finally:
            pusher.close()
        self.signed.extend(out)
        return out

    def signed_ref(self, image: Pushed, *, mode: str = "tls") -> str:
        return self.registries[mode].ref(SIGNED_REPO, digest=image.digest)

    # --- policy ----------------------------------------------------------------------------------

    def write_policy(self, directory: Path) -> Path:
        """The benchmark policy: pinned governed images, resolve-only images, signed + attested images."""
        server = self.tls
        return _write(
            directory / "policy.yaml",
            {
                "mode": "enforce",
                "unmatched": "deny",
                "registries": {
                    "allow": [PINNED_REGISTRY, server.host],
                    "caFile": str(server.ca_file),
                    "credentialsFile": str(server.credentials_file),
                },
                "tags": {"resolve": True, "deny": ["latest"]},
                "trust": self._trust(),
                "rules": [
                    {"name": "pinned", "images": [f"{PINNED_REGISTRY}/acme/**"]},
                    {"name": "resolve", "images": [f"{server.host}/{RESOLVE_REPO}"]},
                    self._signed_rule([server.host]),
                ],
            },
        )

    def write_cold_policy(self, directory: Path, *, markers: bool) -> Path:
        """The cold-path policy: the signed rule for ``SIGNED_REPO`` on every registry of the world,
        with registry quarantine markers on or off (on, every admitted digest's manifest is read too)."""
        directory.mkdir(parents=True, exist_ok=True)
        hosts = sorted(server.host for server in self.registries.values())
        credentials: dict[str, Any] = {"auths": {}}
        ca_file: Path | None = None
        for server in self.registries.values():
            if server.credentials_file is not None:
                credentials["auths"].update(json.loads(server.credentials_file.read_text())["auths"])
            ca_file = ca_file or server.ca_file  # one test CA issues every registry's certificate
        credentials_file = directory / "cold-dockerconfig.json"
        credentials_file.write_text(json.dumps(credentials))
        registries: dict[str, Any] = {
            "allow": sorted({h for server in self.registries.values() for h in server.allowed_hosts()}),
            "insecure": [server.host for server in self.registries.values() if server.mode == "plain"],
            "credentialsFile": str(credentials_file),
        }
        if ca_file is not None:
            registries["caFile"] = str(ca_file)
        spec: dict[str, Any] = {
            "mode": "enforce",
            "unmatched": "deny",
            "registries": registries,
            "trust": self._trust(),
            "rules": [self._signed_rule(hosts)],
        }
        if markers:
            spec["quarantine"] = {"registryMarkers": True}
        return _write(directory / f"cold-policy{'-markers' if markers else ''}.yaml", spec)

    def _trust(self) -> dict[str, Any]:
        return {"roots": [{"name": "bench", "file": str(self.sigstore.trusted_root_path)}]}

    def _signed_rule(self, hosts: Sequence[str]) -> dict[str, Any]:
        keyless = {"root": "bench", "issuer": GITHUB_ISSUER, "subject": WORKFLOW}
        return {
            "name": "signed",
            "images": [f"{host}/{SIGNED_REPO}" for host in hosts],
            "signatures": {"signers": [{"keyless": keyless}]},
            "attestations": [
                {
                    "predicateType": SLSA_PROVENANCE_V1,
                    "signers": [{"keyless": keyless}],
                    "slsa": {
                        "sourceRepositories": ["github.com/acme/app"],
                        "sourceRefs": ["refs/heads/main"],
                    },
                }
            ],
        }


def _write(path: Path, spec: dict[str, Any]) -> Path:
    policy = {"apiVersion": "imagegate.dev/v1alpha1", "kind": "ImagePolicy", "metadata": {"name": "bench"}}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({**policy, "spec": spec}, sort_keys=False))
    return path


def pinned_images(count: int) -> list[str]:
    """``count`` governed, digest-pinned images that no admission ever fetches."""
    return [f"{PINNED_REGISTRY}/acme/app-{n}:1.{n}.0@sha256:{(str(n) * 64)[:64]}" for n in range(count)]
