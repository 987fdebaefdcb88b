"""End to end over real HTTPS: ``/mutate`` records the verified provenance of admitted containers.

``imagegate serve`` under gunicorn, a real docker-registry, images signed and attested with the local
test Sigstore as cosign does (see ``verify_policy``: images under ``release/`` must carry SLSA v1
provenance from acme's release workflow). What the API server would do with each answer is done here:
the patch applied (and the object validated as Kubernetes 1.33 would), the patched object sent again.
"""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.fake_sigstore import SLSA_PROVENANCE_V1, slsa_provenance_v1, statement_v1
from tests.support.oci import Pushed
from tests.support.registry import RegistryServer
from tests.support.reviews import admission_review, review
from tests.support.signing_world import Format
from tests.support.verify_server import BUILDER, VerifyEnv, apply_patch, start_env

pytestmark = [pytest.mark.e2e, pytest.mark.registry, pytest.mark.sigstore]

KEY = "provenance.imagegate.dev/app"


@pytest.fixture(scope="module")
def env(
    tmp_path_factory: pytest.TempPathFactory,
    plain_registry: RegistryServer,
) -> Iterator[VerifyEnv]:
    with start_env(tmp_path_factory.mktemp("provenance"), plain_registry) as running:
        yield running


def _release(env: VerifyEnv, repo: str, tag: str, *, commit: str, fmt: Format = "bundle") -> Pushed:
    """An image signed by acme's release workflow, with SLSA v1 provenance naming ``commit``."""
    world = env.world
    image = world.push_image(repo, tag, content=f"{repo}:{tag}".encode())
    world.sign_and_push(repo, image, by=env.workflow, fmt=fmt)
    predicate = slsa_provenance_v1(ref="refs/tags/v1.0.0", builder_id=BUILDER, commit=commit)
    statement = statement_v1(image.digest, SLSA_PROVENANCE_V1, predicate, name=world.name(repo))
    world.attest_and_push(repo, image, statement, by=env.workflow, fmt=fmt)
    return image


def _ops(response: dict[str, Any]) -> list[dict[str, Any]]:
    return json.loads(base64.b64decode(response["patch"])) if "patch" in response else []


def _template(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    if kind == "Pod":
        return obj
    if kind == "CronJob":
        template: dict[str, Any] = obj["spec"]["jobTemplate"]["spec"]["template"]
        return template
    template = obj["spec"]["template"]
    return template


@pytest.mark.parametrize(
    ("kind", "fmt"), [("Deployment", "bundle"), ("CronJob", "legacy"), ("Pod", "bundle")]
)
def test_admitted_containers_carry_the_commit_their_verified_provenance_names(
    env: VerifyEnv, kind: str, fmt: Format
) -> None:
    repo = f"release/{kind.lower()}"
    commit = "1" * 40
    image = _release(env, repo, "v1", commit=commit, fmt=fmt)
    body = review(kind, [env.world.ref(repo, "v1")], namespace="prod")
    mutated = env.server.admit("/mutate", body)
    assert mutated["allowed"] is True, mutated.get("status")
    patched = apply_patch(body, mutated)  # valid for Kubernetes 1.33, strictly
    recorded = json.loads(_template(patched, kind)["metadata"]["annotations"][KEY])
    assert recorded == {
        "digest": image.digest,
        "repository": "github.com/acme/app",
        "ref": "refs/tags/v1.0.0",
        "commit": commit,
        "builder": BUILDER,
        "attested": recorded["attested"],  # the attestation's transparency-log time
        "policy": "e2e-verify",
        "rule": "provenance",
    }
    assert recorded["attested"].endswith("Z")

    # The mutating webhook called again on its own output (reinvocation): nothing more to change.
    again = env.server.admit("/mutate", admission_review(patched, kind=kind, namespace="prod"))
    assert again["allowed"] is True and "patch" not in again
    validated = env.server.admit("/validate", admission_review(patched, kind=kind, namespace="prod"))
    assert validated["allowed"] is True, validated.get("status")


def test_updates_that_keep_images_running_never_touch_the_template(env: VerifyEnv) -> None:
    repo = "release/rollout"
    _release(env, repo, "v1", commit="2" * 40)
    body = review("Deployment", [env.world.ref(repo, "v1")], namespace="prod")
    created = apply_patch(body, env.server.admit("/mutate", body))

    scaled = copy.deepcopy(created)
    scaled["spec"]["replicas"] = 4
    update = admission_review(
        scaled, kind="Deployment", operation="UPDATE", old_object=created, namespace="prod"
    )
    answer = env.server.admit("/mutate", update)
    assert answer["allowed"] is True and "patch" not in answer

    # kubectl replace (or server-side apply) of the manifest without the annotation: it comes back.
    replaced = copy.deepcopy(scaled)
    del replaced["spec"]["template"]["metadata"]["annotations"]
    update = admission_review(
        replaced, kind="Deployment", operation="UPDATE", old_object=created, namespace="prod"
    )
    restored = apply_patch(update, env.server.admit("/mutate", update))
    assert restored["spec"]["template"] == created["spec"]["template"]

    # A pod the ReplicaSet creates from the template keeps the template's annotation as it is.
    template = created["spec"]["template"]
    pod = review("Pod", [("app", template["spec"]["containers"][0]["image"])], namespace="prod")
    pod["request"]["object"]["metadata"]["annotations"] = dict(template["metadata"]["annotations"])
    answer = env.server.admit("/mutate", pod)
    assert answer["allowed"] is True and "patch" not in answer


def test_a_new_image_gets_its_own_provenance_recorded(env: VerifyEnv) -> None:
    repo = "release/upgrade"
    _release(env, repo, "v1", commit="3" * 40)
    second = _release(env, repo, "v2", commit="4" * 40)
    body = review("Deployment", [env.world.ref(repo, "v1")], namespace="prod")
    created = apply_patch(body, env.server.admit("/mutate", body))

    upgraded = copy.deepcopy(created)
    upgraded["spec"]["template"]["spec"]["containers"][0]["image"] = env.world.ref(repo, "v2")
    update = admission_review(
        upgraded, kind="Deployment", operation="UPDATE", old_object=created, namespace="prod"
    )
    answer = env.server.admit("/mutate", update)
    patched = apply_patch(update, answer)
    recorded = json.loads(patched["spec"]["template"]["metadata"]["annotations"][KEY])
    assert (recorded["digest"], recorded["commit"]) == (second.digest, "4" * 40)
    assert [op["op"] for op in _ops(answer)] == ["replace", "add"]  # the pin, then the annotation


def test_images_without_verified_provenance_get_no_annotation(env: VerifyEnv) -> None:
    # Signed, but governed only by a signature rule: no provenance was verified.
    repo = "keyless/plain"
    image = env.world.push_image(repo, "v1", content=b"plain")
    env.world.sign_and_push(repo, image, by=env.workflow, fmt="bundle")
    body = review("Pod", [env.world.ref(repo, "v1")], namespace="prod")
    body["request"]["object"]["metadata"]["annotations"] = {KEY: json.dumps({"commit": "f" * 40})}
    answer = env.server.admit("/mutate", body)
    assert answer["allowed"] is True, answer.get("status")
    patched = apply_patch(body, answer)
    assert KEY not in patched["metadata"]["annotations"]  # a claim imagegate did not verify is dropped
