"""Compiling an ImagePolicy document into the model, in one pass: each part is checked and built together.

Every part of ``spec`` is walked once. Its checks report problems (with pointer, line and hint) and go
on, so one ``imagegate lint`` run shows everything; when a part passes, its model value is built right
there, and the files it names are read once and checked (:mod:`webhook.policy.material`), their bytes
and parsed form carried on the value. The policy is assembled only when no error was reported; a model
invariant that a check here missed is still reported at the part's pointer, never raised.

The fingerprint covers the policy's bytes and the bytes of every trust root, key file and quarantine
list it carries: the very bytes the adapters verify with.

This module is longer than most (about 750 lines) because one walker holds the state the checks share
across sections (the trust names defined and used, the registries allowed); splitting it by section
would pass that state between modules instead.
"""

from __future__ import annotations

__all__ = ["Locate", "compile_policy", "fingerprint"]

import hashlib
import ipaddress
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar, cast

from webhook.errors import InvalidReference
from webhook.policy import material
from webhook.policy._yaml_lines import YamlDocument, items, obj, strings
from webhook.policy.match import (
    GlobError,
    canonical_registry,
    check_glob,
    host_wildcard_match,
    normalise_image_glob,
    split_digest_entry,
)
from webhook.policy.model import (
    SLSA_PROVENANCE,
    SLSA_VSA,
    AttestationRequirement,
    Exemption,
    KeylessSigner,
    KeySigner,
    Mode,
    Policy,
    QuarantineList,
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
from webhook.policy.quarantine import read_quarantine
from webhook.policy.report import Report, os_reason
from webhook.policy.schema import schema_check
from webhook.policy.times import DURATION_RE, RFC3339_RE, parse_duration, parse_time

#: Maps an absolute path the policy names to the file to read instead (``imagegate lint --root``).
Locate = Callable[[Path], Path]

_T = TypeVar("_T")
_DOMAIN_RE = re.compile(
    r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
)
_HOST_PORT_RE = re.compile(r"(?P<host>\[[^\]]*\]|[^:\[\]]+)(?::(?P<port>[0-9]{1,5}))?")


def compile_policy(
    doc: YamlDocument,
    *,
    path: Path,
    raw: bytes,
    report: Report,
    now: datetime,
    locate: Locate | None = None,
) -> Policy | None:
    """The policy ``doc`` (parsed from ``raw``, read from ``path``), or None with its errors in ``report``.

    Warnings (expired exemptions, unused trust, ...) are reported either way.
    """
    schema_check("ImagePolicy", doc.data, report)
    data = obj(doc.data)
    spec = obj(data.get("spec"))
    compiler = _Compiler(path=path, report=report, now=now, locate=locate)
    registries = compiler.registries(obj(spec.get("registries")))
    trust = compiler.trust(obj(spec.get("trust")))
    quarantine = compiler.quarantine(obj(spec.get("quarantine")))
    exemptions = compiler.exemptions(spec.get("exemptions"))
    rules = compiler.rules(spec.get("rules"))
    compiler.unused_trust()
    if report.has_errors() or registries is None or trust is None or quarantine is None:
        return None
    if exemptions is None or rules is None:  # pragma: no cover - a part is None only with an error
        return None
    tags = obj(spec.get("tags"))
    return compiler.make(
        "",
        Policy,
        name=str(obj(data.get("metadata")).get("name", "")),
        source=str(path),
        mode=cast(Mode, spec.get("mode", "enforce")),
        unmatched=cast(Unmatched, spec.get("unmatched", "deny")),
        registries=registries,
        tags=Tags(resolve=bool(tags.get("resolve", True)), deny=tuple(tags.get("deny", ["latest"]))),
        trust=trust,
        quarantine=quarantine,
        exemptions=exemptions,
        rules=rules,
        quarantined=Policy.quarantined_by_digest(quarantine),
        fingerprint=fingerprint(raw, trust=trust, lists=quarantine.lists),
    )


def fingerprint(raw: bytes, *, trust: Trust, lists: Sequence[QuarantineList]) -> str:
    """sha256 over the policy and every file it carries, in a stable order (roots, keys, lists).

    Each part is framed by its kind, path and own digest, so moving bytes between files (or
    renaming a file) changes the fingerprint too. Inline keys are part of the policy's own bytes.
    """
    parts: list[tuple[str, Path, bytes]] = [("root", r.file, r.material.data) for r in trust.roots]
    parts += [("key", k.file, k.material.data) for k in trust.keys if k.file is not None]
    parts += [("quarantine", q.path, q.data) for q in lists]
    digest = hashlib.sha256()
    digest.update(b"imagegate-policy-fingerprint-v1\n")
    digest.update(hashlib.sha256(raw).hexdigest().encode() + b"\n")
    for kind, path, data in parts:
        digest.update(f"{kind}\0{path}\0{hashlib.sha256(data).hexdigest()}\n".encode())
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class _Read:
    """A referenced file as read: its path as messages show it, the same made absolute, its bytes."""

    shown: Path
    path: Path
    data: bytes


class _Compiler:
    """Checks and builds the parts of one policy; every method returns its part, or None on an error."""

    def __init__(self, *, path: Path, report: Report, now: datetime, locate: Locate | None) -> None:
        self.path = path
        self.report = report
        self.now = now
        self.locate = locate
        self.root_names: dict[str, str] = {}  # name -> pointer
        self.key_names: dict[str, str] = {}
        self.used_roots: set[str] = set()
        self.used_keys: set[str] = set()
        self.allowed: set[str] = set()  # registries.allow, canonical

    # -- building ------------------------------------------------------------------------------------

    def make(self, pointer: str, factory: Callable[..., _T], *args: Any, **kwargs: Any) -> _T | None:
        """``factory(...)``, or None when the model refuses it (reported at ``pointer`` unless the checks
        already reported something there: then the refusal is a consequence of that problem)."""
        try:
            return factory(*args, **kwargs)
        except (ValueError, TypeError, AttributeError) as error:
            if not self.report.has_errors(pointer or None):
                self.report.error(pointer, str(error), "fix this entry")
            return None

    # -- registries ----------------------------------------------------------------------------------

    def registries(self, registries: dict[str, Any]) -> Registries | None:
        allow: list[str] = []
        for pointer, entry in strings(registries.get("allow"), "/spec/registries/allow"):
            problem = _check_registry_host(entry)
            if problem:
                self.report.error(pointer, f"{entry!r}: {problem[0]}", problem[1])
            allow.append(canonical_registry(entry))
        self.allowed.update(allow)
        if not allow and isinstance(registries.get("allow", []), list):
            self.report.warning(
                "/spec/registries/allow" if "allow" in registries else "/spec",
                "no registry is allowed: every image that is not exempted is denied [registry-not-allowed]",
                "list the registries images may come from under spec.registries.allow",
            )
        insecure: list[str] = []
        for pointer, entry in strings(registries.get("insecure"), "/spec/registries/insecure"):
            problem = _check_registry_host(entry)
            if problem:
                self.report.error(pointer, f"{entry!r}: {problem[0]}", problem[1])
            elif canonical_registry(entry) not in self.allowed:
                self.report.error(
                    pointer,
                    f"insecure host {entry!r} is not in registries.allow",
                    f"add {entry!r} to spec.registries.allow, or remove it from insecure",
                )
            insecure.append(canonical_registry(entry))
        ca = credentials = None
        if isinstance(registries.get("caFile"), str):
            ca = self._material(
                "/spec/registries/caFile", registries["caFile"], "CA file", material.CaMaterial.parse
            )
        if isinstance(registries.get("credentialsFile"), str):
            credentials = self._material(
                "/spec/registries/credentialsFile",
                registries["credentialsFile"],
                "credentials file",
                material.CredentialsMaterial.parse,
            )
        if self.report.has_errors("/spec/registries"):
            return None
        return self.make(
            "/spec/registries",
            Registries,
            allow=_unique(allow),
            insecure=_unique(insecure),
            ca=ca,
            credentials=credentials,
        )

    # -- trust ---------------------------------------------------------------------------------------

    def trust(self, trust: dict[str, Any]) -> Trust | None:
        roots: list[TrustRoot | None] = []
        for pointer, item in items(trust.get("roots"), "/spec/trust/roots"):
            root = obj(item)
            name = root.get("name")
            self._unique_name(name, f"{pointer}/name", self.root_names, "trust root")
            if isinstance(root.get("file"), str):
                found = self._material(
                    f"{pointer}/file", root["file"], "trusted root", material.TrustedRootMaterial.parse
                )
                roots.append(self.make(pointer, TrustRoot, name=name, material=found) if found else None)
        keys: list[TrustKey | None] = []
        for pointer, item in items(trust.get("keys"), "/spec/trust/keys"):
            key = obj(item)
            name = key.get("name")
            self._unique_name(name, f"{pointer}/name", self.key_names, "trust key")
            checked: material.KeyMaterial | None = None
            if isinstance(key.get("file"), str):
                checked = self._material(
                    f"{pointer}/file", key["file"], "public key", material.KeyMaterial.parse
                )
            elif isinstance(key.get("pem"), str):
                try:
                    checked = material.KeyMaterial.parse(key["pem"].encode("utf-8"))
                except material.MaterialError as error:
                    self.report.error(f"{pointer}/pem", f"inline key: {error.message}", error.hint)
            keys.append(self.make(pointer, TrustKey, name=name, material=checked) if checked else None)
        if self.report.has_errors("/spec/trust"):
            return None
        return self.make("/spec/trust", Trust, roots=_all(roots), keys=_all(keys))

    # -- quarantine ----------------------------------------------------------------------------------

    def quarantine(self, quarantine: dict[str, Any]) -> QuarantineSettings | None:
        lists: list[QuarantineList] = []
        for pointer, raw_path in strings(quarantine.get("files"), "/spec/quarantine/files"):
            found = self._read(pointer, raw_path, "quarantine list")
            if found is None:
                continue
            sub = Report(str(found.shown))
            checked = read_quarantine(found.data, path=found.path, report=sub)
            self.report.extend(sub.problems)
            if checked is None:
                self.report.error(
                    pointer, f"quarantine list {found.shown} is invalid (see its own errors)", "fix that file"
                )
                continue
            lists.append(checked)
        if self.report.has_errors("/spec/quarantine"):
            return None
        return QuarantineSettings(
            lists=tuple(lists), registry_markers=bool(quarantine.get("registryMarkers", False))
        )

    # -- exemptions ----------------------------------------------------------------------------------

    def exemptions(self, exemptions: object) -> tuple[Exemption, ...] | None:
        built: list[Exemption | None] = []
        seen: dict[tuple[tuple[str, ...], tuple[str, ...]], int] = {}
        for pointer, item in items(exemptions, "/spec/exemptions"):
            exemption = obj(item)
            images: list[str] = []
            for image_pointer, entry in strings(exemption.get("images"), f"{pointer}/images"):
                normalised = self._exemption_image(image_pointer, entry)
                if normalised is not None:
                    images.append(normalised)
                    self._exempted_registry(image_pointer, normalised)
            namespaces = self._globs(exemption.get("namespaces", ["*"]), f"{pointer}/namespaces")
            expires = self._expires(exemption.get("expires"), f"{pointer}/expires")
            key = (tuple(sorted(set(images))), tuple(sorted(set(namespaces))))
            if images and key in seen:
                self.report.error(
                    pointer,
                    f"duplicate exemption: same images and namespaces as the exemption at line {seen[key]}",
                    "merge the two entries into one",
                )
            elif images:
                seen[key] = self.report.line(pointer)
            if expires is not None and expires <= self.now:
                continue  # expired: warned about, and dropped from the policy
            if self.report.has_errors(pointer):
                built.append(None)
                continue
            built.append(
                self.make(
                    pointer,
                    Exemption,
                    images=tuple(images),
                    namespaces=tuple(namespaces),
                    expires=expires,
                    reason=exemption.get("reason"),
                )
            )
        return None if self.report.has_errors("/spec/exemptions") else _all(built)

    def _expires(self, value: object, pointer: str) -> datetime | None:
        if not isinstance(value, str) or not RFC3339_RE.fullmatch(value):
            return None  # the schema reports a value of the wrong form
        try:
            expires = parse_time(value)
        except ValueError as error:
            self.report.error(pointer, str(error), 'write e.g. "2026-12-31T00:00:00Z"')
            return None
        if expires <= self.now:
            self.report.warning(
                pointer,
                f"exemption expired at {value} and is ignored",
                "remove it, or extend `expires` if it is still needed",
            )
        return expires

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
            return f"{name}@{digest}"
        return self._image_glob(pointer, entry)

    # -- rules ---------------------------------------------------------------------------------------

    def rules(self, rules: object) -> tuple[Rule, ...] | None:
        built: list[Rule | None] = []
        names: dict[str, int] = {}
        for pointer, item in items(rules, "/spec/rules"):
            rule = obj(item)
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
            images = [
                self._image_glob(image_pointer, entry)
                for image_pointer, entry in strings(rule.get("images"), f"{pointer}/images")
            ]
            namespaces = self._globs(rule.get("namespaces", ["*"]), f"{pointer}/namespaces")
            signatures: SignatureRequirement | None = None
            if isinstance(rule.get("signatures"), dict) and rule["signatures"]:
                holder = rule["signatures"]
                signers = self._signers(holder, f"{pointer}/signatures")
                signatures = self.make(
                    f"{pointer}/signatures",
                    SignatureRequirement,
                    signers=signers,
                    minimum=holder.get("minimum", 1),
                )
            attestations = [
                self._attestation(obj(att), att_pointer)
                for att_pointer, att in items(rule.get("attestations"), f"{pointer}/attestations")
            ]
            if self.report.has_errors(pointer):
                built.append(None)
                continue
            built.append(
                self.make(
                    pointer,
                    Rule,
                    name=name,
                    images=tuple(cast(list[str], images)),
                    namespaces=tuple(namespaces),
                    mode=rule.get("mode"),
                    signatures=signatures,
                    attestations=tuple(cast(list[AttestationRequirement], attestations)),
                )
            )
        return None if self.report.has_errors("/spec/rules") else _all(built)

    def _attestation(self, att: dict[str, Any], pointer: str) -> AttestationRequirement | None:
        signers = self._signers(att, pointer)
        predicate = att.get("predicateType")
        if isinstance(predicate, str):
            self._predicate_checks(att, predicate, pointer)
        slsa = obj(att.get("slsa"))
        self._globs(slsa.get("builderIds", []), f"{pointer}/slsa/builderIds")
        self._globs(slsa.get("sourceRefs", []), f"{pointer}/slsa/sourceRefs")
        summary = obj(att.get("verificationSummary"))
        if isinstance(summary.get("resourceUri"), str):
            self._glob(f"{pointer}/verificationSummary/resourceUri", summary["resourceUri"])
        summary_age = self._duration(summary.get("maxAge"), f"{pointer}/verificationSummary/maxAge")
        vulns = obj(att.get("vulnerabilities"))
        vulns_age = self._duration(vulns.get("maxAge"), f"{pointer}/vulnerabilities/maxAge")
        if self.report.has_errors(pointer):
            return None
        checks: dict[str, Any] = {}
        if "slsa" in att:
            checks["slsa"] = self.make(
                f"{pointer}/slsa",
                SlsaCheck,
                builder_ids=tuple(slsa.get("builderIds", [])),
                source_repositories=tuple(slsa.get("sourceRepositories", [])),
                source_refs=tuple(slsa.get("sourceRefs", [])),
            )
        if "verificationSummary" in att:
            checks["verification_summary"] = self.make(
                f"{pointer}/verificationSummary",
                VerificationSummaryCheck,
                verifier_ids=tuple(summary.get("verifierIds", [])),
                min_level=summary.get("minLevel"),
                max_age=summary_age,
                resource_uri=summary.get("resourceUri"),
            )
        if "vulnerabilities" in att:
            checks["vulnerabilities"] = self.make(
                f"{pointer}/vulnerabilities",
                VulnerabilityCheck,
                max_severity=vulns.get("maxSeverity", "CRITICAL"),
                max_age=vulns_age,
            )
        if any(check is None for check in checks.values()):
            return None
        return self.make(
            pointer,
            AttestationRequirement,
            predicate_type=predicate,
            signers=signers,
            minimum=att.get("minimum", 1),
            **checks,
        )

    def _predicate_checks(self, att: dict[str, Any], predicate: str, pointer: str) -> None:
        if "slsa" in att and not predicate.startswith(SLSA_PROVENANCE):
            self.report.error(
                f"{pointer}/slsa",
                f"slsa checks apply to SLSA provenance, not to predicateType {predicate!r}",
                "set predicateType: https://slsa.dev/provenance/v1, or move these checks to that attestation",
            )
        if "verificationSummary" in att and not predicate.startswith(SLSA_VSA):
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

    def _signers(self, holder: dict[str, Any], pointer: str) -> tuple[Signer, ...]:
        signers = items(holder.get("signers"), f"{pointer}/signers")
        built: list[Signer] = []
        seen: dict[tuple[object, ...], int] = {}
        for signer_pointer, item in signers:
            signer = obj(item)
            made: Signer | None = None
            keyless = signer.get("keyless")
            if isinstance(keyless, dict):
                made = self._keyless(keyless, f"{signer_pointer}/keyless")
            key = signer.get("key")
            if isinstance(key, dict):
                made = self._key_signer(key, f"{signer_pointer}/key")
            if made is None or len(signer) != 1:
                continue
            built.append(made)
            # Who signs, whatever else differs (requireTlog, the order extensions are written in).
            identity: tuple[object, ...] = (
                ("key", made.name)
                if isinstance(made, KeySigner)
                else (
                    "keyless",
                    made.root,
                    made.issuer,
                    made.subject,
                    made.subject_regexp,
                    *sorted(made.extensions),
                )
            )
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
        return tuple(built)

    def _key_signer(self, key: dict[str, Any], pointer: str) -> KeySigner | None:
        name = key.get("name")
        if not isinstance(name, str):
            return None
        self.used_keys.add(name)
        if name not in self.key_names:
            self.report.error(
                f"{pointer}/name",
                f"unknown trust key {name!r}",
                _define_hint("spec.trust.keys", self.key_names),
            )
        self._tlog(key, name, pointer)
        return self.make(pointer, KeySigner, name=name, require_tlog=bool(key.get("requireTlog", True)))

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

    def _keyless(self, keyless: dict[str, Any], pointer: str) -> KeylessSigner | None:
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
        extensions = obj(keyless.get("extensions"))
        return self.make(
            pointer,
            KeylessSigner,
            root=root,
            issuer=keyless.get("issuer"),
            subject=keyless.get("subject"),
            subject_regexp=regexp,
            extensions=tuple((str(k), str(v)) for k, v in extensions.items()),
        )

    def unused_trust(self) -> None:
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

    # -- shared checks -------------------------------------------------------------------------------

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
            pattern for item_pointer, pattern in strings(value, pointer) if self._glob(item_pointer, pattern)
        ]

    def _glob(self, pointer: str, pattern: str) -> bool:
        try:
            check_glob(pattern)
        except GlobError as error:
            self.report.error(pointer, f"malformed glob {pattern!r}: {error.reason}", error.hint)
            return False
        return True

    def _duration(self, value: object, pointer: str) -> timedelta | None:
        if not isinstance(value, str) or not DURATION_RE.fullmatch(value) or not value:
            return None  # the schema reports the form
        try:
            duration = parse_duration(value)
        except ValueError as error:
            self.report.error(pointer, str(error), "use a shorter duration")
            return None
        if duration <= timedelta(0):
            self.report.error(
                pointer, f"duration {value!r} is zero", "use a duration longer than zero, e.g. 168h"
            )
            return None
        return duration

    # -- referenced files ----------------------------------------------------------------------------

    def _read(self, pointer: str, raw_path: str, what: str) -> _Read | None:
        given = Path(raw_path)
        display = given if given.is_absolute() else self.path.parent / given
        hint = _path_hint(given, self.path)
        if given.is_absolute() and self.locate is not None:
            display = self.locate(given)
            if display != given:
                hint = f"add the file, or fix the path or --root ({given} is read from {display})"
        try:
            return _Read(display, display.absolute(), material.read_bounded(display))
        except FileNotFoundError:
            self.report.error(pointer, f"{what} {str(display)!r} does not exist", hint)
        except IsADirectoryError:
            self.report.error(pointer, f"{what} {str(display)!r} is a directory", "point to a file")
        except OSError as error:
            self.report.error(
                pointer, f"{what} {str(display)!r} cannot be read: {os_reason(error)}", "fix its permissions"
            )
        return None

    def _material(self, pointer: str, raw_path: str, what: str, parse: Callable[..., _T]) -> _T | None:
        """The file at ``raw_path`` read once and checked by ``parse`` (a material ``parse``)."""
        found = self._read(pointer, raw_path, what)
        if found is None:
            return None
        try:
            return parse(found.data, path=found.path)
        except material.MaterialError as error:
            self.report.error(pointer, f"{what} {str(found.shown)!r}: {error.message}", error.hint)
            return None


def _all(values: Iterable[_T | None]) -> tuple[_T, ...] | None:
    """The values, or None when one of them could not be built (an error was reported for it)."""
    found = tuple(values)
    return None if any(value is None for value in found) else cast(tuple[_T, ...], found)


def _unique(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(values))


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
