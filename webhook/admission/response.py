"""Decision -> AdmissionReview response: allowed, status, warnings, audit annotations, patch.

Mode handling lives only here and in the decision core: ``warn`` failures become ``warnings``,
``audit`` failures only ``auditAnnotations``; both leave ``allowed`` true.
"""

from __future__ import annotations

__all__ = ["error_response", "review_response"]

import json
from collections.abc import Sequence
from typing import Any

from webhook.admission.patch import encode_patch, pin_patch

# Kubernetes truncates long warnings; keep each readable and the list bounded.
_MAX_WARNINGS = 50
_MAX_WARNING_CHARS = 1000
_MAX_ANNOTATION_CHARS = 8000


def review_response(
    *,
    uid: str,
    allowed: bool,
    denials: Sequence[str] = (),
    warnings: Sequence[str] = (),
    audit: dict[str, str] | None = None,
    pins: Sequence[tuple[Any, str]] = (),
) -> dict[str, Any]:
    """Build the AdmissionReview v1 answer. A patch is only sent when allowed and non-empty."""
    response: dict[str, Any] = {"uid": uid, "allowed": allowed}
    if not allowed:
        response["status"] = {
            "code": 403,
            "reason": "Forbidden",
            "message": "\n".join(denials) or "denied by imagegate",
        }
    if warnings:
        response["warnings"] = [w[:_MAX_WARNING_CHARS] for w in warnings[:_MAX_WARNINGS]]
    if audit:
        response["auditAnnotations"] = {k: v[:_MAX_ANNOTATION_CHARS] for k, v in audit.items()}
    if allowed and pins:
        ops = pin_patch(pins)
        if ops:
            response["patchType"] = "JSONPatch"
            response["patch"] = encode_patch(ops)
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response}


def error_response(*, uid: str, code: str, message: str) -> dict[str, Any]:
    """A fail-closed denial for when no decision could be made (e.g. an unexpected error)."""
    return review_response(
        uid=uid,
        allowed=False,
        denials=(f"[{code}] {message}",),
        audit={"decision": json.dumps({"allowed": False, "error": code})},
    )
