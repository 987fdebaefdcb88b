"""What the adapters found out about one image: the input of the pure decision core.

A :class:`RuleVerification` says whether a rule's signature and attestation requirements held for a
digest, and carries the evidence in typed values, so that every reader renders the same facts: the
``verify`` and ``evaluate --explain`` text, JSON output, the audit log and policy tests
(:mod:`webhook.explain`), and the provenance annotations of admitted objects (:class:`Provenance`).

Evidence holds text from outside (certificate identities, predicate fields): readers escape it when
they print it (:mod:`webhook.text`).
"""

from __future__ import annotations

__all__ = [
    "ArtifactCheck",
    "Discovery",
    "FieldCheck",
    "Finding",
    "ImageFacts",
    "ListedManifest",
    "Provenance",
    "RequirementCheck",
    "RuleVerification",
    "SignerEvidence",
    "Verdict",
]

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from webhook.policy.model import QuarantineEntry
from webhook.reasons import Reason


@dataclass(frozen=True, slots=True)
class Finding:
    """A failed check: its reason code and a message naming what was expected and what was found."""

    code: Reason
    message: str


@dataclass(frozen=True, slots=True)
class SignerEvidence:
    """Who signed an artifact whose cryptography verified: a trust key, or a certificate's identity.

    Attributes:
        key: the ``trust.keys`` name whose key verified it (key signers); None for a certificate.
        subjects: the certificate's subject alternative names (e-mails, URIs).
        issuer: the certificate's OIDC issuer.
        extensions: the certificate's Fulcio extensions that name the source and the build (source
            repository, ref and commit, build signer and config, trigger, run, runner), and any the
            signer constrains, as (policy-file name, value) pairs.
        logged: the transparency-log time of the signature, when the verification established one.
    """

    key: str | None = None
    subjects: tuple[str, ...] = ()
    issuer: str | None = None
    extensions: tuple[tuple[str, str], ...] = ()
    logged: datetime | None = None

    def describe(self) -> str:
        """``key release``, or ``keyless <subjects> issuer <issuer>``."""
        if self.key is not None:
            return f"key {self.key}"
        return f"keyless {', '.join(self.subjects) or '(no SAN)'} issuer {self.issuer or '(none)'}"


@dataclass(frozen=True, slots=True)
class FieldCheck:
    """A field of an attestation's predicate compared with what the policy expects.

    Attributes:
        name: what the field is, e.g. ``builder id`` or ``source ref``.
        policy: the policy setting it is held to, e.g. ``builderIds`` (``predicateType`` for the type).
        expected: what the policy allows: its values or patterns as written, or a bound (``168h0m``).
        found: the value read from the predicate (cut short when long), None when it is absent.
        source: where ``found`` was read, e.g. ``runDetails.builder.id``.
        failure: the finding when ``found`` does not satisfy the policy; None when it does.
    """

    name: str
    policy: str
    expected: tuple[str, ...]
    found: str | None
    source: str = ""
    failure: Finding | None = None

    @property
    def passed(self) -> bool:
        return self.failure is None


@dataclass(frozen=True, slots=True)
class Provenance:
    """What a verified SLSA provenance says about how an image was built (None: it does not say).

    Attributes:
        predicate_type: the provenance's predicate type (SLSA v1, v0.2 or v0.1).
        builder_id: the builder's id.
        repository: the source repository, normalised as policies compare it (``github.com/acme/app``).
        ref: the source ref (``refs/tags/v1.2.0``).
        commit: the source commit (lower-case hex).
        finished: when the build finished (UTC), as the provenance states it.
        attested: the transparency-log time of the attestation, when its verification established one
            (GitHub's provenance states no finish time; it is signed as the build ends).
    """

    predicate_type: str
    builder_id: str | None = None
    repository: str | None = None
    ref: str | None = None
    commit: str | None = None
    finished: datetime | None = None
    attested: datetime | None = None


Verdict = Literal["satisfied", "predicate-mismatch", "other-digest", "other-signer", "invalid"]
"""How far an artifact got for a requirement: it satisfied a signer; it is a valid attestation from a
required signer whose predicate fails the policy; valid and from a required signer but about another
digest; valid but signed by someone else; or its cryptography or structure failed."""


@dataclass(frozen=True, slots=True)
class ArtifactCheck:
    """One stored signature or attestation judged for one requirement (the best verdict over its signers).

    Attributes:
        artifact: how it is named in messages (``bundle sha256:ab12... (referrer sha256:cd34...)``).
        kind: ``bundle`` (a Sigstore bundle referrer), ``sig`` or ``att`` (a legacy cosign layer).
        manifest: the digest of the referrer manifest, or of the manifest behind the legacy tag.
        tag: the legacy tag (``sha256-<hex>.sig``); ``""`` for a bundle.
        verdict: see :data:`Verdict`.
        detail: what was found, in words (names the signer and what failed).
        signer: who signed it, once its cryptography verified; None before.
        satisfies: the (1-based) numbers of the requirement's signers it satisfies.
        fields: the predicate fields compared with the policy (attestations).
        provenance: what it says about the build, when it is SLSA provenance from a required signer.
    """

    artifact: str
    kind: Literal["bundle", "sig", "att"]
    manifest: str
    verdict: Verdict
    detail: str
    tag: str = ""
    signer: SignerEvidence | None = None
    satisfies: tuple[int, ...] = ()
    fields: tuple[FieldCheck, ...] = ()
    provenance: Provenance | None = None


@dataclass(frozen=True, slots=True)
class RequirementCheck:
    """One requirement of a rule, judged: its signatures, or one of its attestation types.

    Attributes:
        requirement: ``signatures`` or ``attestation <predicateType>``.
        signers: the signers the policy names, described, in policy order (``#1`` is the first).
        minimum: how many distinct signers must be satisfied.
        satisfied: how many were, each by a different signing key.
        artifacts: every artifact that is, or claims to be, of the kind the requirement is about.
        findings: why the requirement failed; empty when it held.
    """

    requirement: str
    signers: tuple[str, ...]
    minimum: int
    satisfied: int
    artifacts: tuple[ArtifactCheck, ...] = ()
    findings: tuple[Finding, ...] = ()

    @property
    def passed(self) -> bool:
        return not self.findings


@dataclass(frozen=True, slots=True)
class Discovery:
    """What was found stored for a digest: bundle referrers, legacy ``.sig`` and ``.att`` layers, and notes
    on what was skipped and why."""

    bundles: int = 0
    signatures: int = 0
    attestations: int = 0
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RuleVerification:
    """Outcome of the signature and attestation requirements of one rule for one digest.

    ``findings`` is empty when every requirement of the rule passed; ``requirements`` holds the evidence
    of each (absent when the artifacts could not be looked up: ``findings`` say why), ``discovery``
    what was found to judge.
    """

    rule: str
    digest: str
    findings: tuple[Finding, ...] = ()
    requirements: tuple[RequirementCheck, ...] = ()
    discovery: Discovery | None = None

    @property
    def passed(self) -> bool:
        return not self.findings

    @property
    def provenance(self) -> Provenance | None:
        """The SLSA provenance that satisfied one of the rule's attestation requirements, when the rule
        passed: the first satisfying artifact's, in requirement and discovery order."""
        if not self.passed:
            return None
        return next(
            (
                artifact.provenance
                for requirement in self.requirements
                for artifact in requirement.artifacts
                if artifact.verdict == "satisfied" and artifact.provenance is not None
            ),
            None,
        )


@dataclass(frozen=True, slots=True)
class ListedManifest:
    """A manifest the admitted index lists, directly or through an index it lists.

    ``platform`` is what the listing index says (``linux/amd64``; ``""`` when it names none), ``index``
    the index that lists it, ``marker`` a quarantine marker found for it.
    """

    digest: str
    platform: str = ""
    index: str = ""
    marker: QuarantineEntry | None = None


@dataclass(frozen=True, slots=True)
class ImageFacts:
    """Facts gathered for one image reference.

    Attributes:
        digest: the manifest digest the tag resolved to (None if not resolved).
        gathering_error: why the facts could not be gathered, if they could not: the tag did not
            resolve, the registry failed, the deadline passed or an adapter broke (``registry-error``,
            ``digest-mismatch``, ``registry-not-allowed``). It fails the image closed, pinned or not.
        marker: a quarantine marker found in the registry for the digest.
        marker_error: why the registry's quarantine markers could not be read (fails closed).
        listed: for an image index, every manifest it lists (with their markers), to be checked
            against the quarantine too: a node pulls one of them.
        listing_error: why the listed manifests or their markers could not be read (fails closed).
        quarantine_read: whether the quarantine facts above were gathered (markers and listing, as the
            image's plan asks). False, the default, means nobody looked: a plan that asks for markers
            or a listing then fails closed, as empty ``marker``/``listed`` would otherwise read as
            "not quarantined".
        verifications: one entry per rule that requires signatures or attestations.
    """

    digest: str | None = None
    gathering_error: Finding | None = None
    marker: QuarantineEntry | None = None
    marker_error: Finding | None = None
    listed: tuple[ListedManifest, ...] = ()
    listing_error: Finding | None = None
    quarantine_read: bool = False
    verifications: tuple[RuleVerification, ...] = ()

    def verification(self, rule: str) -> RuleVerification | None:
        return next((v for v in self.verifications if v.rule == rule), None)

    def verified_provenance(self, rules: tuple[str, ...], digest: str) -> tuple[str, Provenance] | None:
        """(rule, provenance): the first of ``rules`` whose verification of ``digest`` passed with SLSA
        provenance, or None."""
        for rule in rules:
            verification = self.verification(rule)
            if verification is not None and verification.digest == digest:
                provenance = verification.provenance
                if provenance is not None:
                    return rule, provenance
        return None
