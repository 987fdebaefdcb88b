"""``/mutate`` records verified provenance on the objects it admits (the service with fake adapters).

The annotation format and its patch are pinned in ``tests/admission/test_provenance.py``; these tests
pin when the service asks for them: which images, which stages and operations, and that nothing
changes on reinvocation or on an UPDATE that keeps every image running.
"""

from __future__ import annotations

import base64
import copy
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import jsonpatch

from tests.support.fake_sigstore import generate_key
from tests.support.reviews import admission_review, review
from webhook.admission.provenance import PREFIX
from webhook.deadline import Deadline
from webhook.decision import ImagePlan
from webhook.facts import (
    ArtifactCheck,
    Finding,
    ImageFacts,
    Provenance,
    RequirementCheck,
    RuleVerification,
)
from webhook.policy.material import KeyMaterial
from webhook.policy.model import (
    AttestationRequirement,
    KeySigner,
    Policy,
    Registries,
    Rule,
    SignatureRequirement,
    Tags,
    Trust,
    TrustKey,
)
from webhook.reasons import Reason
from webhook.service import AdmissionService
from webhook.settings import Settings

SLSA = "https://slsa.dev/provenance/v1"
DIGEST = "sha256:" + "d" * 64
COMMIT = "4d329c75e7ec1725f7c9ce917a8799d408d06be3"
_PEM = generate_key("ecdsa-p256").public_pem
_RELEASE = (KeySigner("release"),)
POLICY = Policy(
    name="prod",
    source="p.yaml",
    registries=Registries(allow=("ghcr.io",)),
    tags=Tags(resolve=True, deny=("latest",)),
    trust=Trust(keys=(TrustKey("release", KeyMaterial.parse(_PEM)),)),
    rules=(
        Rule(
            name="built",
            images=("ghcr.io/acme/**",),
            attestations=(AttestationRequirement(SLSA, _RELEASE),),
        ),
        Rule(
            name="signed",
            images=("ghcr.io/acme/warned/**",),
            mode="warn",
            signatures=SignatureRequirement(_RELEASE),
        ),
        Rule(name="other", images=("ghcr.io/other/**",)),
    ),
    fingerprint="f" * 64,
)
PROVENANCE = Provenance(
    SLSA,
    builder_id="https://github.com/actions/runner/github-hosted",
    repository="github.com/acme/app",
    ref="refs/tags/v1.2.0",
    commit=COMMIT,
    finished=datetime(2026, 11, 20, 10, 0, tzinfo=UTC),
)


def _verified(rule: str, *, passed: bool = True) -> RuleVerification:
    artifact = ArtifactCheck(
        artifact="bundle",
        kind="bundle",
        manifest="sha256:" + "a" * 64,
        verdict="satisfied" if passed else "invalid",
        detail="",
        satisfies=(1,) if passed else (),
        provenance=PROVENANCE if rule == "built" else None,
    )
    findings = () if passed else (Finding(Reason.UNSIGNED, "no signature found"),)
    requirement = RequirementCheck(rule, ("key release",), 1, int(passed), (artifact,), findings)
    return RuleVerification(rule=rule, digest=DIGEST, findings=findings, requirements=(requirement,))


@dataclass
class Gatherer:
    """Every tag resolves to DIGEST; rules verify as ``verified`` says (missing: it passes)."""

    verified: dict[str, bool] = field(default_factory=dict)

    def __call__(self, plan: ImagePlan, *, deadline: Deadline, now: datetime) -> ImageFacts:
        return ImageFacts(
            digest=DIGEST,
            verifications=tuple(
                _verified(r.name, passed=self.verified.get(r.name, True)) for r in plan.verify_rules
            ),
        )


@dataclass
class Runtime:
    gatherer: Gatherer

    def current(self) -> tuple[Policy, Gatherer]:
        return POLICY, self.gatherer


def _service(gatherer: Gatherer | None = None) -> AdmissionService:
    return AdmissionService(
        settings=Settings(audit_log=False),
        runtime=Runtime(gatherer or Gatherer()),
        clock=lambda: datetime(2026, 11, 26, tzinfo=UTC),
    )


def _ops(response: dict[str, Any]) -> list[dict[str, Any]]:
    if "patch" not in response:
        return []
    ops: list[dict[str, Any]] = json.loads(base64.b64decode(response["patch"]))
    return ops


def _mutate(body: dict[str, Any], gatherer: Gatherer | None = None) -> dict[str, Any]:
    response: dict[str, Any] = dict(_service(gatherer).admit(body, stage="mutate").review["response"])
    return response


def test_a_created_deployment_gets_the_source_commit_of_each_verified_container() -> None:
    body = review("Deployment", [("web", "ghcr.io/acme/app:1.2.0"), ("proxy", "ghcr.io/other/proxy:1")])
    response = _mutate(body)
    assert response["allowed"] is True
    ops = _ops(response)
    assert [op["path"] for op in ops] == [
        "/spec/template/spec/containers/0/image",
        "/spec/template/spec/containers/1/image",
        "/spec/template/metadata/annotations",
    ]
    annotations = ops[-1]["value"]
    assert list(annotations) == [f"{PREFIX}web"]  # proxy: governed by a rule that verifies nothing
    assert json.loads(annotations[f"{PREFIX}web"]) == {
        "digest": DIGEST,
        "repository": "github.com/acme/app",
        "ref": "refs/tags/v1.2.0",
        "commit": COMMIT,
        "builder": "https://github.com/actions/runner/github-hosted",
        "finished": "2026-11-20T10:00:00Z",
        "policy": "prod",
        "rule": "built",
    }


def test_reinvocation_and_the_validating_webhook_change_nothing() -> None:
    body = review("Deployment", [("web", "ghcr.io/acme/app:1.2.0")])
    patched = jsonpatch.apply_patch(body["request"]["object"], _ops(_mutate(body)))
    again = admission_review(patched, kind="Deployment")
    assert _ops(_mutate(again)) == []
    validated = _service().admit(again, stage="validate").review["response"]
    assert validated["allowed"] is True and "patch" not in validated
    # A pod created from the template carries the same annotation, which stays as it is.
    template = patched["spec"]["template"]
    pod = review("Pod", [("web", template["spec"]["containers"][0]["image"])])
    pod["request"]["object"]["metadata"]["annotations"] = dict(template["metadata"]["annotations"])
    assert _ops(_mutate(pod)) == []


def test_an_update_that_keeps_every_image_running_gets_no_patch() -> None:
    body = review("Deployment", [("web", "ghcr.io/acme/app:1.2.0")])
    patched = jsonpatch.apply_patch(body["request"]["object"], _ops(_mutate(body)))
    scaled = copy.deepcopy(patched)
    scaled["spec"]["replicas"] = 5
    update = admission_review(scaled, kind="Deployment", operation="UPDATE", old_object=patched)
    response = _mutate(update)
    assert response["allowed"] is True and "patch" not in response
    # Sent without the annotation (kubectl replace), the template is put back as it was.
    stripped = copy.deepcopy(scaled)
    del stripped["spec"]["template"]["metadata"]["annotations"]
    update = admission_review(stripped, kind="Deployment", operation="UPDATE", old_object=patched)
    restored = jsonpatch.apply_patch(stripped, _ops(_mutate(update)))
    assert restored["spec"]["template"] == patched["spec"]["template"]


def test_an_update_to_a_new_image_records_its_provenance() -> None:
    old = review("Deployment", [("web", f"ghcr.io/acme/app:1.1.0@{DIGEST}")])["request"]["object"]
    old["spec"]["template"]["metadata"]["annotations"] = {f"{PREFIX}web": json.dumps({"commit": "0" * 40})}
    new = copy.deepcopy(old)
    new["spec"]["template"]["spec"]["containers"][0]["image"] = "ghcr.io/acme/app:1.2.0"
    response = _mutate(admission_review(new, kind="Deployment", operation="UPDATE", old_object=old))
    patched = jsonpatch.apply_patch(new, _ops(response))
    recorded = json.loads(patched["spec"]["template"]["metadata"]["annotations"][f"{PREFIX}web"])
    assert recorded["commit"] == COMMIT


def test_denied_objects_get_no_patch_and_warned_images_keep_their_verified_provenance() -> None:
    denied = _mutate(review("Pod", ["ghcr.io/acme/app:1.2.0"]), Gatherer(verified={"built": False}))
    assert denied["allowed"] is False and "patch" not in denied
    # The warn rule's signature fails; the provenance was verified by another rule all the same.
    warned = _mutate(review("Pod", ["ghcr.io/acme/warned/app:1"]), Gatherer(verified={"signed": False}))
    assert warned["allowed"] is True and warned["warnings"]
    [annotation] = [op for op in _ops(warned) if op["path"] == "/metadata/annotations"]
    assert json.loads(annotation["value"][f"{PREFIX}app"])["rule"] == "built"


def test_a_subresource_update_changes_no_annotation() -> None:
    body = review(
        "Pod", [f"ghcr.io/acme/app@{DIGEST}"], ephemeral_images=["ghcr.io/acme/debug:1"], operation="UPDATE"
    )
    body["request"]["subResource"] = "ephemeralcontainers"
    body["request"]["oldObject"]["spec"].pop("ephemeralContainers")
    ops = _ops(_mutate(body))
    assert [op["path"] for op in ops] == ["/spec/ephemeralContainers/0/image"]


def test_what_does_not_fit_is_named_in_the_audit_annotations() -> None:
    names = [f"c{i}" for i in range(200)]
    body = review("Pod", [(name, "ghcr.io/acme/app:1") for name in names])
    body["request"]["object"]["metadata"]["annotations"] = {"big": "x" * (200 * 1024)}
    response = _mutate(body)
    omitted = response["auditAnnotations"]["provenanceOmitted"].split(", ")
    assert omitted and omitted == names[-len(omitted) :]


def test_running_images_left_unjudged_past_the_image_limit_keep_their_annotations() -> None:
    images = [("web", f"ghcr.io/acme/app:1@{DIGEST}"), ("api", f"ghcr.io/acme/api:1@{DIGEST}")]
    created = review("Deployment", images)["request"]["object"]
    created["spec"]["template"]["metadata"]["annotations"] = {
        f"{PREFIX}web": json.dumps({"commit": "1" * 40}),
        f"{PREFIX}api": json.dumps({"commit": "2" * 40}),
    }
    scaled = copy.deepcopy(created)
    scaled["spec"]["replicas"] = 3
    update = admission_review(scaled, kind="Deployment", operation="UPDATE", old_object=created)
    # One image is judged, the other is left running unchecked: neither annotation may change.
    service = AdmissionService(
        settings=Settings(audit_log=False, max_images=1),
        runtime=Runtime(Gatherer()),
        clock=lambda: datetime(2026, 11, 26, tzinfo=UTC),
    )
    response = service.admit(update, stage="mutate").review["response"]
    assert response["allowed"] is True
    assert "patch" not in response, _ops(dict(response))
