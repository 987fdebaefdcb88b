"""End to end over real HTTPS: tags resolved against real registries and pinned by ``/mutate``.

``imagegate serve`` runs under gunicorn; images are pushed to Debian's docker-registry (plain HTTP,
TLS + htpasswd, and Bearer tokens) with tests.support.oci. Two servers share the module:

* ``main``: credentials for the private registries and a quarantine list file (default TTLs);
* ``dynamic``: no credentials, registry quarantine markers on, ``IMAGEGATE_TAG_TTL=1`` and
  ``IMAGEGATE_REFERRERS_TTL=0`` so moved tags and new markers are seen quickly.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonpatch
import kubernetes_validate
import pytest
import requests
import yaml

from tests.support.oci import Pushed
from tests.support.registry import PASSWORD, RegistryServer, listening_socket
from tests.support.reviews import review
from tests.support.server import Server, running_server

pytestmark = [pytest.mark.e2e, pytest.mark.registry]

REPO_ROOT = Path(__file__).resolve().parents[1]
K8S_VERSION = "1.33.0"
QUARANTINE_REASON = "CVE-2026-0001 in base layer"
NOT_PINNED = (
    "[not-pinned] image is not pinned to a digest; the mutating webhook pins it "
    "(was it changed after mutation, or is the mutating webhook missing?) (rule local)"
)
# Where each kind keeps its pod spec, as a JSON pointer.
POD_SPEC = {
    "Pod": "/spec",
    "Deployment": "/spec/template/spec",
    "CronJob": "/spec/jobTemplate/spec/template/spec",
}
PINNED_RE = re.compile(r"127\.0\.0\.1:[0-9]+/[a-z0-9/._-]+:[A-Za-z0-9_.-]+@sha256:[0-9a-f]{64}")


@dataclass(frozen=True)
class Env:
    server: Server
    policy: Path
    plain: RegistryServer
    tls: RegistryServer
    token: RegistryServer


def unique(prefix: str) -> str:
    """A repository name no other test uses (tag caches and access counters stay per test)."""
    return f"e2e/{prefix}-{uuid.uuid4().hex[:10]}"


def write_policy(
    directory: Path,
    *,
    name: str,
    plain: RegistryServer,
    tls: RegistryServer,
    token: RegistryServer,
    credentials: bool,
    markers: bool,
    quarantine_files: list[str] | None = None,
) -> Path:
    assert tls.ca_file is not None
    # One CA issues every test registry certificate: one caFile trusts both HTTPS registries.
    (directory / "registry-ca.pem").write_bytes(tls.ca_file.read_bytes())
    registries: dict[str, Any] = {
        "allow": sorted({plain.host} | tls.allowed_hosts() | token.allowed_hosts()),
        "insecure": [plain.host],
        "caFile": "registry-ca.pem",
    }
    if credentials:
        auths: dict[str, Any] = {}
        for server in (tls, token):
            assert server.credentials_file is not None
            auths |= json.loads(server.credentials_file.read_text())["auths"]
        (directory / "dockerconfig.json").write_text(json.dumps({"auths": auths}))
        registries["credentialsFile"] = "dockerconfig.json"
    spec: dict[str, Any] = {
        "mode": "enforce",
        "unmatched": "deny",
        "registries": registries,
        "tags": {"resolve": True, "deny": ["latest"]},
        "quarantine": {"files": quarantine_files or [], "registryMarkers": markers},
        "rules": [{"name": "local", "images": [f"{s.host}/**" for s in (plain, tls, token)]}],
    }
    policy = {
        "apiVersion": "imagegate.dev/v1alpha1",
        "kind": "ImagePolicy",
        "metadata": {"name": name},
        "spec": spec,
    }
    path = directory / "policy.yaml"
    path.write_text(yaml.safe_dump(policy, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def quarantined(plain_registry: RegistryServer) -> tuple[str, Pushed]:
    """An image (tag 1.0) whose digest the main server's quarantine list names."""
    repo = unique("quarantined")
    return repo, plain_registry.pusher().push_image(repo, "1.0")


@pytest.fixture(scope="module")
def main(
    tmp_path_factory: pytest.TempPathFactory,
    plain_registry: RegistryServer,
    tls_registry: RegistryServer,
    token_registry: RegistryServer,
    quarantined: tuple[str, Pushed],
) -> Iterator[Env]:
    directory = tmp_path_factory.mktemp("registry-main")
    entries = [{"digest": quarantined[1].digest, "reason": QUARANTINE_REASON, "by": "sec-team"}]
    (directory / "quarantine.yaml").write_text(
        yaml.safe_dump({"apiVersion": "imagegate.dev/v1alpha1", "kind": "Quarantine", "entries": entries})
    )
    policy = write_policy(
        directory,
        name="e2e-registry",
        plain=plain_registry,
        tls=tls_registry,
        token=token_registry,
        credentials=True,
        markers=False,
        quarantine_files=["quarantine.yaml"],
    )
    with running_server(directory, policy, workers=1) as server:
        yield Env(server, policy, plain_registry, tls_registry, token_registry)


@pytest.fixture(scope="module")
def dynamic(
    tmp_path_factory: pytest.TempPathFactory,
    plain_registry: RegistryServer,
    tls_registry: RegistryServer,
    token_registry: RegistryServer,
) -> Iterator[Env]:
    directory = tmp_path_factory.mktemp("registry-dynamic")
    policy = write_policy(
        directory,
        name="e2e-registry-dynamic",
        plain=plain_registry,
        tls=tls_registry,
        token=token_registry,
        credentials=False,
        markers=True,
    )
    env = {"IMAGEGATE_TAG_TTL": "1", "IMAGEGATE_REFERRERS_TTL": "0"}
    with running_server(directory, policy, env=env) as server:
        yield Env(server, policy, plain_registry, tls_registry, token_registry)


# --- helpers -------------------------------------------------------------------------------------


def fresh(body: dict[str, Any]) -> dict[str, Any]:
    """``body`` with a new request uid (every admission of a test is its own request)."""
    copied = copy.deepcopy(body)
    copied["request"]["uid"] = str(uuid.uuid4())
    return copied


def patch_ops(response: dict[str, Any]) -> list[dict[str, Any]]:
    assert response["patchType"] == "JSONPatch"
    ops: list[dict[str, Any]] = json.loads(base64.b64decode(response["patch"]))
    return ops


def patched(body: dict[str, Any], response: dict[str, Any]) -> dict[str, Any]:
    """The AdmissionReview of the object the API server would store after applying the patch."""
    result = fresh(body)
    result["request"]["object"] = jsonpatch.apply_patch(body["request"]["object"], patch_ops(response))
    return result


def line(image: str, rest: str, *, slot: str = 'container "app"') -> str:
    return f"{slot} image {json.dumps(image)}: {rest}"


def denied_message(response: dict[str, Any]) -> str:
    assert response["allowed"] is False
    assert response["status"]["code"] == 403
    assert response["status"]["reason"] == "Forbidden"
    assert "patch" not in response
    message: str = response["status"]["message"]
    return message


def audit_images(response: dict[str, Any]) -> list[dict[str, Any]]:
    images: list[dict[str, Any]] = json.loads(response["auditAnnotations"]["images"])
    return images


def tag_read_statuses(registry: RegistryServer, repo: str, tag: str) -> list[int]:
    """The HTTP status of every HEAD/GET of the manifest ``repo:tag`` the registry has served."""
    registry.requests()  # synchronises with the access log
    path = f"/v2/{repo}/manifests/{tag}"
    return [e.status for e in registry.access_log.entries() if e.method in ("HEAD", "GET") and e.path == path]


def tag_reads(registry: RegistryServer, repo: str, tag: str) -> int:
    """How many HEAD/GET requests for the manifest ``repo:tag`` the registry has served."""
    return len(tag_read_statuses(registry, repo, tag))


def mutate_pins(env: Env, image: str, digest: str) -> None:
    """``/mutate`` of a Pod running ``image`` pins exactly that image to ``digest``."""
    response = env.server.admit("/mutate", fresh(review("Pod", [image])))
    assert response["allowed"] is True, response.get("status")
    assert patch_ops(response) == [
        {"op": "replace", "path": "/spec/containers/0/image", "value": f"{image}@{digest}"}
    ]


# --- 1. resolve and pin --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["Pod", "Deployment", "CronJob"])
def test_mutate_pins_every_tag_and_leaves_pinned_images_alone(main: Env, kind: str) -> None:
    pusher = main.plain.pusher()
    repo = unique("app")
    image = pusher.push_image(repo, "1.0")
    index, amd64, arm64 = pusher.push_multiarch(repo, "2.0")
    tagged, multi = main.plain.ref(repo, "1.0"), main.plain.ref(repo, "2.0")
    already = main.plain.ref(repo, "1.0", digest=image.digest)
    body = review(kind, [tagged, already, multi], init_images=[tagged], namespace="prod", name="web")

    response = main.server.admit("/mutate", body)

    assert response["allowed"] is True
    assert "status" not in response and "warnings" not in response
    spec = POD_SPEC[kind]
    # One op per changed image; the already pinned container gets none. A multi-arch tag pins the
    # index digest (the kubelet picks the platform), never one platform's manifest.
    assert patch_ops(response) == [
        {"op": "replace", "path": f"{spec}/containers/0/image", "value": f"{tagged}@{image.digest}"},
        {"op": "replace", "path": f"{spec}/containers/2/image", "value": f"{multi}@{index.digest}"},
        {"op": "replace", "path": f"{spec}/initContainers/0/image", "value": f"{tagged}@{image.digest}"},
    ]
    assert index.digest not in (amd64.digest, arm64.digest)
    assert [(i["outcome"], i["digest"]) for i in audit_images(response)] == [
        ("admitted", image.digest),
        ("admitted", image.digest),
        ("admitted", index.digest),
        ("admitted", image.digest),
    ]
    assert response["auditAnnotations"]["policy"] == "e2e-registry"

    pinned = patched(body, response)
    obj = pinned["request"]["object"]
    kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
    pod = obj
    for segment in spec.strip("/").split("/"):
        pod = pod[segment]
    images = [c["image"] for c in pod["containers"] + pod["initContainers"]]
    assert images == [
        f"{tagged}@{image.digest}",
        already,
        f"{multi}@{index.digest}",
        f"{tagged}@{image.digest}",
    ]
    assert all(PINNED_RE.fullmatch(i) for i in images)

    # The patched object passes /validate unchanged; the unpatched one is refused image by image.
    validated = main.server.admit("/validate", pinned)
    assert validated["allowed"] is True
    assert "patch" not in validated and "status" not in validated
    assert [i["outcome"] for i in audit_images(validated)] == ["admitted"] * 4

    unpatched = main.server.admit("/validate", fresh(body))
    assert denied_message(unpatched).splitlines() == [
        line(tagged, NOT_PINNED),
        line(multi, NOT_PINNED, slot='container "app-2"'),
        line(tagged, NOT_PINNED, slot='init container "init"'),
    ]


def test_latest_is_tag_denied_without_asking_the_registry(main: Env) -> None:
    repo = unique("app")
    main.plain.pusher().push_image(repo, "latest")
    counted = rf"^/v2/{re.escape(repo)}/"
    before = main.plain.requests(path=counted)
    for image in (main.plain.ref(repo, "latest"), main.plain.ref(repo)):
        for path in ("/mutate", "/validate"):
            response = main.server.admit(path, fresh(review("Deployment", [image])))
            implicit = "" if image.endswith(":latest") else " (no tag means latest)"
            assert denied_message(response) == line(
                image, f'[tag-denied] tag "latest"{implicit} is mutable and not allowed (rule local)'
            )
    assert main.plain.requests(path=counted) == before


# --- 2. moving tags and the tag TTL --------------------------------------------------------------


def test_moved_tag_is_seen_after_the_tag_ttl(dynamic: Env) -> None:
    pusher = dynamic.plain.pusher()
    for _ in range(3):
        repo = unique("moving")
        first = pusher.push_image(repo, "v1", content=b"build A")
        # B is uploaded by digest beforehand: moving the tag is then a single manifest PUT.
        second = pusher.push_image(repo, None, content=b"build B")
        image = dynamic.plain.ref(repo, "v1")

        started = time.monotonic()
        mutate_pins(dynamic, image, first.digest)
        pusher.push_manifest(repo, second.body, second.media_type, ref="v1")
        response = dynamic.server.admit("/mutate", fresh(review("Pod", [image])))
        if time.monotonic() - started < 1.0:
            break
        # Not a speed check: on a machine too busy to finish both admissions within the 1 s TTL the
        # second one may legitimately see B; try again with a new repository.
    else:
        pytest.fail("three attempts could not admit twice within the 1 s tag TTL")
    # Within the TTL the cached digest is used: still A, and no new request for the tag.
    assert patch_ops(response) == [
        {"op": "replace", "path": "/spec/containers/0/image", "value": f"{image}@{first.digest}"}
    ]
    assert tag_reads(dynamic.plain, repo, "v1") == 1

    time.sleep(1.2)
    mutate_pins(dynamic, image, second.digest)
    assert tag_reads(dynamic.plain, repo, "v1") == 2


# --- 3. private registries -----------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["tls", "token"])
def test_private_repository_needs_the_credentials_file(main: Env, dynamic: Env, mode: str) -> None:
    registry = main.tls if mode == "tls" else main.token
    repo = f"private/{unique('app')}"
    image_pushed = registry.pusher().push_image(repo, "v1")
    image = registry.ref(repo, "v1")

    mutate_pins(main, image, image_pushed.digest)

    # Same registries without credentialsFile: a clear, credential-free denial.
    response = dynamic.server.admit("/mutate", fresh(review("Pod", [image])))
    message = denied_message(response)
    url = f"HEAD https://{registry.host}/v2/{repo}/manifests/v1"
    if mode == "tls":
        expected = (
            f"[registry-error] {url}: HTTP 401 Unauthorized: the registry requires credentials and "
            f"registries.credentialsFile has none for {registry.host} (rule local)"
        )
    else:
        expected = (
            f"[registry-error] {url}: HTTP 401 Unauthorized: anonymous access was not accepted "
            f"for {registry.host} (rule local)"
        )
    assert message == line(image, expected)
    assert "unauthorized" in message.lower()
    secret_forms = _secret_forms(registry)
    for text in (message, json.dumps(response)):
        assert not any(secret in text for secret in secret_forms)
    # Neither server writes the credentials into its logs or audit lines.
    for env in (main, dynamic):
        logs = env.server.stdout.read_text() + env.server.stderr.read_text()
        assert not any(secret in logs for secret in secret_forms)


def _secret_forms(registry: RegistryServer) -> list[str]:
    assert registry.username is not None and registry.password is not None
    basic = base64.b64encode(f"{registry.username}:{registry.password}".encode()).decode()
    return [PASSWORD, registry.password, basic]


# --- 4. hosts outside registries.allow -----------------------------------------------------------


def test_host_outside_the_allowlist_is_never_contacted(main: Env) -> None:
    with listening_socket() as (host, sock):
        image = f"{host}/e2e/app:1.0"
        for path in ("/mutate", "/validate"):
            response = main.server.admit(
                path, fresh(review("Pod", [image, f"{host}/e2e/app@sha256:{'a' * 64}"]))
            )
            allowed = ", ".join(
                sorted({main.plain.host} | main.tls.allowed_hosts() | main.token.allowed_hosts())
            )
            reason = (
                f'[registry-not-allowed] registry "{host}" is not in registries.allow '
                f"(allowed: {allowed}) (policy e2e-registry)"
            )
            assert denied_message(response).splitlines() == [
                line(image, reason),
                line(f"{host}/e2e/app@sha256:{'a' * 64}", reason, slot='container "app-1"'),
            ]
        with pytest.raises(BlockingIOError):
            sock.accept()


# --- 5. quarantine -------------------------------------------------------------------------------


def cli(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "webhook", *argv],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )


def test_registry_quarantine_marker_denies_until_removed(dynamic: Env) -> None:
    pusher = dynamic.plain.pusher()
    repo = unique("marked")
    pushed = pusher.push_image(repo, "1.0")
    target = dynamic.plain.ref(repo, digest=pushed.digest)
    image = dynamic.plain.ref(repo, "1.0", digest=pushed.digest)
    body = review("Deployment", [image])

    def admit() -> dict[str, Any]:
        return dynamic.server.admit("/validate", fresh(body))

    first = admit()
    assert first["allowed"] is True
    assert [(i["outcome"], i["digest"]) for i in audit_images(first)] == [("admitted", pushed.digest)]

    added = cli(
        "quarantine", "add", "--registry", "--policy", str(dynamic.policy), "--reason", "bad build", target
    )
    assert added.returncode == 0, added.stderr
    marker = re.fullmatch(
        rf"{re.escape(target)}: quarantine marker (sha256:[0-9a-f]{{64}}) added\n", added.stdout
    )
    assert marker is not None, added.stdout

    denied = admit()
    assert denied_message(denied) == line(
        image, '[quarantined] digest is quarantined: "bad build" (registry marker)'
    )
    # The mutating side refuses it as well (the pinned image needs no patch either way).
    assert "[quarantined]" in denied_message(dynamic.server.admit("/mutate", fresh(body)))

    listed = cli("quarantine", "list", "--registry", "--policy", str(dynamic.policy), target)
    assert listed.returncode == 0, listed.stderr
    fields = listed.stdout.rstrip("\n").split("\t")
    assert len(listed.stdout.splitlines()) == 1
    assert fields[:2] == [target, marker.group(1)]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", fields[2])
    assert fields[3:] == ["-", "-", "bad build"]

    removed = cli("quarantine", "remove", "--registry", "--policy", str(dynamic.policy), target)
    assert removed.returncode == 0, removed.stderr
    assert removed.stdout == f"{target}: quarantine marker {marker.group(1)} removed\n"

    again = admit()
    assert again["allowed"] is True
    assert "status" not in again


def test_quarantine_list_file_denies_with_its_reason(main: Env, quarantined: tuple[str, Pushed]) -> None:
    repo, pushed = quarantined
    tagged = main.plain.ref(repo, "1.0")
    # The list is named by its file name, never by the server's directory.
    expected = f'[quarantined] digest is quarantined: "{QUARANTINE_REASON}" (quarantine.yaml)'
    response = main.server.admit("/mutate", fresh(review("Pod", [tagged])))
    assert denied_message(response) == line(tagged, expected)
    pinned = main.plain.ref(repo, "1.0", digest=pushed.digest)
    response = main.server.admit("/validate", fresh(review("Pod", [pinned])))
    assert denied_message(response) == line(pinned, expected)


# --- 6. single flight ----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["plain", "tls"])
def test_concurrent_admissions_of_one_tag_share_one_registry_request(main: Env, mode: str) -> None:
    registry = main.plain if mode == "plain" else main.tls
    repo = unique("flight")
    pushed = registry.pusher().push_image(repo, "v1")
    image = registry.ref(repo, "v1")
    count = 16
    start = threading.Barrier(count)
    results: list[dict[str, Any] | BaseException] = [RuntimeError("not run")] * count

    def admit(position: int) -> None:
        body = fresh(review("Pod", [image], name=f"flight-{position}"))
        with requests.Session() as session:
            session.trust_env = False
            session.verify = str(main.server.ca_file)
            try:
                start.wait(10)
                answer = session.post(main.server.url + "/mutate", json=body, timeout=30)
                assert answer.status_code == 200, answer.text
                payload = answer.json()
                assert payload["response"]["uid"] == body["request"]["uid"]
                results[position] = payload["response"]
            except BaseException as error:  # reported below, on the test's thread
                results[position] = error

    threads = [threading.Thread(target=admit, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors, errors
    expected = [{"op": "replace", "path": "/spec/containers/0/image", "value": f"{image}@{pushed.digest}"}]
    for response in results:
        assert isinstance(response, dict)
        assert response["allowed"] is True
        assert patch_ops(response) == expected
    # HEAD answers with Docker-Content-Digest: one request resolves the tag. The htpasswd registry
    # may first answer the anonymous attempt 401 (unless an earlier request taught the challenge).
    statuses = tag_read_statuses(registry, repo, "v1")
    expected_statuses = ([200], [401, 200]) if mode == "tls" else ([200],)
    assert statuses in expected_statuses, statuses
