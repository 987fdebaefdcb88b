"""An image index is an index whatever Content-Type the registry gives it.

Quarantine checks every manifest an admitted index lists, because a node pulls one of them
(policies/README.md: "for an image index, neither may any manifest it lists"). Whether a digest is an
index is decided by the answer's Content-Type alone whenever that names a manifest type
(webhook/registry/client.py ``_verified_manifest``); the body, verified against the digest, is read only
when the header says nothing useful. A registry that answers imagegate with an image-manifest
Content-Type for an index body (while container runtimes, which send another User-Agent, get the index
type) makes the index look like a single manifest: nothing it lists is checked, and a pod pinned to it
pulls the quarantined platform manifest. Content and its declared type disagreeing must fail closed, or
the body (it names its own ``mediaType`` and lists ``manifests``) must decide.
"""

from __future__ import annotations

import hashlib
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.support.registry import FaultRequest, FaultServer, http_response
from webhook.deadline import Deadline
from webhook.dryrun import DryRun, review_for
from webhook.images.reference import ImageRef
from webhook.registry.client import RegistryClient
from webhook.registry.settings import RegistrySettings

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
QUARANTINED = "sha256:" + "9" * 64  # the amd64 manifest a scanner reported
INDEX = json.dumps(
    {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {
                "mediaType": OCI_MANIFEST,
                "digest": QUARANTINED,
                "size": 500,
                "platform": {"os": "linux", "architecture": "amd64"},
            }
        ],
    },
    separators=(",", ":"),
).encode()
INDEX_DIGEST = "sha256:" + hashlib.sha256(INDEX).hexdigest()


@pytest.fixture
def lying_registry() -> Iterator[FaultServer]:
    """Serves the index by digest, verified content, but labelled as an image manifest."""

    def behaviour(request: FaultRequest, sock: socket.socket, stopping: threading.Event) -> None:
        if request.path == f"/v2/team/app/manifests/{INDEX_DIGEST}":
            headers = {"Content-Type": OCI_MANIFEST, "Docker-Content-Digest": INDEX_DIGEST}
            sock.sendall(http_response(200, headers, b"" if request.method == "HEAD" else INDEX))
        else:
            sock.sendall(http_response(404, {"Content-Type": "application/json"}, b'{"errors":[]}'))

    with FaultServer(behaviour) as server:
        yield server


def test_an_index_labelled_as_a_manifest_still_has_its_listed_manifests_checked(
    tmp_path: Path, lying_registry: FaultServer
) -> None:
    host = lying_registry.host
    (tmp_path / "quarantine.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "imagegate.dev/v1alpha1",
                "kind": "Quarantine",
                "entries": [{"digest": QUARANTINED, "reason": "CVE-2026-5555 (scanner, amd64)"}],
            }
        )
    )
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "imagegate.dev/v1alpha1",
                "kind": "ImagePolicy",
                "metadata": {"name": "media-type"},
                "spec": {
                    "registries": {"allow": [host], "insecure": [host]},
                    "quarantine": {"files": ["quarantine.yaml"]},
                    "rules": [{"name": "team", "images": [f"{host}/team/**"]}],
                },
            }
        )
    )
    image = f"{host}/team/app@{INDEX_DIGEST}"
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "app", "namespace": "default"},
        "spec": {"containers": [{"name": "app", "image": image}]},
    }
    dry = DryRun(policy)
    try:
        result = dry.admit(review_for(pod))
    finally:
        dry.close()

    assert any(r.path.endswith(INDEX_DIGEST) for r in lying_registry.requests)  # the index was read
    assert result.allowed is False, (
        f"{image} lists the quarantined {QUARANTINED} and was admitted: "
        f"{result.final.review['response'].get('auditAnnotations')}"
    )


def _body(media_type: str | None, **fields: object) -> bytes:
    document: dict[str, object] = {"schemaVersion": 2}
    if media_type is not None:
        document["mediaType"] = media_type
    return json.dumps(document | fields, separators=(",", ":")).encode()


LISTING = [{"mediaType": OCI_MANIFEST, "digest": QUARANTINED, "size": 500}]
IMAGE = {
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": QUARANTINED, "size": 2}
}


@pytest.mark.parametrize(
    ("body", "content_type", "media_type"),
    [
        pytest.param(
            _body(OCI_INDEX, manifests=LISTING), OCI_MANIFEST, OCI_INDEX, id="oci-index-as-manifest"
        ),
        pytest.param(_body(None, manifests=LISTING), OCI_MANIFEST, OCI_INDEX, id="untyped-index-as-manifest"),
        pytest.param(_body(None, manifests=LISTING), DOCKER_LIST, DOCKER_LIST, id="untyped-index-as-list"),
        pytest.param(
            _body(DOCKER_LIST, manifests=LISTING), DOCKER_MANIFEST, DOCKER_LIST, id="docker-list-as-manifest"
        ),
        pytest.param(
            _body(OCI_MANIFEST, manifests=LISTING), OCI_MANIFEST, OCI_INDEX, id="listing-typed-image"
        ),
        pytest.param(
            _body(None, manifests=LISTING), "application/json", OCI_INDEX, id="untyped-index-as-json"
        ),
        pytest.param(_body(OCI_MANIFEST, **IMAGE), OCI_INDEX, OCI_MANIFEST, id="image-as-index"),
        pytest.param(_body(None, **IMAGE), DOCKER_MANIFEST, DOCKER_MANIFEST, id="untyped-image"),
        pytest.param(
            _body(DOCKER_MANIFEST, **IMAGE), "application/json", DOCKER_MANIFEST, id="image-as-json"
        ),
    ],
)
def test_what_a_manifest_is_comes_from_its_verified_body(
    body: bytes, content_type: str, media_type: str
) -> None:
    digest = "sha256:" + hashlib.sha256(body).hexdigest()

    def behaviour(request: FaultRequest, sock: socket.socket, stopping: threading.Event) -> None:
        sock.sendall(
            http_response(200, {"Content-Type": content_type, "Docker-Content-Digest": digest}, body)
        )

    with FaultServer(behaviour) as server:
        settings = RegistrySettings(allow=frozenset({server.host}), insecure=frozenset({server.host}))
        with RegistryClient(settings) as client:
            manifest = client.manifest(
                ImageRef.parse(f"{server.host}/team/app@{digest}"), digest, deadline=Deadline.after(10)
            )

    assert manifest.media_type == media_type
    assert manifest.is_index is (media_type in (OCI_INDEX, DOCKER_LIST))
