"""Explanations: every check of an image, with its outcome and its evidence, for people and for machines.

:func:`explain_image` puts together what the decision core decided for one image
(:class:`~webhook.decision.ImageDecision`), what it planned (:class:`~webhook.decision.ImagePlan`) and the
facts it judged (:class:`~webhook.facts.ImageFacts`) into an :class:`ImageExplanation`: one
:class:`Check` per step of :func:`webhook.decision.evaluate`, in that order, up to the step that settled
the image; the rules that govern the image (and, when that helps, the rules that do not and why); the
quarantine lookups (the digest, and every manifest an index lists); and per rule the signature and
attestation evidence (:class:`~webhook.facts.RuleVerification`: artifacts, signer identities, predicate
fields compared with the policy, SLSA provenance).

One explanation, three renderings:

* :func:`explanation_lines`: text, for ``imagegate verify`` and ``imagegate evaluate --explain``;
* :func:`explanation_json`: JSON, field names in camelCase, absent values and empty lists left out;
* :func:`audit_explanation`: the JSON of the failed checks only, bounded in size, for the audit log.

Pure: no I/O and no clock. The text rendering escapes text from outside (:mod:`webhook.text`); JSON
escapes it by itself.
"""

from __future__ import annotations

__all__ = [
    "Check",
    "CheckOutcome",
    "ImageExplanation",
    "ListedLookup",
    "QuarantineLookup",
    "RuleMatch",
    "audit_explanation",
    "explain_image",
    "explanation_json",
    "explanation_lines",
    "verification_lines",
]

import dataclasses
import json
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from enum import Enum
from typing import Any, Literal

from webhook._json import compact_json
from webhook.decision import (
    RUNNING_NOTE,
    ImageDecision,
    ImagePlan,
    Status,
    quarantine_finding,
    rule_mode,
)
from webhook.facts import (
    ArtifactCheck,
    FieldCheck,
    Finding,
    ImageFacts,
    Provenance,
    RequirementCheck,
    RuleVerification,
    SignerEvidence,
)
from webhook.policy.match import denied_tag, find_exemption, glob_match, image_glob_match, registry_allowed
from webhook.policy.model import Mode, Policy, QuarantineEntry, Rule
from webhook.reasons import Outcome
from webhook.text import escape
from webhook.times import format_rfc3339

CheckOutcome = Literal["passed", "failed", "skipped"]
"""``passed``; ``failed`` (its finding says why, its mode what that comes to); ``skipped``: not run,
because the policy does not ask for it or an earlier check settled the image."""

# Rules listed as not governing an image, when none does (each says why).
_MAX_UNMATCHED_RULES = 20
# A time before any exemption expires: an exemption found with it matches whatever its expiry.
_BEFORE_ANY = datetime(1, 1, 2, tzinfo=UTC)
# The audit log's explanation of one image: at most this many characters of JSON.
AUDIT_EXPLANATION_CHARS = 4096
_AUDIT_LIST = 3
_AUDIT_TEXT = 300


@dataclasses.dataclass(frozen=True, slots=True)
class Check:
    """One check of an image and its outcome.

    Attributes:
        name: ``reference``, ``registry``, ``exemption``, ``tag``, ``rules``, ``digest``, ``quarantine``,
            or ``rule <name>`` (that rule's signature and attestation requirements).
        outcome: see :data:`CheckOutcome`.
        summary: what was checked and found, in words.
        finding: why it failed.
        mode: the mode the failure belongs to (enforce denies, warn warns, audit records).
    """

    name: str
    outcome: CheckOutcome
    summary: str
    finding: Finding | None = None
    mode: Mode | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class RuleMatch:
    """A rule of the policy and whether it governs the image (``why`` not, when it does not)."""

    rule: str
    governs: bool
    mode: Mode
    requires: tuple[str, ...] = ()
    why: str = ""


@dataclasses.dataclass(frozen=True, slots=True)
class ListedLookup:
    """A manifest an index lists, looked up in the quarantine (``quarantined`` says by what, if it is)."""

    digest: str
    platform: str = ""
    index: str = ""
    quarantined: str = ""


@dataclasses.dataclass(frozen=True, slots=True)
class QuarantineLookup:
    """Where a digest was looked up: the quarantine lists (file names), registry markers, and every
    manifest it lists when it is an index."""

    digest: str
    lists: tuple[str, ...] = ()
    markers: bool = False
    listed: tuple[ListedLookup, ...] = ()
    quarantined: str = ""


@dataclasses.dataclass(frozen=True, slots=True)
class ImageExplanation:
    """Why an image got its outcome: every check with its evidence (see the module docstring).

    Attributes:
        slot: how the image's place is named (``container "app"``).
        image: the image as written.
        outcome: the decision's outcome (a reason code, or how it passed).
        status: ``denied``, ``warned`` or ``allowed``.
        digest: the digest that was checked.
        pin: what ``/mutate`` pins the image to.
        running: an UPDATE left it running, so failures that would deny it only warn.
        checks: the checks, in the order the decision applies them.
        rules: the rules that govern it, and those that do not when that helps (see :func:`explain_image`).
        quarantine: the quarantine lookups.
        verifications: the signature and attestation evidence, per rule that asks for any.
    """

    slot: str
    image: str
    outcome: Outcome
    status: Status
    digest: str | None = None
    pin: str | None = None
    running: bool = False
    checks: tuple[Check, ...] = ()
    rules: tuple[RuleMatch, ...] = ()
    quarantine: QuarantineLookup | None = None
    verifications: tuple[RuleVerification, ...] = ()


def explain_image(
    decision: ImageDecision, *, plan: ImagePlan, facts: ImageFacts | None, policy: Policy, namespace: str
) -> ImageExplanation:
    """Explain ``decision``, made from ``plan`` and ``facts`` under ``policy`` in ``namespace``.

    The checks follow :func:`webhook.decision.evaluate` up to the one that settled the image; a failed
    check carries the decision's own finding and mode. ``rules`` lists every rule of the policy that
    governs the image; of the others, those whose images match but whose namespaces do not (they
    would govern it elsewhere), and, when no rule governs it, every rule (the first 20) with why not.
    """
    facts = facts or ImageFacts()
    checks: list[Check] = []
    ref = plan.ref
    base = ImageExplanation(
        slot=decision.slot.describe(),
        image=decision.slot.image,
        outcome=decision.outcome,
        status=decision.status,
        digest=decision.digest,
        pin=decision.pin,
        running=decision.running,
    )
    # A check that ends the evaluation of the image fails with the decision's one failure.
    ending = decision.failures[0] if decision.failures else None

    def done(*, last: tuple[str, str] | None = None, **more: Any) -> ImageExplanation:
        if last is not None:
            name, summary = last
            finding, mode = ending if ending is not None else (None, plan.mode)
            checks.append(Check(name, "failed", summary, finding, mode))
            if name in ("registry", "tag") and more.get("rules"):
                checks.append(Check("rules", "skipped", "an earlier check settled the image"))
        return dataclasses.replace(base, checks=tuple(checks), **more)

    if ref is None:
        return done(last=("reference", "the image reference does not parse"))
    checks.append(Check("reference", "passed", str(ref)))
    rules = _rule_matches(policy, plan, namespace)
    if not registry_allowed(policy, ref):
        return done(last=("registry", f"{ref.registry} is not in registries.allow"), rules=rules)
    checks.append(Check("registry", "passed", f"{ref.registry} is in registries.allow"))
    if plan.exemption is not None:
        exemption = plan.exemption
        expires = format_rfc3339(exemption.expires)
        summary = f"applies: {exemption.reason} (expires {expires}); nothing else is checked"
        checks.append(Check("exemption", "passed", summary))
        return done()
    checks.append(Check("exemption", "passed", _no_exemption(policy, plan, namespace)))
    tag = ref.effective_tag
    if denied_tag(policy, ref) is not None:
        return done(last=("tag", f"{tag} is in tags.deny"), rules=rules)
    checks.append(
        Check("tag", "passed", f"{tag} is not in tags.deny" if tag is not None else "no tag (a digest only)")
    )
    if not plan.rules:
        if ending is None:
            checks.append(
                Check("rules", "passed", f"no rule governs it; unmatched: {policy.unmatched} admits it")
            )
            return done(rules=rules)
        if plan.digest is not None and plan.digest in policy.quarantined:
            return done(last=("quarantine", f"{plan.digest} is in a quarantine list"), rules=rules)
        return done(last=("rules", f"no rule governs it (unmatched: {policy.unmatched})"), rules=rules)
    names = ", ".join(f"{rule.name} ({rule_mode(rule, policy=policy)})" for rule in plan.rules)
    checks.append(Check("rules", "passed", f"governed by {names}"))

    digest = decision.digest
    if plan.terminal is not None or facts.gathering_error is not None or (plan.resolve and digest is None):
        return done(last=("digest", "the image was not pinned, or could not be looked up"), rules=rules)
    if plan.resolve and digest is not None:
        summary = f"tag {tag} resolved to {digest}"
        checks.append(
            Check("digest", "passed", summary + (f", pinned to {decision.pin}" if decision.pin else ""))
        )
    elif digest is not None:
        checks.append(Check("digest", "passed", f"pinned to {digest}"))
    else:
        checks.append(Check("digest", "skipped", "tags.resolve is off: the reference is judged as written"))

    quarantine = None
    if digest is not None:
        quarantine = _quarantine_lookup(plan, policy=policy, digest=digest, facts=facts)
        if quarantine_finding(plan, policy=policy, digest=digest, facts=facts) is not None:
            return done(last=("quarantine", f"{digest} may not run"), rules=rules, quarantine=quarantine)
        checks.append(Check("quarantine", "passed", _not_quarantined(quarantine)))

    verifications: list[RuleVerification] = []
    for rule in plan.rules:
        if not rule.needs_verification:
            continue
        name, what = f"rule {rule.name}", ", ".join(_requirements(rule))
        verification = facts.verification(rule.name) if digest is not None else None
        if verification is not None and verification.digest == digest:
            verifications.append(verification)
        # The decision says which failures are the rule's: it names the rule at their end.
        failed = [(f, m) for f, m in decision.failures if f.message.endswith(f"(rule {rule.name})")]
        if failed:
            checks.append(Check(name, "failed", what, *failed[0]))
        else:
            checks.append(Check(name, "passed", what))
    return done(rules=rules, quarantine=quarantine, verifications=tuple(verifications))


def _requirements(rule: Rule) -> tuple[str, ...]:
    required = ["signatures"] if rule.signatures is not None else []
    required += [f"attestation {attestation.predicate_type}" for attestation in rule.attestations]
    return tuple(required)


def _rule_matches(policy: Policy, plan: ImagePlan, namespace: str) -> tuple[RuleMatch, ...]:
    ref = plan.ref
    if ref is None:
        return ()
    governing = {rule.name for rule in plan.rules}
    matches: list[RuleMatch] = []
    elsewhere = 0
    for rule in policy.rules:
        mode = rule_mode(rule, policy=policy)
        requires = _requirements(rule)
        if rule.name in governing:
            matches.append(RuleMatch(rule.name, True, mode, requires))
        elif any(image_glob_match(pattern, ref.name) for pattern in rule.images):
            if not any(glob_match(pattern, namespace) for pattern in rule.namespaces):
                why = f"namespace {json.dumps(namespace)} matches none of namespaces {_list(rule.namespaces)}"
                matches.append(RuleMatch(rule.name, False, mode, requires, why))
        elif not governing and elsewhere < _MAX_UNMATCHED_RULES:
            elsewhere += 1
            why = f"{ref.name} matches none of images {_list(rule.images)}"
            matches.append(RuleMatch(rule.name, False, mode, requires, why))
    return tuple(matches)


def _no_exemption(policy: Policy, plan: ImagePlan, namespace: str) -> str:
    """ "none applies", naming an exemption that would apply if it had not expired."""
    ref = plan.ref
    expired = find_exemption(policy, ref, namespace, now=_BEFORE_ANY) if ref is not None else None
    if expired is None:
        return "none applies"
    return f"none applies (one for this image expired {format_rfc3339(expired.expires)}: {expired.reason})"


def _quarantine_lookup(
    plan: ImagePlan, *, policy: Policy, digest: str, facts: ImageFacts
) -> QuarantineLookup:
    lists = tuple(path.name for path in policy.quarantine.files)
    entry = policy.quarantined.get(digest)
    if entry is None and plan.check_markers and facts.marker is not None and facts.marker.digest == digest:
        entry = facts.marker
    listed: list[ListedLookup] = []
    if plan.check_listing:
        for manifest in facts.listed:
            found = policy.quarantined.get(manifest.digest)
            if found is None and plan.check_markers and manifest.marker is not None:
                found = manifest.marker if manifest.marker.digest == manifest.digest else None
            listed.append(
                ListedLookup(
                    manifest.digest,
                    manifest.platform,
                    manifest.index if manifest.index != digest else "",
                    _by(found) if found is not None else "",
                )
            )
    return QuarantineLookup(
        digest=digest,
        lists=lists,
        markers=plan.check_markers,
        listed=tuple(listed),
        quarantined=_by(entry) if entry is not None else "",
    )


def _by(entry: QuarantineEntry) -> str:
    if entry.source == "registry" or entry.source.startswith("registry marker"):
        where = entry.source if entry.source != "registry" else "registry marker"
    else:
        where = entry.source.rsplit("/", 1)[-1]
    return f"{entry.reason} ({where})" if where else entry.reason


def _not_quarantined(lookup: QuarantineLookup) -> str:
    parts = [
        f"in none of the quarantine lists ({', '.join(lookup.lists)})"
        if lookup.lists
        else "no quarantine lists",
        "no registry marker" if lookup.markers else "registry markers not read (registryMarkers is off)",
    ]
    if lookup.listed:
        parts.append(f"nor is any of the {len(lookup.listed)} manifest(s) it lists")
    return f"{lookup.digest} is not quarantined: {'; '.join(parts)}"


# --- text -----------------------------------------------------------------------------------------


def explanation_lines(explanation: ImageExplanation, *, indent: str = "  ") -> list[str]:
    """The explanation as text lines (escaped), each starting with ``indent``."""
    lines: list[str] = []
    for check in explanation.checks:
        if check.name.startswith("rule "):
            verification = next(
                (v for v in explanation.verifications if f"rule {v.rule}" == check.name), None
            )
            lines.extend(_rule_check_lines(check, verification))
            continue
        lines.append(_check_line(check))
        if check.name == "rules":
            lines.extend(f"  {line}" for line in _rule_lines(explanation.rules))
        elif check.name == "quarantine" and explanation.quarantine is not None:
            lines.extend(f"  {line}" for line in _listed_lines(explanation.quarantine))
    if explanation.running:
        lines.append(f"note: {RUNNING_NOTE}")
    return [escape(indent + line) for line in lines]


def _check_line(check: Check) -> str:
    if check.outcome == "passed":
        return f"{check.name}: {check.summary}"
    if check.outcome == "skipped":
        return f"{check.name}: skipped: {check.summary}"
    finding = check.finding
    why = f" [{finding.code}] {finding.message}" if finding is not None else ""
    return f"{check.name}: FAILED ({check.mode}){why}"


def _rule_check_lines(check: Check, verification: RuleVerification | None) -> list[str]:
    """A rule's check: one line, then its evidence (whose findings say what failed, where it failed)."""
    if verification is None:
        return [_check_line(check)]
    if check.outcome == "passed":
        head = f"{check.name}: passed: {check.summary}"
    else:
        codes = " ".join(f"[{code}]" for code in dict.fromkeys(f.code for f in verification.findings))
        head = f"{check.name}: FAILED ({check.mode}) {codes}: {check.summary}"
    # The evidence's last line repeats the rule's verdict, which the head says already.
    return [head, *(f"  {line}" for line in verification_lines(verification)[:-1])]


def _rule_lines(rules: Sequence[RuleMatch]) -> Iterator[str]:
    for match in rules:
        requires = ", ".join(match.requires) or "no signatures or attestations"
        if match.governs:
            yield f"rule {match.rule} ({match.mode}) matches; requires {requires}"
        else:
            yield f"rule {match.rule} ({match.mode}) does not match: {match.why}"


def _listed_lines(lookup: QuarantineLookup) -> Iterator[str]:
    if lookup.quarantined:
        yield f"{lookup.digest}: quarantined: {lookup.quarantined}"
    for listed in lookup.listed:
        where = " ".join(
            part for part in (listed.platform, f"in index {listed.index}" if listed.index else "") if part
        )
        state = f"quarantined: {listed.quarantined}" if listed.quarantined else "not quarantined"
        yield f"lists {listed.digest}{f' ({where})' if where else ''}: {state}"


def verification_lines(verification: RuleVerification) -> list[str]:
    """One rule's signature and attestation evidence as text lines (not escaped)."""
    lines: list[str] = []
    discovery = verification.discovery
    if discovery is not None:
        lines.append(
            f"found for {verification.digest}: {discovery.bundles} Sigstore bundle referrer(s), "
            f"{discovery.signatures} legacy .sig layer(s), {discovery.attestations} legacy .att layer(s)"
        )
        lines.extend(f"discovery note: {note}" for note in discovery.notes)
    for requirement in verification.requirements:
        lines.extend(_requirement_lines(requirement))
    listed = {finding for requirement in verification.requirements for finding in requirement.findings}
    lines.extend(f"FAILED [{f.code}] {f.message}" for f in verification.findings if f not in listed)
    verdict = (
        "passed"
        if verification.passed
        else "FAILED " + " ".join(f"[{f.code}]" for f in verification.findings)
    )
    lines.append(f"rule {verification.rule}: {verdict}")
    return lines


def _requirement_lines(requirement: RequirementCheck) -> list[str]:
    count = f"{requirement.satisfied} of minimum {requirement.minimum} signer(s) satisfied"
    lines = [f"{requirement.requirement}: {'passed' if requirement.passed else 'FAILED'} ({count})"]
    lines.extend(f"  signer #{n}: {signer}" for n, signer in enumerate(requirement.signers, 1))
    if not requirement.artifacts:
        lines.append("  no artifact of this kind was found")
    for artifact in requirement.artifacts:
        lines.extend(f"  {line}" for line in _artifact_lines(artifact))
    lines.extend(f"  FAILED [{f.code}] {f.message}" for f in requirement.findings)
    return lines


def _artifact_lines(artifact: ArtifactCheck) -> list[str]:
    if artifact.satisfies:
        head = f"{artifact.artifact}: satisfies signer {', '.join(f'#{n}' for n in artifact.satisfies)}"
    elif artifact.verdict == "predicate-mismatch":
        head = f"{artifact.artifact}: predicate-mismatch: its predicate does not satisfy the policy"
    else:
        head = f"{artifact.artifact}: {artifact.verdict}: {artifact.detail}"
    lines = [head]
    if artifact.signer is not None:
        lines.extend(f"  {line}" for line in _signer_lines(artifact.signer))
    lines.extend(f"  {_field_line(field)}" for field in artifact.fields)
    if artifact.provenance is not None:
        lines.append(f"  provenance: {_provenance_text(artifact.provenance)}")
    return lines


def _signer_lines(signer: SignerEvidence) -> list[str]:
    lines = [f"signed by {signer.describe()}"]
    if signer.extensions:
        lines.append("  " + ", ".join(f"{name}={value}" for name, value in signer.extensions))
    if signer.logged is not None:
        lines.append(f"  in the transparency log since {format_rfc3339(signer.logged)}")
    return lines


def _field_line(field: FieldCheck) -> str:
    found = field.found if field.found is not None else "(absent)"
    source = f" (from {field.source})" if field.source else ""
    setting = f"{field.policy} " if field.policy else ""
    expected = f"expected {setting}{_list(field.expected)}" if field.expected else f"expected {setting}(any)"
    verdict = "ok" if field.passed else f"FAILED [{field.failure.code}]" if field.failure else "FAILED"
    return f"{field.name}: {found}{source}: {verdict}, {expected}"


def _provenance_text(provenance: Provenance) -> str:
    parts = [
        f"repository {provenance.repository}" if provenance.repository else "no repository",
        f"ref {provenance.ref}" if provenance.ref else "no ref",
        f"commit {provenance.commit}" if provenance.commit else "no commit",
        f"builder {provenance.builder_id}" if provenance.builder_id else "no builder id",
    ]
    if provenance.finished is not None:
        parts.append(f"finished {format_rfc3339(provenance.finished)}")
    return ", ".join(parts)


def _list(values: Sequence[str]) -> str:
    return "[" + ", ".join(values) + "]"


# --- JSON -----------------------------------------------------------------------------------------


def explanation_json(explanation: ImageExplanation) -> dict[str, Any]:
    """The explanation as JSON: camelCase names; None, ``""`` and empty lists left out; times in RFC 3339
    UTC; every check, requirement and field says whether it ``passed``."""
    return _object(explanation)


def audit_explanation(
    explanation: ImageExplanation, *, limit: int = AUDIT_EXPLANATION_CHARS
) -> dict[str, Any]:
    """What the audit log records of an image that failed a check: its failed checks with their
    evidence, as JSON of at most ``limit`` characters.

    The failed checks are kept with the quarantine lookup when it failed, and the evidence of the
    rules that failed (their failed requirements, each with its artifacts). When that is longer than
    ``limit``, lists are cut to 3 entries and strings to 300 characters (``truncated`` says so); when
    still too long, only the failed checks' codes and messages remain, cut to fit.
    """
    failed = [check for check in explanation.checks if check.outcome == "failed"]
    failed_rules = {check.name.removeprefix("rule ") for check in failed if check.name.startswith("rule ")}
    record: dict[str, Any] = {"checks": [_jsonable(check) for check in failed]}
    if explanation.quarantine is not None and any(check.name == "quarantine" for check in failed):
        record["quarantine"] = _jsonable(explanation.quarantine)
    evidence = [
        _jsonable(dataclasses.replace(v, requirements=tuple(r for r in v.requirements if not r.passed)))
        for v in explanation.verifications
        if v.rule in failed_rules
    ]
    if evidence:
        record["verifications"] = evidence
    if _fits(record, limit):
        return record
    cut = {key: _cut(item) for key, item in record.items()}
    cut["truncated"] = True
    if _fits(cut, limit):
        return cut
    brief: dict[str, Any] = {"truncated": True, "checks": []}
    for check in failed:
        finding = check.finding
        entry = {"name": check.name, "code": str(finding.code) if finding else "", "message": ""}
        brief["checks"].append(entry)
        if finding is not None:
            room = limit - len(compact_json(brief))
            entry["message"] = _fitting(finding.message, max(0, room))
        if not _fits(brief, limit):
            brief["checks"].pop()
            break
    return brief


def _fits(value: object, limit: int) -> bool:
    return len(compact_json(value)) <= limit


def _fitting(text: str, room: int) -> str:
    """The longest start of ``text`` (ending in ``...`` when cut) whose JSON string body takes at most
    ``room`` characters: escaping (a backslash or quote doubles, a control character takes six) counts."""
    if len(json.dumps(text)) - 2 <= room:
        return text
    low, high = 0, len(text)  # the longest cut start that fits lies in [low, high)
    while high - low > 1:
        middle = (low + high) // 2
        if len(json.dumps(text[:middle] + "...")) - 2 <= room:
            low = middle
        else:
            high = middle
    return text[:low] + "..." if room >= 3 else ""


def _cut(value: object) -> object:
    if isinstance(value, dict):
        return {key: _cut(item) for key, item in value.items()}
    if isinstance(value, list):
        shown = [_cut(item) for item in value[:_AUDIT_LIST]]
        if len(value) > _AUDIT_LIST:
            shown.append(f"... and {len(value) - _AUDIT_LIST} more")
        return shown
    if isinstance(value, str) and len(value) > _AUDIT_TEXT:
        return value[:_AUDIT_TEXT] + "..."
    return value


def _jsonable(value: object) -> object:
    """JSON for the explanation's values (see :func:`explanation_json`)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _object(value)
    if isinstance(value, tuple) and value and all(isinstance(i, tuple) and len(i) == 2 for i in value):
        return {str(key): _jsonable(item) for key, item in value}  # (name, value) pairs
    if isinstance(value, tuple | list):
        return [_jsonable(item) for item in value]
    if isinstance(value, datetime):
        return format_rfc3339(value)
    if isinstance(value, Enum):
        return str(value.value)
    return value


def _object(value: Any) -> dict[str, Any]:
    """A dataclass instance as a JSON object (see :func:`explanation_json`)."""
    result: dict[str, Any] = {}
    for field in dataclasses.fields(value):
        item = getattr(value, field.name)
        if item is None or item == "" or item == ():
            continue
        result[_camel(field.name)] = _jsonable(item)
    if isinstance(getattr(type(value), "passed", None), property):
        result["passed"] = bool(value.passed)
    return result


def _camel(name: str) -> str:
    first, *rest = name.split("_")
    return first + "".join(part.capitalize() for part in rest)
