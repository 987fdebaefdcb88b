"""The imperative shell: one admission = parse -> plan -> gather facts (registry, verification) -> decide.

``/mutate``'s answer pins images and records the verified SLSA provenance of admitted containers as
annotations (:mod:`webhook.admission.provenance`).

Facts for the distinct images of a request are gathered concurrently on a per-process thread pool,
bounded by the admission :class:`~webhook.deadline.Deadline`: an image whose facts are not in by then
is denied ``registry-error``, so the API server always gets an answer before its webhook timeout.

Work is bounded per admission: an object with more than ``max_images`` distinct images is denied
``too-many-images`` before anything is planned or fetched; one admission runs at most
``fetches_per_request`` lookups on the shared pool at a time; planning and deciding check the deadline
as they go, and past it the object is denied (``internal-error``, fail closed); the audit line lists at
most ``_MAX_AUDIT_IMAGES`` images, each field cut to a bounded length; an image that failed a check
carries its ``explanation`` (:func:`webhook.explain.audit_explanation`, at most 4 KiB of JSON each and
``_MAX_AUDIT_EXPLANATIONS`` characters per line).
"""

from __future__ import annotations

__all__ = ["AdmissionService", "Answer", "DecisionInputs", "FactGatherer"]

import itertools
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from webhook._json import compact_json
from webhook.admission.provenance import ProvenanceRecord, provenance_patch
from webhook.admission.response import error_response, review_response
from webhook.admission.review import AdmissionContext, AdmissionReviewResponse, parse_review
from webhook.admission.workloads import ImageSlot, image_slots, why_no_images
from webhook.deadline import Deadline
from webhook.decision import (
    Decision,
    ImageDecision,
    ImagePlan,
    PlanCache,
    Stage,
    Status,
    evaluate,
    running_slots,
    unchanged_images,
)
from webhook.errors import BadRequest, RegistryError
from webhook.explain import ImageExplanation, audit_explanation, explain_image
from webhook.facts import Finding, ImageFacts
from webhook.policy.model import Policy
from webhook.reasons import Reason
from webhook.settings import Settings
from webhook.times import format_rfc3339

_logger = logging.getLogger(__name__)
_audit = logging.getLogger("imagegate.audit")
_FETCH_MARGIN = 0.25  # seconds
# Waiting for facts ends this long before the deadline, leaving it to deciding and answering.
_DECIDE_RESERVE = 0.1  # seconds
# Slots decided between two looks at the deadline.
_DECIDE_CHUNK = 1024
# Under the response's per-annotation cap, so the "images" annotation always stays valid JSON.
_MAX_IMAGES_ANNOTATION = 7000
# Up to this many images, the list is serialised whole first (it nearly always fits).
_WHOLE_LIST_ITEMS = 32
# The audit line: at most this many images, and text fields (image, names) cut to this length.
_MAX_AUDIT_IMAGES = 256
_MAX_AUDIT_TEXT = 600
# The explanations of one audit line together: past this many characters, images get none.
_MAX_AUDIT_EXPLANATIONS = 32 * 1024


class _DeadlinePassed(Exception):
    """The admission deadline passed while planning or deciding: the object is denied, fail closed."""


class FactGatherer(Protocol):
    """Finds out what the plan asks for: resolution, quarantine markers, verification.

    A gatherer may also have ``cached(plan, *, deadline, now) -> ImageFacts | None``: the facts when its
    caches hold all of them, found without I/O or waiting (see :meth:`AdmissionService._gather`).
    """

    def __call__(self, plan: ImagePlan, *, deadline: Deadline, now: datetime) -> ImageFacts: ...


class RuntimeSource(Protocol):
    """Where the service gets the current policy and the adapters built for it."""

    def current(self) -> tuple[Policy, FactGatherer] | None: ...


class AdmissionObserver(Protocol):
    """Told about every answered admission (``outcome``: its :data:`~webhook.decision.Status`, or
    ``error``), and about every decided one (metrics: :class:`webhook.metrics.Metrics`)."""

    def admission(self, *, stage: Stage, context: AdmissionContext, outcome: str, seconds: float) -> None: ...

    def decided(self, *, stage: Stage, context: AdmissionContext, decision: Decision) -> None: ...


@dataclass(frozen=True, slots=True)
class DecisionInputs:
    """What a decision was made from: the policy, the namespace, and per image its plan and facts."""

    policy: Policy
    namespace: str
    plans: Mapping[str, ImagePlan]
    facts: Mapping[str, ImageFacts]

    def explain(self, image: ImageDecision) -> ImageExplanation:
        """Every check of ``image`` with its evidence (:func:`webhook.explain.explain_image`)."""
        return explain_image(
            image,
            plan=self.plans[image.slot.image],
            facts=self.facts.get(image.slot.image),
            policy=self.policy,
            namespace=self.namespace,
        )


@dataclass(frozen=True, slots=True)
class Answer:
    """An answered admission: the AdmissionReview to send, the decision behind it (if any), and what
    the decision was made from (to explain it)."""

    review: AdmissionReviewResponse
    decision: Decision | None
    inputs: DecisionInputs | None = None

    def explanations(self) -> tuple[ImageExplanation, ...]:
        """Per decided image, every check with its evidence; empty when no image was decided."""
        if self.decision is None or self.inputs is None:
            return ()
        return tuple(self.inputs.explain(image) for image in self.decision.images)


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
        self._plans: PlanCache | None = None

    def admit(self, body: object, *, stage: Stage) -> Answer:
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
        except _DeadlinePassed:
            _logger.warning(
                "admission %s: deadline of %ss passed before a decision",
                context.uid,
                self._settings.deadline_seconds,
            )
            answer = error_response(
                uid=context.uid,
                code=Reason.INTERNAL_ERROR,
                message="imagegate could not finish checking this object within the admission deadline "
                f"({self._settings.deadline_seconds:g}s); nothing was admitted",
            )
            self._audit_denial(context, answer, stage=stage, error="deadline-exceeded", started=started)
            return Answer(answer, None)
        except BadRequest:
            # A malformed object (e.g. a container list that is not a list) is a 400 like any other
            # malformed AdmissionReview, not an internal error.
            raise
        except Exception:
            # Fail closed: an unexpected error is a denial with a reason, never a 500 or an allow.
            _logger.exception("unexpected error while deciding admission %s", context.uid)
            return Answer(
                error_response(
                    uid=context.uid,
                    code=Reason.INTERNAL_ERROR,
                    message="imagegate could not evaluate this request; see the webhook logs",
                ),
                None,
            )
        finally:
            if self._observer is not None:
                self._observer.admission(
                    stage=stage, context=context, outcome=outcome, seconds=time.monotonic() - started
                )

    def _decide(self, context: AdmissionContext, *, stage: Stage, deadline: Deadline) -> Answer:
        started = time.monotonic()
        if context.operation not in ("CREATE", "UPDATE") or context.object is None:
            return Answer(review_response(uid=context.uid, allowed=True), None)
        slots = image_slots(context.kind.kind, context.object, group=context.kind.group)
        if not slots:
            # Allowed, as there is nothing to check; the audit annotation says so, and why.
            reason = why_no_images(context.kind.kind, context.object, group=context.kind.group)
            return Answer(review_response(uid=context.uid, allowed=True, audit={"notChecked": reason}), None)
        current = self._runtime.current()
        if current is None:
            return Answer(
                error_response(
                    uid=context.uid, code=Reason.INTERNAL_ERROR, message="no valid policy is loaded"
                ),
                None,
            )
        policy, gather = current
        old_slots = _old_slots(context)
        running = running_slots(slots, old=old_slots)
        unchanged = unchanged_images(slots, running=running)
        distinct = tuple(dict.fromkeys(slot.image for slot in slots))
        judged = _judged(distinct, unchanged=unchanged, limit=self._settings.max_images)
        if judged is None:
            return self._too_many_images(
                context,
                policy,
                distinct=len(distinct),
                new=len(distinct) - len(unchanged),
                stage=stage,
                started=started,
            )
        left_running = len(distinct) - len(judged)
        every_slot = slots
        if left_running:
            slots = tuple(slot for slot in slots if slot.image in judged)
            distinct = tuple(image for image in distinct if image in judged)
        now = self._clock()
        planner = self._planner(policy)
        plans: dict[str, ImagePlan] = {}
        for image in distinct:
            _check(deadline)
            plans[image] = planner.plan(
                image, namespace=context.namespace, now=now, stage=stage, unchanged=image in unchanged
            )
        facts, durations = self._gather(plans, gather=gather, deadline=deadline, now=now)
        images: list[ImageDecision] = []
        for start in range(0, len(slots), _DECIDE_CHUNK):
            _check(deadline)
            images += evaluate(
                slots[start : start + _DECIDE_CHUNK],
                policy=policy,
                namespace=context.namespace,
                facts=facts,
                now=now,
                stage=stage,
                plans=plans,
                running=running,
            ).images
        decision = Decision(tuple(images))
        inputs = DecisionInputs(policy=policy, namespace=context.namespace, plans=plans, facts=facts)
        denials = decision.denials
        audit = _audit_annotations(decision, policy, left_running=left_running)
        operations: list[dict[str, Any]] = []
        # The API server keeps only the containers of a subresource update: no annotation to write.
        if stage == "mutate" and not denials and not context.sub_resource and context.object is not None:
            by_pointer = {d.slot.pointer: d for d in decision.images}
            operations, omitted = provenance_patch(
                kind=context.kind.kind,
                group=context.kind.group,
                obj=context.object,
                old=context.old_object if context.operation == "UPDATE" else None,
                old_slots=old_slots,
                # Slots left running unjudged (past max_images) keep their annotation: they are running.
                records=[
                    (slot, _provenance_record(by_pointer.get(slot.pointer), facts, policy))
                    for slot in every_slot
                ],
                running=running,
            )
            if omitted:
                audit["provenanceOmitted"] = ", ".join(omitted)
        review = review_response(
            uid=context.uid,
            allowed=not denials,
            denials=denials,
            warnings=decision.warnings,
            audit=audit,
            pins=decision.pins if stage == "mutate" else (),
            operations=operations,
        )
        if self._observer is not None:
            self._observer.decided(stage=stage, context=context, decision=decision)
        if self._settings.audit_log:
            _audit.info(
                "%s",
                compact_json(
                    _audit_record(
                        context,
                        decision,
                        inputs,
                        review=review,
                        stage=stage,
                        when=self._clock(),
                        seconds=time.monotonic() - started,
                        durations=durations,
                        left_running=left_running,
                    )
                ),
            )
        return Answer(review, decision, inputs)

    def _planner(self, policy: Policy) -> PlanCache:
        """The plan cache of ``policy``: a reloaded policy starts a new one."""
        planner = self._plans
        if planner is None or planner.policy is not policy:
            planner = self._plans = PlanCache(policy)
        return planner

    def _gather(
        self,
        plans: Mapping[str, ImagePlan],
        *,
        gather: FactGatherer,
        deadline: Deadline,
        now: datetime,
    ) -> tuple[dict[str, ImageFacts], dict[str, float]]:
        """Facts per image, and how long each took (seconds; the deadline for unfinished ones).

        At most ``fetches_per_request`` lookups of this admission are on the shared pool at a time: the
        next starts when one ends, so other admissions' lookups never queue behind all of this one's.
        """
        started = time.monotonic()
        durations: dict[str, float] = {}
        # Fetches end a little before the admission does, so their own error (which names the host and
        # the request) is what the user sees, not the generic "no answer within the deadline".
        fetch_deadline = Deadline(deadline.expires_at - _FETCH_MARGIN)
        waiting = Deadline(deadline.expires_at - _DECIDE_RESERVE)

        def timed(plan: ImagePlan) -> ImageFacts:
            try:
                return gather(plan, deadline=fetch_deadline, now=now)
            finally:
                durations[plan.image] = time.monotonic() - started

        facts: dict[str, ImageFacts] = {}
        queue = iter(self._from_caches(plans, gather=gather, facts=facts, deadline=fetch_deadline, now=now))
        for image in facts:
            durations[image] = time.monotonic() - started
        running: dict[Future[ImageFacts], str] = {}

        def submit(count: int) -> None:
            for plan in itertools.islice(queue, count):
                running[self._pool.submit(timed, plan)] = plan.image

        submit(self._settings.fetches_per_request)
        while running:
            done, _ = wait_futures(running, timeout=waiting.remaining(), return_when=FIRST_COMPLETED)
            if not done:
                break  # the deadline: what is still running or queued gets no facts
            for future in done:
                image = running.pop(future)
                facts[image] = _facts_of(future, image)
                durations.setdefault(image, time.monotonic() - started)
            if not waiting.expired():
                submit(len(done))
        for future, image in running.items():
            future.cancel()
            facts[image] = _no_facts("no answer from the registry within the admission deadline")
            durations.setdefault(image, time.monotonic() - started)
        for plan in queue:
            facts[plan.image] = _no_facts("the admission deadline passed before the image could be looked up")
            durations.setdefault(plan.image, time.monotonic() - started)
        return facts, dict(durations)

    @staticmethod
    def _from_caches(
        plans: Mapping[str, ImagePlan],
        *,
        gather: FactGatherer,
        facts: dict[str, ImageFacts],
        deadline: Deadline,
        now: datetime,
    ) -> list[ImagePlan]:
        """Put into ``facts`` what the gatherer's caches answer in this thread; the plans left to fetch.

        A thread hop costs more than a cache lookup: images whose facts are all cached (a repeat
        admission) never go to the pool. Anything else, or a cache read that fails, is fetched as usual.
        """
        cached: Callable[..., ImageFacts | None] | None = getattr(gather, "cached", None)
        left: list[ImagePlan] = []
        for plan in plans.values():
            if not plan.needs_facts:
                continue
            found = None
            if cached is not None:
                try:
                    found = cached(plan, deadline=deadline, now=now)
                except Exception:  # the full lookup on the pool decides, and reports what fails
                    _logger.warning("cache-only lookup of %s failed", _cut(plan.image), exc_info=True)
            if found is None:
                left.append(plan)
            else:
                facts[plan.image] = found
        return left

    def _too_many_images(
        self,
        context: AdmissionContext,
        policy: Policy,
        *,
        distinct: int,
        new: int,
        stage: Stage,
        started: float,
    ) -> Answer:
        """Deny an object with more images to judge than ``max_images``; nothing was planned or fetched.

        ``new`` counts the distinct images that are not all running slots of an UPDATE (see
        :func:`_judged`). Whatever the policy's mode: the object was not checked, so it is not admitted
        (fail closed).
        """
        limit = self._settings.max_images
        count = f"{distinct} distinct images" + (
            f", {new} of them not already running" if new != distinct else ""
        )
        answer = error_response(
            uid=context.uid,
            code=Reason.TOO_MANY_IMAGES,
            message=f"the object has {count}, more than the {limit} imagegate checks "
            "per object (IMAGEGATE_MAX_IMAGES): split it, or raise the limit",
        )
        extra = {"policy": policy.name, "mode": policy.mode, "distinctImages": distinct, "maxImages": limit}
        if new != distinct:
            extra["newImages"] = new
        self._audit_denial(
            context, answer, stage=stage, error=Reason.TOO_MANY_IMAGES, started=started, extra=extra
        )
        return Answer(answer, None)

    def _audit_denial(
        self,
        context: AdmissionContext,
        answer: AdmissionReviewResponse,
        *,
        stage: str,
        error: str,
        started: float,
        extra: Mapping[str, object] | None = None,
    ) -> None:
        """The audit line of an object denied as a whole (``answer``), before any image was decided."""
        if not self._settings.audit_log:
            return
        record = {
            **_audit_head(context, stage=stage, when=self._clock()),
            "allowed": False,
            "error": error,
            **(extra or {}),
            **_answered(answer),
            "durationMs": round((time.monotonic() - started) * 1000, 2),
            "images": [],
        }
        _audit.info("%s", compact_json(record))

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def _check(deadline: Deadline) -> None:
    if deadline.expired():
        raise _DeadlinePassed


def _facts_of(future: Future[ImageFacts], image: str) -> ImageFacts:
    error = future.exception()
    if error is None:
        return future.result()
    if isinstance(error, RegistryError):
        return ImageFacts(gathering_error=Finding(error.code, error.user_message))
    _logger.error("gathering facts for %s failed", _cut(image), exc_info=error)
    return _no_facts(f"could not check the image: {type(error).__name__}")


def _judged(distinct: Sequence[str], *, unchanged: frozenset[str], limit: int) -> frozenset[str] | None:
    """The images of an admission to judge, at most ``limit``; None when those it must judge are more.

    It must judge every image that is not all running slots of an UPDATE (:func:`unchanged_images`).
    Those are judged too while the object stays within the limit, but an UPDATE never denies them
    (their failures only warn): past the limit they are left running unchecked, so that a limit lowered
    below what running pods hold never blocks their labels or a finalizer's removal.
    """
    new = [image for image in distinct if image not in unchanged]
    if len(new) > limit:
        return None
    running = [image for image in distinct if image in unchanged]
    return frozenset((*new, *running[: limit - len(new)]))


def _no_facts(message: str) -> ImageFacts:
    return ImageFacts(gathering_error=Finding(Reason.REGISTRY_ERROR, message))


def _cut(text: str, limit: int = _MAX_AUDIT_TEXT) -> str:
    """``text``, or its start and its length when longer than ``limit`` (fields from the request)."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text)} characters)"


def _old_slots(context: AdmissionContext) -> tuple[ImageSlot, ...]:
    """The image slots of an UPDATE's old object: those the update keeps are still checked, but never
    rewritten or newly denied (:func:`webhook.decision.running_slots`)."""
    if context.operation != "UPDATE" or context.old_object is None:
        return ()
    try:
        return image_slots(context.kind.kind, context.old_object, group=context.kind.group)
    except BadRequest:
        return ()  # a malformed old object grants nothing: every image is treated as new


def _provenance_record(
    decision: ImageDecision | None, facts: Mapping[str, ImageFacts], policy: Policy
) -> ProvenanceRecord | None:
    """What a provenance annotation records for an admitted image whose SLSA provenance was verified
    (None: nothing, or the image was not judged)."""
    if decision is None:
        return None
    found = facts.get(decision.slot.image)
    if decision.digest is None or decision.status == "denied" or found is None:
        return None
    verified = found.verified_provenance(decision.rules, decision.digest)
    if verified is None:
        return None
    rule, provenance = verified
    return ProvenanceRecord(
        digest=decision.digest,
        repository=provenance.repository,
        ref=provenance.ref,
        commit=provenance.commit,
        builder=provenance.builder_id,
        finished=format_rfc3339(provenance.finished) if provenance.finished else None,
        attested=format_rfc3339(provenance.attested) if provenance.attested else None,
        policy=policy.name,
        rule=rule,
    )


def _summary(answer: Answer) -> Status:
    if answer.decision is not None:
        return answer.decision.status
    # Answered without deciding images: nothing to check (allowed), or denied as a whole.
    return "allowed" if answer.review["response"]["allowed"] else "denied"


def _audit_annotations(decision: Decision, policy: Policy, *, left_running: int = 0) -> dict[str, str]:
    images = (
        {
            "image": _cut(d.slot.image),
            "outcome": d.outcome,
            **({"digest": d.digest} if d.digest else {}),
            **({"rules": list(d.rules)} if d.rules else {}),
        }
        for d in decision.images
    )
    listed, shown = _bounded_json_list(images, _MAX_IMAGES_ANNOTATION)
    annotations = {"policy": policy.name, "images": listed}
    if shown < len(decision.images):
        annotations["imagesOmitted"] = str(len(decision.images) - shown)
    if left_running:
        annotations["notCheckedAgain"] = _not_checked_again(left_running)
    exemptions = sorted(
        {
            f"{_cut(d.slot.image)}: {d.exemption.reason} (expires {d.exemption.expires.isoformat()})"
            for d in decision.images
            if d.exemption
        }
    )
    if exemptions:
        annotations["exemptions"] = "; ".join(exemptions)
    if decision.audit_lines:
        annotations["audit"] = "\n".join(decision.audit_lines)
    return annotations


def _bounded_json_list(items: Iterator[dict[str, Any]], limit: int) -> tuple[str, int]:
    """Compact JSON of the longest prefix of ``items`` that fits in ``limit`` characters, and its length.

    Cutting the serialised text instead would leave invalid JSON for whoever reads the annotation.
    """
    head = list(itertools.islice(items, _WHOLE_LIST_ITEMS + 1))
    if len(head) <= _WHOLE_LIST_ITEMS:
        whole = compact_json(head)
        if len(whole) <= limit:
            return whole, len(head)  # the usual case: one serialisation
    parts: list[str] = []
    size = 2
    for item in itertools.chain(head, items):
        text = compact_json(item)
        if size + len(text) + 1 > limit:
            break
        parts.append(text)
        size += len(text) + 1
    return "[" + ",".join(parts) + "]", len(parts)


def _audit_head(context: AdmissionContext, *, stage: str, when: datetime) -> dict[str, Any]:
    """The fields every audit line starts with; text from the request is cut to a bounded length."""
    return {
        "time": format_rfc3339(when, microseconds=True),
        "audit": "admission",
        "uid": context.uid,
        "stage": stage,
        "operation": context.operation,
        "kind": _cut(context.kind.kind),
        "namespace": _cut(context.namespace),
        "name": _cut(context.name),
        "user": _cut(context.user),
        "dryRun": context.dry_run,
    }


def _audit_record(
    context: AdmissionContext,
    decision: Decision,
    inputs: DecisionInputs,
    *,
    review: AdmissionReviewResponse,
    stage: str,
    when: datetime,
    seconds: float,
    durations: Mapping[str, float],
    left_running: int = 0,
) -> dict[str, Any]:
    """The audit line of a decided admission: at most ``_MAX_AUDIT_IMAGES`` images, and how many not."""
    listed: Sequence[ImageDecision] = decision.images[:_MAX_AUDIT_IMAGES]
    policy = inputs.policy
    images = [_audit_image(d, durations) for d in listed]
    budget = _MAX_AUDIT_EXPLANATIONS
    for entry, d in zip(images, listed, strict=True):
        if not d.failures:
            continue
        if budget <= 0:
            entry["explanation"] = {"omitted": "this audit line's explanations are at their size limit"}
            continue
        explanation = audit_explanation(inputs.explain(d))
        entry["explanation"] = explanation
        budget -= len(compact_json(explanation))
    record: dict[str, Any] = {
        **_audit_head(context, stage=stage, when=when),
        "policy": policy.name,
        "mode": policy.mode,
        "allowed": decision.allowed,
        **_answered(review),
        "durationMs": round(seconds * 1000, 2),
        "images": images,
    }
    # audit mode's lines are only in the answer's annotations (cut there): here, those of the listed images.
    recorded = [line for d in listed if d.failures for line in d.lines("audit")]
    if recorded:
        record["auditLines"] = recorded
    if len(decision.images) > len(listed):
        record["imagesOmitted"] = len(decision.images) - len(listed)
    if left_running:
        record["notCheckedAgain"] = left_running
    return record


def _answered(review: AdmissionReviewResponse) -> dict[str, Any]:
    """What the answer told the API server in words, as it was sent (so as bounded): the denial
    ``message`` that ``kubectl`` shows, and the ``warnings``."""
    response = review["response"]
    said: dict[str, Any] = {}
    if "status" in response:
        said["message"] = response["status"].get("message", "")
    if "warnings" in response:
        said["warnings"] = response["warnings"]
    return said


def _not_checked_again(count: int) -> str:
    return (
        f"{count} distinct images this update leaves running were not checked again: the object has more "
        "than IMAGEGATE_MAX_IMAGES"
    )


def _audit_image(d: ImageDecision, durations: Mapping[str, float]) -> dict[str, Any]:
    return {
        "location": d.slot.pointer,
        "image": _cut(d.slot.image),
        "digest": d.digest,
        "rules": list(d.rules),
        "outcome": d.outcome,
        "reasons": [f.code for f, _ in d.failures],
        "modes": sorted({m for _, m in d.failures}),
        "durationMs": round(durations.get(d.slot.image, 0.0) * 1000, 2),
        **({"exemption": d.exemption.reason} if d.exemption else {}),
        **({"alreadyRunning": True} if d.running else {}),
    }
