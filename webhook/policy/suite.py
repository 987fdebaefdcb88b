"""Policy test suites (``kind: PolicyTest``): checked and read into a model, with the facts they declare.

The format is documented in policies/README.md ("Policy test suites") and held by
``policytest.schema.json``. A suite names the policy under test, the cases with the decision each
expects and, for hermetic runs, the facts about the images the cases admit (``images``: tags,
manifests and indexes, quarantine markers, signatures and attestations; ``quarantine``: entries added
to the policy's quarantine lists). This module only reads and checks; ``imagegate test`` runs the
suite (:mod:`webhook.declared` turns the facts into a registry and a cryptographic step).

Checks beyond the schema, each reported with file, line and JSON pointer:

* image names are repository names (no tag or digest); a repository and digest are declared once; a
  tag names one digest per repository; an index lists each platform manifest once, never itself;
* expected outcomes are reason codes or allowed outcomes ("did you mean" for a near miss);
* against the policy (:func:`check_against_policy`): declared quarantine entries need a quarantine
  list in the policy; a key or trust root the policy does not have, but whose name is close to one it
  has, is a warning (a typo: such a signature verifies for no signer; a name unlike any of the
  policy's stands for a key or root it does not trust, on purpose).
"""

from __future__ import annotations

__all__ = [
    "DeclaredIdentity",
    "DeclaredImage",
    "DeclaredMarker",
    "DeclaredPlatform",
    "DeclaredSignature",
    "DeclaredWorld",
    "Expectation",
    "PolicySuite",
    "SuiteCase",
    "check_against_policy",
    "compile_suite",
    "with_declared_quarantine",
]

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

from webhook._json import json_type
from webhook.errors import InvalidReference
from webhook.images.reference import ImageRef
from webhook.policy._yaml_lines import YamlDocument, items, obj, strings
from webhook.policy.model import Policy, QuarantineEntry, QuarantineList
from webhook.policy.report import Report
from webhook.policy.schema import schema_check
from webhook.policy.times import RFC3339_RE, parse_time
from webhook.reasons import ALLOWED_OUTCOMES, Reason

_OUTCOMES = tuple(sorted({reason.value for reason in Reason} | {str(o) for o in ALLOWED_OUTCOMES}))


@dataclass(frozen=True, slots=True)
class DeclaredMarker:
    """A quarantine marker stored in the registry next to a manifest."""

    reason: str
    by: str = ""
    since: datetime | None = None


@dataclass(frozen=True, slots=True)
class DeclaredIdentity:
    """A keyless signer as its Fulcio certificate names it; ``root`` None: certified for every root."""

    issuer: str
    subject: str
    root: str | None = None
    extensions: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class DeclaredSignature:
    """A signature (``predicate_type`` None) or an attestation stored for a manifest, and who made it.

    Exactly one of ``keyless`` and ``key``. ``valid``: the cryptography verifies; ``tlog``: a
    transparency log recorded it; ``signed_digest``: the digest it names, when not its manifest's.
    """

    keyless: DeclaredIdentity | None = None
    key: str | None = None
    valid: bool = True
    tlog: bool = True
    signed_digest: str | None = None
    predicate_type: str | None = None
    predicate: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    pointer: str = ""  # where it is declared, for explanations


@dataclass(frozen=True, slots=True)
class DeclaredPlatform:
    platform: str
    digest: str
    marker: DeclaredMarker | None = None


@dataclass(frozen=True, slots=True)
class DeclaredImage:
    """One manifest (or index, with ``platforms``) of one repository, and what is stored next to it."""

    name: str
    digest: str
    tags: tuple[str, ...] = ()
    platforms: tuple[DeclaredPlatform, ...] = ()
    marker: DeclaredMarker | None = None
    signatures: tuple[DeclaredSignature, ...] = ()
    attestations: tuple[DeclaredSignature, ...] = ()


@dataclass(frozen=True, slots=True)
class DeclaredWorld:
    """The facts a suite declares: what the registries hold, and quarantine list entries."""

    images: tuple[DeclaredImage, ...] = ()
    quarantine: tuple[QuarantineEntry, ...] = ()


@dataclass(frozen=True, slots=True)
class Expectation:
    allowed: bool
    outcomes: tuple[str, ...] | None = None
    message_contains: str | None = None
    warnings: int | None = None


@dataclass(frozen=True, slots=True)
class SuiteCase:
    """One case: its input (exactly one of ``images``, ``manifest``, ``object``), namespace, expectation.

    ``old_images`` / ``old_object`` make it an UPDATE from what runs. ``line`` is where it is written.
    """

    name: str
    expect: Expectation
    line: int = 0
    images: tuple[str, ...] | None = None
    manifest: Path | None = None
    object: Mapping[str, Any] | None = None
    namespace: str | None = None
    old_images: tuple[str, ...] | None = None
    old_object: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class PolicySuite:
    path: Path
    name: str
    policy: Path
    cases: tuple[SuiteCase, ...]
    world: DeclaredWorld
    now: datetime | None = None


def compile_suite(doc: YamlDocument, *, path: Path, report: Report) -> PolicySuite | None:
    """The suite ``doc`` (read from ``path``), or None with its errors in ``report``."""
    schema_check("PolicyTest", doc.data, report)
    data = obj(doc.data)
    now: datetime | None = None
    if isinstance(data.get("now"), str) and RFC3339_RE.fullmatch(data["now"]):
        try:
            now = parse_time(data["now"])
        except ValueError as error:
            report.error("/now", str(error), 'write e.g. "2026-12-01T00:00:00Z"')
    cases = tuple(
        _case(pointer, obj(case), base=path.parent, report=report) for pointer, case in _cases(data)
    )
    world = DeclaredWorld(
        images=_images(data.get("images"), report=report),
        quarantine=tuple(
            _quarantine_entry(pointer, obj(entry), source=str(path))
            for pointer, entry in items(data.get("quarantine"), "/quarantine")
        ),
    )
    _check_quarantine_digests(world.quarantine, report)
    if report.has_errors():
        return None
    policy = Path(str(data.get("policy")))
    return PolicySuite(
        path=path,
        name=str(obj(data.get("metadata")).get("name") or path.name),
        policy=(policy if policy.is_absolute() else path.parent / policy).resolve(),
        cases=cases,
        world=world,
        now=now,
    )


def check_against_policy(suite: PolicySuite, policy: Policy, report: Report) -> None:
    """What the suite declares that the policy under test cannot use (see the module docstring)."""
    if suite.world.quarantine and not policy.quarantine.lists:
        report.error(
            "/quarantine",
            f"the policy {policy.name!r} reads no quarantine lists, so these entries would never be read",
            "add `spec.quarantine.files` to the policy, or declare registry markers with `marker:` instead",
        )
    keys = [key.name for key in policy.trust.keys]
    roots = [root.name for root in policy.trust.roots]
    for image in suite.world.images:
        for signature in (*image.signatures, *image.attestations):
            if signature.key is not None:
                _likely_typo(
                    report, f"{signature.pointer}/key", signature.key, keys, "key", "spec.trust.keys"
                )
            identity = signature.keyless
            if identity is not None and identity.root is not None:
                pointer = f"{signature.pointer}/keyless/root"
                _likely_typo(report, pointer, identity.root, roots, "trust root", "spec.trust.roots")


def _likely_typo(report: Report, pointer: str, name: str, names: list[str], what: str, where: str) -> None:
    """Warn about a name the policy lacks when it is close to one it has; others are deliberate."""
    if name in names:
        return
    close = difflib.get_close_matches(name, names, n=1)
    if close:
        report.warning(
            pointer,
            f"{what} {name!r} is not in the policy's {where}: the signature verifies for no signer",
            f"did you mean {close[0]!r}? (a name the policy lacks stands for one it does not trust)",
        )


def with_declared_quarantine(policy: Policy, world: DeclaredWorld, *, source: Path) -> Policy:
    """``policy`` with the suite's quarantine entries added after its own lists (its own win)."""
    if not world.quarantine:
        return policy
    declared = QuarantineList(path=source, data=b"", entries=world.quarantine)
    settings = replace(policy.quarantine, lists=(*policy.quarantine.lists, declared))
    return replace(policy, quarantine=settings, quarantined=Policy.quarantined_by_digest(settings))


# --- cases -----------------------------------------------------------------------------------------


def _cases(data: Mapping[str, Any]) -> list[tuple[str, Any]]:
    return items(data.get("cases"), "/cases")


def _case(pointer: str, case: Mapping[str, Any], *, base: Path, report: Report) -> SuiteCase:
    expect = obj(case.get("expect"))
    outcomes = expect.get("outcomes")
    if isinstance(outcomes, list):
        for where, outcome in strings(outcomes, f"{pointer}/expect/outcomes"):
            if outcome not in _OUTCOMES:
                report.error(
                    where,
                    f"{outcome!r} is not a reason code or allowed outcome",
                    _did_you_mean(outcome, _OUTCOMES, "see policies/README.md, Reason codes"),
                )
    if "oldImages" in case and "images" not in case:
        report.error(f"{pointer}/oldImages", "oldImages needs images", "give the new images as `images:`")
    if "oldObject" in case and "object" not in case:
        report.error(f"{pointer}/oldObject", "oldObject needs object", "give the new object as `object:`")
    for field_name in ("object", "oldObject"):
        # The schema leaves an object's fields to Kubernetes; this one the run itself refuses (the case
        # fails as an input error, as for a manifest file), so say so before it runs.
        inline = case.get(field_name)
        if isinstance(inline, dict) and "metadata" in inline and not isinstance(inline["metadata"], dict):
            found = json_type(inline["metadata"])
            report.warning(
                f"{pointer}/{field_name}/metadata",
                f"metadata must be a mapping, not {found}: the case fails as an input error",
                "write it as a mapping, e.g. `metadata: {name: web}`",
            )
    manifest = case.get("manifest")
    manifest_path = None
    if isinstance(manifest, str):
        manifest_path = Path(manifest) if Path(manifest).is_absolute() else base / manifest
    return SuiteCase(
        name=str(case.get("name", "")),
        line=report.line(pointer),
        expect=Expectation(
            allowed=bool(expect.get("allowed")),
            outcomes=tuple(str(o) for o in outcomes) if isinstance(outcomes, list) else None,
            message_contains=_str_or_none(expect.get("messageContains")),
            warnings=expect.get("warnings") if isinstance(expect.get("warnings"), int) else None,
        ),
        images=_strings_or_none(case.get("images")),
        manifest=manifest_path,
        object=case["object"] if isinstance(case.get("object"), dict) else None,
        namespace=_str_or_none(case.get("namespace")),
        old_images=_strings_or_none(case.get("oldImages")),
        old_object=case["oldObject"] if isinstance(case.get("oldObject"), dict) else None,
    )


# --- declared images -------------------------------------------------------------------------------


def _images(value: object, *, report: Report) -> tuple[DeclaredImage, ...]:
    images: list[DeclaredImage] = []
    declared: dict[tuple[str, str], str] = {}  # (name, digest) -> pointer
    tags: dict[tuple[str, str], tuple[str, str]] = {}  # (name, tag) -> (digest, pointer)
    for pointer, raw in items(value, "/images"):
        entry = obj(raw)
        name = _repository(entry.get("name"), f"{pointer}/name", report)
        digest = entry.get("digest")
        if name is None or not isinstance(digest, str):
            continue
        first = declared.setdefault((name, digest), pointer)
        if first != pointer:
            report.error(
                f"{pointer}/digest",
                f"{name}@{digest} is declared twice (first at line {report.line(first)})",
                "declare each manifest of a repository once, with all its tags and artifacts",
            )
        for where, tag in strings(entry.get("tags"), f"{pointer}/tags"):
            other, other_pointer = tags.setdefault((name, tag), (digest, where))
            if other != digest:
                report.error(
                    where,
                    f"tag {tag!r} of {name} already names {other} (line {report.line(other_pointer)})",
                    "a tag names one manifest: remove it from one of the two",
                )
        images.append(
            DeclaredImage(
                name=name,
                digest=digest,
                tags=tuple(tag for _, tag in strings(entry.get("tags"), "")),
                platforms=_platforms(entry.get("platforms"), pointer=pointer, index=digest, report=report),
                marker=_marker(entry.get("marker")),
                signatures=tuple(
                    _signature(where, obj(item), attestation=False)
                    for where, item in items(entry.get("signatures"), f"{pointer}/signatures")
                ),
                attestations=tuple(
                    _signature(where, obj(item), attestation=True)
                    for where, item in items(entry.get("attestations"), f"{pointer}/attestations")
                ),
            )
        )
    return tuple(images)


def _repository(value: object, pointer: str, report: Report) -> str | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        ref = ImageRef.parse(value)
    except InvalidReference as error:
        report.error(
            pointer, f"{value!r} is not an image name: {error.user_message}", "write e.g. ghcr.io/acme/app"
        )
        return None
    if ref.tag is not None or ref.digest is not None:
        report.error(
            pointer,
            f"{value!r} has a tag or digest: name the repository only",
            f"write `name: {ref.name}` and put the tag under `tags:`, the digest under `digest:`",
        )
        return None
    return ref.name


def _platforms(value: object, *, pointer: str, index: str, report: Report) -> tuple[DeclaredPlatform, ...]:
    platforms: list[DeclaredPlatform] = []
    seen: set[str] = set()
    for where, raw in items(value, f"{pointer}/platforms"):
        entry = obj(raw)
        digest, platform = entry.get("digest"), entry.get("platform")
        if not isinstance(digest, str) or not isinstance(platform, str):
            continue
        if digest == index:
            report.error(
                f"{where}/digest", "an index cannot list itself", "give the platform manifest's digest"
            )
            continue
        if digest in seen:
            report.error(f"{where}/digest", f"{digest} is listed twice", "list each platform manifest once")
            continue
        seen.add(digest)
        platforms.append(
            DeclaredPlatform(platform=platform, digest=digest, marker=_marker(entry.get("marker")))
        )
    return tuple(platforms)


def _marker(value: object) -> DeclaredMarker | None:
    if not isinstance(value, dict):
        return None
    return DeclaredMarker(
        reason=str(value.get("reason", "")),
        by=str(value.get("by", "")),
        since=_time(value.get("since")),
    )


def _signature(pointer: str, entry: Mapping[str, Any], *, attestation: bool) -> DeclaredSignature:
    keyless = entry.get("keyless")
    identity = None
    if isinstance(keyless, dict):
        extensions = obj(keyless.get("extensions"))
        identity = DeclaredIdentity(
            issuer=str(keyless.get("issuer", "")),
            subject=str(keyless.get("subject", "")),
            root=_str_or_none(keyless.get("root")),
            extensions=tuple((str(k), str(v)) for k, v in extensions.items()),
        )
    predicate = entry.get("predicate")
    return DeclaredSignature(
        keyless=identity,
        key=_str_or_none(entry.get("key")),
        valid=entry.get("valid") is not False,
        tlog=entry.get("tlog") is not False,
        signed_digest=_str_or_none(entry.get("signedDigest")),
        predicate_type=str(entry.get("predicateType", "")) if attestation else None,
        predicate=MappingProxyType(dict(predicate)) if isinstance(predicate, dict) else MappingProxyType({}),
        pointer=pointer,
    )


# --- quarantine entries ----------------------------------------------------------------------------


def _quarantine_entry(pointer: str, entry: Mapping[str, Any], *, source: str) -> QuarantineEntry:
    del pointer
    return QuarantineEntry(
        digest=str(entry.get("digest", "")),
        reason=str(entry.get("reason", "")),
        by=str(entry.get("by", "")),
        since=_time(entry.get("since")),
        source=source,
    )


def _check_quarantine_digests(entries: tuple[QuarantineEntry, ...], report: Report) -> None:
    first: dict[str, int] = {}
    for index, entry in enumerate(entries):
        if entry.digest in first:
            line = report.line(f"/quarantine/{first[entry.digest]}")
            report.error(
                f"/quarantine/{index}/digest",
                f"digest {entry.digest} is listed twice (first at line {line})",
                "remove one of the two entries",
            )
        first.setdefault(entry.digest, index)


# --- small helpers ---------------------------------------------------------------------------------


def _time(value: object) -> datetime | None:
    if not isinstance(value, str) or not RFC3339_RE.fullmatch(value):
        return None
    try:
        return parse_time(value)
    except ValueError:
        return None


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _strings_or_none(value: object) -> tuple[str, ...] | None:
    if not isinstance(value, list):
        return None
    return tuple(str(item) for item in value)


def _did_you_mean(value: str, choices: Any, otherwise: str) -> str:
    close = difflib.get_close_matches(value, list(choices), n=1)
    return f"did you mean {close[0]!r}?" if close else otherwise
