"""End to end over real HTTPS: quarantine covers every manifest of a multi-arch image, and every copy.

``imagegate serve`` runs under gunicorn with two workers; real multi-arch indexes are pushed to Debian's
docker-registry with tests.support.oci, and quarantined with the ``imagegate quarantine`` command as an
operator would. The server honours a quarantine list file and registry markers, with short TTLs
(``IMAGEGATE_REFERRERS_TTL=1``) and a fast reload so edits and removals are seen within seconds.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from tests.support.oci import Pushed
from tests.support.registry import RegistryServer
from tests.support.reviews import review
from tests.support.server import Server, running_server
from tests.test_app_registry import cli, denied_message, fresh, line, unique, write_policy
from webhook.policy.loader import load_quarantine

pytestmark = [pytest.mark.e2e, pytest.mark.registry]

REASON = "CVE-2026-7777 in libfoo"


@dataclass(frozen=True)
class World:
    server: Server
    policy: Path
    quarantine: Path
    registry: RegistryServer


@dataclass(frozen=True)
class MultiArch:
    repo: str
    index: Pushed
    amd64: Pushed
    arm64: Pushed


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory,
    plain_registry: RegistryServer,
    tls_registry: RegistryServer,
    token_registry: RegistryServer,
) -> Iterator[World]:
    directory = tmp_path_factory.mktemp("quarantine-e2e")
    quarantine = directory / "quarantine.yaml"
    quarantine.write_text(
        yaml.safe_dump({"apiVersion": "imagegate.dev/v1alpha1", "kind": "Quarantine", "entries": []})
    )
    policy = write_policy(
        directory,
        name="e2e-quarantine",
        plain=plain_registry,
        tls=tls_registry,
        token=token_registry,
        credentials=False,
        markers=True,
        quarantine_files=["quarantine.yaml"],
    )
    env = {"IMAGEGATE_TAG_TTL": "1", "IMAGEGATE_REFERRERS_TTL": "1", "IMAGEGATE_RELOAD_INTERVAL": "0.2"}
    with running_server(directory, policy, env=env, workers=2) as server:
        yield World(server, policy, quarantine, plain_registry)


def multiarch(world: World, prefix: str) -> MultiArch:
    repo = unique(prefix)
    index, amd64, arm64 = world.registry.pusher().push_multiarch(repo, "1.0")
    return MultiArch(repo, index, amd64, arm64)


def admit(world: World, image: str) -> dict[str, Any]:
    """The answer for a Pod running ``image``: /validate for pinned images, /mutate for tags."""
    path = "/validate" if "@sha256:" in image else "/mutate"
    return world.server.admit(path, fresh(review("Pod", [image])))


def eventually(check: Callable[[], bool], *, timeout: float = 15.0) -> None:
    """Wait for a reload or a TTL: ``check`` must hold within ``timeout`` seconds."""
    end = time.monotonic() + timeout
    while not check():
        if time.monotonic() > end:
            raise AssertionError(f"still not true after {timeout} s")
        time.sleep(0.2)


def allowed(world: World, image: str) -> bool:
    return admit(world, image)["allowed"] is True


def quarantine(world: World, *argv: str) -> str:
    """Run ``imagegate quarantine ...`` with the server's policy; it must succeed. Returns stdout."""
    done = cli("quarantine", *argv, "--policy", str(world.policy))
    assert done.returncode == 0, done.stderr
    return done.stdout


def pinned_forms(world: World, app: MultiArch, manifest: Pushed) -> list[str]:
    """The two ways a pod pins one manifest: ``app@sha256:...`` and ``app:1.0@sha256:...``."""
    return [
        world.registry.ref(app.repo, digest=manifest.digest),
        world.registry.ref(app.repo, "1.0", digest=manifest.digest),
    ]


# --- an index quarantined in a list file ---------------------------------------------------------


def test_index_quarantined_in_the_list_denies_pods_pinned_to_its_platform_manifests(world: World) -> None:
    app = multiarch(world, "list-index")
    target = world.registry.ref(app.repo, digest=app.index.digest)
    for image in [*pinned_forms(world, app, app.amd64), world.registry.ref(app.repo, "1.0")]:
        assert allowed(world, image), image

    out = quarantine(world, "add", "--file", str(world.quarantine), "--reason", REASON, "--by", "sec", target)
    q = world.quarantine
    assert out.splitlines() == [
        f"{app.index.digest}: added in {q}",
        f"{app.amd64.digest}: added in {q} (platform linux/amd64 of index {app.index.digest})",
        f"{app.arm64.digest}: added in {q} (platform linux/arm64 of index {app.index.digest})",
    ]
    entries = {e.digest: e for e in load_quarantine(world.quarantine)}
    assert [
        (e.reason, e.by, e.indexes, e.platform) for e in (entries[m.digest] for m in (app.amd64, app.arm64))
    ] == [
        (REASON, "sec", (app.index.digest,), "linux/amd64"),
        (REASON, "sec", (app.index.digest,), "linux/arm64"),
    ]
    listed = quarantine(world, "list", "--file", str(world.quarantine)).splitlines()
    amd64_line = next(row for row in listed if row.startswith(app.amd64.digest))
    assert amd64_line.split("\t")[2:] == ["sec", f"platform linux/amd64 of index {app.index.digest}", REASON]

    expected = (
        f'[quarantined] digest is quarantined: "{REASON}" '
        f"(quarantine.yaml; platform linux/amd64 of index {app.index.digest})"
    )
    for image in pinned_forms(world, app, app.amd64):
        eventually(lambda image=image: not allowed(world, image))  # the list is reloaded
        assert denied_message(admit(world, image)) == line(image, expected)
    tagged = world.registry.ref(app.repo, "1.0")
    assert "[quarantined] digest is quarantined" in denied_message(admit(world, tagged))

    out = quarantine(world, "remove", "--file", str(world.quarantine), target)
    assert out.splitlines() == [
        f"{app.index.digest}: removed from {q}",
        f"{app.amd64.digest}: removed from {q} (platform linux/amd64 of index {app.index.digest})",
        f"{app.arm64.digest}: removed from {q} (platform linux/arm64 of index {app.index.digest})",
    ]
    assert not {app.index.digest, app.amd64.digest, app.arm64.digest} & {
        e.digest for e in load_quarantine(world.quarantine)
    }
    for image in [*pinned_forms(world, app, app.amd64), tagged]:
        eventually(lambda image=image: allowed(world, image))


def test_platform_manifest_in_the_list_denies_the_tag_that_resolves_to_its_index(world: World) -> None:
    app = multiarch(world, "list-platform")
    tagged = world.registry.ref(app.repo, "1.0")
    assert allowed(world, tagged)
    # What a scanner of a running container reports: the platform manifest, by digest alone.
    quarantine(world, "add", "--file", str(world.quarantine), "--reason", REASON, app.amd64.digest)

    expected = (
        f"[quarantined] platform linux/amd64 manifest {app.amd64.digest} listed by this index is "
        f'quarantined: "{REASON}" (quarantine.yaml)'
    )
    eventually(lambda: not allowed(world, tagged))
    response = admit(world, tagged)
    assert denied_message(response) == line(tagged, expected)
    pinned_index = world.registry.ref(app.repo, "1.0", digest=app.index.digest)
    assert denied_message(admit(world, pinned_index)) == line(pinned_index, expected)
    # The other platform of the same index stays admitted when pinned on its own.
    assert allowed(world, world.registry.ref(app.repo, digest=app.arm64.digest))

    quarantine(world, "remove", "--file", str(world.quarantine), app.amd64.digest)
    eventually(lambda: allowed(world, tagged))


# --- registry markers ----------------------------------------------------------------------------


def test_index_marker_denies_pods_pinned_to_its_platform_manifests(world: World) -> None:
    app = multiarch(world, "marker-index")
    target = world.registry.ref(app.repo, digest=app.index.digest)
    pinned = pinned_forms(world, app, app.amd64)
    for image in pinned:
        assert allowed(world, image), image

    out = quarantine(world, "add", "--registry", "--reason", REASON, target)
    marker = r"quarantine marker (sha256:[0-9a-f]{64}) added"
    child = world.registry.ref(app.repo, digest=app.amd64.digest)
    other = world.registry.ref(app.repo, digest=app.arm64.digest)
    rows = out.splitlines()
    assert len(rows) == 3, out
    assert re.fullmatch(rf"{re.escape(target)}: {marker}", rows[0]), rows[0]
    assert re.fullmatch(
        rf"{re.escape(child)}: {marker} \(platform linux/amd64 of index {app.index.digest}\)", rows[1]
    ), rows[1]
    assert re.fullmatch(
        rf"{re.escape(other)}: {marker} \(platform linux/arm64 of index {app.index.digest}\)", rows[2]
    ), rows[2]

    expected = (
        f'[quarantined] digest is quarantined: "{REASON}" '
        f"(registry marker; platform linux/amd64 of index {app.index.digest})"
    )
    for image in pinned:
        eventually(lambda image=image: not allowed(world, image))  # past the referrers TTL
        assert denied_message(admit(world, image)) == line(image, expected)
    tagged = world.registry.ref(app.repo, "1.0")
    eventually(lambda: not allowed(world, tagged))
    assert denied_message(admit(world, tagged)) == line(
        tagged, f'[quarantined] digest is quarantined: "{REASON}" (registry marker)'
    )

    listed = quarantine(world, "list", "--registry", target).splitlines()
    assert [row.split("\t")[0] for row in listed] == [target, child, other]
    assert listed[1].split("\t")[4:] == [f"platform linux/amd64 of index {app.index.digest}", REASON]
    assert listed[0].split("\t")[4:] == ["-", REASON]

    out = quarantine(world, "remove", "--registry", target)
    assert [row.split(": ", 1)[0] for row in out.splitlines()] == [target, child, other]
    assert all(" removed" in row for row in out.splitlines()), out
    for image in [*pinned, tagged]:
        eventually(lambda image=image: allowed(world, image))


def test_marker_on_a_platform_manifest_denies_the_tag_that_resolves_to_its_index(world: World) -> None:
    app = multiarch(world, "marker-platform")
    tagged = world.registry.ref(app.repo, "1.0")
    assert allowed(world, tagged)
    child = world.registry.ref(app.repo, digest=app.amd64.digest)
    out = quarantine(world, "add", "--registry", "--reason", REASON, child)
    assert len(out.splitlines()) == 1  # a platform manifest lists nothing more to mark

    expected = (
        f"[quarantined] platform linux/amd64 manifest {app.amd64.digest} listed by this index is "
        f'quarantined: "{REASON}" (registry marker)'
    )
    eventually(lambda: not allowed(world, tagged))  # past the referrers TTL
    assert denied_message(admit(world, tagged)) == line(tagged, expected)

    quarantine(world, "remove", "--registry", child)
    eventually(lambda: allowed(world, tagged))


def _recorder_pid(server: Server, digest: str) -> int:
    """The worker process that logged seeing a quarantine marker for ``digest``."""
    pattern = re.compile(
        rf"\[(\d+)\] quarantine marker .* {re.escape(digest)} is refused in every repository"
    )
    for row in server.stderr.read_text().splitlines():
        found = pattern.search(row)
        if found is not None:
            return int(found.group(1))
    raise AssertionError(f"no worker logged a marker for {digest}:\n{server.stderr.read_text()[-3000:]}")


def _answer_from_a_live_worker(world: World, body: dict[str, Any]) -> requests.Response:
    """POST ``body`` on fresh connections until one lands on a worker that is not stopped."""
    for _ in range(40):
        with requests.Session() as session:
            session.trust_env = False
            session.verify = str(world.server.ca_file)
            try:
                return session.post(world.server.url + "/mutate", json=fresh(body), timeout=2)
            except requests.exceptions.Timeout:
                continue  # this connection went to the stopped worker's listener
    raise AssertionError("no connection reached the worker that is not stopped")


def test_marker_on_one_repository_refuses_the_same_digest_in_a_copy_from_another_worker(
    world: World,
) -> None:
    team = f"team-{uuid.uuid4().hex[:8]}"
    app_repo, copy_repo = unique(f"{team}-app"), unique(f"{team}-copy")
    pusher = world.registry.pusher()
    content = f"same content {team}".encode()
    original = pusher.push_image(app_repo, "1.0", content=content)
    duplicate = pusher.push_image(copy_repo, "1.0", content=content)
    assert original.digest == duplicate.digest
    app_image, copy_image = world.registry.ref(app_repo, "1.0"), world.registry.ref(copy_repo, "1.0")
    assert allowed(world, copy_image)  # nothing is quarantined yet

    quarantine(
        world, "add", "--registry", "--reason", REASON, world.registry.ref(app_repo, digest=original.digest)
    )
    assert denied_message(admit(world, app_image)) == line(
        app_image, f'[quarantined] digest is quarantined: "{REASON}" (registry marker)'
    )
    recorder = _recorder_pid(world.server, original.digest)

    # Stop the worker that saw the marker: the copy is judged by the other worker, which never read
    # team/app's markers itself. Each worker has its own SO_REUSEPORT listener and the kernel picks one
    # per new connection, so a connection that lands on the stopped worker times out and the next
    # fresh connection is tried.
    expected = line(
        copy_image,
        f'[quarantined] digest is quarantined: "{REASON}" '
        f"(registry marker on {world.registry.host}/{app_repo})",
    )
    os.kill(recorder, signal.SIGSTOP)
    try:
        answer = _answer_from_a_live_worker(world, review("Pod", [copy_image]))
        assert answer.status_code == 200, answer.text
        assert denied_message(answer.json()["response"]) == expected
    finally:
        os.kill(recorder, signal.SIGCONT)
    assert denied_message(admit(world, copy_image)) == expected

    # Once the marker is gone (and the referrers TTL has passed) the copy and the original are admitted.
    quarantine(world, "remove", "--registry", world.registry.ref(app_repo, digest=original.digest))
    eventually(lambda: allowed(world, copy_image))
    assert allowed(world, app_image)


def test_serve_refuses_a_seen_markers_directory_it_cannot_write(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "apiVersion: imagegate.dev/v1alpha1\nkind: ImagePolicy\nmetadata: {name: t}\n"
        "spec: {registries: {allow: [ghcr.io]}}\n"
    )
    serve = subprocess.run(
        [sys.executable, "-m", "webhook", "serve", "--policy", str(policy), "--dev-cert", "--port", "1"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "IMAGEGATE_SEEN_MARKERS_DIR": str(blocker / "seen")},
    )
    assert serve.returncode == 2, serve.stderr
    assert f"IMAGEGATE_SEEN_MARKERS_DIR={blocker / 'seen'}: cannot create the directory" in serve.stderr
    assert "Traceback" not in serve.stderr


def test_an_index_whose_markers_cannot_be_read_is_denied_when_the_registry_goes_down(
    tmp_path: Path, registry_factory: Callable[..., RegistryServer]
) -> None:
    registry = registry_factory("plain")
    index, _, _ = registry.pusher().push_multiarch("team/app", "1.0")
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "imagegate.dev/v1alpha1",
                "kind": "ImagePolicy",
                "metadata": {"name": "down"},
                "spec": {
                    "registries": {"allow": [registry.host], "insecure": [registry.host]},
                    "quarantine": {"registryMarkers": True},
                    "rules": [{"name": "local", "images": [f"{registry.host}/**"]}],
                },
            }
        )
    )
    pinned = registry.ref("team/app", digest=index.digest)
    env = {"IMAGEGATE_REFERRERS_TTL": "0", "IMAGEGATE_FAILURE_TTL": "0"}
    with running_server(tmp_path, policy, env=env) as server:
        assert server.admit("/validate", fresh(review("Pod", [pinned])))["allowed"] is True
        # The index stays cached in the worker, but its markers and those of what it lists must be read
        # again: with the registry gone, nothing says they are still unmarked.
        registry.stop()
        message = denied_message(server.admit("/validate", fresh(review("Pod", [pinned]))))
    assert message.startswith(line(pinned, "[registry-error] quarantine markers could not be read: "))
    assert message.endswith("(rule local)")
