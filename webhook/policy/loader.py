"""Loading policy and quarantine files: YAML -> JSON Schema -> semantic checks -> frozen model.

Every problem found is reported at once, each with its file, the 1-based line of the offending YAML
node, its JSON pointer and a fix hint (:class:`webhook.errors.PolicyProblem`). Semantic checks run even
when the schema check failed, on whatever parts have the right shape, so one ``imagegate lint`` run
shows everything. Referenced files (trust roots, keys, quarantine lists, CA and credentials files) are
read once, checked, and the exact bytes checked are the ones hashed into ``Policy.fingerprint``. Keys, CA
and credentials files are judged by :mod:`webhook.policy.material`, the validators the server's adapters
use too; trusted roots need sigstore, so ``imagegate lint`` adds the server's own check of them (the
``serve_check`` of :func:`lint_file`).

The schemas live in ``webhook/policy/schema/`` (``policies/*.schema.json`` link to them for editors);
their validators are built once per process, on first use.
"""

from __future__ import annotations

__all__ = [
    "API_VERSION",
    "FULCIO_EXTENSIONS",
    "SEVERITIES",
    "LoadedPolicy",
    "ServeCheck",
    "lint_file",
    "load_policy",
    "load_quarantine",
    "parse_duration",
    "parse_time",
    "referenced_paths",
]

import difflib
import functools
import hashlib
import ipaddress
import json
import logging
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, cast

import jsonschema

from webhook._json import json_kind
from webhook.errors import ConfigError, InvalidReference, PolicyProblem
from webhook.formats import API_VERSION, FULCIO_EXTENSIONS, SEVERITIES
from webhook.policy import material
from webhook.policy._yaml_lines import YamlDocument, escape_pointer, parse_yaml
from webhook.policy.match import (
    GlobError,
    canonical_registry,
    check_glob,
    host_wildcard_match,
    normalise_image_glob,
    split_digest_entry,
)
from webhook.policy.model import (
    AttestationRequirement,
    Exemption,
    KeylessSigner,
    KeySigner,
    Mode,
    Policy,
    QuarantineEntry,
    QuarantineSettings,
    Registries,
    Rule,
    SignatureRequirement,
    Signer,
    SlsaCheck,
    Tags,
    Trust,
    TrustKey,
    TrustRoot,
    Unmatched,
    VerificationSummaryCheck,
    VulnerabilityCheck,
)
from webhook.times import RFC3339_RE as _RFC3339_RE
from webhook.times import parse_rfc3339 as parse_time
from webhook.times import require_aware as _require_aware

_logger = logging.getLogger(__name__)


_SLSA_PROVENANCE = "https://slsa.dev/provenance/"
_SLSA_VSA = "https://slsa.dev/verification_summary/"
_TRUSTED_ROOT_MEDIA_TYPE = "application/vnd.dev.sigstore.trustedroot"
_MAX_FILE_BYTES = 32 * 1024 * 1024
_DURATION_RE = re.compile(r"(?:([0-9]+)d)?(?:([0-9]+)h)?(?:([0-9]+)m)?(?:([0-9]+)s)?")
_DOMAIN_RE = re.compile(
    r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
)
_HOST_PORT_RE = re.compile(r"(?P<host>\[[^\]]*\]|[^:\[\]]+)(?::(?P<port>[0-9]{1,5}))?")
_Kind = Literal["ImagePolicy", "Quarantine"]


@dataclass(frozen=True, slots=True)
class LoadedPolicy:
    """A policy that loaded, with the warnings found on the way (expired exemptions, unused trust)."""

    policy: Policy
    warnings: tuple[PolicyProblem, ...]


# -- public entry points ----------------------------------------------------------------------------


def load_policy(path: str | Path, *, now: datetime) -> LoadedPolicy:
    """Load and validate the policy at ``path``.

    Args:
        path: the policy file; paths inside it are absolute or relative to its directory.
        now: timezone-aware current time; exemptions that expired by then are dropped with a warning.

    Raises:
        ConfigError: the policy (or a file it references) is invalid; ``problems`` lists every
            problem found, errors and warnings.
    """
    _require_aware(now)
    source = str(path)
    raw = _read_top(source, "policy")
    checked = _check_policy_bytes(Path(path), raw, now=now)
    problems = _in_order(checked.problems, source)
    if checked.policy is None or any(p.severity == "error" for p in problems):
        raise _config_error(f"invalid policy {source}", problems)
    warnings = tuple(p for p in problems if p.severity != "error")
    _logger.debug("loaded policy %s (fingerprint %s)", source, checked.policy.fingerprint)
    return LoadedPolicy(policy=checked.policy, warnings=warnings)


def load_quarantine(path: str | Path) -> tuple[QuarantineEntry, ...]:
    """Load and validate the quarantine list at ``path`` (entries carry ``source=str(path)``).

    Raises:
        ConfigError: the file is invalid; ``problems`` lists every problem found.
    """
    source = str(path)
    raw = _read_top(source, "quarantine list")
    report = _Report(source)
    entries = _check_quarantine_bytes(raw, report)
    if report.has_errors() or entries is None:
        raise _config_error(f"invalid quarantine list {source}", _in_order(report.problems, source))
    return entries


#: Checks of a policy that passed every check here, by code outside the pure core (the serving path):
#: ``(JSON pointer, message, hint)`` per problem.
ServeCheck = Callable[[Policy], Iterable[tuple[str, str, str]]]


def lint_file(
    path: str | Path,
    *,
    now: datetime,
    locate: Callable[[Path], Path] | None = None,
    serve_check: ServeCheck | None = None,
) -> tuple[PolicyProblem, ...]:
    """Every problem in the policy or quarantine file at ``path`` (by its ``kind``), never raising.

    Errors have ``severity == "error"``, warnings ``"warning"``. A file that cannot be read is one
    error with line 0. ``locate`` maps each absolute path the policy names to the file to read
    instead (``imagegate lint --root``); relative paths are always read from the policy's directory.
    ``serve_check`` runs on a policy that has no error otherwise; what it reports becomes errors at its
    pointers (``imagegate lint`` passes :func:`webhook.wiring.serving_problems`).
    """
    _require_aware(now)
    source = str(path)
    try:
        raw = _read_limited(Path(path))
    except OSError as error:
        return (PolicyProblem(source, 0, "", f"cannot read the file: {_os_reason(error)}", "check the path"),)
    report = _Report(source)
    doc = _parse(raw, report)
    if doc is None:
        return _in_order(report.problems, source)
    kind = doc.data.get("kind") if isinstance(doc.data, dict) else None
    if kind == "Quarantine":
        _check_quarantine_doc(doc, report)
        return _in_order(report.problems, source)
    if kind == "ImagePolicy":
        checked = _check_policy_doc(Path(path), raw, doc, report, now=now, locate=locate)
        if checked.policy is not None and serve_check is not None:
            for pointer, message, hint in serve_check(checked.policy):
                report.error(pointer, message, hint)
        return _in_order(checked.problems, source)
    report.error(
        "/kind" if isinstance(doc.data, dict) and "kind" in doc.data else "",
        f"unknown kind {kind!r}: expected ImagePolicy or Quarantine",
        "set `kind: ImagePolicy` for a policy or `kind: Quarantine` for a quarantine list",
    )
    return _in_order(report.problems, source)


def referenced_paths(path: str | Path) -> tuple[Path, ...]:
    """The files the policy at ``path`` names (made absolute against its directory), never raising.

    Best effort over whatever parses, valid or not: the hot-reload watcher uses it to also watch the
    files of a version that was rejected, so that version loads once a missing file appears.
    """
    policy = Path(path)
    try:
        doc, _ = parse_yaml(_read_limited(policy).decode("utf-8-sig"))
    except (OSError, ValueError):
        return ()
    spec = _obj(_obj(doc.data if doc is not None else None).get("spec"))
    registries, trust = _obj(spec.get("registries")), _obj(spec.get("trust"))
    named = [registries.get("caFile"), registries.get("credentialsFile")]
    named += [_obj(item).get("file") for key in ("roots", "keys") for _, item in _items(trust.get(key), "")]
    named += [item for _, item in _strings(_obj(spec.get("quarantine")).get("files"), "")]
    found = (Path(name) for name in named if isinstance(name, str) and name and "\0" not in name)
    return tuple(dict.fromkeys(name if name.is_absolute() else policy.parent / name for name in found))


def parse_duration(text: str) -> timedelta:
    """``7d``, ``168h``, ``1h30m``, ``90s`` -> timedelta (units in the order d, h, m, s).

    Raises:
        ValueError: not such a duration.
    """
    found = _DURATION_RE.fullmatch(text) if isinstance(text, str) and text else None
    if found is None:
        raise ValueError(f"{text!r} is not a duration like 168h, 7d, 30m or 90s")
    days, hours, minutes, seconds = (int(g) if g else 0 for g in found.groups())
    try:
        return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
    except OverflowError:
        raise ValueError(f"{text!r} is too long a duration") from None


# -- reporting --------------------------------------------------------------------------------------


class _Report:
    """Problems of one file, with the line map of its YAML document once it is parsed."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.doc: YamlDocument | None = None
        self.problems: list[PolicyProblem] = []

    def line(self, pointer: str) -> int:
        return self.doc.line_of(pointer) if self.doc is not None else 0

    def error(self, pointer: str, message: str, hint: str = "", *, line: int | None = None) -> None:
        self.add(pointer, message, hint, line=line, severity="error")

    def warning(self, pointer: str, message: str, hint: str = "") -> None:
        self.add(pointer, message, hint, line=None, severity="warning")

    def add(self, pointer: str, message: str, hint: str, *, line: int | None, severity: str) -> None:
        where = self.line(pointer) if line is None else line
        self.problems.append(PolicyProblem(self.file, where, pointer, message, hint, severity))

    def extend(self, problems: Sequence[PolicyProblem]) -> None:
        self.problems.extend(problems)

    def has_errors(self) -> bool:
        return any(p.severity == "error" for p in self.problems)


def _in_order(problems: Sequence[PolicyProblem], primary: str) -> tuple[PolicyProblem, ...]:
    """Problems of ``primary`` first, then of the files it references (as first reported); by line."""
    first: dict[str, int] = {primary: 0}
    for problem in problems:
        first.setdefault(problem.file, len(first))
    return tuple(sorted(problems, key=lambda p: (first[p.file], p.line)))


def _config_error(summary: str, problems: Sequence[PolicyProblem]) -> ConfigError:
    # The message is one line; callers print ``problems`` (one line each) below it.
    errors = sum(1 for p in problems if p.severity == "error")
    return ConfigError(f"{summary}: {errors} error(s)", problems=tuple(problems))


def _os_reason(error: OSError) -> str:
    return error.strerror or type(error).__name__


def _read_limited(path: Path) -> bytes:
    with path.open("rb") as handle:
        data = handle.read(_MAX_FILE_BYTES + 1)
    if len(data) > _MAX_FILE_BYTES:
        raise OSError(0, f"larger than {_MAX_FILE_BYTES // (1024 * 1024)} MiB")
    return data


def _read_top(source: str, what: str) -> bytes:
    try:
        return _read_limited(Path(source))
    except OSError as error:
        reason = _os_reason(error)
        problem = PolicyProblem(source, 0, "", f"cannot read the {what}: {reason}", "check the path")
        raise ConfigError(f"cannot read {what} {source}: {reason}", problems=(problem,)) from None


def _parse(raw: bytes, report: _Report) -> YamlDocument | None:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        report.error("", f"the file is not UTF-8 (byte {error.start})", "save the file as UTF-8", line=0)
        return None
    doc, issues = parse_yaml(text)
    report.doc = doc
    for issue in issues:
        report.error(issue.pointer, issue.message, issue.hint, line=issue.line)
    return doc


# -- schema -----------------------------------------------------------------------------------------


@functools.cache
def _validator(kind: _Kind) -> jsonschema.protocols.Validator:
    # Built once per process on first use (building and checking a 2020-12 schema is the costly part).
    name = "imagepolicy.schema.json" if kind == "ImagePolicy" else "quarantine.schema.json"
    text = resources.files("webhook.policy").joinpath("schema").joinpath(name).read_text(encoding="utf-8")
    schema = json.loads(text)
    return cast(jsonschema.protocols.Validator, jsonschema.Draft202012Validator(schema))


def _schema_check(kind: _Kind, data: object, report: _Report) -> None:
    errors = sorted(
        _validator(kind).iter_errors(cast(Any, data)), key=lambda e: [str(p) for p in e.absolute_path]
    )
    for error in errors:
        for pointer, message, hint in _translate(error):
            report.error(pointer, message, hint)


_JSON_TYPES = {
    "string": "a string",
    "array": "a list",
    "object": "a mapping",
    "integer": "an integer",
    "boolean": "true or false",
    "number": "a number",
    "null": "empty",
}


_YAML_READ_AS = {"boolean": "a boolean", "integer": "a number", "number": "a number", "null": "empty (null)"}


def _json_type(value: object) -> str:
    """JSON Schema's name for a value's type: like :func:`json_kind`, with integers apart."""
    if isinstance(value, int) and not isinstance(value, bool):
        return "integer"
    return json_kind(value)


def _translate(error: jsonschema.ValidationError) -> Iterator[tuple[str, str, str]]:
    """Schema error -> (pointer, message, hint), in words a policy author understands."""
    pointer = "".join(f"/{escape_pointer(p)}" for p in error.absolute_path)
    schema: Mapping[str, Any] = error.schema if isinstance(error.schema, Mapping) else {}
    keyword = str(error.validator)
    value: Any = error.validator_value
    instance: Any = error.instance
    custom = schema.get("x-messages", {}).get(keyword)
    hint = str(schema.get("x-hint", ""))
    if custom:
        yield pointer, str(custom).replace("{value}", repr(instance)), hint
    elif keyword == "additionalProperties" and isinstance(instance, dict):
        known = list(schema.get("properties", {}))
        # Keys that are not strings were already reported by the YAML layer, at their own line.
        for extra in sorted(k for k in set(instance) - set(known) if isinstance(k, str)):
            close = difflib.get_close_matches(str(extra), known, n=1)
            fix = f"did you mean {close[0]!r}?" if close else f"allowed here: {', '.join(known)}"
            yield f"{pointer}/{escape_pointer(extra)}", f"unknown field {extra!r}", fix
    elif keyword == "required" and isinstance(instance, dict):
        for missing in (r for r in value if r not in instance):
            yield pointer, f"missing required field {missing!r}", f"add `{missing}:`"
    elif keyword == "type":
        expected = " or ".join(_JSON_TYPES.get(t, t) for t in ([value] if isinstance(value, str) else value))
        got = _json_type(instance)
        fix = hint
        if value == "string" and got in _YAML_READ_AS:
            fix = f"put the value in quotes: YAML read it as {_YAML_READ_AS[got]}"
        elif value == "array" and got != "array":
            fix = "write a list, e.g. [value] or one '- value' per line"
        shown = _YAML_READ_AS.get(got) or _JSON_TYPES.get(got, got)
        yield pointer, f"must be {expected}, not {shown}", fix
    elif keyword == "const":
        yield pointer, f"must be {value!r}, not {instance!r}", hint or f"write {value!r}"
    elif keyword == "enum":
        choices = [str(c) for c in value]
        close = difflib.get_close_matches(str(instance), choices, n=1)
        fix = f"did you mean {close[0]!r}?" if close else hint or f"use one of {', '.join(choices)}"
        yield pointer, f"{instance!r} is not one of {', '.join(choices)}", fix
    elif keyword == "pattern":
        yield pointer, f"{instance!r} is not valid here", hint
    elif keyword == "minLength":
        yield pointer, "must not be empty" if value == 1 else f"must be at least {value} characters", hint
    elif keyword == "maxLength":
        yield pointer, f"must be at most {value} characters", hint
    elif keyword == "minItems":
        yield (
            pointer,
            "must list at least one entry" if value == 1 else f"must list at least {value} entries",
            hint,
        )
    elif keyword == "minProperties":
        yield pointer, "must not be empty", hint or "remove it or fill it in"
    elif keyword == "minimum":
        yield pointer, f"must be at least {value}, not {instance!r}", hint
    else:
        yield pointer, error.message, hint


# -- checked material -------------------------------------------------------------------------------


@dataclass(slots=True)
class _Checked:
    """What the policy checks produced: the problems, the bytes to fingerprint, the built policy."""

    problems: list[PolicyProblem]
    material: list[tuple[str, str, bytes]] = field(default_factory=list)  # (what, path, bytes)
    quarantined: dict[str, QuarantineEntry] = field(default_factory=dict)
    policy: Policy | None = None


def _check_policy_bytes(path: Path, raw: bytes, *, now: datetime) -> _Checked:
    report = _Report(str(path))
    doc = _parse(raw, report)
    if doc is None:
        return _Checked(report.problems)
    return _check_policy_doc(path, raw, doc, report, now=now)


def _check_policy_doc(
    path: Path,
    raw: bytes,
    doc: YamlDocument,
    report: _Report,
    *,
    now: datetime,
    locate: Callable[[Path], Path] | None = None,
) -> _Checked:
    checked = _Checked(report.problems)
    _schema_check("ImagePolicy", doc.data, report)
    data = _obj(doc.data)
    spec = _obj(data.get("spec"))
    semantic = _Semantic(path=path, report=report, checked=checked, now=now, locate=locate)
    semantic.check(spec)
    if not report.has_errors():
        checked.policy = semantic.build(data, raw=raw, source=str(path))
    return checked


def _check_quarantine_bytes(raw: bytes, report: _Report) -> tuple[QuarantineEntry, ...] | None:
    doc = _parse(raw, report)
    if doc is None:
        return None
    return _check_quarantine_doc(doc, report)


def _check_quarantine_doc(doc: YamlDocument, report: _Report) -> tuple[QuarantineEntry, ...] | None:
    _schema_check("Quarantine", doc.data, report)
    entries: list[QuarantineEntry] = []
    first_line: dict[str, int] = {}
    for pointer, item in _items(_obj(doc.data).get("entries"), "/entries"):
        entry = _obj(item)
        digest, reason = entry.get("digest"), entry.get("reason")
        since: datetime | None = None
        if isinstance(entry.get("since"), str) and _RFC3339_RE.fullmatch(entry["since"]):
            try:
                since = parse_time(entry["since"])
            except ValueError as error:
                report.error(f"{pointer}/since", str(error), 'write e.g. "2026-11-20T10:00:00Z"')
        if not isinstance(digest, str):
            continue
        if digest in first_line:
            report.error(
                f"{pointer}/digest",
                f"digest {digest} is listed twice (first at line {first_line[digest]})",
                "remove one of the two entries",
            )
            continue
        first_line[digest] = report.line(f"{pointer}/digest")
        by, indexes, platform = entry.get("by"), entry.get("indexes"), entry.get("platform")
        indexes = tuple(i for i in indexes if isinstance(i, str)) if isinstance(indexes, list) else ()
        if digest in indexes:
            report.error(
                f"{pointer}/indexes", "an entry cannot be a manifest of itself", "remove its own digest"
            )
        entries.append(
            QuarantineEntry(
                digest=digest,
                reason=reason if isinstance(reason, str) else "",
                by=by if isinstance(by, str) else "",
                since=since,
                source=report.file,
                indexes=indexes,
                platform=platform if isinstance(platform, str) else "",
            )
        )
    if report.has_errors():
        return None
    return tuple(entries)


# -- helpers over raw YAML data (defensive: the schema may have failed) --------------------------


def _obj(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _items(value: object, pointer: str) -> list[tuple[str, Any]]:
    return [(f"{pointer}/{i}", item) for i, item in enumerate(value)] if isinstance(value, list) else []


def _strings(value: object, pointer: str) -> list[tuple[str, str]]:
    return [(p, item) for p, item in _items(value, pointer) if isinstance(item, str)]


def _check_registry_host(entry: str) -> tuple[str, str] | None:
    """None when ``entry`` is ``host`` or ``host:port``; else ``(reason, hint)``."""
    if "://" in entry:
        return "a registry entry is a host, not a URL", f"write {entry.split('://', 1)[1].split('/', 1)[0]!r}"
    if "/" in entry:
        return (
            "a registry entry is a host or host:port, not a repository",
            f"write {entry.split('/', 1)[0]!r}, and restrict repositories with rules",
        )
    found = _HOST_PORT_RE.fullmatch(entry)
    if found is None:
        return "not a host or host:port", "write e.g. ghcr.io, registry.example.com:5000 or [::1]:5000"
    host, port = found.group("host"), found.group("port")
    if port is not None and not 1 <= int(port) <= 65535:
        return f"port {port} is out of range", "use a port from 1 to 65535"
    if host.startswith("["):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            return f"{host} is not an IPv6 address", "write an IPv6 address in brackets, e.g. [::1]:5000"
        return None
    if not _DOMAIN_RE.fullmatch(host):
        return f"{host!r} is not a valid host name", "write e.g. ghcr.io or registry.example.com:5000"
    return None


class _Semantic:
    """Semantic checks over the raw ``spec`` mapping, then construction of the frozen model."""

    def __init__(
        self,
        *,
        path: Path,
        report: _Report,
        checked: _Checked,
        now: datetime,
        locate: Callable[[Path], Path] | None = None,
    ) -> None:
        self.path = path
        self.locate = locate
        self.report = report
        self.checked = checked
        self.now = now
        self.root_names: dict[str, str] = {}  # name -> pointer
        self.key_names: dict[str, str] = {}
        self.used_roots: set[str] = set()
        self.used_keys: set[str] = set()
        self.files: dict[str, Path] = {}  # pointer -> resolved path of a readable, valid file
        self.expired: set[int] = set()  # indexes of expired exemptions
        self.images: dict[str, str] = {}  # pointer of an image glob -> normalised glob
        self.allowed: set[str] = set()  # registries.allow, canonical

    # -- checks --

    def check(self, spec: dict[str, Any]) -> None:
        self._registries(_obj(spec.get("registries")))
        self._trust(_obj(spec.get("trust")))
        self._quarantine(_obj(spec.get("quarantine")))
        self._exemptions(spec.get("exemptions"))
        self._rules(spec.get("rules"))
        self._unused_trust()

    def _registries(self, registries: dict[str, Any]) -> None:
        allowed = self.allowed
        for pointer, entry in _strings(registries.get("allow"), "/spec/registries/allow"):
            problem = _check_registry_host(entry)
            if problem:
                self.report.error(pointer, f"{entry!r}: {problem[0]}", problem[1])
            allowed.add(canonical_registry(entry))
        if not allowed and isinstance(registries.get("allow", []), list):
            self.report.warning(
                "/spec/registries/allow" if "allow" in registries else "/spec",
                "no registry is allowed: every image that is not exempted is denied [registry-not-allowed]",
                "list the registries images may come from under spec.registries.allow",
            )
        for pointer, entry in _strings(registries.get("insecure"), "/spec/registries/insecure"):
            problem = _check_registry_host(entry)
            if problem:
                self.report.error(pointer, f"{entry!r}: {problem[0]}", problem[1])
            elif canonical_registry(entry) not in allowed:
                self.report.error(
                    pointer,
                    f"insecure host {entry!r} is not in registries.allow",
                    f"add {entry!r} to spec.registries.allow, or remove it from insecure",
                )
        if isinstance(registries.get("caFile"), str):
            self._file("/spec/registries/caFile", registries["caFile"], "CA file", _check_ca)
        if isinstance(registries.get("credentialsFile"), str):
            self._file(
                "/spec/registries/credentialsFile",
                registries["credentialsFile"],
                "credentials file",
                _check_creds,
            )

    def _trust(self, trust: dict[str, Any]) -> None:
        for pointer, item in _items(trust.get("roots"), "/spec/trust/roots"):
            root = _obj(item)
            self._unique_name(root.get("name"), f"{pointer}/name", self.root_names, "trust root")
            if isinstance(root.get("file"), str):
                self._file(
                    f"{pointer}/file", root["file"], "trusted root", _check_trusted_root, material="root"
                )
        for pointer, item in _items(trust.get("keys"), "/spec/trust/keys"):
            key = _obj(item)
            self._unique_name(key.get("name"), f"{pointer}/name", self.key_names, "trust key")
            if isinstance(key.get("file"), str):
                self._file(f"{pointer}/file", key["file"], "public key", _check_public_key, material="key")
            elif isinstance(key.get("pem"), str):
                problem = _check_public_key(key["pem"].encode("utf-8"))
                if problem:
                    self.report.error(f"{pointer}/pem", f"inline key: {problem[0]}", problem[1])

    def _quarantine(self, quarantine: dict[str, Any]) -> None:
        for pointer, raw_path in _strings(quarantine.get("files"), "/spec/quarantine/files"):
            found = self._read(pointer, raw_path, "quarantine list")
            if found is None:
                continue
            display, data = found
            sub = _Report(str(display))
            entries = _check_quarantine_bytes(data, sub)
            self.report.extend(sub.problems)
            if entries is None:
                self.report.error(
                    pointer, f"quarantine list {display} is invalid (see its own errors)", "fix that file"
                )
                continue
            self.files[pointer] = display
            self.checked.material.append(("quarantine", str(display), data))
            for entry in entries:
                self.checked.quarantined.setdefault(entry.digest, entry)

    def _exemptions(self, exemptions: object) -> None:
        seen: dict[tuple[tuple[str, ...], tuple[str, ...]], int] = {}
        for index, (pointer, item) in enumerate(_items(exemptions, "/spec/exemptions")):
            exemption = _obj(item)
            images: list[str] = []
            for image_pointer, entry in _strings(exemption.get("images"), f"{pointer}/images"):
                normalised = self._exemption_image(image_pointer, entry)
                if normalised is not None:
                    images.append(normalised)
                    self._exempted_registry(image_pointer, normalised)
            namespaces = self._globs(exemption.get("namespaces", ["*"]), f"{pointer}/namespaces")
            if isinstance(exemption.get("expires"), str) and _RFC3339_RE.fullmatch(exemption["expires"]):
                # (the schema reports a value of the wrong form)
                try:
                    expires = parse_time(exemption["expires"])
                except ValueError as error:
                    self.report.error(f"{pointer}/expires", str(error), 'write e.g. "2026-12-31T00:00:00Z"')
                else:
                    if expires <= self.now:
                        self.expired.add(index)
                        self.report.warning(
                            f"{pointer}/expires",
                            f"exemption expired at {exemption['expires']} and is ignored",
                            "remove it, or extend `expires` if it is still needed",
                        )
            key = (tuple(sorted(set(images))), tuple(sorted(set(namespaces))))
            if images and key in seen:
                self.report.error(
                    pointer,
                    f"duplicate exemption: same images and namespaces as the exemption at line {seen[key]}",
                    "merge the two entries into one",
                )
            elif images:
                seen[key] = self.report.line(pointer)

    def _exempted_registry(self, pointer: str, normalised: str) -> None:
        host = normalised.split("/", 1)[0]
        if set("*?").intersection(host) or canonical_registry(host) in self.allowed:
            return
        self.report.warning(
            pointer,
            f"registry {host!r} is not in registries.allow, so this exemption never applies "
            "(exemptions do not open registries)",
            f"add {host!r} to spec.registries.allow, or remove the entry",
        )

    def _exemption_image(self, pointer: str, entry: str) -> str | None:
        try:
            pinned = split_digest_entry(entry)
        except InvalidReference as error:
            self.report.error(
                pointer, error.user_message, "write 'name@sha256:<64 lower-case hex>' or a glob"
            )
            return None
        if pinned is not None:
            name, digest = pinned
            self.images[pointer] = f"{name}@{digest}"
            return self.images[pointer]
        return self._image_glob(pointer, entry)

    def _rules(self, rules: object) -> None:
        names: dict[str, int] = {}
        for pointer, item in _items(rules, "/spec/rules"):
            rule = _obj(item)
            name = rule.get("name")
            if isinstance(name, str):
                if name in names:
                    self.report.error(
                        f"{pointer}/name",
                        f"duplicate rule name {name!r} (first used at line {names[name]})",
                        "give every rule its own name",
                    )
                else:
                    names[name] = self.report.line(f"{pointer}/name")
            for image_pointer, entry in _strings(rule.get("images"), f"{pointer}/images"):
                self._image_glob(image_pointer, entry)
            self._globs(rule.get("namespaces", ["*"]), f"{pointer}/namespaces")
            signatures = _obj(rule.get("signatures"))
            if signatures:
                self._signers(signatures, f"{pointer}/signatures")
            for att_pointer, att in _items(rule.get("attestations"), f"{pointer}/attestations"):
                self._attestation(_obj(att), att_pointer)

    def _attestation(self, att: dict[str, Any], pointer: str) -> None:
        self._signers(att, pointer)
        predicate = att.get("predicateType")
        if not isinstance(predicate, str):
            return
        if "slsa" in att and not predicate.startswith(_SLSA_PROVENANCE):
            self.report.error(
                f"{pointer}/slsa",
                f"slsa checks apply to SLSA provenance, not to predicateType {predicate!r}",
                "set predicateType: https://slsa.dev/provenance/v1, or move these checks to that attestation",
            )
        if "verificationSummary" in att and not predicate.startswith(_SLSA_VSA):
            self.report.error(
                f"{pointer}/verificationSummary",
                "verificationSummary checks apply to SLSA verification summaries, "
                f"not to predicateType {predicate!r}",
                "set predicateType: https://slsa.dev/verification_summary/v1",
            )
        if "vulnerabilities" in att and predicate.startswith(("https://slsa.dev/",)):
            self.report.error(
                f"{pointer}/vulnerabilities",
                f"vulnerabilities checks apply to vulnerability scans, not to predicateType {predicate!r}",
                "set predicateType: https://in-toto.io/attestation/vulns/v0.1 (or your scanner's type)",
            )
        slsa = _obj(att.get("slsa"))
        self._globs(slsa.get("builderIds", []), f"{pointer}/slsa/builderIds")
        self._globs(slsa.get("sourceRefs", []), f"{pointer}/slsa/sourceRefs")
        summary = _obj(att.get("verificationSummary"))
        if isinstance(summary.get("resourceUri"), str):
            self._glob(f"{pointer}/verificationSummary/resourceUri", summary["resourceUri"])
        self._duration(summary.get("maxAge"), f"{pointer}/verificationSummary/maxAge")
        self._duration(_obj(att.get("vulnerabilities")).get("maxAge"), f"{pointer}/vulnerabilities/maxAge")

    def _signers(self, holder: dict[str, Any], pointer: str) -> None:
        signers = _items(holder.get("signers"), f"{pointer}/signers")
        seen: dict[tuple[object, ...], int] = {}
        for signer_pointer, item in signers:
            signer = _obj(item)
            identity: tuple[object, ...] | None = None
            keyless = signer.get("keyless")
            if isinstance(keyless, dict):
                identity = self._keyless(keyless, f"{signer_pointer}/keyless")
            key = signer.get("key")
            if isinstance(key, dict):
                name = key.get("name")
                if isinstance(name, str):
                    identity = ("key", name)
                    self.used_keys.add(name)
                    if name not in self.key_names:
                        self.report.error(
                            f"{signer_pointer}/key/name",
                            f"unknown trust key {name!r}",
                            _define_hint("spec.trust.keys", self.key_names),
                        )
                    self._tlog(key, name, f"{signer_pointer}/key")
            if identity is None or len(signer) != 1:
                continue
            if identity in seen:
                self.report.error(
                    signer_pointer,
                    f"the same signer is listed twice (also at line {seen[identity]}): "
                    "k-of-n would count one signer twice",
                    "remove the duplicate signer",
                )
            else:
                seen[identity] = self.report.line(signer_pointer)
        minimum = holder.get("minimum", 1)
        if signers and isinstance(minimum, int) and not isinstance(minimum, bool) and minimum > len(signers):
            self.report.error(
                f"{pointer}/minimum",
                f"minimum {minimum} is more than the {len(signers)} signer(s) listed",
                f"lower minimum to at most {len(signers)}, or add signers",
            )

    def _tlog(self, key: dict[str, Any], name: str, pointer: str) -> None:
        """Warn about key signers whose signatures need no, or cannot get, transparency-log evidence."""
        if key.get("requireTlog") is False:
            self.report.warning(
                f"{pointer}/requireTlog",
                f"requireTlog: false accepts signatures by key {name!r} that no transparency log has "
                "recorded: nothing proves when they were made, and a stolen key's signatures go unnoticed",
                "remove it (the default, true, requires Rekor evidence, as cosign does); keep false only "
                "for a signer without a transparency log, such as an air-gapped one",
            )
            return
        # Its transparency-log evidence is checked with the Rekor keys of every trust root.
        self.used_roots.update(self.root_names)
        if key.get("requireTlog", True) is True and not self.root_names:
            self.report.warning(
                pointer,
                f"key {name!r} requires transparency-log evidence (requireTlog defaults to true), but the "
                "policy has no trust root whose Rekor keys could check it: every signature by this key "
                "is refused [signature-invalid]",
                "add the trusted_root.json of the Sigstore instance your signatures are logged in under "
                "spec.trust.roots, or set requireTlog: false for a signer without a log",
            )

    def _keyless(self, keyless: dict[str, Any], pointer: str) -> tuple[object, ...]:
        root = keyless.get("root")
        if isinstance(root, str):
            self.used_roots.add(root)
            if root not in self.root_names:
                self.report.error(
                    f"{pointer}/root",
                    f"unknown trust root {root!r}",
                    _define_hint("spec.trust.roots", self.root_names),
                )
        regexp = keyless.get("subjectRegExp")
        if isinstance(regexp, str):
            try:
                re.compile(regexp)
            except re.error as error:
                self.report.error(
                    f"{pointer}/subjectRegExp",
                    f"invalid regular expression: {error}",
                    "fix the expression (Python `re` syntax; it must match the whole identity)",
                )
        extensions = _obj(keyless.get("extensions"))
        return (
            "keyless",
            root,
            keyless.get("issuer"),
            keyless.get("subject"),
            regexp,
            tuple(sorted((str(k), str(v)) for k, v in extensions.items())),
        )

    def _unused_trust(self) -> None:
        for name, pointer in self.root_names.items():
            if name not in self.used_roots:
                self.report.warning(
                    pointer, f"trust root {name!r} is not used by any signer", "remove it or use it"
                )
        for name, pointer in self.key_names.items():
            if name not in self.used_keys:
                self.report.warning(
                    pointer, f"trust key {name!r} is not used by any signer", "remove it or use it"
                )

    def _unique_name(self, name: object, pointer: str, names: dict[str, str], what: str) -> None:
        if not isinstance(name, str):
            return
        if name in names:
            self.report.error(
                pointer,
                f"duplicate {what} name {name!r} (first at line {self.report.line(names[name])})",
                f"give every {what} its own name",
            )
        else:
            names[name] = pointer

    def _image_glob(self, pointer: str, pattern: str) -> str | None:
        try:
            normalised = normalise_image_glob(pattern)
        except GlobError as error:
            self.report.error(pointer, f"malformed image glob {pattern!r}: {error.reason}", error.hint)
            return None
        self.images[pointer] = normalised
        also = host_wildcard_match(pattern)
        if also is not None:
            self.report.warning(
                pointer,
                f"image glob {pattern!r} has a wildcard in its registry host: it also matches {also}",
                "write the registry host out in full, one glob per registry: only hosts in "
                "registries.allow are ever admitted, but this glob covers every one of them that fits",
            )
        return normalised

    def _globs(self, value: object, pointer: str) -> list[str]:
        return [
            pattern for item_pointer, pattern in _strings(value, pointer) if self._glob(item_pointer, pattern)
        ]

    def _glob(self, pointer: str, pattern: str) -> bool:
        try:
            check_glob(pattern)
        except GlobError as error:
            self.report.error(pointer, f"malformed glob {pattern!r}: {error.reason}", error.hint)
            return False
        return True

    def _duration(self, value: object, pointer: str) -> None:
        if not isinstance(value, str) or not _DURATION_RE.fullmatch(value) or not value:
            return  # the schema reports the form
        try:
            if parse_duration(value) <= timedelta(0):
                self.report.error(
                    pointer, f"duration {value!r} is zero", "use a duration longer than zero, e.g. 168h"
                )
        except ValueError as error:
            self.report.error(pointer, str(error), "use a shorter duration")

    def _read(self, pointer: str, raw_path: str, what: str) -> tuple[Path, bytes] | None:
        given = Path(raw_path)
        display = given if given.is_absolute() else self.path.parent / given
        hint = _path_hint(given, self.path)
        if given.is_absolute() and self.locate is not None:
            display = self.locate(given)
            if display != given:
                hint = f"add the file, or fix the path or --root ({given} is read from {display})"
        try:
            return display, _read_limited(display)
        except FileNotFoundError:
            self.report.error(pointer, f"{what} {str(display)!r} does not exist", hint)
        except IsADirectoryError:
            self.report.error(pointer, f"{what} {str(display)!r} is a directory", "point to a file")
        except OSError as error:
            self.report.error(
                pointer, f"{what} {str(display)!r} cannot be read: {_os_reason(error)}", "fix its permissions"
            )
        return None

    def _file(
        self,
        pointer: str,
        raw_path: str,
        what: str,
        check: Callable[[bytes], tuple[str, str] | None],
        *,
        material: str | None = None,
    ) -> None:
        found = self._read(pointer, raw_path, what)
        if found is None:
            return
        display, data = found
        problem = check(data)
        if problem:
            self.report.error(pointer, f"{what} {str(display)!r}: {problem[0]}", problem[1])
            return
        self.files[pointer] = display
        if material:
            self.checked.material.append((material, str(display), data))

    # -- construction (only when every check passed) --

    def build(self, data: dict[str, Any], *, raw: bytes, source: str) -> Policy:
        spec = _obj(data.get("spec"))
        registries = _obj(spec.get("registries"))
        tags = _obj(spec.get("tags"))
        trust = _obj(spec.get("trust"))
        quarantine = _obj(spec.get("quarantine"))
        return Policy(
            name=str(_obj(data.get("metadata")).get("name", "")),
            source=source,
            mode=cast(Mode, spec.get("mode", "enforce")),
            unmatched=cast(Unmatched, spec.get("unmatched", "deny")),
            registries=Registries(
                allow=_unique(canonical_registry(h) for h in registries.get("allow", [])),
                insecure=_unique(canonical_registry(h) for h in registries.get("insecure", [])),
                ca_file=self._abs("/spec/registries/caFile"),
                credentials_file=self._abs("/spec/registries/credentialsFile"),
            ),
            tags=Tags(resolve=bool(tags.get("resolve", True)), deny=tuple(tags.get("deny", ["latest"]))),
            trust=Trust(
                roots=tuple(
                    TrustRoot(name=r["name"], file=self._required_abs(f"{p}/file"))
                    for p, r in _items(trust.get("roots"), "/spec/trust/roots")
                ),
                keys=tuple(
                    TrustKey(name=k["name"], file=self._abs(f"{p}/file"), pem=k.get("pem"))
                    for p, k in _items(trust.get("keys"), "/spec/trust/keys")
                ),
            ),
            quarantine=QuarantineSettings(
                files=tuple(
                    self._required_abs(p)
                    for p, _ in _strings(quarantine.get("files"), "/spec/quarantine/files")
                ),
                registry_markers=bool(quarantine.get("registryMarkers", False)),
            ),
            exemptions=tuple(
                Exemption(
                    images=tuple(self.images[f"{p}/images/{i}"] for i in range(len(e["images"]))),
                    namespaces=tuple(e.get("namespaces", ["*"])),
                    expires=parse_time(e["expires"]),
                    reason=e["reason"],
                )
                for index, (p, e) in enumerate(_items(spec.get("exemptions"), "/spec/exemptions"))
                if index not in self.expired
            ),
            rules=tuple(self._rule(p, r) for p, r in _items(spec.get("rules"), "/spec/rules")),
            quarantined=MappingProxyType(dict(self.checked.quarantined)),
            fingerprint=_fingerprint(raw, self.checked.material),
        )

    def _abs(self, pointer: str) -> Path | None:
        found = self.files.get(pointer)
        return found.absolute() if found is not None else None

    def _required_abs(self, pointer: str) -> Path:
        found = self._abs(pointer)
        if found is None:  # pragma: no cover - build() runs only after every file was read
            raise AssertionError(f"no checked file for {pointer}")
        return found

    def _rule(self, pointer: str, rule: dict[str, Any]) -> Rule:
        signatures = rule.get("signatures")
        return Rule(
            name=rule["name"],
            images=tuple(self.images[f"{pointer}/images/{i}"] for i in range(len(rule["images"]))),
            namespaces=tuple(rule.get("namespaces", ["*"])),
            mode=cast("Mode | None", rule.get("mode")),
            signatures=(
                SignatureRequirement(
                    signers=_build_signers(signatures["signers"]), minimum=signatures.get("minimum", 1)
                )
                if isinstance(signatures, dict)
                else None
            ),
            attestations=tuple(_build_attestation(a) for a in rule.get("attestations", [])),
        )


def _build_signers(raw: list[dict[str, Any]]) -> tuple[Signer, ...]:
    signers: list[Signer] = []
    for item in raw:
        if "keyless" in item:
            k = item["keyless"]
            signers.append(
                KeylessSigner(
                    root=k["root"],
                    issuer=k["issuer"],
                    subject=k.get("subject"),
                    subject_regexp=k.get("subjectRegExp"),
                    extensions=tuple((str(n), str(v)) for n, v in k.get("extensions", {}).items()),
                )
            )
        else:
            signers.append(
                KeySigner(name=item["key"]["name"], require_tlog=bool(item["key"].get("requireTlog", True)))
            )
    return tuple(signers)


def _build_attestation(raw: dict[str, Any]) -> AttestationRequirement:
    slsa, summary, vulns = raw.get("slsa"), raw.get("verificationSummary"), raw.get("vulnerabilities")
    return AttestationRequirement(
        predicate_type=raw["predicateType"],
        signers=_build_signers(raw["signers"]),
        minimum=raw.get("minimum", 1),
        slsa=(
            SlsaCheck(
                builder_ids=tuple(slsa.get("builderIds", [])),
                source_repositories=tuple(slsa.get("sourceRepositories", [])),
                source_refs=tuple(slsa.get("sourceRefs", [])),
            )
            if isinstance(slsa, dict)
            else None
        ),
        verification_summary=(
            VerificationSummaryCheck(
                verifier_ids=tuple(summary.get("verifierIds", [])),
                min_level=summary.get("minLevel"),
                max_age=parse_duration(summary["maxAge"]) if "maxAge" in summary else None,
                resource_uri=summary.get("resourceUri"),
            )
            if isinstance(summary, dict)
            else None
        ),
        vulnerabilities=(
            VulnerabilityCheck(
                max_severity=vulns.get("maxSeverity", "CRITICAL"),
                max_age=parse_duration(vulns["maxAge"]) if "maxAge" in vulns else None,
            )
            if isinstance(vulns, dict)
            else None
        ),
    )


def _unique(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(values))


def _fingerprint(raw: bytes, material: Sequence[tuple[str, str, bytes]]) -> str:
    """sha256 over the policy and every referenced file, in a stable order (kind, then file order).

    Each part is framed by its kind, path and own digest, so moving bytes between files (or
    renaming a file) changes the fingerprint too.
    """
    digest = hashlib.sha256()
    digest.update(b"imagegate-policy-fingerprint-v1\n")
    digest.update(hashlib.sha256(raw).hexdigest().encode() + b"\n")
    order = {"root": 0, "key": 1, "quarantine": 2}
    parts = sorted(enumerate(material), key=lambda item: (order.get(item[1][0], 9), item[0]))
    for _, (kind, path, data) in parts:
        digest.update(f"{kind}\0{path}\0{hashlib.sha256(data).hexdigest()}\n".encode())
    return digest.hexdigest()


def _define_hint(where: str, names: Mapping[str, str]) -> str:
    if names:
        return f"use one of {', '.join(sorted(names))}, or define it under {where}"
    return f"define it under {where}"


def _path_hint(given: Path, policy: Path) -> str:
    if given.is_absolute():
        return "fix the path"
    return (
        f"fix the path (relative paths are relative to the policy's directory, {str(policy.parent) or '.'!s})"
    )


# -- content checks of referenced files -------------------------------------------------------------


def _check_trusted_root(data: bytes) -> tuple[str, str] | None:
    hint = "use a Sigstore trusted_root.json (e.g. from Sigstore's TUF repository)"
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return "is not JSON", hint
    media_type = doc.get("mediaType") if isinstance(doc, dict) else None
    if not isinstance(media_type, str) or not media_type.startswith(_TRUSTED_ROOT_MEDIA_TYPE):
        return f"is not a Sigstore trusted root (mediaType {media_type!r})", hint
    return None


def _check_public_key(data: bytes) -> tuple[str, str] | None:
    return _material(material.public_key, data)


def _check_ca(data: bytes) -> tuple[str, str] | None:
    return _material(material.registry_ca, data)


def _check_creds(data: bytes) -> tuple[str, str] | None:
    # Never quote the content: it holds secrets (material.docker_config never does).
    return _material(material.docker_config, data)


def _material(validator: Callable[[bytes], object], data: bytes) -> tuple[str, str] | None:
    """(problem, hint) from the one validator of this kind of file (webhook.policy.material), or None."""
    try:
        validator(data)
    except material.MaterialError as error:
        return error.message, error.hint
    return None
