"""The pure decision core: (admission, policy, facts, now) -> Decision. No I/O, no clock, no Flask.

For every image of a pod-bearing object, :func:`evaluate` applies these steps in order; the first
policy-wide failure ends the image's evaluation, rule failures are all collected:

1. parse the reference (``invalid-reference``);
2. the registry must be in ``registries.allow`` (``registry-not-allowed``): no exemption opens a
   registry the allowlist refuses;
3. a live exemption for the image and namespace admits it (``exempted``) and skips everything else;
4. the effective tag must not be in ``tags.deny`` (``tag-denied``; ``nginx`` means ``nginx:latest``);
5. the rules whose image and namespace globs match govern the image; with none, ``unmatched`` decides
   (``unmatched`` denial, a warning, or ``unmatched-allowed``) and nothing is fetched;
6. with ``tags.resolve`` on, a governed tag is pinned to the digest it resolved to (``/mutate``), or
   denied ``not-pinned`` when it arrives unpinned at ``/validate``; a failed resolution is
   ``registry-error`` / ``digest-mismatch``;
7. the digest must not be quarantined by a quarantine list or a registry marker (``quarantined``);
   for an image index, neither may any manifest it lists, since a node pulls one of them. A marker
   seen in another repository counts too (see :mod:`webhook.seen_markers`);
8. every governing rule's signature and attestation requirements must hold for that digest
   (``unsigned``, ``signature-invalid``, ``identity-mismatch``, ``attestation-missing``,
   ``attestation-invalid``, ``provenance-mismatch``); without a digest they cannot (``unsigned``).

An image that passes has one of the allowed outcomes (:class:`webhook.reasons.Allowed`): ``verified``
(a signature or attestation requirement was checked and held), ``admitted`` (governed by rules that ask
for none), ``exempted`` or ``unmatched-allowed``; any other outcome is the reason code of the failure
that decides the image, its first failure of the strictest mode (:class:`webhook.reasons.Reason`, whose
docstring says where each code is decided). That failure comes first in ``ImageDecision.failures``, so
the outcome, ``ImageDecision.mode`` and ``ImageDecision.rule`` describe one and the same failure.

Each failure belongs to a mode; strictness is enforce > warn > audit:

* the checks before rule matching (steps 1, 2 and 4) belong to ``spec.mode``;
* failures after matching that concern the image as a whole (resolution, ``not-pinned``,
  ``registry-error``, ``digest-mismatch``, ``quarantined``) belong to the strictest mode among the rules
  that govern the image, a rule without ``mode`` having ``spec.mode`` (:func:`governing_mode`): with
  ``spec.mode: warn``, an ``enforce`` rule's tag that cannot be resolved is denied; with
  ``spec.mode: enforce``, a registry error for an image governed only by ``warn`` rules is a warning;
* a rule's own signature and attestation failures belong to that rule's mode;
* an ungoverned image is judged by ``spec.unmatched`` (its quarantine-list check by ``spec.mode``).

``enforce`` failures deny, ``warn`` failures become warnings, ``audit`` failures are only recorded
(:func:`status_of`: the one mapping from modes to ``denied`` / ``warned`` / ``allowed``).

UPDATE: an image the object already runs is never newly denied. A slot is running when the old object
had exactly the same image string in the same container (or image volume) of the same list
(:func:`running_slots`). Running slots go through every step above, but are never pinned (that would
restart a container or roll out a workload nobody changed), and their ``enforce`` failures become
warnings saying the image is already running and new pods with it will be refused. A new, renamed or
changed container is judged in full and pinned, even when another container runs the same image.
"""

from __future__ import annotations

__all__ = [
    "RUNNING_NOTE",
    "Decision",
    "ImageDecision",
    "ImagePlan",
    "PlanCache",
    "Stage",
    "Status",
    "evaluate",
    "governing_mode",
    "plan_image",
    "quarantine_finding",
    "rule_mode",
    "running_slots",
    "status_of",
    "unchanged_images",
]

import bisect
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

from webhook.admission.workloads import ImageSlot
from webhook.errors import InvalidReference
from webhook.facts import Finding, ImageFacts, ListedManifest
from webhook.images.reference import ImageRef, pin_image_text
from webhook.policy.match import denied_tag, find_exemption, matching_rules, registry_allowed
from webhook.policy.model import Exemption, Mode, Policy, QuarantineEntry, Rule
from webhook.reasons import Allowed, Outcome, Reason
from webhook.text import one_line, quote

Stage = Literal["mutate", "validate"]
#: What the failures of an image (or an object) come to: see :func:`status_of`.
Status = Literal["denied", "warned", "allowed"]

_STRICTNESS: Mapping[Mode, int] = {"audit": 0, "warn": 1, "enforce": 2}
# Bounds for one line of an answer: longer than any valid reference (512) and any sane finding.
_MAX_QUOTED_IMAGE = 600
_MAX_MESSAGE = 2000
_MAX_QUOTED_REASON = 500
# Longer image or namespace texts are never kept by PlanCache (no valid reference is this long).
_MAX_CACHED_TEXT = 512
_NO_FACTS = ImageFacts()  # what an image without gathered facts is decided on (made once: frozen)
RUNNING_NOTE = "already running: this update is allowed, but new pods with this image will be refused"


@dataclass(frozen=True, slots=True)
class ImagePlan:
    """What the adapters must find out about one image before the decision can be made.

    ``terminal`` holds the failure that ends evaluation before any network access (or None);
    ``mode`` is the mode that owns ``terminal`` and every later failure about the image as a whole
    (see :func:`governing_mode`), and ``owner`` the rule that mode comes from (the first governing rule
    with it; None when ``spec`` owns them); ``resolve`` asks for tag resolution; ``digest`` is known
    when the reference is pinned.
    """

    image: str
    ref: ImageRef | None
    mode: Mode = "enforce"  # plan_image always sets it; unset, failures deny (fail closed)
    rules: tuple[Rule, ...] = ()
    owner: str | None = None
    exemption: Exemption | None = None
    terminal: Finding | None = None
    terminal_outcome: Literal[Allowed.EXEMPTED, Reason.UNMATCHED] | None = None
    resolve: bool = False
    pin: bool = False
    digest: str | None = None
    check_markers: bool = False
    verify_rules: tuple[Rule, ...] = ()
    check_listing: bool = False

    @property
    def needs_facts(self) -> bool:
        return self.resolve or self.check_markers or self.check_listing or bool(self.verify_rules)


@dataclass(frozen=True, slots=True)
class ImageDecision:
    """The decision for one image slot. ``failures`` pairs each failed check with its mode; the first is
    the one that decides the image (the first of the strictest mode), whose code is ``outcome``.

    ``rule`` names the rule the outcome is owed to: for a rule's own requirement failure that rule; for a
    failure about the image as a whole, and for a governed image that passes, the first governing rule
    of the mode that owns such failures (:func:`governing_mode`); None where ``spec`` decides (checks
    before rule matching, images no rule governs, exemptions).

    ``running`` is set when an UPDATE leaves this slot's image running and failures that would have
    denied it were turned into warnings (their line then says so).
    """

    slot: ImageSlot
    ref: ImageRef | None
    outcome: Outcome
    failures: tuple[tuple[Finding, Mode], ...] = ()
    rules: tuple[str, ...] = ()
    digest: str | None = None
    pin: str | None = None
    exemption: Exemption | None = None
    running: bool = False
    rule: str | None = None

    @property
    def status(self) -> Status:
        """``denied``, ``warned`` or ``allowed``, by the modes of its failures (:func:`status_of`)."""
        return status_of(m for _, m in self.failures)

    @property
    def mode(self) -> Mode | None:
        """The mode of the failure that decides the image (as it was applied: after an UPDATE turned
        ``enforce`` into ``warn`` for a running image), or None when nothing failed."""
        return self.failures[0][1] if self.failures else None

    def lines(self, mode: Mode) -> tuple[str, ...]:
        """One line per mode with the image's failures of that mode (the denial message format)."""
        parts = [
            f"[{f.code}] {one_line(f.message, limit=_MAX_MESSAGE)}" for f, m in self.failures if m == mode
        ]
        if not parts:
            return ()
        if mode == "warn" and self.running:
            parts.append(RUNNING_NOTE)
        # Outside text is escaped alike in the image and the reasons (webhook.text): a hostile string
        # cannot forge a line or pass a homoglyph off as ASCII. An image longer than any valid
        # reference is quoted cut short, so one slot cannot blow up the whole answer.
        return (
            f"{self.slot.describe()} image {quote(self.slot.image, limit=_MAX_QUOTED_IMAGE)}: "
            + "; ".join(parts),
        )


@dataclass(frozen=True, slots=True)
class Decision:
    images: tuple[ImageDecision, ...]

    @property
    def allowed(self) -> bool:
        return self.status != "denied"

    @property
    def status(self) -> Status:
        """What the object's images come to together (:func:`status_of` over all their failures)."""
        return status_of(m for d in self.images for _, m in d.failures)

    @property
    def denials(self) -> tuple[str, ...]:
        return tuple(line for d in self.images for line in d.lines("enforce"))

    @property
    def warnings(self) -> tuple[str, ...]:
        return tuple(line for d in self.images for line in d.lines("warn"))

    @property
    def audit_lines(self) -> tuple[str, ...]:
        return tuple(line for d in self.images for line in d.lines("audit"))

    @property
    def pins(self) -> tuple[tuple[ImageSlot, str], ...]:
        return tuple((d.slot, d.pin) for d in self.images if d.pin is not None)


def plan_image(
    image: str, *, policy: Policy, namespace: str, now: datetime, stage: Stage, unchanged: bool = False
) -> ImagePlan:
    """Steps 1-6 of the module docstring that need no network: what to fetch for ``image``.

    ``unchanged`` marks an image that every slot holding it already held before an UPDATE (see
    :func:`unchanged_images`): it is checked by the digest its tag resolves to, but neither pinned nor
    denied ``not-pinned``, since rewriting it would restart a running pod's container or roll out a
    workload nobody changed.
    """
    try:
        ref = ImageRef.parse(image)
    except InvalidReference as error:
        return ImagePlan(
            image, None, policy.mode, terminal=Finding(Reason.INVALID_REFERENCE, error.user_message)
        )
    rules = matching_rules(policy, ref, namespace)
    if not registry_allowed(policy, ref):
        allowed = ", ".join(policy.registries.allow) or "none"
        return ImagePlan(
            image,
            ref,
            policy.mode,
            rules=rules,
            terminal=Finding(
                Reason.REGISTRY_NOT_ALLOWED,
                f'registry "{ref.registry}" is not in registries.allow (allowed: {allowed})'
                + _owner(rules, policy),
            ),
        )
    # After the allowlist: an exemption never opens a registry the allowlist refuses.
    exemption = find_exemption(policy, ref, namespace, now=now)
    if exemption is not None:
        return ImagePlan(image, ref, policy.mode, exemption=exemption, terminal_outcome=Allowed.EXEMPTED)
    tag = denied_tag(policy, ref)
    if tag is not None:
        if ref.digest is not None:
            # Pinned, so not mutable here; but a denied tag is denied whatever follows it.
            why = "is on the deny list (tags.deny) and a digest does not exempt it"
        else:
            why = f"{'(no tag means latest) ' if ref.tag is None else ''}is mutable and not allowed"
        return ImagePlan(
            image,
            ref,
            policy.mode,
            rules=rules,
            terminal=Finding(Reason.TAG_DENIED, f'tag "{tag}" {why}' + _owner(rules, policy)),
        )
    if not rules:
        return ImagePlan(image, ref, policy.mode, digest=ref.digest, terminal_outcome=Reason.UNMATCHED)
    mode = governing_mode(rules, policy=policy)
    owner = next(r.name for r in rules if rule_mode(r, policy=policy) == mode)
    if ref.digest is None and policy.tags.resolve and stage == "validate" and not unchanged:
        return ImagePlan(
            image,
            ref,
            mode,
            rules=rules,
            owner=owner,
            terminal=Finding(
                Reason.NOT_PINNED,
                "image is not pinned to a digest; the mutating webhook pins it "
                "(was it changed after mutation, or is the mutating webhook missing?)"
                + _owner(rules, policy),
            ),
        )
    resolve = ref.digest is None and policy.tags.resolve
    has_digest = ref.digest is not None or resolve
    return ImagePlan(
        image,
        ref,
        mode,
        rules=rules,
        owner=owner,
        resolve=resolve,
        pin=resolve and not unchanged,
        digest=ref.digest,
        check_markers=has_digest and policy.quarantine.registry_markers,
        verify_rules=tuple(r for r in rules if r.needs_verification) if has_digest else (),
        # An index is quarantined when a manifest it lists is: what it lists must be read.
        check_listing=has_digest and (bool(policy.quarantined) or policy.quarantine.registry_markers),
    )


class PlanCache:
    """:func:`plan_image` answers for one policy, reused across admissions (bounded, thread-safe).

    The same few images arrive in admission after admission, and a plan depends only on the policy,
    the image string, the namespace, the stage, ``unchanged`` and which exemptions are live. Exemptions
    only ever expire, so the live ones are known from how many expiry times ``now`` has reached: that
    count is part of the key, and a plan is never served past an expiry it did not see.

    At most ``maxsize`` plans are kept; a full cache starts afresh (a plan costs microseconds to make
    again). Texts longer than any valid reference or namespace are planned every time, never kept.
    """

    __slots__ = ("_expiries", "_maxsize", "_plans", "policy")

    def __init__(self, policy: Policy, *, maxsize: int = 4096) -> None:
        self.policy = policy
        self._maxsize = maxsize
        self._expiries = sorted(exemption.expires for exemption in policy.exemptions)
        self._plans: dict[Hashable, ImagePlan] = {}

    def plan(
        self, image: str, *, namespace: str, now: datetime, stage: Stage, unchanged: bool = False
    ) -> ImagePlan:
        """``plan_image(image, policy=self.policy, ...)``, from the cache when it was made before."""
        if len(image) > _MAX_CACHED_TEXT or len(namespace) > _MAX_CACHED_TEXT:
            return plan_image(
                image, policy=self.policy, namespace=namespace, now=now, stage=stage, unchanged=unchanged
            )
        key = (image, namespace, stage, unchanged, bisect.bisect_right(self._expiries, now))
        plan = self._plans.get(key)
        if plan is None:
            plan = plan_image(
                image, policy=self.policy, namespace=namespace, now=now, stage=stage, unchanged=unchanged
            )
            if len(self._plans) >= self._maxsize:
                self._plans.clear()
            self._plans[key] = plan
        return plan

    def __len__(self) -> int:
        return len(self._plans)


def status_of(modes: Iterable[Mode]) -> Status:
    """The one mapping from the modes of failures to what they come to.

    A failure that belongs to ``enforce`` denies; else one of ``warn`` makes a warning; ``audit``
    failures are only recorded, so they leave the image ``allowed`` (as does having none).
    """
    found = set(modes)
    if "enforce" in found:
        return "denied"
    return "warned" if "warn" in found else "allowed"


def governing_mode(rules: Sequence[Rule], *, policy: Policy) -> Mode:
    """The mode that owns the failures concerning a governed image as a whole.

    Resolution, ``not-pinned``, ``registry-error``, ``digest-mismatch`` and ``quarantined`` are not about
    one rule's requirements, so they belong to the strictest mode (enforce > warn > audit) among the
    rules that govern the image, a rule without ``mode`` having ``spec.mode``. Without governing rules
    (an ungoverned image's quarantine-list check) they belong to ``spec.mode``.
    """
    if not rules:
        return policy.mode
    return max((rule_mode(rule, policy=policy) for rule in rules), key=_STRICTNESS.__getitem__)


def rule_mode(rule: Rule, *, policy: Policy) -> Mode:
    """The mode of a rule's own requirement failures: its ``mode``, else ``spec.mode``."""
    return rule.mode or policy.mode


def running_slots(slots: Sequence[ImageSlot], *, old: Sequence[ImageSlot]) -> frozenset[str]:
    """The pointers of the ``slots`` an UPDATE leaves running: the same container (or image volume) of
    the old object, by list and name, held exactly the same image string.

    A container that is new, renamed, moved to another list or given another image is not running,
    even when another container already runs that image: admitting it would start a container of
    it. A slot without a name never counts as running.
    """
    before = {(s.location, s.name, s.image) for s in old if s.name}
    return frozenset(s.pointer for s in slots if s.name and (s.location, s.name, s.image) in before)


def unchanged_images(slots: Sequence[ImageSlot], *, running: frozenset[str]) -> frozenset[str]:
    """The images all of whose slots are running (:func:`running_slots`): see :func:`plan_image`."""
    images = {s.image for s in slots}
    return frozenset(images - {s.image for s in slots if s.pointer not in running})


def evaluate(
    slots: Sequence[ImageSlot],
    *,
    policy: Policy,
    namespace: str,
    facts: Mapping[str, ImageFacts],
    now: datetime,
    stage: Stage,
    plans: Mapping[str, ImagePlan] | None = None,
    running: frozenset[str] = frozenset(),
) -> Decision:
    """Decide every image slot. ``facts`` is keyed by the image string as written in the object.

    ``plans`` are the :func:`plan_image` results the caller already made for these inputs (keyed the
    same way, ``unchanged`` from :func:`unchanged_images`); missing ones are made here. ``running``
    holds the pointers of the slots an UPDATE leaves running (:func:`running_slots`): they are never
    pinned, and failures that would deny them become warnings. Missing facts never allow: a governed
    image whose facts are absent is denied as if its checks had failed.
    """
    plans = dict(plans or {})
    unchanged: frozenset[str] | None = None  # needed only for plans the caller did not make
    decisions = []
    for slot in slots:
        plan = plans.get(slot.image)
        if plan is None:
            if unchanged is None:
                unchanged = unchanged_images(slots, running=running)
            plan = plans[slot.image] = plan_image(
                slot.image,
                policy=policy,
                namespace=namespace,
                now=now,
                stage=stage,
                unchanged=slot.image in unchanged,
            )
        decision = _decide(slot, plan, policy, facts.get(slot.image, _NO_FACTS))
        decisions.append(_still_running(decision) if slot.pointer in running else decision)
    return Decision(tuple(decisions))


def _still_running(decision: ImageDecision) -> ImageDecision:
    """An image an UPDATE leaves running is never newly denied: what would deny it only warns.

    Denying would block every change to a running object (labels, a finalizer's removal, a
    workload's scale) once its image is quarantined or its signatures cannot be fetched; new pods
    with the image are Pod CREATEs and are still refused.
    """
    failures = tuple((f, "warn" if m == "enforce" else m) for f, m in decision.failures)
    return replace(decision, failures=failures, pin=None, running=failures != decision.failures)


def _decide(slot: ImageSlot, plan: ImagePlan, policy: Policy, facts: ImageFacts) -> ImageDecision:
    names = tuple(r.name for r in plan.rules)

    def decided(
        outcome: Outcome,
        failures: Sequence[tuple[Finding, Mode]] = (),
        *,
        digest: str | None = None,
        pin: str | None = None,
        rule: str | None = plan.owner,
    ) -> ImageDecision:
        return ImageDecision(
            slot=slot,
            ref=plan.ref,
            outcome=outcome,
            failures=tuple(failures),
            rules=names,
            digest=digest,
            pin=pin,
            exemption=plan.exemption,
            rule=rule,
        )

    if plan.terminal is not None:
        return decided(plan.terminal.code, ((plan.terminal, plan.mode),))
    if plan.terminal_outcome == Allowed.EXEMPTED:
        return decided(Allowed.EXEMPTED)
    if plan.terminal_outcome == Reason.UNMATCHED:
        return _unmatched(decided, plan, policy)

    digest = plan.digest
    if facts.gathering_error is not None:
        # Facts could not be gathered (the registry failed, the deadline passed, an adapter broke):
        # for a pinned image too, or its quarantine markers would count as read and found empty.
        failure = _owned(facts.gathering_error, plan, policy)
        return decided(failure.code, ((failure, plan.mode),))
    if plan.resolve:
        if facts.digest is None:
            missing = Finding(Reason.REGISTRY_ERROR, "the tag was not resolved to a digest")
            return decided(Reason.REGISTRY_ERROR, ((_owned(missing, plan, policy), plan.mode),))
        digest = facts.digest
    pin = pin_image_text(slot.image, digest) if plan.pin and digest is not None else None

    quarantined = quarantine_finding(plan, policy=policy, digest=digest, facts=facts)
    if quarantined is not None:
        return decided(quarantined.code, ((quarantined, plan.mode),), digest=digest)

    failures: list[tuple[Finding, Mode]] = []
    owners: list[str] = []  # the rule of each failure
    for rule in plan.rules:
        if not rule.needs_verification:
            continue
        mode = rule_mode(rule, policy=policy)
        if digest is None:
            found = [
                Finding(
                    Reason.UNSIGNED,
                    "signatures are verified for digests only and tags.resolve is off: "
                    f"pin the image by digest (rule {rule.name})",
                )
            ]
        else:
            result = facts.verification(rule.name)
            if result is None or result.digest != digest:
                found = [Finding(Reason.UNSIGNED, f"no verification result for {digest} (rule {rule.name})")]
            else:
                found = [Finding(f.code, f"{f.message} (rule {rule.name})") for f in result.findings]
        failures += ((f, mode) for f in found)
        owners += [rule.name] * len(found)
    if failures:
        # The failure that decides: the first of the strictest mode, put first (the class docstring).
        first = max(range(len(failures)), key=lambda i: _STRICTNESS[failures[i][1]])  # the first of equals
        ordered = [failures[first], *failures[:first], *failures[first + 1 :]]
        return decided(ordered[0][0].code, ordered, digest=digest, pin=pin, rule=owners[first])
    verified = any(rule.needs_verification for rule in plan.rules)
    return decided(Allowed.VERIFIED if verified else Allowed.ADMITTED, digest=digest, pin=pin)


def _unmatched(decided: Callable[..., ImageDecision], plan: ImagePlan, policy: Policy) -> ImageDecision:
    # A pinned digest costs nothing to look up in the quarantine lists, governed or not.
    if plan.digest is not None:
        entry = policy.quarantined.get(plan.digest)
        if entry is not None:
            return decided(Reason.QUARANTINED, ((_quarantine_finding(entry), plan.mode),))
    if policy.unmatched == "allow":
        return decided(Allowed.UNMATCHED_ALLOWED)
    finding = Finding(Reason.UNMATCHED, f"no rule of policy {policy.name} governs this image")
    if policy.unmatched == "warn":
        return decided(Allowed.UNMATCHED_ALLOWED, ((finding, "warn"),))
    return decided(Reason.UNMATCHED, ((finding, policy.mode),))


def quarantine_finding(
    plan: ImagePlan, *, policy: Policy, digest: str | None, facts: ImageFacts
) -> Finding | None:
    """Step 7 for a governed image: why ``digest`` is refused as quarantined, or None.

    The order is the contract: a quarantine list naming the digest, its registry marker, then a
    manifest the index lists (by a list, then by its marker); only when nothing that was read settles
    it does a marker or listing that could not be read, or was never gathered, fail closed
    (``registry-error``). The gatherer
    asks this too (a quarantined image needs no signature checks), and so does ``imagegate verify``.
    """
    if digest is None:
        return None
    entry = policy.quarantined.get(digest)
    if entry is not None:
        return _quarantine_finding(entry)
    if plan.check_markers and facts.marker is not None and facts.marker.digest == digest:
        return _quarantine_finding(facts.marker)
    if plan.check_listing:
        for listed in facts.listed:
            entry = policy.quarantined.get(listed.digest)
            if entry is None and plan.check_markers and listed.marker is not None:
                entry = listed.marker if listed.marker.digest == listed.digest else None
            if entry is not None:
                return _listed_finding(listed, entry, digest)
    # What could not be read fails closed, once no quarantine that was read already settles it.
    if plan.check_markers and facts.marker_error is not None:
        return _owned(facts.marker_error, plan, policy)
    if plan.check_listing and facts.listing_error is not None:
        return _owned(facts.listing_error, plan, policy)
    # Nor is what nobody read a clean bill: no marker and no listing mean "not quarantined" only
    # when they were looked for.
    if (plan.check_markers or plan.check_listing) and not facts.quarantine_read:
        missing = Finding(Reason.REGISTRY_ERROR, "the quarantine facts of this image were not gathered")
        return _owned(missing, plan, policy)
    return None


def _quarantine_finding(entry: QuarantineEntry) -> Finding:
    reason = quote(entry.reason, limit=_MAX_QUOTED_REASON)
    return Finding(Reason.QUARANTINED, f"digest is quarantined: {reason}{_where(entry)}")


def _listed_finding(listed: ListedManifest, entry: QuarantineEntry, digest: str) -> Finding:
    what = f"platform {listed.platform} manifest" if listed.platform else "manifest"
    by = "this index" if listed.index == digest else f"index {listed.index} within this index"
    reason = quote(entry.reason, limit=_MAX_QUOTED_REASON)
    return Finding(
        Reason.QUARANTINED, f"{what} {listed.digest} listed by {by} is quarantined: {reason}{_where(entry)}"
    )


def _where(entry: QuarantineEntry) -> str:
    """Where the quarantine comes from (a list by its file name, or a marker) and for which index."""
    if entry.source == "registry":
        where = "registry marker"
    elif entry.source.startswith("registry marker"):
        where = entry.source
    else:
        # Name the list by its file name only: the server's directory layout is nobody's business.
        where = entry.source.rsplit("/", 1)[-1]
    if entry.relation:
        where = f"{where}; {entry.relation}" if where else entry.relation
    return f" ({where})" if where else ""


def _owned(finding: Finding, plan: ImagePlan, policy: Policy) -> Finding:
    return Finding(finding.code, finding.message + _owner(plan.rules, policy))


def _owner(rules: Sequence[Rule], policy: Policy) -> str:
    if rules:
        return f" (rule {', '.join(r.name for r in rules)})"
    return f" (policy {policy.name})"
