"""Decision -> AdmissionReview response: allowed, status, warnings, audit annotations, patch (the pins, then
any further operations, such as provenance annotations).

Mode handling lives only here and in the decision core: ``warn`` failures become ``warnings``,
``audit`` failures only ``auditAnnotations``; both leave ``allowed`` true.
"""

from __future__ import annotations

__all__ = ["error_response", "review_response"]

import json
from collections.abc import Mapping, Sequence
from typing import Any

from webhook.admission.patch import encode_patch, pin_patch
from webhook.admission.review import API_VERSION, KIND, AdmissionResponse, AdmissionReviewResponse
from webhook.reasons import Reason

# Kubernetes truncates long warnings; keep each readable and the list bounded.
_MAX_WARNINGS = 50
_MAX_WARNING_CHARS = 1000
_MAX_ANNOTATION_CHARS = 8000
# The denial message is shown by kubectl and copied into events: one line per denied image, but an
# object with thousands of images must not turn into a multi-megabyte answer. The audit log keeps all.
_MAX_DENIAL_LINES = 100
_MAX_DENIAL_CHARS = 32 * 1024


def review_response(
    *,
    uid: str,
    allowed: bool,
    denials: Sequence[str] = (),
    warnings: Sequence[str] = (),
    audit: dict[str, str] | None = None,
    pins: Sequence[tuple[Any, str]] = (),
    operations: Sequence[Mapping[str, Any]] = (),
) -> AdmissionReviewResponse:
    """Build the AdmissionReview v1 answer. A patch (``pins``, then ``operations``) is only sent when
    allowed and non-empty."""
    response: AdmissionResponse = {"uid": uid, "allowed": allowed}
    if not allowed:
        response["status"] = {
            "code": 403,
            "reason": "Forbidden",
            "message": "\n".join(_bounded_lines(denials)) or "denied by imagegate",
        }
    if warnings:
        shown = [w[:_MAX_WARNING_CHARS] for w in warnings[:_MAX_WARNINGS]]
        if len(warnings) > _MAX_WARNINGS:
            shown[-1] = f"... and {len(warnings) - _MAX_WARNINGS + 1} more warnings (see the audit log)"
        response["warnings"] = shown
    if audit:
        response["auditAnnotations"] = {k: v[:_MAX_ANNOTATION_CHARS] for k, v in audit.items()}
    if allowed and (pins or operations):
        ops = [*pin_patch(pins), *operations]
        if ops:
            response["patchType"] = "JSONPatch"
            response["patch"] = encode_patch(ops)
    return {"apiVersion": API_VERSION, "kind": KIND, "response": response}


def _bounded_lines(lines: Sequence[str]) -> list[str]:
    """``lines`` up to ``_MAX_DENIAL_LINES`` lines and ``_MAX_DENIAL_CHARS`` characters, then a count."""
    shown: list[str] = []
    size = 0
    for line in lines:
        if len(shown) == _MAX_DENIAL_LINES or size + len(line) + 1 > _MAX_DENIAL_CHARS:
            if not shown:
                shown.append(line[: _MAX_DENIAL_CHARS - 3] + "...")
            break
        shown.append(line)
        size += len(line) + 1
    if len(shown) < len(lines):
        shown.append(f"... and {len(lines) - len(shown)} more denied images (see the audit log)")
    return shown


def error_response(*, uid: str, code: Reason, message: str) -> AdmissionReviewResponse:
    """A fail-closed denial for when no decision could be made (e.g. an unexpected error)."""
    return review_response(
        uid=uid,
        allowed=False,
        denials=(f"[{code}] {message}",),
        audit={"decision": json.dumps({"allowed": False, "error": code})},
    )
