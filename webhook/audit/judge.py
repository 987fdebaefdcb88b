"""Judging an inventory: every object through the offline admission path, every running digest checked.

:func:`run_audit` does, in order:

1. loads the policy as the server does (:class:`webhook.dryrun.DryRun`), applies the mode
   :class:`~webhook.audit.overrides.Overrides`, and puts :class:`~webhook.audit.lookups.SharedLookups`
   in front of the server's fact gatherer;
2. plans every distinct image of the input per namespace (:func:`webhook.decision.plan_image`, as the
   admission path does), and every digest a pod's status says runs, and looks them all up at once,
   bounded (``prefetch``);
3. admits each object as a fresh CREATE, ``/mutate`` then ``/validate``, exactly as the webhook would
   (objects that hold the same images in the same places in one namespace are judged once: nothing
   else of an object enters a decision);
4. checks each running digest that is not the digest the spec pins (or its tag resolves to) against
   the quarantine: lists, registry markers and, when the runtime reported an index, the manifests it
   lists (:func:`webhook.decision.quarantine_finding`, the step the webhook runs). Signatures and
   attestations are not checked for a running platform manifest: they are made for the digest a spec
   pins, usually the index, and the spec's finding covers them;
5. with overrides, admits every object again under the policy as written, so each finding also says
   what it was before the override (``baseline``);
6. reports per workload what would be denied, warned or recorded and why, each distinct finding once
   with where it was found (the workload's own object, the ReplicaSets or Jobs it controls, how many of
   its pods); and per image (name and the digest judged) whether a governing rule verified its SLSA
   provenance in each namespace it runs in.
"""

from __future__ import annotations

__all__ = [
    "AuditFailure",
    "AuditFinding",
    "AuditReport",
    "ImageRow",
    "Limits",
    "NamespaceUse",
    "Reported",
    "WorkloadResult",
    "run_audit",
]

import json
import time
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Literal

from webhook._json import mapping
from webhook.admission.workloads import ImageSlot
from webhook.audit.inventory import AuditObject, Inventory, Running, Workload
from webhook.audit.lookups import LookupProgress, SharedLookups
from webhook.audit.overrides import Overrides
from webhook.deadline import Deadline
from webhook.decision import ImageDecision, ImagePlan, Status, plan_image, quarantine_finding, status_of
from webhook.dryrun import DryRun, review_for
from webhook.errors import BadRequest, InvalidReference
from webhook.facts import Finding, ImageFacts
from webhook.images.reference import ImageRef, repository_name
from webhook.policy.model import SLSA_PROVENANCE, Mode, Policy
from webhook.reasons import Allowed, Reason
from webhook.service import Answer, FactGatherer
from webhook.settings import Settings

Source = Literal["spec", "running", "object"]
_SOURCE_ORDER = {"object": 0, "spec": 1, "running": 2}
_STATUS_ORDER: Mapping[Status, int] = {"allowed": 0, "warned": 1, "denied": 2}
# The admission deadline of one object, beyond its lookups: deciding and answering.
_DECIDE_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class Limits:
    """How much an audit may ask of the registries: lookups at a time, seconds each, seconds in all."""

    concurrency: int = 8
    per_lookup: float = 20.0
    budget: float = 300.0


@dataclass(frozen=True, slots=True)
class AuditFailure:
    code: str
    mode: Mode
    message: str


@dataclass(frozen=True, slots=True)
class AuditFinding:
    """One failed check of one image slot (``spec``), running digest (``running``) or of an object as a
    whole (``object``: too many images, an internal error). ``status`` is what it comes to (``allowed``
    when only ``audit``-mode checks failed); ``baseline`` the same under the policy as written, when
    modes were overridden."""

    source: Source
    status: Status
    failures: tuple[AuditFailure, ...]
    location: str = ""
    container: str = ""
    slot: str = ""
    image: str = ""
    digest: str | None = None
    image_id: str = ""
    baseline: Status | None = None


@dataclass(frozen=True, slots=True)
class Reported:
    """A finding and where it was found: objects by kind (``{"Deployment": 1, "Pod": 3}``)."""

    finding: AuditFinding
    found_in: Mapping[str, int]


@dataclass(frozen=True, slots=True)
class WorkloadResult:
    workload: Workload
    status: Status
    baseline: Status | None
    findings: tuple[Reported, ...]
    objects: Mapping[str, int]
    not_checked: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class NamespaceUse:
    """An image in one namespace: its outcome there and whether SLSA provenance was verified for it
    (``rules``: the governing rules that verified it; ``detail``: why not, when not)."""

    namespace: str
    outcome: str
    provenance: bool
    rules: tuple[str, ...] = ()
    detail: str = ""


@dataclass(frozen=True, slots=True)
class ImageRow:
    """One image as judged: its name and digest (None when it has none: a tag that did not resolve),
    how it is written, the digests pods report running under it, and where it runs."""

    name: str
    digest: str | None
    written: tuple[str, ...]
    running: tuple[str, ...]
    workloads: int
    pods: int
    namespaces: tuple[NamespaceUse, ...]

    @property
    def provenance(self) -> bool:
        return all(use.provenance for use in self.namespaces)


@dataclass(frozen=True, slots=True)
class AuditReport:
    policy: str
    overrides: Overrides
    inventory: Inventory
    workloads: tuple[WorkloadResult, ...]
    images: tuple[ImageRow, ...]
    looked_up: int
    failed_lookups: int
    not_looked_up: int
    seconds: float

    @property
    def status(self) -> Status:
        return _worst(w.status for w in self.workloads)


def run_audit(
    inventory: Inventory,
    *,
    policy_path: Path,
    overrides: Overrides,
    limits: Limits,
    now: datetime,
    on_progress: Callable[[LookupProgress], None] | None = None,
) -> AuditReport:
    """Judge ``inventory`` under the policy at ``policy_path`` (see the module docstring).

    Raises:
        ConfigError: the policy is invalid, or an override names a rule it does not have.
        ValueError: an object is not one the admission path can read (the message names it).
    """
    started = time.monotonic()
    budget = Deadline.after(limits.budget)
    settings = _settings(policy_path, limits=limits, inventory=inventory)
    adapter = _Adapter(overrides, limits=limits, budget=budget, on_progress=on_progress)
    dry_run = DryRun(policy_path, clock=lambda: now, settings=settings, adapt=adapter)
    try:
        shared, judged_policy = adapter.shared, adapter.judged
        if shared is None or judged_policy is None:  # pragma: no cover - DryRun loads a policy or raises
            raise RuntimeError("the dry run did not load a policy")
        judge = _Judge(inventory, policy=judged_policy, shared=shared, now=now, settings=settings)
        shared.prefetch(judge.spec_plans(), now=now)
        shared.prefetch(judge.running_plans(), now=now)
        judge.admit_all(dry_run)
        if overrides.active:
            baseline_run = DryRun(
                policy_path,
                clock=lambda: now,
                settings=settings,
                adapt=lambda policy, _: (policy, shared),
            )
            try:
                judge.admit_baseline(baseline_run, policy=adapter.written)
            finally:
                baseline_run.close()
        workloads = tuple(judge.workload(w) for w in inventory.workloads)
        images = judge.images()
    finally:
        dry_run.close()
    return AuditReport(
        policy=judged_policy.name,
        overrides=overrides,
        inventory=inventory,
        workloads=workloads,
        images=images,
        looked_up=shared.looked_up,
        failed_lookups=shared.failed,
        not_looked_up=shared.not_asked,
        seconds=time.monotonic() - started,
    )


class _Adapter:
    """DryRun's ``adapt``: the policy with the overrides, and the shared lookups over its gatherer."""

    def __init__(
        self,
        overrides: Overrides,
        *,
        limits: Limits,
        budget: Deadline,
        on_progress: Callable[[LookupProgress], None] | None,
    ) -> None:
        self._overrides = overrides
        self._limits = limits
        self._budget = budget
        self._on_progress = on_progress
        self.written: Policy | None = None
        self.judged: Policy | None = None
        self.shared: SharedLookups | None = None

    def __call__(self, policy: Policy, gatherer: FactGatherer) -> tuple[Policy, FactGatherer]:
        self.written = policy
        self.judged = self._overrides.apply(policy)
        self.shared = SharedLookups(
            gatherer,
            budget=self._budget,
            per_lookup=self._limits.per_lookup,
            concurrency=self._limits.concurrency,
            budget_text=f"--timeout {self._limits.budget:g}s",
            on_progress=self._on_progress,
        )
        return self.judged, self.shared


def _settings(policy_path: Path, *, limits: Limits, inventory: Inventory) -> Settings:
    """The server's settings, with caches that keep every answer for the whole audit."""
    keep = limits.budget + limits.per_lookup + 60.0
    settings = Settings.from_env(
        policy_path=policy_path,
        audit_log=False,
        reload_interval=0.0,
        deadline_seconds=limits.per_lookup + _DECIDE_SECONDS,
        tag_ttl=keep,
        referrers_ttl=keep,
        failure_ttl=keep,
        verify_ttl=keep,
        verify_failure_ttl=keep,
    )
    objects = [o for w in inventory.workloads for o in w.objects]
    images = {s.image for o in objects for s in o.slots} | {r.image_id for o in objects for r in o.running}
    return replace(settings, cache_size=max(settings.cache_size, 4 * len(images)))


@dataclass(frozen=True, slots=True)
class _Judged:
    """The answer for one distinct object: its images' decisions by pointer, or why it was not checked,
    or the failure that denied it as a whole."""

    decisions: Mapping[str, ImageDecision] = field(default_factory=dict)
    whole: AuditFailure | None = None
    not_checked: str = ""


class _Judge:
    def __init__(
        self,
        inventory: Inventory,
        *,
        policy: Policy,
        shared: SharedLookups,
        now: datetime,
        settings: Settings,
    ) -> None:
        self._inventory = inventory
        self._policy = policy
        self._shared = shared
        self._now = now
        self._settings = settings
        self._judged: dict[Hashable, _Judged] = {}
        self._baseline: dict[Hashable, _Judged] = {}
        self._written: Policy | None = None
        self._plans: dict[tuple[str, str], ImagePlan] = {}

    # -- planning and admitting ------------------------------------------------------------------

    def _objects(self) -> Iterator[AuditObject]:
        for workload in self._inventory.workloads:
            yield from workload.objects

    def spec_plans(self) -> Iterator[ImagePlan]:
        """What the admissions will ask the registries, for the prefetch."""
        for obj in self._objects():
            images = dict.fromkeys(slot.image for slot in obj.slots)
            if len(images) > self._settings.max_images:
                continue  # denied too-many-images before any lookup, as by the webhook
            for image in images:
                yield self._plan(image, obj.namespace)

    def running_plans(self) -> Iterator[ImagePlan]:
        """What the running checks will ask, once the specs' answers are in: only about digests that are
        not the one the spec pins or its tag resolved to (the admission judges that one)."""
        for obj in self._objects():
            for running, slot in _running_slots(obj):
                spec = self._plan(slot.image, obj.namespace)
                facts = self._shared.facts(spec)
                judged = facts.digest if facts is not None and facts.digest else spec.digest
                if running.digest == judged:
                    continue
                plan = self._running_plan(running, slot, obj.namespace, policy=self._policy)
                if plan is not None:
                    yield plan

    def admit_all(self, dry_run: DryRun) -> None:
        self._judged = self._admit(dry_run)

    def admit_baseline(self, dry_run: DryRun, *, policy: Policy | None) -> None:
        self._written = policy
        self._baseline = self._admit(dry_run)

    def _admit(self, dry_run: DryRun) -> dict[Hashable, _Judged]:
        judged: dict[Hashable, _Judged] = {}
        for obj in self._objects():
            key = _shape(obj)
            if key in judged:
                continue
            try:
                result = dry_run.admit(review_for(obj.body, namespace=obj.namespace))
            except BadRequest as error:
                raise ValueError(f"{obj.origin}: {obj.label}: {error.user_message}") from None
            judged[key] = _judged(result.final)
        return judged

    def _plan(self, image: str, namespace: str) -> ImagePlan:
        key = (image, namespace)
        plan = self._plans.get(key)
        if plan is None:
            plan = self._plans[key] = plan_image(
                image, policy=self._policy, namespace=namespace, now=self._now, stage="mutate"
            )
        return plan

    def _running_plan(
        self, running: Running, slot: ImageSlot, namespace: str, *, policy: Policy
    ) -> ImagePlan | None:
        """The quarantine-only plan of a running digest (None when it has none to check)."""
        text = _running_image(running, slot)
        if text is None:
            return None
        plan = plan_image(text, policy=policy, namespace=namespace, now=self._now, stage="mutate")
        if plan.terminal is not None or plan.exemption is not None:
            return None  # the spec's finding says it (same name, same namespace), or it is exempted
        if not plan.rules:
            # Ungoverned: only the quarantine lists apply (as for an ungoverned pinned image).
            return replace(plan, check_markers=False, check_listing=False)
        return replace(plan, verify_rules=())

    # -- findings ----------------------------------------------------------------------------------

    def workload(self, workload: Workload) -> WorkloadResult:
        found: dict[AuditFinding, Counter[str]] = {}
        not_checked: list[str] = []
        for obj in workload.objects:
            for finding in self._findings(obj, self._judged, policy=self._policy, not_checked=not_checked):
                found.setdefault(finding, Counter())[obj.kind] += 1
        baseline: Status | None = None
        if self._baseline and self._written is not None:
            before: dict[Hashable, Status] = {}
            for obj in workload.objects:
                for finding in self._findings(obj, self._baseline, policy=self._written, not_checked=[]):
                    before[_identity(finding)] = _worst(
                        (before.get(_identity(finding), "allowed"), finding.status)
                    )
            baseline = _worst(before.values())
            found = {
                replace(f, baseline=before.get(_identity(f), "allowed")): kinds for f, kinds in found.items()
            }
        ordered = sorted(
            found.items(), key=lambda item: (_SOURCE_ORDER[item[0].source], item[0].slot, item[0].image)
        )
        findings = tuple(Reported(finding, dict(kinds)) for finding, kinds in ordered)
        return WorkloadResult(
            workload=workload,
            status=_worst(r.finding.status for r in findings),
            baseline=baseline,
            findings=findings,
            objects=dict(Counter(o.kind for o in workload.objects)),
            not_checked=tuple(dict.fromkeys(not_checked)),
        )

    def _findings(
        self,
        obj: AuditObject,
        judged_by_shape: Mapping[Hashable, _Judged],
        *,
        policy: Policy,
        not_checked: list[str],
    ) -> Iterator[AuditFinding]:
        judged = judged_by_shape[_shape(obj)]
        if judged.not_checked:
            not_checked.append(f"{obj.kind} {obj.name}: {judged.not_checked}")
        if judged.whole is not None:
            yield AuditFinding(source="object", status="denied", failures=(judged.whole,))
        for slot in obj.slots:
            decision = judged.decisions.get(slot.pointer)
            if decision is None:
                continue
            if decision.failures:
                yield AuditFinding(
                    source="spec",
                    status=decision.status,
                    failures=tuple(AuditFailure(f.code, m, f.message) for f, m in decision.failures),
                    location=slot.location,
                    container=slot.name,
                    slot=slot.describe(),
                    image=slot.image,
                    digest=decision.digest,
                )
            if decision.outcome == Allowed.EXEMPTED:
                continue  # a break-glass exemption covers what the pod runs
            for running in obj.running:
                if (running.location, running.container) != (slot.location, slot.name):
                    continue
                if running.digest is None or running.digest == decision.digest:
                    continue  # nothing to check, or the spec's decision judged this very digest
                found = self._running_check(running, slot, obj.namespace, policy=policy)
                if found is not None:
                    failure, mode = found
                    yield AuditFinding(
                        source="running",
                        status=status_of([mode]),
                        failures=(AuditFailure(failure.code, mode, failure.message),),
                        location=slot.location,
                        container=slot.name,
                        slot=slot.describe(),
                        image=_running_image(running, slot) or running.image_id,
                        digest=running.digest,
                        image_id=running.image_id,
                    )

    def _running_check(
        self, running: Running, slot: ImageSlot, namespace: str, *, policy: Policy
    ) -> tuple[Finding, Mode] | None:
        """Whether the running digest is quarantined (or its quarantine could not be read)."""
        plan = self._running_plan(running, slot, namespace, policy=policy)
        if plan is None or plan.digest is None:
            return None
        facts = self._shared.answer(plan, now=self._now) if plan.needs_facts else ImageFacts()
        if facts.gathering_error is not None:
            return facts.gathering_error, plan.mode
        finding = quarantine_finding(plan, policy=policy, digest=plan.digest, facts=facts)
        return (finding, plan.mode) if finding is not None else None

    # -- the images view ---------------------------------------------------------------------------

    def images(self) -> tuple[ImageRow, ...]:
        rows: dict[tuple[str, str | None], _Row] = {}
        for workload in self._inventory.workloads:
            for obj in workload.objects:
                judged = self._judged[_shape(obj)]
                for slot in obj.slots:
                    decision = judged.decisions.get(slot.pointer)
                    name = repository_name(slot.image)
                    digest = decision.digest if decision is not None else None
                    row = rows.setdefault((name, digest), _Row())
                    row.written[slot.image] = None
                    row.workloads[(workload.namespace, workload.kind, workload.name)] = None
                    if obj.kind == "Pod":
                        row.pods[(obj.namespace, obj.name)] = None
                        for running in obj.running:
                            if (running.location, running.container) == (slot.location, slot.name):
                                row.running[running.digest or running.image_id] = None
                    if obj.namespace not in row.uses:
                        row.uses[obj.namespace] = self._use(slot.image, obj.namespace, decision)
        return tuple(
            ImageRow(
                name=name,
                digest=digest,
                written=tuple(row.written),
                running=tuple(d for d in row.running if d != digest),
                workloads=len(row.workloads),
                pods=len(row.pods),
                namespaces=tuple(row.uses[ns] for ns in sorted(row.uses)),
            )
            for (name, digest), row in sorted(rows.items(), key=lambda item: (item[0][0], item[0][1] or ""))
        )

    def _use(self, image: str, namespace: str, decision: ImageDecision | None) -> NamespaceUse:
        """Whether a governing rule verified SLSA provenance for ``image`` in ``namespace``, and why not."""
        outcome = str(decision.outcome) if decision is not None else "not-checked"
        unverified = _Unverified(namespace, outcome)
        if decision is None:
            return unverified("not checked (see the workload)")
        if decision.outcome == Allowed.EXEMPTED:
            return unverified("exempted")
        plan = self._plan(image, namespace)
        if plan.terminal is not None:
            return unverified(f"[{plan.terminal.code}] {plan.terminal.message}")
        rules = [
            r for r in plan.verify_rules if any(_is_provenance(a.predicate_type) for a in r.attestations)
        ]
        if not rules:
            return unverified("no governing rule requires SLSA provenance")
        facts = self._shared.facts(plan)
        if facts is None or facts.gathering_error is not None:
            error = facts.gathering_error if facts is not None else None
            return unverified(f"not checked: [{error.code}] {error.message}" if error else "not checked")
        digest = facts.digest or plan.digest
        verified = tuple(
            r.name
            for r in rules
            if (v := facts.verification(r.name)) is not None and v.digest == digest and v.passed
        )
        if verified:
            return NamespaceUse(namespace, outcome, True, rules=verified)
        for rule in rules:
            result = facts.verification(rule.name)
            if result is not None and result.findings:
                first = result.findings[0]
                return unverified(f"[{first.code}] {first.message} (rule {rule.name})")
        failures = decision.failures
        return unverified(f"[{failures[0][0].code}] {failures[0][0].message}" if failures else "not verified")


@dataclass
class _Row:
    written: dict[str, None] = field(default_factory=dict)
    running: dict[str, None] = field(default_factory=dict)
    workloads: dict[tuple[str, str, str], None] = field(default_factory=dict)
    pods: dict[tuple[str, str], None] = field(default_factory=dict)
    uses: dict[str, NamespaceUse] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Unverified:
    namespace: str
    outcome: str

    def __call__(self, detail: str) -> NamespaceUse:
        return NamespaceUse(self.namespace, self.outcome, False, detail=detail)


def _judged(answer: Answer) -> _Judged:
    """The decisions of the answer that settles admission, or why it has none."""
    if answer.decision is not None:
        return _Judged(decisions={d.slot.pointer: d for d in answer.decision.images})
    response = answer.review["response"]
    annotations = mapping(response.get("auditAnnotations"))
    if response["allowed"]:
        return _Judged(not_checked=str(annotations.get("notChecked", "nothing to check")))
    # Denied as a whole (too many images, an internal error): the code is in the decision annotation.
    try:
        code = str(mapping(json.loads(annotations.get("decision", "{}"))).get("error", Reason.INTERNAL_ERROR))
    except ValueError:
        code = Reason.INTERNAL_ERROR
    message = str(mapping(response.get("status")).get("message", ""))
    return _Judged(whole=AuditFailure(code, "enforce", message.removeprefix(f"[{code}] ")))


def _shape(obj: AuditObject) -> Hashable:
    """What a decision about ``obj`` depends on: its kind, namespace and images in their places."""
    return (obj.kind, obj.namespace, tuple((s.pointer, s.name, s.image) for s in obj.slots))


def _identity(finding: AuditFinding) -> Hashable:
    """A finding apart from the modes of its failures: the same check failing, whatever it comes to."""
    failures = tuple((f.code, f.message) for f in finding.failures)
    return (finding.source, finding.slot, finding.image, finding.digest, finding.image_id, failures)


def _running_slots(obj: AuditObject) -> Iterator[tuple[Running, ImageSlot]]:
    for running in obj.running:
        for slot in obj.slots:
            if (running.location, running.container) == (slot.location, slot.name):
                yield running, slot


def _running_image(running: Running, slot: ImageSlot) -> str | None:
    """The running digest under the spec's image name (where its quarantine markers are kept)."""
    if running.digest is None:
        return None
    try:
        return f"{ImageRef.parse(slot.image).name}@{running.digest}"
    except InvalidReference:
        return None


def _is_provenance(predicate_type: str) -> bool:
    return predicate_type.startswith(SLSA_PROVENANCE)


def _worst(statuses: Iterable[Status]) -> Status:
    return max(statuses, key=_STATUS_ORDER.__getitem__, default="allowed")
