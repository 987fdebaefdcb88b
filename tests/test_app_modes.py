"""End to end over real HTTPS with a real registry: which mode owns a failure, and UPDATEs of running objects.

Two ``imagegate serve`` processes share one plain docker-registry:

* ``enforcing``: ``spec.mode: enforce``; rule ``prod`` (``{host}/prod/**``, mode from the spec) and rule
  ``dev`` (``{host}/dev/**``, ``mode: warn``); a quarantine list naming one pushed digest;
* ``warning``: ``spec.mode: warn`` and rule ``prod`` with ``mode: enforce``.

A tag that was never pushed is a real ``registry-error`` (the registry answers 404).
"""

from __future__ import annotations

import base64
import copy
import json
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.oci import Pushed
from tests.support.registry import RegistryServer
from tests.support.reviews import review
from tests.support.server import Server, running_server

pytestmark = [pytest.mark.e2e, pytest.mark.registry]

QUARANTINE_REASON = "CVE-2026-0002 in base layer"


@dataclass(frozen=True)
class Env:
    enforcing: Server
    warning: Server
    registry: RegistryServer
    prefix: str  # host/namespace of this module's repositories
    quarantined: Pushed  # pushed as prod/app:1.0 and dev/app:1.0, listed in the quarantine file
    clean: Pushed  # pushed as prod/app:2.0 and dev/app:2.0


def _policy(directory: Path, *, name: str, host: str, spec_mode: str, rules: list[dict[str, Any]]) -> Path:
    spec: dict[str, Any] = {
        "mode": spec_mode,
        "unmatched": "deny",
        "registries": {"allow": [host], "insecure": [host]},
        "tags": {"resolve": True, "deny": ["latest"]},
        "quarantine": {"files": ["quarantine.yaml"]},
        "rules": rules,
    }
    document = {"apiVersion": "imagegate.dev/v1alpha1", "kind": "ImagePolicy", "metadata": {"name": name}}
    path = directory / "policy.yaml"
    path.write_text(yaml.safe_dump({**document, "spec": spec}, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, plain_registry: RegistryServer) -> Iterator[Env]:
    pusher = plain_registry.pusher()
    namespace = f"modes-{uuid.uuid4().hex[:8]}"
    pushed: dict[str, Pushed] = {}
    for tag in ("1.0", "2.0"):
        for repo in ("prod/app", "dev/app"):  # the same content: one digest in both repositories
            pushed[tag] = pusher.push_image(f"{namespace}/{repo}", tag, content=f"modes {tag}".encode())
    quarantined, clean = pushed["1.0"], pushed["2.0"]
    host = f"{plain_registry.host}/{namespace}"
    entries = [{"digest": quarantined.digest, "reason": QUARANTINE_REASON, "by": "sec-team"}]
    quarantine = {"apiVersion": "imagegate.dev/v1alpha1", "kind": "Quarantine", "entries": entries}
    servers: list[Server] = []
    with ExitStack() as stack:
        for name, spec_mode, rules in (
            (
                "enforcing",
                "enforce",
                [
                    {"name": "prod", "images": [f"{host}/prod/**"]},
                    {"name": "dev", "images": [f"{host}/dev/**"], "mode": "warn"},
                ],
            ),
            ("warning", "warn", [{"name": "prod", "images": [f"{host}/prod/**"], "mode": "enforce"}]),
        ):
            directory = tmp_path_factory.mktemp(f"modes-{name}")
            (directory / "quarantine.yaml").write_text(yaml.safe_dump(quarantine))
            policy = _policy(
                directory, name=f"e2e-{name}", host=plain_registry.host, spec_mode=spec_mode, rules=rules
            )
            servers.append(stack.enter_context(running_server(directory, policy)))
        yield Env(servers[0], servers[1], plain_registry, host, quarantined, clean)


def image(env: Env, path: str) -> str:
    """``path`` (e.g. ``prod/app:1.0``) in this module's repositories of the test registry."""
    return f"{env.prefix}/{path}"


def admit(server: Server, path: str, body: dict[str, Any]) -> dict[str, Any]:
    copied = copy.deepcopy(body)
    copied["request"]["uid"] = str(uuid.uuid4())
    return server.admit(path, copied)


# --- which mode owns a failure ---------------------------------------------------------------------


def test_an_enforce_rule_denies_a_tag_that_fails_to_resolve_under_a_warn_policy(env: Env) -> None:
    missing = image(env, "prod/app:9.9-not-pushed")
    for path in ("/mutate", "/validate"):
        response = admit(env.warning, path, review("Pod", [missing]))
        assert response["allowed"] is False, response
        code = "registry-error" if path == "/mutate" else "not-pinned"
        assert f"[{code}]" in response["status"]["message"] and "(rule prod)" in response["status"]["message"]
        assert "patch" not in response
    # The same rule's image pinned by digest is denied for its quarantine, as before.
    pinned = image(env, f"prod/app@{env.quarantined.digest}")
    response = admit(env.warning, "/validate", review("Pod", [pinned]))
    assert response["allowed"] is False and "[quarantined]" in response["status"]["message"]
    # A check before rule matching still belongs to spec.mode: warn.
    response = admit(env.warning, "/mutate", review("Pod", [image(env, "prod/app:latest")]))
    assert response["allowed"] is True and "[tag-denied]" in response["warnings"][0]


def test_warn_rules_alone_only_warn_about_registry_errors_under_an_enforce_policy(env: Env) -> None:
    missing = image(env, "dev/app:9.9-not-pushed")
    for path, code in (("/mutate", "registry-error"), ("/validate", "not-pinned")):
        response = admit(env.enforcing, path, review("Pod", [missing]))
        assert response["allowed"] is True, response
        assert len(response["warnings"]) == 1
        assert f"[{code}]" in response["warnings"][0] and "(rule dev)" in response["warnings"][0]
        assert "patch" not in response
    # The same failure under the prod rule (mode from spec.mode: enforce) is a denial.
    response = admit(env.enforcing, "/mutate", review("Pod", [image(env, "prod/app:9.9-not-pushed")]))
    assert response["allowed"] is False and "[registry-error]" in response["status"]["message"]


def test_a_quarantined_digest_under_warn_rules_alone_is_a_warning(env: Env) -> None:
    response = admit(env.enforcing, "/mutate", review("Pod", [image(env, "dev/app:1.0")]))
    assert response["allowed"] is True
    assert "[quarantined]" in response["warnings"][0] and QUARANTINE_REASON in response["warnings"][0]


# --- UPDATEs of running objects --------------------------------------------------------------------

RUNNING_NOTE = "already running: this update is allowed, but new pods with this image will be refused"


def update(kind: str, old_images: list[str], new_images: list[str], **changes: Any) -> dict[str, Any]:
    """An UPDATE of a ``kind`` object from ``old_images`` to ``new_images`` (metadata ``changes`` too)."""
    body = review(kind, new_images, operation="UPDATE", namespace="prod")
    body["request"]["oldObject"] = copy.deepcopy(review(kind, old_images)["request"]["object"])
    body["request"]["oldObject"]["metadata"]["namespace"] = "prod"
    body["request"]["object"]["metadata"].update(changes)
    return body


def test_metadata_update_of_a_running_pod_with_a_quarantined_digest_is_allowed_with_a_warning(
    env: Env,
) -> None:
    pinned = image(env, f"prod/app:1.0@{env.quarantined.digest}")
    # A new pod with it is refused ...
    response = admit(env.enforcing, "/validate", review("Pod", [pinned], namespace="prod"))
    assert response["allowed"] is False and "[quarantined]" in response["status"]["message"]
    # ... but the running one can still be labelled.
    body = update("Pod", [pinned], [pinned], labels={"app": "demo", "audited": "yes"})
    for path in ("/mutate", "/validate"):
        response = admit(env.enforcing, path, body)
        assert response["allowed"] is True, response
        assert "patch" not in response
        (warning,) = response["warnings"]
        assert warning.startswith(f'container "app" image "{pinned}": [quarantined] ')
        assert QUARANTINE_REASON in warning and warning.endswith(RUNNING_NOTE)


def test_removing_a_finalizer_from_a_terminating_pod_passes(env: Env) -> None:
    pinned = image(env, f"prod/app:1.0@{env.quarantined.digest}")
    body = update("Pod", [pinned], [pinned])
    old = body["request"]["oldObject"]["metadata"]
    old["finalizers"] = ["batch.kubernetes.io/job-tracking"]
    old["deletionTimestamp"] = body["request"]["object"]["metadata"]["deletionTimestamp"] = (
        "2026-11-26T12:00:00Z"
    )
    response = admit(env.enforcing, "/validate", body)
    assert response["allowed"] is True and response["warnings"][0].endswith(RUNNING_NOTE)


def test_a_changed_image_in_the_same_update_is_still_denied(env: Env) -> None:
    running = image(env, f"prod/app:1.0@{env.quarantined.digest}")
    clean = image(env, f"prod/app:2.0@{env.clean.digest}")
    # The sidecar changes to the quarantined image the app container already runs: judged in full.
    body = update("Pod", [running, clean], [running, running])
    response = admit(env.enforcing, "/validate", body)
    assert response["allowed"] is False
    assert response["status"]["message"].startswith(f'container "app-1" image "{running}": [quarantined] ')
    assert "\n" not in response["status"]["message"]
    assert response["warnings"][0].startswith('container "app" ')


def test_a_workload_update_pins_only_its_changed_image_and_judges_it(env: Env) -> None:
    running = image(env, "prod/app:1.0")  # unpinned: the Deployment predates the webhook
    body = update("Deployment", [running, image(env, "prod/app:2.0")], [running, image(env, "prod/app:2.1")])
    response = admit(env.enforcing, "/mutate", body)
    assert response["allowed"] is False  # the new tag was never pushed
    assert response["status"]["message"].startswith(f'container "app-1" image "{image(env, "prod/app:2.1")}"')
    assert response["warnings"][0].startswith(f'container "app" image "{running}": [quarantined] ')
    # With a tag that resolves, the update passes and only the changed container is pinned.
    body = update("Deployment", [running, image(env, "prod/app:2.0")], [running, image(env, "prod/app:2.0")])
    body["request"]["oldObject"]["spec"]["template"]["spec"]["containers"][1]["image"] = image(
        env, "dev/app:2.0"
    )
    response = admit(env.enforcing, "/mutate", body)
    assert response["allowed"] is True, response
    assert response["warnings"][0].endswith(RUNNING_NOTE)
    ops = json.loads(base64.b64decode(response["patch"]))
    assert ops == [
        {
            "op": "replace",
            "path": "/spec/template/spec/containers/1/image",
            "value": f"{image(env, 'prod/app:2.0')}@{env.clean.digest}",
        }
    ]


def test_kubectl_debug_cannot_start_a_quarantined_image_next_to_the_running_one(env: Env) -> None:
    running = image(env, f"prod/app:1.0@{env.quarantined.digest}")
    body = review(
        "Pod", [running], ephemeral_images=[running], operation="UPDATE", sub_resource="ephemeralcontainers"
    )
    response = admit(env.enforcing, "/validate", body)
    assert response["allowed"] is False
    assert response["status"]["message"].startswith(
        f'ephemeral container "debug" image "{running}": [quarantined]'
    )
    assert response["warnings"][0].startswith(f'container "app" image "{running}": [quarantined]')
