"""Loading policy and quarantine files: the entry points (YAML -> JSON Schema -> checks -> frozen model).

Every problem found is reported at once, each with its file, the 1-based line of the offending YAML
node, its JSON pointer and a fix hint (:class:`webhook.errors.PolicyProblem`). A policy is compiled in
one pass (:mod:`webhook.policy.compile`): each part is checked and built together, and each file it names
(trust roots, keys, quarantine lists, CA and credentials files) is read once, checked
(:mod:`webhook.policy.material`) and carried on the model, so the adapters never open those paths again
and the bytes hashed into ``Policy.fingerprint`` are the bytes verified with. ``imagegate lint`` adds the
serving path's check (the ``serve_check`` of :func:`lint_file`), which builds the adapters from the
policy as ``serve`` does (sigstore's reading of trusted roots among them).

The package's modules: :mod:`~webhook.policy.report` (problems with file, line and pointer),
:mod:`~webhook.policy.schema` (the JSON Schemas and their errors in words),
:mod:`~webhook.policy.compile` (the one-pass compiler), :mod:`~webhook.policy.quarantine` (quarantine
lists) and :mod:`~webhook.policy.quarantine_editor` (``imagegate quarantine --file``).
"""

from __future__ import annotations

__all__ = [
    "API_VERSION",
    "FULCIO_EXTENSIONS",
    "SEVERITIES",
    "LoadedPolicy",
    "LoadedSuite",
    "ServeCheck",
    "check_quarantine",
    "lint_file",
    "load_policy",
    "load_quarantine",
    "load_suite",
    "parse_duration",
    "parse_time",
    "referenced_paths",
]

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from webhook.errors import ConfigError, PolicyProblem
from webhook.formats import API_VERSION, FULCIO_EXTENSIONS, SEVERITIES
from webhook.policy import material
from webhook.policy._yaml_lines import items, obj, parse_yaml, strings
from webhook.policy.compile import Locate, compile_policy
from webhook.policy.model import Policy
from webhook.policy.quarantine import check_quarantine, check_quarantine_doc, load_quarantine
from webhook.policy.report import Report, config_error, in_order, os_reason, read_top
from webhook.policy.suite import PolicySuite, check_against_policy, compile_suite
from webhook.policy.times import parse_duration, parse_time
from webhook.times import require_aware

_logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LoadedPolicy:
    """A policy that loaded, with the warnings found on the way (expired exemptions, unused trust)."""

    policy: Policy
    warnings: tuple[PolicyProblem, ...]


def load_policy(path: str | Path, *, now: datetime) -> LoadedPolicy:
    """Load and validate the policy at ``path``.

    Args:
        path: the policy file; paths inside it are absolute or relative to its directory.
        now: timezone-aware current time; exemptions that expired by then are dropped with a warning.

    Raises:
        ConfigError: the policy (or a file it references) is invalid; ``problems`` lists every
            problem found, errors and warnings.
    """
    require_aware(now)
    source = str(path)
    raw = read_top(source, "policy")
    report = Report(source)
    doc = report.parse(raw)
    policy = compile_policy(doc, path=Path(path), raw=raw, report=report, now=now) if doc else None
    problems = in_order(report.problems, source)
    if policy is None or any(p.severity == "error" for p in problems):
        raise config_error(f"invalid policy {source}", problems)
    _logger.debug("loaded policy %s (fingerprint %s)", source, policy.fingerprint)
    return LoadedPolicy(policy=policy, warnings=tuple(p for p in problems if p.severity != "error"))


@dataclass(frozen=True, slots=True)
class LoadedSuite:
    """A policy test suite that loaded, with the policy it tests and the warnings found on the way."""

    suite: PolicySuite
    policy: Policy
    warnings: tuple[PolicyProblem, ...]


def load_suite(path: str | Path, *, now: datetime) -> LoadedSuite:
    """Load and check the test suite at ``path`` and the policy it names (loaded at the suite's ``now``).

    Raises:
        ConfigError: the suite is invalid, or its policy does not load; ``problems`` lists every
            problem found (the policy's own with their file and line).
    """
    require_aware(now)
    source = str(path)
    raw = read_top(source, "test suite")
    report = Report(source)
    doc = report.parse(raw)
    suite = compile_suite(doc, path=Path(path), report=report) if doc else None
    policy = _suite_policy(suite, report=report, now=now) if suite is not None else None
    problems = in_order(report.problems, source)
    if suite is None or policy is None or any(p.severity == "error" for p in problems):
        raise config_error(f"invalid test suite {source}", problems)
    return LoadedSuite(suite, policy, tuple(p for p in problems if p.severity != "error"))


def _suite_policy(suite: PolicySuite, *, report: Report, now: datetime) -> Policy | None:
    """The policy ``suite`` tests, checked against what the suite declares; None (reported) if it fails."""
    try:
        loaded = load_policy(suite.policy, now=suite.now or now)
    except ConfigError as error:
        report.error(
            "/policy",
            f"the policy under test does not load: {error.user_message}",
            f"run `imagegate lint {suite.policy}`",
        )
        report.extend([p for p in error.problems if p.severity == "error"])
        return None
    check_against_policy(suite, loaded.policy, report)
    return loaded.policy


#: Checks of a policy that passed every check here, by code outside the pure core (the serving path):
#: ``(JSON pointer, message, hint)`` per problem.
ServeCheck = Callable[[Policy], Iterable[tuple[str, str, str]]]


def lint_file(
    path: str | Path,
    *,
    now: datetime,
    locate: Locate | None = None,
    serve_check: ServeCheck | None = None,
    raw: bytes | None = None,
) -> tuple[PolicyProblem, ...]:
    """Every problem in the policy, quarantine list or test suite at ``path`` (by its ``kind``); never raises.

    Errors have ``severity == "error"``, warnings ``"warning"``. A file that cannot be read is one
    error with line 0. ``locate`` maps each absolute path the policy names to the file to read
    instead (``imagegate lint --root``); relative paths are always read from the policy's directory.
    ``serve_check`` runs on a policy that has no error otherwise; what it reports becomes errors at its
    pointers (``imagegate lint`` passes :func:`webhook.wiring.serving_problems`). ``raw`` is the file's
    content when it was read already (``imagegate lint -`` reads stdin): ``path`` then only names it,
    and its directory is where relative paths are read from.
    """
    require_aware(now)
    source = str(path)
    try:
        raw = material.read_bounded(Path(path)) if raw is None else raw
    except OSError as error:
        return (PolicyProblem(source, 0, "", f"cannot read the file: {os_reason(error)}", "check the path"),)
    report = Report(source)
    doc = report.parse(raw)
    if doc is None:
        return in_order(report.problems, source)
    kind = doc.data.get("kind") if isinstance(doc.data, dict) else None
    if kind == "Quarantine":
        check_quarantine_doc(doc, report)
    elif kind == "ImagePolicy":
        policy = compile_policy(doc, path=Path(path), raw=raw, report=report, now=now, locate=locate)
        if policy is not None and serve_check is not None:
            for pointer, message, hint in serve_check(policy):
                report.error(pointer, message, hint)
    elif kind == "PolicyTest":
        suite = compile_suite(doc, path=Path(path), report=report)
        if suite is not None:
            _suite_policy(suite, report=report, now=now)
    else:
        report.error(
            "/kind" if isinstance(doc.data, dict) and "kind" in doc.data else "",
            f"unknown kind {kind!r}: expected ImagePolicy, Quarantine or PolicyTest",
            "set `kind: ImagePolicy` for a policy, `kind: Quarantine` for a quarantine list or "
            "`kind: PolicyTest` for a test suite",
        )
    return in_order(report.problems, source)


def referenced_paths(path: str | Path) -> tuple[Path, ...]:
    """The files the policy at ``path`` names (made absolute against its directory), never raising.

    Best effort over whatever parses, valid or not: the hot-reload watcher uses it to also watch the
    files of a version that was rejected, so that version loads once a missing file appears.
    """
    policy = Path(path)
    try:
        doc, _ = parse_yaml(material.read_bounded(policy).decode("utf-8-sig"))
    except (OSError, ValueError):
        return ()
    spec = obj(obj(doc.data if doc is not None else None).get("spec"))
    registries, trust = obj(spec.get("registries")), obj(spec.get("trust"))
    named = [registries.get("caFile"), registries.get("credentialsFile")]
    named += [obj(item).get("file") for key in ("roots", "keys") for _, item in items(trust.get(key), "")]
    named += [item for _, item in strings(obj(spec.get("quarantine")).get("files"), "")]
    found = (Path(name) for name in named if isinstance(name, str) and name and "\0" not in name)
    return tuple(dict.fromkeys(name if name.is_absolute() else policy.parent / name for name in found))
