"""JSONPatch builder: one replace per changed image, applied with jsonpatch (and kubectl) to real objects."""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path
from typing import Any

import jsonpatch
import kubernetes_validate
import pytest

from tests.support.reviews import fixture, fixture_names, kubectl, review
from webhook.admission.patch import encode_patch, json_pointer, pin_patch
from webhook.admission.review import parse_review
from webhook.admission.workloads import SUPPORTED_KINDS, ImageSlot, image_slots
from webhook.images import pin_image_text

K8S = "1.33.0"
D = "sha256:" + "ab" * 32
LOCATIONS = ("containers", "initContainers", "ephemeralContainers", "volumes")


@pytest.mark.parametrize(
    ("segments", "pointer"),
    [
        ((), ""),
        (("spec", "containers", 0, "image"), "/spec/containers/0/image"),
        (("metadata", "annotations", "imagegate.dev/pinned"), "/metadata/annotations/imagegate.dev~1pinned"),
        (("a~b",), "/a~0b"),
        (("~1",), "/~01"),
        (("a/~/b",), "/a~1~0~1b"),
        (("",), "/"),
    ],
)
def test_json_pointer_escapes_per_rfc_6901(segments: tuple[str | int, ...], pointer: str) -> None:
    assert json_pointer(segments) == pointer
    if segments:
        # Round trip through jsonpatch's own RFC 6901 implementation.
        doc: dict[str, Any] = {}
        target = doc
        for segment in segments[:-1]:
            target = target.setdefault(str(segment), {})
        target[str(segments[-1])] = "old"
        patched = jsonpatch.apply_patch(doc, [{"op": "replace", "path": pointer, "value": "new"}])
        assert json.dumps(patched).count('"new"') == 1


def _slot(pointer: str, image: str) -> ImageSlot:
    return ImageSlot(pointer, "containers", "app", image)


def test_pin_patch_skips_unchanged_images() -> None:
    a = _slot("/spec/containers/0/image", "nginx:1.25")
    b = _slot("/spec/containers/1/image", f"nginx@{D}")
    assert pin_patch([(a, f"nginx:1.25@{D}"), (b, f"nginx@{D}")]) == [
        {"op": "replace", "path": "/spec/containers/0/image", "value": f"nginx:1.25@{D}"}
    ]
    assert pin_patch([]) == []
    assert pin_patch([(b, b.image)]) == []


def test_pin_patch_gives_one_op_per_location() -> None:
    a = _slot("/spec/containers/0/image", "nginx:1.25")
    assert pin_patch([(a, f"nginx:1.25@{D}"), (a, f"nginx:1.25@{D}")]) == [
        {"op": "replace", "path": "/spec/containers/0/image", "value": f"nginx:1.25@{D}"}
    ]


def test_pin_patch_refuses_conflicting_values_for_one_location() -> None:
    a = _slot("/spec/containers/0/image", "nginx:1.25")
    with pytest.raises(ValueError, match="conflicting pins for /spec/containers/0/image"):
        pin_patch([(a, f"nginx:1.25@{D}"), (a, "nginx:1.25@sha256:" + "cd" * 32)])


def test_encode_patch_is_base64_of_compact_json() -> None:
    ops = [{"op": "replace", "path": "/spec/containers/0/image", "value": f"nginx:1.25@{D}"}]
    encoded = encode_patch(ops)
    raw = base64.b64decode(encoded, validate=True)
    assert json.loads(raw) == ops
    assert b" " not in raw
    assert encode_patch([]) == base64.b64encode(b"[]").decode()


def _pin_all(kind: str, obj: dict[str, Any]) -> tuple[list[dict[str, str]], dict[str, Any]]:
    """Pin every image of ``obj``; return the ops and the patched object."""
    slots = image_slots(kind, obj)
    ops = pin_patch([(slot, pin_image_text(slot.image, D)) for slot in slots])
    return ops, jsonpatch.apply_patch(obj, ops)


@pytest.mark.parametrize("location", LOCATIONS)
@pytest.mark.parametrize("kind", sorted(SUPPORTED_KINDS))
def test_patch_every_location_of_every_kind(kind: str, location: str) -> None:
    images = {
        "containers": ["ghcr.io/acme/base:1", f"ghcr.io/acme/pinned@{D}"],
        "initContainers": [],
        "ephemeralContainers": [],
        "volumes": [],
    }
    images[location] = [*images[location], "ghcr.io/acme/one:1", "nginx"]
    body = review(
        kind,
        images["containers"],
        init_images=images["initContainers"],
        ephemeral_images=images["ephemeralContainers"],
        volume_images=images["volumes"],
    )
    obj = body["request"]["object"]
    ops, patched = _pin_all(kind, obj)

    slots = image_slots(kind, obj)
    changed = [s for s in slots if "@" not in s.image]
    assert ops == [
        {"op": "replace", "path": s.pointer, "value": s.image.split("@")[0] + "@" + D} for s in changed
    ]
    assert {s.location for s in changed} >= {location}
    # Exactly the images changed, everything else is untouched.
    assert [s.image for s in image_slots(kind, patched)] == [pin_image_text(s.image, D) for s in slots]
    assert jsonpatch.make_patch(obj, patched).patch == ops
    kubernetes_validate.validate(patched, K8S, strict=True)


@pytest.mark.parametrize("name", fixture_names())
def test_patch_fixture_objects(name: str) -> None:
    context = parse_review(fixture(name))
    if context.object is None:
        assert context.operation == "DELETE"
        return
    obj = dict(context.object)
    ops, patched = _pin_all(context.kind.kind, obj)
    assert ops, "every fixture object has at least one tag to pin"
    assert all(op["op"] == "replace" and op["value"].endswith("@" + D) for op in ops)
    assert all(s.image.endswith("@" + D) for s in image_slots(context.kind.kind, patched))
    kubernetes_validate.validate(patched, K8S, strict=True)


def test_patch_fails_loudly_on_a_different_object() -> None:
    # replace (not add): applied to an object without that image, the patch fails instead of inventing one.
    obj = fixture("review_pod_all_slots.json")["request"]["object"]
    ops, _ = _pin_all("Pod", obj)
    del obj["spec"]["volumes"]
    with pytest.raises(jsonpatch.JsonPointerException, match="volumes"):
        jsonpatch.apply_patch(obj, ops)


def test_kubectl_applies_the_same_patch(tmp_path: Path) -> None:
    binary = kubectl()
    obj = fixture("review_pod_all_slots.json")["request"]["object"]
    ops, expected = _pin_all("Pod", obj)
    assert {op["path"].split("/")[2] for op in ops} == {
        "containers",
        "initContainers",
        "ephemeralContainers",
        "volumes",
    }
    manifest = tmp_path / "pod.json"
    manifest.write_text(json.dumps(obj), encoding="utf-8")
    patch = base64.b64decode(encode_patch(ops)).decode()
    result = subprocess.run(
        [binary, "patch", "--local", "-f", str(manifest), "--type=json", "-p", patch, "-o", "json"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == expected
