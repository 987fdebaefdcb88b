"""The policy as typed, frozen values: what the loader produces and the decision core reads."""

from __future__ import annotations

__all__ = [
    "AttestationRequirement",
    "Exemption",
    "KeySigner",
    "KeylessSigner",
    "Mode",
    "Policy",
    "QuarantineEntry",
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

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

Mode = Literal["enforce", "warn", "audit"]
Unmatched = Literal["deny", "allow", "warn"]


@dataclass(frozen=True, slots=True)
class Registries:
    allow: tuple[str, ...] = ()
    insecure: tuple[str, ...] = ()
    ca_file: Path | None = None
    credentials_file: Path | None = None


@dataclass(frozen=True, slots=True)
class Tags:
    resolve: bool = True
    deny: tuple[str, ...] = ("latest",)


@dataclass(frozen=True, slots=True)
class TrustRoot:
    name: str
    file: Path


@dataclass(frozen=True, slots=True)
class TrustKey:
    """A public key, from ``file`` or inline ``pem`` (exactly one is set)."""

    name: str
    file: Path | None = None
    pem: str | None = None


@dataclass(frozen=True, slots=True)
class Trust:
    roots: tuple[TrustRoot, ...] = ()
    keys: tuple[TrustKey, ...] = ()


@dataclass(frozen=True, slots=True)
class QuarantineSettings:
    files: tuple[Path, ...] = ()
    registry_markers: bool = False


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
class Exemption:
    images: tuple[str, ...]
    namespaces: tuple[str, ...]
    expires: datetime
    reason: str


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

    def describe(self) -> str:
        return f"key {self.name}"


Signer = KeylessSigner | KeySigner


@dataclass(frozen=True, slots=True)
class SignatureRequirement:
    signers: tuple[Signer, ...]
    minimum: int = 1


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


@dataclass(frozen=True, slots=True)
class VulnerabilityCheck:
    max_severity: str = "CRITICAL"  # NONE | LOW | MEDIUM | HIGH | CRITICAL
    max_age: timedelta | None = None


@dataclass(frozen=True, slots=True)
class AttestationRequirement:
    predicate_type: str
    signers: tuple[Signer, ...]
    minimum: int = 1
    slsa: SlsaCheck | None = None
    verification_summary: VerificationSummaryCheck | None = None
    vulnerabilities: VulnerabilityCheck | None = None


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    images: tuple[str, ...]
    namespaces: tuple[str, ...] = ("*",)
    mode: Mode | None = None
    signatures: SignatureRequirement | None = None
    attestations: tuple[AttestationRequirement, ...] = ()

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

    def key(self, name: str) -> TrustKey | None:
        return next((k for k in self.trust.keys if k.name == name), None)

    def root(self, name: str) -> TrustRoot | None:
        return next((r for r in self.trust.roots if r.name == name), None)
