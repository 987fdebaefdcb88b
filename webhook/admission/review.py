"""The AdmissionReview wire format (admission.k8s.io/v1): the answer's TypedDicts, and parsing the request.

The request is parsed once, at the boundary, with targeted checks (no JSON Schema: this runs on every
pod admission, and schema validation of the whole review once cost a Python webhook of this kind 75% of
its CPU). Only what the webhook relies on is checked, and anything it relies on that is malformed is a
:class:`~webhook.errors.BadRequest` (HTTP 400) whose message names the offending field.
"""

from __future__ import annotations

__all__ = [
    "API_VERSION",
    "KIND",
    "OPERATIONS",
    "AdmissionContext",
    "AdmissionResponse",
    "AdmissionReviewResponse",
    "GroupVersionKind",
    "GroupVersionResource",
    "ResponseStatus",
    "parse_review",
]

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, NotRequired, TypedDict

from webhook._json import json_type
from webhook.errors import BadRequest
from webhook.text import show_value

API_VERSION: Final = "admission.k8s.io/v1"
KIND: Final = "AdmissionReview"
OPERATIONS = frozenset({"CREATE", "UPDATE", "DELETE", "CONNECT"})
# Operations that always carry the object being admitted; without one nothing could be checked.
_NEEDS_OBJECT = frozenset({"CREATE", "UPDATE"})
# Identifiers this long are not Kubernetes names; refusing them keeps logs and messages bounded.
_MAX_UID = 128
_SHOW = 60
# A field value for an error message, quoted, escaped and cut short (the body is untrusted).
_show = functools.partial(show_value, limit=_SHOW, missing="nothing")

Operation = Literal["CREATE", "UPDATE", "DELETE", "CONNECT"]


# --- wire format -------------------------------------------------------------------------------


class ResponseStatus(TypedDict, total=False):
    """``metav1.Status`` subset: what ``kubectl`` shows for a denial."""

    code: int
    reason: str
    message: str


class AdmissionResponse(TypedDict):
    """``response`` of an AdmissionReview: ``uid`` echoes the request's."""

    uid: str
    allowed: bool
    status: NotRequired[ResponseStatus]
    warnings: NotRequired[list[str]]
    auditAnnotations: NotRequired[dict[str, str]]
    patch: NotRequired[str]
    patchType: NotRequired[Literal["JSONPatch"]]


class AdmissionReviewResponse(TypedDict):
    """What the webhook answers (:mod:`webhook.admission.response` builds it)."""

    apiVersion: Literal["admission.k8s.io/v1"]
    kind: Literal["AdmissionReview"]
    response: AdmissionResponse


# --- parsed values -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GroupVersionKind:
    group: str
    version: str
    kind: str


@dataclass(frozen=True, slots=True)
class GroupVersionResource:
    group: str
    version: str
    resource: str


@dataclass(frozen=True, slots=True)
class AdmissionContext:
    """One admission request, parsed.

    Attributes:
        uid: echoed in the response.
        api_version: the review's ``apiVersion`` (always ``admission.k8s.io/v1``), echoed in the response.
        kind: the kind of ``object`` (e.g. ``Pod`` for the ``pods/ephemeralcontainers`` subresource).
        resource: the resource being admitted.
        sub_resource: e.g. ``ephemeralcontainers``, ``status``; ``""`` for the main resource.
        operation: ``CREATE``, ``UPDATE``, ``DELETE`` or ``CONNECT``.
        namespace: ``""`` for cluster-scoped resources.
        name: ``object.metadata.name``, else its ``generateName``, else ``request.name`` (``""`` if none).
        user: the requesting user's name (``""`` when not sent).
        dry_run: the request has no side effects (``kubectl --dry-run=server``).
        object: the object being admitted; None for DELETE (and possibly CONNECT).
        old_object: the existing object for UPDATE and DELETE, else None.
    """

    uid: str
    api_version: str
    kind: GroupVersionKind
    resource: GroupVersionResource
    sub_resource: str
    operation: str
    namespace: str
    name: str
    user: str
    dry_run: bool
    object: Mapping[str, Any] | None
    old_object: Mapping[str, Any] | None


def parse_review(body: object) -> AdmissionContext:
    """Parse a decoded AdmissionReview request (``json.loads`` of the HTTP body).

    Args:
        body: the decoded JSON document.

    Returns:
        The request as an :class:`AdmissionContext`.

    Raises:
        BadRequest: ``body`` is not an ``admission.k8s.io/v1`` AdmissionReview request, or a field the
            webhook relies on is missing or has the wrong type; the message names the field.
    """
    if not isinstance(body, dict):
        raise BadRequest(f"the AdmissionReview must be a JSON object, not {json_type(body)}")
    api_version = body.get("apiVersion")
    kind = body.get("kind")
    if api_version != API_VERSION or kind != KIND:
        raise BadRequest(
            f"expected apiVersion {API_VERSION!r} and kind {KIND!r}, got apiVersion {_show(api_version)} "
            f"and kind {_show(kind)} (configure admissionReviewVersions: [v1])"
        )
    request = body.get("request")
    if not isinstance(request, dict):
        what = "missing" if request is None else f"must be an object, not {json_type(request)}"
        raise BadRequest(f"request: {what} (a response or an empty review was sent to the webhook)")

    uid = request.get("uid")
    if not isinstance(uid, str):
        what = "missing" if uid is None else f"must be a string, not {json_type(uid)}"
        raise BadRequest(f"request.uid: {what}")
    if not uid or len(uid) > _MAX_UID:
        raise BadRequest(f"request.uid: must be 1 to {_MAX_UID} characters")

    operation = request.get("operation")
    if not isinstance(operation, str) or operation not in OPERATIONS:
        raise BadRequest(
            f"request.operation: {_show(operation)} is not one of {', '.join(sorted(OPERATIONS))}"
        )

    obj = _optional_object(request, "object")
    if obj is None and operation in _NEEDS_OBJECT:
        raise BadRequest(f"request.object: missing ({operation} requests carry the object to admit)")
    old = _optional_object(request, "oldObject")

    dry_run = request.get("dryRun")
    if dry_run is not None and not isinstance(dry_run, bool):
        raise BadRequest(f"request.dryRun: must be a boolean, not {json_type(dry_run)}")

    user_info = request.get("userInfo")
    user = ""
    if user_info is not None:
        if not isinstance(user_info, dict):
            raise BadRequest(f"request.userInfo: must be an object, not {json_type(user_info)}")
        user = _optional_str(user_info, "username", "request.userInfo.username")

    return AdmissionContext(
        uid=uid,
        api_version=API_VERSION,
        kind=_gvk(request.get("kind")),
        resource=_gvr(request.get("resource")),
        sub_resource=_optional_str(request, "subResource", "request.subResource"),
        operation=operation,
        namespace=_optional_str(request, "namespace", "request.namespace"),
        name=_name(obj, _optional_str(request, "name", "request.name")),
        user=user,
        dry_run=bool(dry_run),
        object=obj,
        old_object=old,
    )


def _gvk(value: object) -> GroupVersionKind:
    fields = _group_version(value, "request.kind", "kind")
    return GroupVersionKind(group=fields[0], version=fields[1], kind=fields[2])


def _gvr(value: object) -> GroupVersionResource:
    fields = _group_version(value, "request.resource", "resource")
    return GroupVersionResource(group=fields[0], version=fields[1], resource=fields[2])


def _group_version(value: object, where: str, last: str) -> tuple[str, str, str]:
    if not isinstance(value, dict):
        what = "missing" if value is None else f"must be an object, not {json_type(value)}"
        raise BadRequest(f"{where}: {what}")
    # The core group is "" and may be left out; version and kind/resource never are.
    group = _optional_str(value, "group", f"{where}.group")
    return (
        group,
        _required_str(value, "version", f"{where}.version"),
        _required_str(value, last, f"{where}.{last}"),
    )


def _optional_object(request: dict[str, Any], key: str) -> dict[str, Any] | None:
    value = request.get(key)
    if value is not None and not isinstance(value, dict):
        raise BadRequest(f"request.{key}: must be an object or null, not {json_type(value)}")
    return value


def _required_str(container: Mapping[str, Any], key: str, where: str) -> str:
    value = container.get(key)
    if not isinstance(value, str) or not value:
        raise BadRequest(f"{where}: must be a non-empty string, got {_show(value)}")
    return value


def _optional_str(container: Mapping[str, Any], key: str, where: str) -> str:
    value = container.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise BadRequest(f"{where}: must be a string, not {json_type(value)}")
    return value


def _name(obj: Mapping[str, Any] | None, request_name: str) -> str:
    if obj is None:
        return request_name
    metadata = obj.get("metadata")
    if metadata is None:
        return request_name
    if not isinstance(metadata, dict):
        raise BadRequest(f"request.object.metadata: must be an object, not {json_type(metadata)}")
    name = _optional_str(metadata, "name", "request.object.metadata.name")
    if name:
        return name
    return _optional_str(metadata, "generateName", "request.object.metadata.generateName") or request_name
