"""``imagegate evaluate`` and ``imagegate resolve`` as subprocesses against a real registry.

Manifests come from ``kubectl create deployment ... --dry-run=client -o yaml`` (offline), as a policy
author would produce them.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.cli import imagegate
from tests.support.oci import Pushed
from tests.support.registry import RegistryServer
from tests.support.reviews import kubectl, review

pytestmark = pytest.mark.registry

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_POLICY = REPO_ROOT / "policies" / "default.yaml"
REPO = "team/app"


@dataclass(frozen=True)
class World:
    registry: RegistryServer
    policy: Path
    directory: Path
    image: Pushed


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, plain_registry: RegistryServer) -> World:
    directory = tmp_path_factory.mktemp("evaluate")
    # Unique content: the digest is this module's, whatever else the shared registry holds.
    image = plain_registry.pusher().push_image(REPO, "1.0", content=uuid.uuid4().bytes)
    policy = {
        "apiVersion": "imagegate.dev/v1alpha1",
        "kind": "ImagePolicy",
        "metadata": {"name": "evaluate-cli"},
        "spec": {
            "mode": "enforce",
            "unmatched": "deny",
            "registries": {"allow": [plain_registry.host], "insecure": [plain_registry.host]},
            "tags": {"resolve": True, "deny": ["latest"]},
            "rules": [{"name": "team", "images": [f"{plain_registry.host}/team/**"]}],
        },
    }
    path = directory / "policy.yaml"
    path.write_text(yaml.safe_dump(policy, sort_keys=False))
    return World(plain_registry, path, directory, image)


def deployment(directory: Path, image: str) -> Path:
    """``kubectl create deployment web --image=IMAGE --dry-run=client -o yaml`` written to a file."""
    made = subprocess.run(
        [kubectl(), "create", "deployment", "web", f"--image={image}", "--dry-run=client", "-o", "yaml"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    path = directory / f"deployment-{uuid.uuid4().hex[:8]}.yaml"
    path.write_text(made.stdout)
    return path


def blocks(stdout: str) -> dict[str, list[str]]:
    """Human output per input: its label line -> the (stripped) lines printed under it.

    Only what the command line promises is asserted (decision, reason code, rule, digest, patch per image),
    not the exact layout of each line.
    """
    found: dict[str, list[str]] = {}
    current: list[str] = []
    for text in stdout.splitlines():
        if text and not text.startswith(" "):
            current = found.setdefault(text, [])
        else:
            current.append(text.strip())
    return found


def patch_line(lines: list[str]) -> list[dict[str, Any]]:
    patches = [text.removeprefix("patch:").strip() for text in lines if text.startswith("patch:")]
    assert len(patches) == 1, lines
    ops: list[dict[str, Any]] = json.loads(patches[0])
    return ops


def decoded_patch(response: dict[str, Any]) -> list[dict[str, Any]]:
    assert response["patchType"] == "JSONPatch"
    ops: list[dict[str, Any]] = json.loads(base64.b64decode(response["patch"]))
    return ops


def test_evaluate_pins_a_kubectl_deployment(world: World) -> None:
    image = world.registry.ref(REPO, "1.0")
    pinned = f"{image}@{world.image.digest}"
    manifest = deployment(world.directory, image)
    container = yaml.safe_load(manifest.read_text())["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == image

    result = imagegate("evaluate", "--policy", str(world.policy), str(manifest))

    assert result.returncode == 0, result.stdout + result.stderr
    op = {"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": pinned}
    output = blocks(result.stdout)
    assert list(output) == ["Deployment default/web"]
    lines = output["Deployment default/web"]
    image_lines = [text for text in lines if text.startswith(f"container {json.dumps(container['name'])} ")]
    assert len(image_lines) == 1, lines
    assert "allowed (admitted)" in image_lines[0]
    assert "rule team" in image_lines[0]
    assert f"digest {world.image.digest}" in image_lines[0]
    assert pinned in image_lines[0]
    assert patch_line(lines) == [op]
    assert lines[-1] == "result: allowed"


def test_evaluate_latest_exits_1_with_tag_denied(world: World) -> None:
    image = world.registry.ref(REPO, "latest")
    manifest = deployment(world.directory, image)
    # The same image in an AdmissionReview, as the API server would send it.
    review_file = world.directory / "review-latest.json"
    review_file.write_text(json.dumps(review("Pod", [image], namespace="prod", name="web")))
    before = world.registry.requests(path=r"^/v2/team/app/manifests/latest$")

    result = imagegate("evaluate", "--policy", str(world.policy), str(manifest), str(review_file))

    assert result.returncode == 1, result.stdout + result.stderr
    denial = f'container "app" image "{image}": denied [tag-denied] tag "latest" is mutable and not allowed'
    output = blocks(result.stdout)
    assert list(output) == ["Deployment default/web", "Pod prod/web (CREATE)"]
    for lines in output.values():
        assert lines[-1] == "result: denied"
        assert any(text.startswith(f"{denial} (rule team)") for text in lines), lines
        assert not any(text.startswith("patch:") for text in lines)
    # A denied tag is never looked up.
    assert world.registry.requests(path=r"^/v2/team/app/manifests/latest$") == before


def test_evaluate_json_prints_mutate_and_validate_per_input(world: World) -> None:
    image = world.registry.ref(REPO, "1.0")
    pinned = f"{image}@{world.image.digest}"
    manifest = deployment(world.directory, image)
    admission = review("CronJob", [image], namespace="batch", name="nightly", uid="cronjob-review-uid")
    review_file = world.directory / "review.json"
    review_file.write_text(json.dumps(admission))

    result = imagegate("evaluate", "--json", "--policy", str(world.policy), str(manifest), str(review_file))

    assert result.returncode == 0, result.stdout + result.stderr
    reviews = json.loads(result.stdout)
    assert len(reviews) == 4
    assert all((r["apiVersion"], r["kind"]) == ("admission.k8s.io/v1", "AdmissionReview") for r in reviews)
    mutate, validate, cron_mutate, cron_validate = (r["response"] for r in reviews)
    assert mutate["allowed"] is True and validate["allowed"] is True
    assert decoded_patch(mutate) == [
        {"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": pinned}
    ]
    # /validate sees the patched object: pinned, nothing left to change.
    assert "patch" not in validate
    assert json.loads(validate["auditAnnotations"]["images"])[0]["image"] == pinned
    # The AdmissionReview input keeps its uid and is pinned at its own pod-spec location.
    assert cron_mutate["uid"] == cron_validate["uid"] == "cronjob-review-uid"
    assert decoded_patch(cron_mutate) == [
        {"op": "replace", "path": "/spec/jobTemplate/spec/template/spec/containers/0/image", "value": pinned}
    ]
    assert cron_validate["allowed"] is True and "patch" not in cron_validate


def test_evaluate_json_labels_each_answer_with_its_stage_and_input_and_decodes_the_patch(
    world: World,
) -> None:
    image = world.registry.ref(REPO, "1.0")
    pinned = f"{image}@{world.image.digest}"
    listed = world.directory / "list.yaml"
    pods = [
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": {"containers": [c]}}
        for name, c in (("first", {"name": "a", "image": image}), ("second", {"name": "b", "image": pinned}))
    ]
    listed.write_text(
        yaml.safe_dump_all([{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "svc"}}])
        + "---\n"
        + yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": pods})
    )
    admission = review("CronJob", [image], namespace="batch", name="nightly", uid="cronjob-review-uid")
    review_file = world.directory / "labelled-review.json"
    review_file.write_text(json.dumps(admission))

    result = imagegate("evaluate", "--json", "--policy", str(world.policy), str(listed), str(review_file))

    assert result.returncode == 0, result.stdout + result.stderr
    answers = json.loads(result.stdout)
    assert [(a["stage"], a["input"]["kind"], a["input"]["name"]) for a in answers] == [
        ("mutate", "Service", "svc"),
        ("validate", "Service", "svc"),
        ("mutate", "Pod", "first"),
        ("validate", "Pod", "first"),
        ("mutate", "Pod", "second"),
        ("validate", "Pod", "second"),
        ("mutate", "CronJob", "nightly"),
        ("validate", "CronJob", "nightly"),
    ]
    service, _, first, first_validated, second, _, cron, _ = answers
    assert service["input"] == {
        "source": str(listed),
        "document": 1,
        "from": "manifest",
        "kind": "Service",
        "namespace": "default",
        "name": "svc",
        "operation": "CREATE",
        "uid": service["response"]["uid"],
    }
    assert (first["input"]["document"], first["input"]["item"]) == (2, 0)
    assert (second["input"]["document"], second["input"]["item"]) == (2, 1)
    assert cron["input"] == {
        "source": str(review_file),
        "document": 1,
        "from": "AdmissionReview",
        "kind": "CronJob",
        "namespace": "batch",
        "name": "nightly",
        "operation": "CREATE",
        "uid": "cronjob-review-uid",
    }
    # The patch decoded beside the base64 the API server gets; answers without one have neither.
    assert (
        first["patch"]
        == decoded_patch(first["response"])
        == [{"op": "replace", "path": "/spec/containers/0/image", "value": pinned}]
    )
    assert cron["patch"] == [
        {"op": "replace", "path": "/spec/jobTemplate/spec/template/spec/containers/0/image", "value": pinned}
    ]
    assert "patch" not in first_validated and "patch" not in second
    assert all((a["apiVersion"], a["kind"]) == ("admission.k8s.io/v1", "AdmissionReview") for a in answers)


def test_evaluate_default_policy_denies_nginx_latest(world: World) -> None:
    manifest = deployment(world.directory, "nginx:latest")

    result = imagegate("evaluate", "--policy", str(DEFAULT_POLICY), str(manifest))

    assert result.returncode == 1, result.stdout + result.stderr
    denial = (
        'container "nginx" image "nginx:latest": denied [tag-denied] tag "latest" is mutable and not '
        "allowed (rule public-registries)"
    )
    output = blocks(result.stdout)
    assert list(output) == ["Deployment default/web"]
    lines = output["Deployment default/web"]
    assert any(text.startswith(denial) for text in lines), lines
    assert lines[-1] == "result: denied"


def test_evaluate_escapes_outside_text_alike_in_the_image_and_the_reason(world: World) -> None:
    manifest = world.directory / "homoglyph.yaml"
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web"},
        "spec": {"containers": [{"name": "web", "image": "ghcr.io/\u0430cme/app:1.0"}]},  # Cyrillic a
    }
    manifest.write_text(yaml.safe_dump(pod, allow_unicode=True), encoding="utf-8")

    result = imagegate("evaluate", "--policy", str(DEFAULT_POLICY), str(manifest))

    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout.isascii(), result.stdout
    lines = blocks(result.stdout)["Pod default/web"]
    assert lines[0].startswith(
        'container "web" image "ghcr.io/\\u0430cme/app:1.0": denied [invalid-reference] image reference '
        "'ghcr.io/\\u0430cme/app:1.0' has an invalid repository path '\\u0430cme/app' "
    ), lines


def test_evaluate_says_when_an_update_keeps_a_failing_image_running(world: World) -> None:
    missing = world.registry.ref(REPO, "9.9-not-pushed")
    body = review("Deployment", [missing, missing], operation="UPDATE")
    body["request"]["oldObject"]["spec"]["template"]["spec"]["containers"][1]["image"] = world.registry.ref(
        REPO, "1.0"
    )
    path = world.directory / "update.json"
    path.write_text(json.dumps(body))

    result = imagegate("evaluate", "--policy", str(world.policy), str(path))

    assert result.returncode == 1, result.stdout + result.stderr
    (lines,) = blocks(result.stdout).values()
    running, changed = lines[0], lines[1]
    assert running.startswith(f'container "app" image {json.dumps(missing)}: warned [registry-error] ')
    assert running.endswith(
        "already running: this update is allowed, but new pods with this image will be refused"
    ), running
    assert changed.startswith(f'container "app-1" image {json.dumps(missing)}: denied [registry-error] ')
    assert "already running" not in changed


def test_evaluate_with_a_malformed_policy_exits_2(world: World) -> None:
    policy = world.directory / "malformed.yaml"
    policy.write_text(
        "apiVersion: imagegate.dev/v1alpha1\n"
        "kind: ImagePolicy\n"
        "metadata: {name: malformed}\n"
        "spec:\n"
        f"  registries: {{allow: ['{world.registry.host}']}}\n"
        "  mode: sometimes\n"
    )
    manifest = deployment(world.directory, world.registry.ref(REPO, "1.0"))

    result = imagegate("evaluate", "--policy", str(policy), str(manifest))

    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stdout == ""
    assert f"invalid policy {policy}" in result.stderr
    assert re.search(rf"{re.escape(str(policy))}:6: /spec/mode: 'sometimes' is not one of", result.stderr)


def test_resolve_prints_the_digest_reference(world: World) -> None:
    image = world.registry.ref(REPO, "1.0")

    result = imagegate("resolve", "--policy", str(world.policy), image)

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == f"{image} -> {image}@{world.image.digest}\n"


@pytest.mark.parametrize(
    "text",
    [
        '{"kind": "List", "items": ["x"]}',
        '{"kind": "List", "items": 5}',
        '{"kind": "Pod", "metadata": "x", "spec": {"containers": []}}',
        '{"kind": "AdmissionReview", "request": [1]}',
        '{"kind": "AdmissionReview", "request": {"kind": "Pod"}}',
        '{"kind": "AdmissionReview", "request": {"uid": "u", "kind": {"kind": "Pod"}, "object": "x"}}',
        '{"kind": "Pod", "metadata": {"name": "deep"}, "spec": ' + "[" * 5000 + "]" * 5000 + "}",
    ],
)
def test_evaluate_malformed_input_is_an_error_not_a_crash(world: World, text: str) -> None:
    source = world.directory / f"malformed-{uuid.uuid4().hex}.json"
    source.write_text(text)

    result = imagegate("evaluate", "--policy", str(world.policy), str(source))

    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("error: "), result.stderr


def _admission_review(obj: dict[str, Any], *, group: str, resource: str) -> dict[str, Any]:
    kind = {"group": group, "version": "v1", "kind": obj["kind"]}
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": f"uid-{uuid.uuid4().hex[:8]}",
            "kind": kind,
            "resource": {"group": group, "version": "v1", "resource": resource},
            "namespace": "prod",
            "operation": "CREATE",
            "userInfo": {"username": "me"},
            "object": obj,
        },
    }


_TEMPLATE = {
    "metadata": {"labels": {"app": "web"}},
    "spec": {"containers": [{"name": "web", "image": "nginx:latest"}]},
}
ROLLOUT = {
    "apiVersion": "argoproj.io/v1alpha1",
    "kind": "Rollout",
    "metadata": {"name": "web"},
    "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": _TEMPLATE},
}
UNCHECKED = {
    "rollout": (
        _admission_review(ROLLOUT, group="argoproj.io", resource="rollouts"),
        "kind argoproj.io/Rollout is not one imagegate checks",
    ),
    "pod-in-group-apps": (
        _admission_review(
            {"apiVersion": "apps/v1", "kind": "Pod", "metadata": {"name": "web"}, "spec": _TEMPLATE["spec"]},
            group="apps",
            resource="pods",
        ),
        'kind apps/Pod is not one imagegate checks (it checks Pod in the core API group "")',
    ),
    "deployment-without-pod-spec": (
        _admission_review(
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "web"},
                "spec": {"replicas": 1},
            },
            group="apps",
            resource="deployments",
        ),
        "the object has no pod spec at /spec/template/spec",
    ),
    "pod-without-images": (
        _admission_review(
            {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"}, "spec": {"containers": []}},
            group="",
            resource="pods",
        ),
        "the pod spec at /spec has no containers and no image volumes",
    ),
}


@pytest.mark.parametrize("case", sorted(UNCHECKED))
def test_evaluate_says_when_nothing_was_checked_and_why(tmp_path: Path, case: str) -> None:
    body, reason = UNCHECKED[case]
    source = tmp_path / "review.json"
    source.write_text(json.dumps(body))

    text = imagegate("evaluate", "--policy", str(DEFAULT_POLICY), str(source))
    as_json = imagegate("evaluate", "--json", "--policy", str(DEFAULT_POLICY), str(source))

    assert text.returncode == 0, text.stdout + text.stderr
    [lines] = blocks(text.stdout).values()
    assert lines == [f"not checked: {reason}", "result: allowed"]
    assert as_json.returncode == 0, as_json.stdout + as_json.stderr
    responses = [r["response"] for r in json.loads(as_json.stdout)]
    assert len(responses) == 2
    for response in responses:
        assert response["allowed"] is True
        assert response["auditAnnotations"] == {"notChecked": reason}


def test_evaluate_lists_manifests_it_does_not_check(tmp_path: Path) -> None:
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web"},
        "spec": {"ports": [{"port": 80}]},
    }
    source = tmp_path / "app.yaml"
    source.write_text(yaml.safe_dump_all([ROLLOUT, service]))

    result = imagegate("evaluate", "--policy", str(DEFAULT_POLICY), str(source))

    assert result.returncode == 0, result.stdout + result.stderr
    assert blocks(result.stdout) == {
        "Rollout default/web": [
            "not checked: kind argoproj.io/Rollout is not one imagegate checks",
            "result: allowed",
        ],
        "Service default/web": ["not checked: kind Service is not one imagegate checks", "result: allowed"],
    }


def test_evaluate_reads_its_inputs_with_a_bound(tmp_path: Path) -> None:
    """An input is read as the policy's files are, at most 32 MiB: a larger one (or one that never
    ends) is an input error naming it, not a run that eats memory."""
    huge = tmp_path / "huge.yaml"
    with huge.open("wb") as handle:
        handle.truncate(33 * 1024 * 1024)  # sparse: costs no disk
    piped = b"apiVersion: v1\nkind: List\nitems: []\n" + b"#" * (33 * 1024 * 1024) + b"\n"

    from_file = imagegate("evaluate", "--policy", str(DEFAULT_POLICY), str(huge))
    from_stdin = imagegate("evaluate", "--policy", str(DEFAULT_POLICY), "-", stdin=piped.decode())

    assert from_file.returncode == 2, from_file.stdout + from_file.stderr
    assert from_file.stderr == f"error: {huge}: cannot be read: larger than 32 MiB\n"
    assert from_stdin.returncode == 2, from_stdin.stderr
    assert from_stdin.stderr == "error: standard input: cannot be read: larger than 32 MiB\n"
