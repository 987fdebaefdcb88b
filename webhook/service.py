"""The imperative shell: one admission = parse -> plan -> gather facts (registry, verification) -> decide.

Facts for the distinct images of a request are gathered concurrently on a per-process thread pool,
bounded by the admission :class:`~webhook.deadline.Deadline`: an image whose facts are not in by then
is denied ``registry-error``, so the API server always gets an answer before its webhook timeout.
"""

from __future__ import annotations

__all__ = ["AdmissionService", "FactGatherer", "Outcome"]

import json
import logging
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from webhook.admission.response import error_response, review_response
from webhook.admission.review import AdmissionContext, parse_review
from webhook.admission.workloads import ImageSlot, image_slots, why_no_images
from webhook.deadline import Deadline
from webhook.decision import (
    Decision,
    ImagePlan,
    Stage,
    evaluate,
    plan_image,
    running_slots,
    unchanged_images,
)
from webhook.errors import BadRequest, RegistryError
from webhook.facts import Finding, ImageFacts
from webhook.policy.model import Policy
from webhook.settings import Settings

_logger = logging.getLogger(__name__)
_audit = logging.getLogger("imagegate.audit")
_FETCH_MARGIN = 0.25  # seconds
# Under the response's per-annotation cap, so the "images" annotation always stays valid JSON.
_MAX_IMAGES_ANNOTATION = 7000


class FactGatherer(Protocol):
    """Finds out what the plan asks for: resolution, quarantine markers, verification."""

    def __call__(self, plan: ImagePlan, *, deadline: Deadline, now: datetime) -> ImageFacts: ...


class RuntimeSource(Protocol):
    """Where the service gets the current policy and the adapters built for it."""

    def current(self) -> tuple[Policy, FactGatherer] | None: ...


class AdmissionObserver(Protocol):
    def admission(self, *, stage: str, operation: str, outcome: str, seconds: float) -> None: ...

    def image(self, *, outcome: str) -> None: ...


@dataclass(frozen=True, slots=True)
class Outcome:
    """An answered admission: the AdmissionReview to send and the decision behind it (if any)."""

    review: dict[str, Any]
    decision: Decision | None


class AdmissionService:
    def __init__(
        self,
        *,
        settings: Settings,
        runtime: RuntimeSource,
        observer: AdmissionObserver | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._settings = settings
        self._runtime = runtime
        self._observer = observer
        self._clock = clock
        self._pool = ThreadPoolExecutor(
            max_workers=settings.fetch_threads, thread_name_prefix="imagegate-fetch"
        )

    def admit(self, body: object, *, stage: Stage) -> Outcome:
        """Answer one AdmissionReview.

        Raises:
            BadRequest: the body is not a well-formed AdmissionReview (HTTP 400).
        """
        started = time.monotonic()
        deadline = Deadline.after(self._settings.deadline_seconds)
        context = parse_review(body)
        outcome = "error"
        try:
            result = self._decide(context, stage=stage, deadline=deadline)
            outcome = _summary(result)
            return result
        except BadRequest:
            # A malformed object (e.g. a container list that is not a list) is a 400 like any other
            # malformed AdmissionReview (DESIGN.md §2), not an internal error.
            raise
        except Exception:
            # Fail closed: an unexpected error is a denial with a reason, never a 500 or an allow.
            _logger.exception("unexpected error while deciding admission %s", context.uid)
            return Outcome(
                error_response(
                    uid=context.uid,
                    code="internal-error",
                    message="imagegate could not evaluate this request; see the webhook logs",
                ),
                None,
            )
        finally:
            if self._observer is not None:
                self._observer.admission(
                    stage=stage,
                    operation=context.operation,
                    outcome=outcome,
                    seconds=time.monotonic() - started,
                )

    def _decide(self, context: AdmissionContext, *, stage: Stage, deadline: Deadline) -> Outcome:
        started = time.monotonic()
        if context.operation not in ("CREATE", "UPDATE") or context.object is None:
            return Outcome(review_response(uid=context.uid, allowed=True), None)
        slots = image_slots(context.kind.kind, context.object, group=context.kind.group)
        if not slots:
            # Allowed, as there is nothing to check; the audit annotation says so, and why.
            reason = why_no_images(context.kind.kind, context.object, group=context.kind.group)
            return Outcome(review_response(uid=context.uid, allowed=True, audit={"notChecked": reason}), None)
        current = self._runtime.current()
        if current is None:
            return Outcome(
                error_response(uid=context.uid, code="internal-error", message="no valid policy is loaded"),
                None,
            )
        policy, gather = current
        now = self._clock()
        running = running_slots(slots, old=_old_slots(context))
        unchanged = unchanged_images(slots, running=running)
        plans = {
            slot.image: plan_image(
                slot.image,
                policy=policy,
                namespace=context.namespace,
                now=now,
                stage=stage,
                unchanged=slot.image in unchanged,
            )
            for slot in slots
        }
        facts, durations = self._gather(plans, gather=gather, deadline=deadline, now=now)
        decision = evaluate(
            slots,
            policy=policy,
            namespace=context.namespace,
            facts=facts,
            now=now,
            stage=stage,
            plans=plans,
            running=running,
        )
        review = review_response(
            uid=context.uid,
            allowed=decision.allowed,
            denials=decision.denials,
            warnings=decision.warnings,
            audit=_audit_annotations(decision, policy),
            pins=decision.pins if stage == "mutate" else (),
        )
        if self._observer is not None:
            for image in decision.images:
                self._observer.image(outcome=image.outcome)
        if self._settings.audit_log:
            _audit.info(
                "%s",
                json.dumps(
                    _audit_record(
                        context,
                        decision,
                        policy,
                        stage=stage,
                        seconds=time.monotonic() - started,
                        durations=durations,
                    ),
                    separators=(",", ":"),
                ),
            )
        return Outcome(review, decision)

    def _gather(
        self,
        plans: Mapping[str, ImagePlan],
        *,
        gather: FactGatherer,
        deadline: Deadline,
        now: datetime,
    ) -> tuple[dict[str, ImageFacts], dict[str, float]]:
        """Facts per image, and how long each took (seconds; the deadline for unfinished ones)."""
        started = time.monotonic()
        durations: dict[str, float] = {}
        # Fetches end a little before the admission does, so their own error (which names the host and
        # the request) is what the user sees, not the generic "no answer within the deadline".
        fetch_deadline = Deadline(deadline.expires_at - _FETCH_MARGIN)

        def timed(plan: ImagePlan) -> ImageFacts:
            try:
                return gather(plan, deadline=fetch_deadline, now=now)
            finally:
                durations[plan.image] = time.monotonic() - started

        pending: dict[str, Future[ImageFacts]] = {
            image: self._pool.submit(timed, plan) for image, plan in plans.items() if plan.needs_facts
        }
        if not pending:
            return {}, durations
        wait_futures(pending.values(), timeout=deadline.remaining())
        facts: dict[str, ImageFacts] = {}
        for image, future in pending.items():
            if not future.done():
                future.cancel()
                facts[image] = ImageFacts(
                    resolution=Finding(
                        "registry-error", "no answer from the registry within the admission deadline"
                    )
                )
                continue
            error = future.exception()
            if error is None:
                facts[image] = future.result()
            elif isinstance(error, RegistryError):
                facts[image] = ImageFacts(resolution=Finding(error.code, error.user_message))
            else:
                _logger.error("gathering facts for %s failed", image, exc_info=error)
                facts[image] = ImageFacts(
                    resolution=Finding("registry-error", f"could not check the image: {type(error).__name__}")
                )
            durations.setdefault(image, time.monotonic() - started)
        return facts, dict(durations)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def _old_slots(context: AdmissionContext) -> tuple[ImageSlot, ...]:
    """The image slots of an UPDATE's old object: those the update keeps are still checked, but never
    rewritten or newly denied (:func:`webhook.decision.running_slots`)."""
    if context.operation != "UPDATE" or context.old_object is None:
        return ()
    try:
        return image_slots(context.kind.kind, context.old_object, group=context.kind.group)
    except BadRequest:
        return ()  # a malformed old object grants nothing: every image is treated as new


def _summary(result: Outcome) -> str:
    response = result.review["response"]
    if not response["allowed"]:
        return "denied"
    if response.get("warnings"):
        return "warned"
    return "allowed"


def _audit_annotations(decision: Decision, policy: Policy) -> dict[str, str]:
    images = [
        {
            "image": d.slot.image,
            "outcome": d.outcome,
            **({"digest": d.digest} if d.digest else {}),
            **({"rules": list(d.rules)} if d.rules else {}),
        }
        for d in decision.images
    ]
    listed, shown = _bounded_json_list(images, _MAX_IMAGES_ANNOTATION)
    annotations = {"policy": policy.name, "images": listed}
    if shown < len(images):
        annotations["imagesOmitted"] = str(len(images) - shown)
    exemptions = sorted(
        {
            f"{d.slot.image}: {d.exemption.reason} (expires {d.exemption.expires.isoformat()})"
            for d in decision.images
            if d.exemption
        }
    )
    if exemptions:
        annotations["exemptions"] = "; ".join(exemptions)
    if decision.audit_lines:
        annotations["audit"] = "\n".join(decision.audit_lines)
    return annotations


def _bounded_json_list(items: list[dict[str, Any]], limit: int) -> tuple[str, int]:
    """Compact JSON of the longest prefix of ``items`` that fits in ``limit`` characters, and its length.

    Cutting the serialised text instead would leave invalid JSON for whoever reads the annotation.
    """
    parts: list[str] = []
    size = 2
    for item in items:
        text = json.dumps(item, separators=(",", ":"))
        if size + len(text) + 1 > limit:
            break
        parts.append(text)
        size += len(text) + 1
    return "[" + ",".join(parts) + "]", len(parts)


def _audit_record(
    context: AdmissionContext,
    decision: Decision,
    policy: Policy,
    *,
    stage: str,
    seconds: float,
    durations: Mapping[str, float],
) -> dict[str, Any]:
    return {
        "audit": "admission",
        "uid": context.uid,
        "stage": stage,
        "operation": context.operation,
        "kind": context.kind.kind,
        "namespace": context.namespace,
        "name": context.name,
        "user": context.user,
        "dryRun": context.dry_run,
        "policy": policy.name,
        "mode": policy.mode,
        "allowed": decision.allowed,
        "durationMs": round(seconds * 1000, 2),
        "images": [
            {
                "location": d.slot.pointer,
                "image": d.slot.image,
                "digest": d.digest,
                "rules": list(d.rules),
                "outcome": d.outcome,
                "reasons": [f.code for f, _ in d.failures],
                "modes": sorted({m for _, m in d.failures}),
                "durationMs": round(durations.get(d.slot.image, 0.0) * 1000, 2),
                **({"exemption": d.exemption.reason} if d.exemption else {}),
                **({"alreadyRunning": True} if d.running else {}),
            }
            for d in decision.images
        ],
    }
