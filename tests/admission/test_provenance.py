"""Provenance annotations (pure): the JSONPatch that records verified provenance on admitted objects.

Patched objects are checked the way the API server would see them: applied with ``jsonpatch`` and with
``kubectl patch --local --type=json`` (Go's json-patch, the library family the API server applies
webhook patches with), and validated with ``kubernetes-validate`` (strict, 1.33).
"""

from __future__ import annotations

import copy
import json
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jsonpatch
import kubernetes_validate  # type: ignore[import-untyped]
import pytest

from tests.support.reviews import KINDS, kubectl, review
from webhook.admission.provenance import (
    MAX_TOTAL,
    PREFIX,
    VOLUME_PREFIX,
    ProvenanceRecord,
    annotation_key,
    provenance_patch,
)
from webhook.admission.workloads import ImageSlot, image_slots

DIGEST = "sha256:" + "d" * 64
RECORD = ProvenanceRecord(
    digest=DIGEST,
    repository="github.com/acme/app",
    ref="refs/tags/v1.2.0",
    commit="4d329c75e7ec1725f7c9ce917a8799d408d06be3",
    builder="https://github.com/actions/runner/github-hosted",
    finished="2026-11-20T10:00:00Z",
    policy="production",
    rule="acme-release",
)
# Where each kind keeps the annotations its pods get.
ANNOTATIONS = {
    "Pod": ("metadata",),
    "PodTemplate": ("template", "metadata"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "metadata"),
}


def _object(kind: str, images: Sequence[Any] = ("ghcr.io/acme/app:1",), **more: Any) -> dict[str, Any]:
    obj: dict[str, Any] = review(kind, images, **more)["request"]["object"]
    return obj


def _metadata(kind: str, obj: Mapping[str, Any]) -> dict[str, Any]:
    value: Any = obj
    for key in ANNOTATIONS.get(kind, ("spec", "template", "metadata")):
        value = value[key]
    return dict(value)


def _patch(
    kind: str,
    obj: Mapping[str, Any],
    records: Mapping[str, ProvenanceRecord | None],
    *,
    old: Mapping[str, Any] | None = None,
) -> tuple[list[dict[str, Any]], tuple[str, ...]]:
    """The operations for ``obj`` with ``records`` by container name (absent: no provenance)."""
    group = KINDS[kind][0]
    slots = image_slots(kind, obj, group=group)
    old_slots = image_slots(kind, old, group=group) if old is not None else ()
    running = frozenset(
        s.pointer
        for s in slots
        if any((o.location, o.name, o.image) == (s.location, s.name, s.image) for o in old_slots)
    )
    return provenance_patch(
        kind=kind,
        group=group,
        obj=obj,
        old=old,
        old_slots=old_slots,
        records=[(slot, records.get(slot.name)) for slot in slots],
        running=running,
    )


def _apply(obj: Mapping[str, Any], ops: list[dict[str, Any]]) -> dict[str, Any]:
    patched: dict[str, Any] = jsonpatch.apply_patch(copy.deepcopy(dict(obj)), ops)
    kubernetes_validate.validate(patched, "1.33.0", strict=True)
    return patched


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_kind_gets_its_pods_annotated_and_stays_valid(kind: str) -> None:
    obj = _object(kind, ["ghcr.io/acme/app:1", "ghcr.io/acme/sidecar:2"])
    ops, omitted = _patch(kind, obj, {"app": RECORD})
    assert omitted == ()
    patched = _apply(obj, ops)
    annotations = _metadata(kind, patched)["annotations"]
    assert annotations == {f"{PREFIX}app": RECORD.value()}
    assert json.loads(annotations[f"{PREFIX}app"]) == {
        "digest": DIGEST,
        "repository": "github.com/acme/app",
        "ref": "refs/tags/v1.2.0",
        "commit": "4d329c75e7ec1725f7c9ce917a8799d408d06be3",
        "builder": "https://github.com/actions/runner/github-hosted",
        "finished": "2026-11-20T10:00:00Z",
        "policy": "production",
        "rule": "acme-release",
    }
    # Called again on its own output (reinvocation), nothing changes.
    assert _patch(kind, patched, {"app": RECORD}) == ([], ())


def test_keys_are_escaped_in_the_patch_path_and_existing_annotations_are_kept() -> None:
    obj = _object("Deployment")
    obj["spec"]["template"]["metadata"]["annotations"] = {"team": "payments", "a/b~c": "x"}
    ops, _ = _patch("Deployment", obj, {"app": RECORD})
    assert ops == [
        {
            "op": "add",
            "path": "/spec/template/metadata/annotations/provenance.imagegate.dev~1app",
            "value": RECORD.value(),
        }
    ]
    assert _metadata("Deployment", _apply(obj, ops))["annotations"]["team"] == "payments"


def test_missing_annotations_or_metadata_are_created_with_one_add() -> None:
    pod = _object("Pod")
    assert "annotations" not in pod["metadata"]
    assert _patch("Pod", pod, {"app": RECORD})[0] == [
        {"op": "add", "path": "/metadata/annotations", "value": {f"{PREFIX}app": RECORD.value()}}
    ]
    job = _object("Job")
    del job["spec"]["template"]["metadata"]  # a Job's template may have none
    ops, _ = _patch("Job", job, {"app": RECORD})
    assert ops == [
        {
            "op": "add",
            "path": "/spec/template/metadata",
            "value": {"annotations": {f"{PREFIX}app": RECORD.value()}},
        }
    ]
    _apply(job, ops)
    pod["metadata"]["annotations"] = None
    assert _patch("Pod", pod, {"app": RECORD})[0][0]["path"] == "/metadata/annotations"


def test_a_create_removes_annotations_imagegate_did_not_vouch_for() -> None:
    pod = _object("Pod", ["ghcr.io/acme/app:1", "ghcr.io/acme/other:1"])
    forged = json.dumps({"commit": "f" * 40})
    pod["metadata"]["annotations"] = {
        f"{PREFIX}app": forged,  # no verified provenance for it
        f"{PREFIX}ghost": forged,  # no such container
        f"{PREFIX}app-1": forged,  # replaced by what was verified
        "keep": "me",
    }
    ops, _ = _patch("Pod", pod, {"app-1": RECORD})
    assert _apply(pod, ops)["metadata"]["annotations"] == {"keep": "me", f"{PREFIX}app-1": RECORD.value()}


def test_an_update_that_changes_no_image_changes_no_annotation() -> None:
    old = _apply(_object("Deployment"), _patch("Deployment", _object("Deployment"), {"app": RECORD})[0])
    new = copy.deepcopy(old)
    new["spec"]["replicas"] = 3
    # Even with another (say, newer) provenance known for the running image: it keeps its annotation.
    other = ProvenanceRecord(digest=DIGEST, commit="e" * 40)
    assert _patch("Deployment", new, {"app": other}, old=old) == ([], ())
    assert _patch("Deployment", new, {}, old=old) == ([], ())


def test_an_update_that_drops_the_annotations_of_running_containers_gets_them_back() -> None:
    """``kubectl replace`` or server-side apply of the manifest: the template must not change."""
    old = _apply(_object("Deployment"), _patch("Deployment", _object("Deployment"), {"app": RECORD})[0])
    old["spec"]["template"]["metadata"]["annotations"][f"{PREFIX}gone-before"] = "kept"  # a leftover
    new = copy.deepcopy(old)
    del new["spec"]["template"]["metadata"]["annotations"]
    ops, _ = _patch("Deployment", new, {}, old=old)
    assert _apply(new, ops)["spec"]["template"] == old["spec"]["template"]
    # A client that edits one gets the old value back too: annotations of running containers are not forged.
    edited = copy.deepcopy(old)
    edited["spec"]["template"]["metadata"]["annotations"][f"{PREFIX}app"] = json.dumps({"commit": "f" * 40})
    ops, _ = _patch("Deployment", edited, {}, old=old)
    assert _apply(edited, ops)["spec"]["template"] == old["spec"]["template"]


def test_an_update_sets_changed_containers_and_removes_removed_ones() -> None:
    before = _object(
        "Deployment", [("app", "ghcr.io/acme/app:1"), ("api", "ghcr.io/acme/api:1"), ("old", "x/y:1")]
    )
    old = _apply(before, _patch("Deployment", before, {"app": RECORD, "api": RECORD, "old": RECORD})[0])
    new = copy.deepcopy(old)
    containers = new["spec"]["template"]["spec"]["containers"]
    containers[0]["image"] = "ghcr.io/acme/app:2"  # changed, with provenance
    containers[1]["image"] = "ghcr.io/acme/api:2"  # changed, without
    del containers[2]  # removed
    newer = ProvenanceRecord(digest="sha256:" + "e" * 64, commit="e" * 40)
    ops, _ = _patch("Deployment", new, {"app": newer, "api": None}, old=old)
    assert sorted((op["op"], op["path"].rsplit("~1", 1)[-1]) for op in ops) == [
        ("add", "app"),
        ("remove", "api"),
        ("remove", "old"),
    ]
    assert _metadata("Deployment", _apply(new, ops))["annotations"] == {f"{PREFIX}app": newer.value()}


def test_image_volumes_have_their_own_prefix() -> None:
    pod = _object("Pod", ["ghcr.io/acme/app:1"], volume_images=[("app", "ghcr.io/acme/model:1")])
    ops, _ = _patch("Pod", pod, {"app": RECORD})
    assert set(_apply(pod, ops)["metadata"]["annotations"]) == {f"{PREFIX}app", f"{VOLUME_PREFIX}app"}


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("app", f"{PREFIX}app"),
        ("a" * 63, f"{PREFIX}{'a' * 63}"),
        ("a" * 64, None),  # not a container name, and not a key
        ("App_1.x", f"{PREFIX}App_1.x"),
        ("-app", None),
        ("app/../x", None),
        ("", None),
    ],
)
def test_annotation_keys_are_only_made_from_valid_names(name: str, key: str | None) -> None:
    slot = ImageSlot(pointer="/spec/containers/0/image", location="containers", name=name, image="x")
    assert annotation_key(slot) == key


def test_a_long_field_is_left_out_and_named() -> None:
    record = ProvenanceRecord(digest=DIGEST, ref="refs/heads/" + "x" * 600, commit="c" * 40)
    assert json.loads(record.value()) == {"digest": DIGEST, "commit": "c" * 40, "dropped": ["ref"]}


def test_annotations_are_bounded_and_what_does_not_fit_is_named() -> None:
    huge = ProvenanceRecord(
        digest=DIGEST, **{name: "x" * 500 for name in ("repository", "ref", "builder", "policy")}
    )
    names = [f"c{i}" for i in range(60)]
    pod = _object("Pod", [(name, f"ghcr.io/acme/{name}:1") for name in names])
    ops, omitted = _patch("Pod", pod, dict.fromkeys(names, huge))
    annotations = _apply(pod, ops)["metadata"]["annotations"]
    size = sum(len(k) + len(v) for k, v in annotations.items())
    assert size <= MAX_TOTAL
    assert omitted and list(omitted) == names[len(annotations) :]  # the first containers first
    # Other annotations leave less room: never more than the object's limit (256 KiB) minus 8 KiB.
    pod["metadata"]["annotations"] = {"kubectl.kubernetes.io/last-applied-configuration": "x" * (240 * 1024)}
    ops, omitted = _patch("Pod", pod, dict.fromkeys(names, huge))
    annotations = _apply(pod, ops)["metadata"]["annotations"]
    assert sum(len(k) + len(v) for k, v in annotations.items()) <= 248 * 1024
    assert len(omitted) == 60 - (len(annotations) - 1)


def test_what_the_api_server_applies_is_what_imagegate_meant(tmp_path: Path) -> None:
    """The same patch through Go's json-patch (``kubectl patch --local``), and the operator guide's query."""
    obj = _object("Pod", [("web", "ghcr.io/acme/web:1")])
    obj["metadata"]["annotations"] = {"team": "payments"}
    ops, _ = _patch("Pod", obj, {"web": RECORD})
    source = tmp_path / "pod.json"
    source.write_text(json.dumps(obj))
    applied = subprocess.run(
        [
            kubectl(),
            "patch",
            "--local",
            "-f",
            str(source),
            "--type=json",
            "-p",
            json.dumps(ops),
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert json.loads(applied.stdout)["metadata"] == _apply(obj, ops)["metadata"]
    # deploy/README.md: "which commit is running here", answered by kubectl's own jsonpath.
    query = r"jsonpath={.metadata.annotations.provenance\.imagegate\.dev/web}"
    answered = subprocess.run(
        [kubectl(), "patch", "--local", "-f", str(source), "--type=json", "-p", json.dumps(ops), "-o", query],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert json.loads(answered.stdout)["commit"] == "4d329c75e7ec1725f7c9ce917a8799d408d06be3"


def test_objects_of_other_shapes_are_left_alone() -> None:
    pod = _object("Pod")
    pod["metadata"]["annotations"] = {"x": 1}  # not a map of strings: the API server refuses it
    assert _patch("Pod", pod, {"app": RECORD}) == ([], ())
    assert provenance_patch(
        kind="Service", group="", obj={}, old=None, old_slots=(), records=(), running=frozenset()
    ) == ([], ())


def test_annotations_an_update_gets_back_never_push_the_object_over_its_limit() -> None:
    """A client that drops the running containers' annotations and fills the room with its own gets back
    only what still fits: the object stays under Kubernetes' 256 KiB (minus 8 KiB), not refused for it."""
    huge = ProvenanceRecord(digest=DIGEST, **{name: "x" * 500 for name in ("repository", "ref", "builder")})
    names = [f"c{i}" for i in range(20)]
    before = _object("Deployment", [(name, f"ghcr.io/acme/{name}:1") for name in names])
    old = _apply(before, _patch("Deployment", before, dict.fromkeys(names, huge))[0])
    assert len(_metadata("Deployment", old)["annotations"]) == 20
    new = copy.deepcopy(old)
    new["spec"]["template"]["metadata"]["annotations"] = {"example.com/notes": "x" * (240 * 1024)}
    ops, omitted = _patch("Deployment", new, {}, old=old)
    annotations = _metadata("Deployment", _apply(new, ops))["annotations"]
    assert sum(len(k) + len(v) for k, v in annotations.items()) <= 248 * 1024
    assert set(omitted) == {name for name in names if f"{PREFIX}{name}" not in annotations}
    assert omitted and list(omitted) == names[len(annotations) - 1 :]
    # A forged value on a running container is never left in place when the old one does not fit.
    forged = copy.deepcopy(new)
    forged["spec"]["template"]["metadata"]["annotations"][f"{PREFIX}c19"] = json.dumps({"commit": "f" * 40})
    ops, _ = _patch("Deployment", forged, {}, old=old)
    annotations = _metadata("Deployment", _apply(forged, ops))["annotations"]
    assert "c19" in omitted and f"{PREFIX}c19" not in annotations
