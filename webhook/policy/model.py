"""The policy as typed, frozen values: what the loader produces and the decision core reads.

The invariants the loader enforces hold by construction here (checked in ``__post_init__``), so no
caller, test or adapter can build a policy the loader would refuse: exactly one of ``subject`` and
``subjectRegExp``, a key from a file or inline, ``minimum`` within the signers, names unique, every
signer naming a defined trust root or key, insecure hosts inside the allowlist, and so on. Files a policy
names are carried as they were read and checked (:mod:`webhook.policy.material`), never as bare paths.
"""

from __future__ import annotations

__all__ = [
    "FULCIO_EXTENSIONS",
    "SEVERITIES",
    "AttestationRequirement",
    "Exemption",
    "KeySigner",
    "KeylessSigner",
    "Mode",
    "Policy",
    "QuarantineEntry",
    "QuarantineList",
    "QuarantineSettings",
    "Registries",
    "Rule",
    "SignatureRequirement",
    "Signer",
    "SlsaCheck",
    "Tags",
    "Trust",
    "TrustKey",
    "TrustRoot",
    "Unmatched",
    "VerificationSummaryCheck",
    "VulnerabilityCheck",
]

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Literal, get_args

from webhook.formats import FULCIO_EXTENSIONS, SEVERITIES
from webhook.policy.material import CaMaterial, CredentialsMaterial, KeyMaterial, TrustedRootMaterial

Mode = Literal["enforce", "warn", "audit"]
Unmatched = Literal["deny", "allow", "warn"]

SLSA_PROVENANCE = "https://slsa.dev/provenance/"
SLSA_VSA = "https://slsa.dev/verification_summary/"


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def _duplicates(names: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    twice = []
    for name in names:
        if name in seen:
            twice.append(name)
        seen.add(name)
    return twice


@dataclass(frozen=True, slots=True)
class Registries:
    """``spec.registries``: hosts in canonical form; the CA and credentials files as read and checked."""

    allow: tuple[str, ...] = ()
    insecure: tuple[str, ...] = ()
    ca: CaMaterial | None = None
    credentials: CredentialsMaterial | None = None

    def __post_init__(self) -> None:
        outside = [host for host in self.insecure if host not in self.allow]
        _require(not outside, f"insecure host(s) {', '.join(outside)} not in registries.allow")

    @property
    def ca_file(self) -> Path | None:
        return self.ca.path if self.ca is not None else None

    @property
    def credentials_file(self) -> Path | None:
        return self.credentials.path if self.credentials is not None else None


@dataclass(frozen=True, slots=True)
class Tags:
    resolve: bool = True
    deny: tuple[str, ...] = ("latest",)


@dataclass(frozen=True, slots=True)
class TrustRoot:
    """A pinned Sigstore trusted root: its file as read and checked."""

    name: str
    material: TrustedRootMaterial

    def __post_init__(self) -> None:
        _require(bool(self.name), "a trust root needs a name")
        _require(self.material.path is not None, f"trust root {self.name!r} needs the file it was read from")

    @property
    def file(self) -> Path:
        assert self.material.path is not None  # noqa: S101 - checked in __post_init__
        return self.material.path


@dataclass(frozen=True, slots=True)
class TrustKey:
    """A public key, from a file or written inline (``pem``): exactly one, by construction.

    ``material.path`` is the file it was read from, or None for an inline key.
    """

    name: str
    material: KeyMaterial

    def __post_init__(self) -> None:
        _require(bool(self.name), "a trust key needs a name")

    @property
    def file(self) -> Path | None:
        return self.material.path

    @property
    def pem(self) -> str | None:
        return self.material.data.decode("utf-8") if self.material.path is None else None


@dataclass(frozen=True, slots=True)
class Trust:
    roots: tuple[TrustRoot, ...] = ()
    keys: tuple[TrustKey, ...] = ()

    def __post_init__(self) -> None:
        for what, names in (
            ("trust root", (r.name for r in self.roots)),
            ("trust key", (k.name for k in self.keys)),
        ):
            twice = _duplicates(names)
            _require(not twice, f"duplicate {what} name(s) {', '.join(map(repr, twice))}")


@dataclass(frozen=True, slots=True)
class QuarantineEntry:
    """One quarantined digest.

    ``indexes`` and ``platform`` are set on the entries ``imagegate quarantine add`` records for the
    manifests an index lists: the indexes they were recorded for and the platform the index names
    (e.g. ``linux/amd64``). ``quarantine remove`` of the last of those indexes removes them too.
    """

    digest: str
    reason: str
    by: str = ""
    since: datetime | None = None
    # A file path, "registry" (a marker in the admitted repository) or "registry marker on <where>".
    source: str = ""
    indexes: tuple[str, ...] = ()
    platform: str = ""

    @property
    def relation(self) -> str:
        """``platform linux/amd64 of index sha256:...`` when recorded for an index, else ``""``."""
        if not self.indexes:
            return ""
        what = f"platform {self.platform}" if self.platform else "manifest"
        more = f" and {len(self.indexes) - 1} more" if len(self.indexes) > 1 else ""
        return f"{what} of index {self.indexes[0]}{more}"


@dataclass(frozen=True, slots=True)
class QuarantineList:
    """One quarantine list file as read: its bytes and the entries checked in them."""

    path: Path
    data: bytes = field(repr=False)
    entries: tuple[QuarantineEntry, ...] = ()

    def __post_init__(self) -> None:
        twice = _duplicates(entry.digest for entry in self.entries)
        _require(not twice, f"quarantine list {self.path}: digest(s) listed twice: {', '.join(twice)}")


@dataclass(frozen=True, slots=True)
class QuarantineSettings:
    lists: tuple[QuarantineList, ...] = ()
    registry_markers: bool = False

    @property
    def files(self) -> tuple[Path, ...]:
        return tuple(quarantine_list.path for quarantine_list in self.lists)

    def entries(self) -> Iterator[QuarantineEntry]:
        """Every entry of every list; the first list that names a digest wins."""
        for quarantine_list in self.lists:
            yield from quarantine_list.entries


@dataclass(frozen=True, slots=True)
class Exemption:
    images: tuple[str, ...]
    namespaces: tuple[str, ...]
    expires: datetime
    reason: str

    def __post_init__(self) -> None:
        _require(bool(self.images), "an exemption needs at least one image")
        _require(bool(self.namespaces), "an exemption needs at least one namespace glob")
        _require(
            isinstance(self.expires, datetime) and self.expires.utcoffset() is not None,
            "an exemption's expires needs a time zone",
        )
        _require(bool(self.reason), "an exemption needs a reason")


@dataclass(frozen=True, slots=True)
class KeylessSigner:
    """A Fulcio-certified identity. Exactly one of ``subject`` / ``subject_regexp`` is set.

    ``extensions`` maps Fulcio certificate-extension names (``sourceRepositoryURI``,
    ``sourceRepositoryRef``, ``buildSignerURI``, ...) to the exact value required.
    """

    root: str
    issuer: str
    subject: str | None = None
    subject_regexp: str | None = None
    extensions: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        _require(bool(self.root) and bool(self.issuer), "a keyless signer needs a root and an issuer")
        _require(
            (self.subject is None) != (self.subject_regexp is None),
            "a keyless signer needs exactly one of subject and subjectRegExp",
        )
        if self.subject_regexp is not None:
            try:
                re.compile(self.subject_regexp)
            except re.error as error:
                raise ValueError(f"invalid subjectRegExp {self.subject_regexp!r}: {error}") from None
        for name, _ in self.extensions:
            _require(
                name in FULCIO_EXTENSIONS,
                f"unknown certificate extension {name!r} (known: {', '.join(sorted(FULCIO_EXTENSIONS))})",
            )

    def describe(self) -> str:
        who = self.subject if self.subject is not None else f"~/{self.subject_regexp}/"
        return f"keyless {who} (issuer {self.issuer}, root {self.root})"


@dataclass(frozen=True, slots=True)
class KeySigner:
    """A public key from ``trust.keys``.

    ``require_tlog`` (the default, as in cosign) demands transparency-log evidence for the signature: a
    Rekor inclusion promise from a log of a trusted root, inside that log key's validity window.
    """

    name: str
    require_tlog: bool = True

    def __post_init__(self) -> None:
        _require(bool(self.name), "a key signer needs the name of a trust key")

    def describe(self) -> str:
        return f"key {self.name}"


Signer = KeylessSigner | KeySigner


def _check_signers(signers: tuple[Signer, ...], minimum: int) -> None:
    _require(bool(signers), "at least one signer is required")
    _require(
        1 <= minimum <= len(signers),
        f"minimum {minimum} must be from 1 to the {len(signers)} signer(s) listed",
    )
    _require(len(set(signers)) == len(signers), "the same signer is listed twice")


@dataclass(frozen=True, slots=True)
class SignatureRequirement:
    signers: tuple[Signer, ...]
    minimum: int = 1

    def __post_init__(self) -> None:
        _check_signers(self.signers, self.minimum)


@dataclass(frozen=True, slots=True)
class SlsaCheck:
    builder_ids: tuple[str, ...] = ()
    source_repositories: tuple[str, ...] = ()
    source_refs: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class VerificationSummaryCheck:
    verifier_ids: tuple[str, ...] = ()
    min_level: str | None = None
    max_age: timedelta | None = None
    resource_uri: str | None = None  # glob; default: must name the admitted image

    def __post_init__(self) -> None:
        _require(self.max_age is None or self.max_age > timedelta(0), "maxAge must be longer than zero")


@dataclass(frozen=True, slots=True)
class VulnerabilityCheck:
    max_severity: str = "CRITICAL"  # NONE | LOW | MEDIUM | HIGH | CRITICAL
    max_age: timedelta | None = None

    def __post_init__(self) -> None:
        _require(
            self.max_severity in SEVERITIES,
            f"maxSeverity {self.max_severity!r} is not one of {', '.join(SEVERITIES)}",
        )
        _require(self.max_age is None or self.max_age > timedelta(0), "maxAge must be longer than zero")


@dataclass(frozen=True, slots=True)
class AttestationRequirement:
    predicate_type: str
    signers: tuple[Signer, ...]
    minimum: int = 1
    slsa: SlsaCheck | None = None
    verification_summary: VerificationSummaryCheck | None = None
    vulnerabilities: VulnerabilityCheck | None = None

    def __post_init__(self) -> None:
        _require(bool(self.predicate_type), "an attestation needs a predicateType")
        _check_signers(self.signers, self.minimum)
        predicate = self.predicate_type
        _require(
            self.slsa is None or predicate.startswith(SLSA_PROVENANCE),
            f"slsa checks apply to SLSA provenance, not to predicateType {predicate!r}",
        )
        _require(
            self.verification_summary is None or predicate.startswith(SLSA_VSA),
            "verificationSummary checks apply to SLSA verification summaries, "
            f"not to predicateType {predicate!r}",
        )
        _require(
            self.vulnerabilities is None or not predicate.startswith("https://slsa.dev/"),
            f"vulnerabilities checks apply to vulnerability scans, not to predicateType {predicate!r}",
        )


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    images: tuple[str, ...]
    namespaces: tuple[str, ...] = ("*",)
    mode: Mode | None = None
    signatures: SignatureRequirement | None = None
    attestations: tuple[AttestationRequirement, ...] = ()

    def __post_init__(self) -> None:
        _require(bool(self.name), "a rule needs a name")
        _require(bool(self.images), f"rule {self.name!r} needs at least one image glob")
        _require(bool(self.namespaces), f"rule {self.name!r} needs at least one namespace glob")
        _require(
            self.mode is None or self.mode in get_args(Mode),
            f"rule {self.name!r}: unknown mode {self.mode!r}",
        )

    def signers(self) -> Iterator[Signer]:
        """Every signer of the rule's signature and attestation requirements."""
        if self.signatures is not None:
            yield from self.signatures.signers
        for attestation in self.attestations:
            yield from attestation.signers

    @property
    def needs_verification(self) -> bool:
        return self.signatures is not None or bool(self.attestations)


@dataclass(frozen=True, slots=True)
class Policy:
    """A loaded, validated policy with its quarantine lists resolved.

    ``fingerprint`` is a sha256 over the policy and every file it references (quarantine lists,
    trust roots, keys): caches key on it so a change of trust material invalidates them.
    """

    name: str
    source: str
    mode: Mode = "enforce"
    unmatched: Unmatched = "deny"
    registries: Registries = field(default_factory=Registries)
    tags: Tags = field(default_factory=Tags)
    trust: Trust = field(default_factory=Trust)
    quarantine: QuarantineSettings = field(default_factory=QuarantineSettings)
    exemptions: tuple[Exemption, ...] = ()
    rules: tuple[Rule, ...] = ()
    quarantined: Mapping[str, QuarantineEntry] = field(default_factory=dict)  # by exact digest
    fingerprint: str = ""

    def __post_init__(self) -> None:
        _require(self.mode in get_args(Mode), f"unknown mode {self.mode!r}")
        _require(self.unmatched in get_args(Unmatched), f"unknown unmatched {self.unmatched!r}")
        twice = _duplicates(rule.name for rule in self.rules)
        _require(not twice, f"duplicate rule name(s) {', '.join(map(repr, twice))}")
        roots = {root.name for root in self.trust.roots}
        keys = {key.name for key in self.trust.keys}
        for rule in self.rules:
            for signer in rule.signers():
                if isinstance(signer, KeySigner):
                    _require(signer.name in keys, f"rule {rule.name!r}: unknown trust key {signer.name!r}")
                else:
                    _require(signer.root in roots, f"rule {rule.name!r}: unknown trust root {signer.root!r}")
        wrong = [digest for digest, entry in self.quarantined.items() if entry.digest != digest]
        _require(not wrong, f"quarantined entries filed under another digest: {', '.join(wrong)}")

    @classmethod
    def quarantined_by_digest(cls, settings: QuarantineSettings) -> Mapping[str, QuarantineEntry]:
        """``quarantined`` for ``settings``: every listed entry by digest, the first list's entry first."""
        found: dict[str, QuarantineEntry] = {}
        for entry in settings.entries():
            found.setdefault(entry.digest, entry)
        return MappingProxyType(found)

    def key(self, name: str) -> TrustKey | None:
        return next((k for k in self.trust.keys if k.name == name), None)

    def root(self, name: str) -> TrustRoot | None:
        return next((r for r in self.trust.roots if r.name == name), None)
