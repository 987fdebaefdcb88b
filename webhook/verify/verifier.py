"""The per-rule verification orchestrator: signatures (k-of-n) and attestations for one digest.

:meth:`ImageVerifier.verify_rule` takes what discovery found and answers, for one rule, with a
:class:`~webhook.facts.RuleVerification`: findings (empty = passed) and the evidence of every check,
typed: per requirement, every relevant artifact with its verdict, who signed it (subject, issuer, key,
the certificate's source and build extensions), which signers it satisfies, the predicate fields
compared with the policy, and what SLSA provenance says about the build (repository, ref, commit,
builder, finish time: recorded on admitted objects by the mutating webhook).

1. **Signatures** (``rule.signatures``). Candidates: Sigstore bundle referrers and legacy ``.sig`` layers.
   A candidate satisfies a signer when, in order: its cryptography verifies (the one step done by a
   :class:`~webhook.verify.crypto.PayloadVerifier`; keyless: against the signer's pinned root,
   :mod:`~webhook.verify.bundles` / :mod:`~webhook.verify.legacy`; key: with the named key), it is an
   image signature (a ``https://sigstore.dev/cosign/sign/v1`` statement, a message signature over the
   manifest, or a cosign simple-signing payload), the signer's identity matches, and
   it is bound to the admitted digest (statement subject, ``docker-manifest-digest`` or signed digest,
   compared exactly). At least ``minimum`` distinct signers must be satisfied, each by a different
   signing key (a maximum bipartite matching), so one signature never counts for two signers. A
   signing key is the public key of a key signer, or the certificate of a keyless one (Fulcio issues
   one per signing session): the same signature stored twice, re-encoded or in both formats, or
   one key named twice in ``trust.keys``, counts once.
2. **Attestations** (``rule.attestations``), per requirement. Candidates: bundle referrers and legacy
   ``.att`` layers. A candidate satisfies a signer as above, with "is an image signature" replaced by
   "is an in-toto statement of ``predicateType``", and then the predicate checks of the requirement
   (SLSA provenance, verification summary, vulnerabilities: :mod:`~webhook.verify.predicates`) must pass
   on that attestation. ``minimum`` as above.

Reason codes when a requirement fails (the first that applies):

* ``unsigned`` / ``attestation-missing``: nothing that is, or claims to be, such an artifact was found;
* ``provenance-mismatch`` (or ``attestation-invalid`` for a missing field): a valid attestation from a
  required signer whose predicate does not satisfy the policy (codes from ``predicates``);
* ``identity-mismatch``: valid and relevant, but signed by other identities, issuers or keys than the
  policy names, or by fewer distinct required signers than ``minimum``;
* ``signature-invalid`` / ``attestation-invalid``: found, but none verifies cryptographically, or a valid
  one from a required signer is about another digest (a replayed signature).

Multi-arch images: the digest verified is the digest being admitted, i.e. the INDEX digest of a
multi-arch image. A signature over one platform manifest only does not count: the kubelet may pull any
platform listed in the index, so only a signature over the index vouches for all of them. (cosign signs
the index digest by default; ``--recursive`` also signs each platform manifest.)

Nothing raises out of :meth:`ImageVerifier.verify_rule`: every failure, expected or not, becomes a
finding (fail closed). An unexpected error while checking one artifact makes only that artifact
invalid, so a hostile artifact next to a valid one cannot turn a pass into a failure.

It is one module over 600 lines because judging a requirement (which artifact counts for which
signer, the k-of-n matching, and which reason code a failure gets) is one decision that reads best in
one place; the cryptography, identities and predicates it applies are modules of their own.
"""

from __future__ import annotations

__all__ = ["ImageVerifier"]

import base64
import hashlib
import json
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum
from typing import Literal

from cryptography.hazmat.primitives.serialization import Encoding

from webhook.errors import VerificationFailed
from webhook.facts import (
    ArtifactCheck,
    Discovery,
    FieldCheck,
    Finding,
    Provenance,
    RequirementCheck,
    RuleVerification,
    SignerEvidence,
    Verdict,
)
from webhook.images.reference import ImageRef
from webhook.policy.model import AttestationRequirement, KeylessSigner, KeySigner, Rule, Signer
from webhook.reasons import Reason
from webhook.verify import predicates
from webhook.verify.bundles import COSIGN_SIGN_PREDICATE, SignedPayload, peek_predicate_type
from webhook.verify.crypto import PayloadVerifier, SigstoreCrypto
from webhook.verify.discovery import Artifacts, BundleArtifact, LegacyLayer
from webhook.verify.identity import SignerPolicy
from webhook.verify.legacy import SIMPLE_SIGNING_TYPE, simple_signing_digest
from webhook.verify.statements import IN_TOTO_PAYLOAD_TYPE, Statement
from webhook.verify.trust import TrustMaterial

_logger = logging.getLogger(__name__)

_Artifact = BundleArtifact | LegacyLayer
_Purpose = Literal["signature", "attestation"]


class _Status(IntEnum):
    """How far one (signer, candidate) pair got, in increasing order (the best pair explains a failure)."""

    IRRELEVANT = 0  # verified, but not the kind of artifact the requirement is about
    INVALID = 1  # cryptography or structure failed
    IDENTITY = 2  # valid, but signed by someone else
    UNBOUND = 3  # valid, right signer, but about another digest
    PREDICATE = 4  # valid attestation from the right signer whose predicate fails the policy
    OK = 5


_VERDICTS: dict[_Status, Verdict] = {
    _Status.INVALID: "invalid",
    _Status.IDENTITY: "other-signer",
    _Status.UNBOUND: "other-digest",
    _Status.PREDICATE: "predicate-mismatch",
    _Status.OK: "satisfied",
}

_MAX_SHOWN = 3

# Certificate extensions kept as evidence of who signed (with those a signer constrains): they name the
# source and the build a keyless signature comes from.
_EVIDENCE_EXTENSIONS = (
    "sourceRepositoryURI",
    "sourceRepositoryRef",
    "sourceRepositoryDigest",
    "buildSignerURI",
    "buildConfigURI",
    "buildTrigger",
    "runInvocationURI",
    "runnerEnvironment",
)


@dataclass(frozen=True, slots=True)
class _Check:
    status: _Status
    detail: str
    verified: bool = False
    found: str = ""  # who signed it (set once the cryptography verified)
    findings: tuple[Finding, ...] = ()
    signing_key: str = ""  # set when _Status.OK: identifies the key that signed (see the module docstring)
    signer: SignerEvidence | None = None
    fields: tuple[FieldCheck, ...] = ()
    provenance: Provenance | None = None


@dataclass(frozen=True, slots=True)
class _Requirement:
    """What one requirement asks of a candidate (signatures, or one attestation requirement)."""

    label: str
    purpose: _Purpose
    signers: tuple[Signer, ...]
    minimum: int
    what: str
    codes: tuple[Reason, Reason]  # (nothing found, found but invalid)
    attestation: AttestationRequirement | None = None


class ImageVerifier:
    """Verifies rules for a digest against one policy's :class:`~webhook.verify.trust.TrustMaterial`.

    Thread-safe: per-call state lives in the call; per-signer identity policies are built once.
    """

    def __init__(self, trust: TrustMaterial, *, crypto: PayloadVerifier | None = None) -> None:
        self.trust = trust
        # The cryptographic step (webhook.verify.crypto); everything else here is policy.
        self.crypto: PayloadVerifier = crypto if crypto is not None else SigstoreCrypto(trust)
        self._policies: dict[KeylessSigner, SignerPolicy | str] = {}
        self._lock = threading.Lock()

    def verify_rule(
        self, *, rule: Rule, image: ImageRef, digest: str, artifacts: Artifacts, now: datetime
    ) -> RuleVerification:
        """Check ``rule``'s signature and attestation requirements for ``digest`` (see module docstring).

        Never raises: failures are findings; ``requirements`` hold the evidence of every check.
        """
        findings: list[Finding] = []
        judged: list[RequirementCheck] = []
        try:
            if artifacts.digest != digest:
                raise VerificationFailed(
                    f"artifacts were discovered for {artifacts.digest}, not for {digest}",
                    code=Reason.SIGNATURE_INVALID,
                )
            evaluation = _Evaluation(self, artifacts=artifacts, digest=digest, image=image, now=now)
            requirements: list[_Requirement] = []
            if rule.signatures is not None:
                requirements.append(
                    _Requirement(
                        label="signatures",
                        purpose="signature",
                        signers=_unique(rule.signatures.signers),
                        minimum=max(1, rule.signatures.minimum),
                        what="signature",
                        codes=(Reason.UNSIGNED, Reason.SIGNATURE_INVALID),
                    )
                )
            for attestation in rule.attestations:
                requirements.append(
                    _Requirement(
                        label=f"attestation {attestation.predicate_type}",
                        purpose="attestation",
                        signers=_unique(attestation.signers),
                        minimum=max(1, attestation.minimum),
                        what=f"attestation of type {attestation.predicate_type}",
                        codes=(Reason.ATTESTATION_MISSING, Reason.ATTESTATION_INVALID),
                        attestation=attestation,
                    )
                )
            for requirement in requirements:
                check = evaluation.judge(requirement)
                judged.append(check)
                findings.extend(check.findings)
        except VerificationFailed as error:
            findings.append(Finding(error.code, error.user_message))
        except Exception as error:  # fail closed on anything unexpected, and say so
            _logger.exception(
                "verifying %s@%s for rule %s failed unexpectedly", image.name, digest, rule.name
            )
            findings.append(
                Finding(
                    Reason.SIGNATURE_INVALID, f"verification failed unexpectedly ({type(error).__name__})"
                )
            )
        return RuleVerification(
            rule=rule.name,
            digest=digest,
            findings=tuple(findings),
            requirements=tuple(judged),
            discovery=Discovery(
                bundles=len(artifacts.bundles),
                signatures=len(artifacts.signatures),
                attestations=len(artifacts.attestations),
                notes=artifacts.notes,
            ),
        )

    def policy_for(self, signer: KeylessSigner) -> SignerPolicy | str:
        """The identity policy of ``signer``, or why it cannot be built (built once per signer)."""
        cached = self._policies.get(signer)
        if cached is not None:
            return cached
        built: SignerPolicy | str
        try:
            built = SignerPolicy(signer)
        except ValueError as error:
            built = str(error)
        with self._lock:
            self._policies[signer] = built
        return built


class _Evaluation:
    """One ``verify_rule`` call: each artifact is verified at most once per root or key."""

    def __init__(
        self, owner: ImageVerifier, *, artifacts: Artifacts, digest: str, image: ImageRef, now: datetime
    ) -> None:
        self.owner = owner
        self.trust = owner.trust
        self.artifacts = artifacts
        self.digest = digest
        self.image = image
        self.now = now
        self._memo: dict[tuple[str, _Artifact], SignedPayload | VerificationFailed] = {}

    # --- one requirement ------------------------------------------------------------------------

    def judge(self, requirement: _Requirement) -> RequirementCheck:
        signers = requirement.signers
        minimum = requirement.minimum
        if requirement.purpose == "signature":
            candidates: list[_Artifact] = [*self.artifacts.bundles, *self.artifacts.signatures]
        else:
            candidates = [*self.artifacts.bundles, *self.artifacts.attestations]
        claims: Callable[[_Artifact], bool]
        if requirement.attestation is None:
            claims = _claims_signature
        else:
            wanted = requirement.attestation.predicate_type
            claims = lambda candidate: _claims_type(candidate, wanted)  # noqa: E731
        checks = {
            (s, c): self._check(signer, candidate, requirement)
            for s, signer in enumerate(signers)
            for c, candidate in enumerate(candidates)
        }

        best: dict[int, _Check] = {}
        judged: list[ArtifactCheck] = []
        for c, candidate in enumerate(candidates):
            row = [checks[(s, c)] for s in range(len(signers))]
            verified = [check for check in row if check.verified]
            relevant = (
                any(check.status != _Status.IRRELEVANT for check in verified)
                if verified
                else claims(candidate)
            )
            if not relevant:
                continue
            top = max(row, key=lambda check: check.status)
            best[c] = top
            satisfied = tuple(s + 1 for s in range(len(signers)) if checks[(s, c)].status == _Status.OK)
            judged.append(_artifact_check(candidate, top, satisfied))
        count = _matching(
            {
                s: [checks[(s, c)].signing_key for c in best if checks[(s, c)].status == _Status.OK]
                for s in range(len(signers))
            }
        )
        findings = (
            []
            if count >= minimum
            else self._failure(requirement, best=best, candidates=candidates, count=count)
        )
        return RequirementCheck(
            requirement=requirement.label,
            signers=tuple(_expected(signer) for signer in signers),
            minimum=minimum,
            satisfied=count,
            artifacts=tuple(judged),
            findings=tuple(findings),
        )

    def _failure(
        self,
        requirement: _Requirement,
        *,
        best: dict[int, _Check],
        candidates: Sequence[_Artifact],
        count: int,
    ) -> list[Finding]:
        missing_code, invalid_code = requirement.codes
        minimum = requirement.minimum
        expected = f"expected {_describe_signers(requirement.signers)}"
        if minimum > 1:
            expected += f" (at least {minimum} of them)"
        prefix = "" if requirement.purpose == "signature" else f"{requirement.label}: "
        statuses = {check.status for check in best.values()}
        if not best:
            return [
                Finding(missing_code, f"{prefix}no {requirement.what} found for {self.digest}; {expected}")
            ]
        shortfall = f"only {count} of minimum {minimum} signer(s) satisfied; " if count > 0 else ""
        if _Status.PREDICATE in statuses:
            findings = list(
                dict.fromkeys(
                    Finding(f.code, f"{prefix}{f.message}")
                    for check in best.values()
                    if check.status == _Status.PREDICATE
                    for f in check.findings
                )
            )
            if count > 0:
                findings.append(Finding(Reason.IDENTITY_MISMATCH, f"{prefix}{shortfall}{expected}"))
            return findings
        if count > 0 or _Status.IDENTITY in statuses:
            found = [
                check.found
                for check in best.values()
                if check.status in (_Status.IDENTITY, _Status.OK) and check.found
            ]
            return [Finding(Reason.IDENTITY_MISMATCH, f"{prefix}{shortfall}{expected}, found {_join(found)}")]
        details = [
            f"{candidates[c].describe()}: {check.detail}"
            for c, check in best.items()
            if check.status in (_Status.UNBOUND, _Status.INVALID)
        ]
        return [
            Finding(invalid_code, f"{prefix}no valid {requirement.what} for {self.digest}: {_join(details)}")
        ]

    # --- one (signer, candidate) pair -------------------------------------------------------------

    def _check(self, signer: Signer, candidate: _Artifact, requirement: _Requirement) -> _Check:
        try:
            return self._check_pair(signer, candidate, requirement)
        except Exception as error:  # one hostile artifact must not sink the verdict on the others
            _logger.exception("checking %s for %s failed unexpectedly", candidate.describe(), _short(signer))
            return _Check(
                _Status.INVALID,
                f"not valid for {_short(signer)}: could not be checked ({type(error).__name__})",
            )

    def _check_pair(self, signer: Signer, candidate: _Artifact, requirement: _Requirement) -> _Check:
        result = self._verify(signer, candidate)
        if isinstance(result, VerificationFailed):
            return _Check(
                _Status.INVALID, f"not valid for {_short(signer)}: {_strip(result.user_message, candidate)}"
            )
        signed = result
        found = signed.signer_description()
        evidence = _signer_evidence(signed, signer)
        try:
            statement: Statement | None = None
            if requirement.attestation is None:
                relevant, signed_digest, statement = _as_signature(signed)
                kind = "signature"
            else:
                relevant, statement = _as_attestation(signed, requirement.attestation.predicate_type)
                signed_digest = None
                kind = "attestation"
        except VerificationFailed as error:
            return _Check(
                _Status.INVALID,
                f"signed by {found}, but {_strip(error.user_message, candidate)}",
                True,
                found,
                signer=evidence,
            )
        if not relevant:
            what = statement.predicate_type if statement is not None else (signed.payload_type or "message")
            return _Check(_Status.IRRELEVANT, f"valid, but a {what} artifact", True, found, signer=evidence)

        mismatch = self._identity_failure(signer, signed)
        if mismatch is not None:
            return _Check(
                _Status.IDENTITY,
                f"valid {kind} by {found}, not by {_short(signer)}: {mismatch}",
                True,
                found,
                signer=evidence,
            )

        bound = statement.covers(self.digest) if statement is not None else signed_digest == self.digest
        if not bound:
            about = signed_digest if signed_digest is not None else _subjects(statement)
            return _Check(
                _Status.UNBOUND,
                f"valid {kind} by {found}, but for {about}, not {self.digest}",
                True,
                found,
                signer=evidence,
            )

        fields: tuple[FieldCheck, ...] = ()
        provenance = None
        if requirement.attestation is not None and statement is not None:
            fields = self._predicate_fields(requirement.attestation, statement, signed)
            provenance = _provenance(statement, signed)
            findings = predicates.failures(fields)
            if findings:
                detail = "; ".join(f"[{f.code}] {f.message}" for f in findings)
                return _Check(
                    _Status.PREDICATE,
                    f"valid attestation by {found}, but {detail}",
                    True,
                    found,
                    findings,
                    signer=evidence,
                    fields=fields,
                    provenance=provenance,
                )
        return _Check(
            _Status.OK,
            f"valid {kind} by {found} for {self.digest}",
            True,
            found,
            signing_key=self._signing_key(signer, signed),
            signer=evidence,
            fields=fields,
            provenance=provenance,
        )

    def _signing_key(self, signer: Signer, signed: SignedPayload) -> str:
        """What signed ``signed``, as a k-of-n matching node: the key's SPKI, or the keyless certificate."""
        if signed.certificate is not None:
            material = b"cert:" + signed.certificate.public_bytes(Encoding.DER)
        else:
            key = self.trust.key(signer.name) if isinstance(signer, KeySigner) else None
            # Unreachable without a key (verification needed it); a unique node is the safe default.
            material = b"key:" + (key.spki_der if key is not None else signed.origin.encode())
        return hashlib.sha256(material).hexdigest()

    def _verify(self, signer: Signer, candidate: _Artifact) -> SignedPayload | VerificationFailed:
        if isinstance(signer, KeylessSigner):
            trust_key = ("root", signer.root)
        else:
            trust_key = ("key", f"{signer.name}\0{signer.require_tlog}")
        # Keyed by the whole artifact: legacy layers of different signers share one payload blob and
        # differ only in their annotations (signature, certificate, log entry).
        memo_key = (f"{trust_key[0]}:{trust_key[1]}", candidate)
        cached = self._memo.get(memo_key)
        if cached is not None:
            return cached
        try:
            result: SignedPayload | VerificationFailed = self._verify_uncached(signer, candidate)
        except VerificationFailed as error:
            result = error
        self._memo[memo_key] = result
        return result

    def _verify_uncached(self, signer: Signer, candidate: _Artifact) -> SignedPayload:
        return self.owner.crypto.verify(signer, candidate, digest=self.digest, now=self.now)

    def _identity_failure(self, signer: Signer, signed: SignedPayload) -> str | None:
        if isinstance(signer, KeySigner):
            # Verified with exactly this signer's key (memoised per key name).
            return None if signed.key == signer.name else f"verified with key {signed.key}, not {signer.name}"
        if signed.certificate is None:
            return "no signing certificate"
        policy = self.owner.policy_for(signer)
        if isinstance(policy, str):
            return f"the signer's policy is invalid: {policy}"
        return policy.failure(signed.certificate)

    def _predicate_fields(
        self, requirement: AttestationRequirement, statement: Statement, signed: SignedPayload
    ) -> tuple[FieldCheck, ...]:
        identity = signed.identity
        fields: list[FieldCheck] = []
        try:
            if requirement.slsa is not None:
                fields.extend(
                    predicates.compare_slsa(
                        statement,
                        requirement.slsa,
                        cert_source_ref=identity.extension("sourceRepositoryRef") if identity else None,
                        cert_source_repository=identity.extension("sourceRepositoryURI")
                        if identity
                        else None,
                    )
                )
            if requirement.verification_summary is not None:
                fields.extend(
                    predicates.compare_verification_summary(
                        statement,
                        requirement.verification_summary,
                        image_name=self.image.name,
                        digest=self.digest,
                        now=self.now,
                    )
                )
            if requirement.vulnerabilities is not None:
                fields.extend(
                    predicates.compare_vulnerabilities(statement, requirement.vulnerabilities, now=self.now)
                )
        except (ValueError, KeyError, TypeError, ArithmeticError, RecursionError) as error:
            fields.append(
                FieldCheck(
                    "predicate",
                    "predicateType",
                    (requirement.predicate_type,),
                    None,
                    failure=Finding(
                        Reason.ATTESTATION_INVALID, f"the predicate could not be checked: {error}"
                    ),
                )
            )
        return tuple(fields)


# --- evidence -----------------------------------------------------------------------------------------


def _artifact_check(candidate: _Artifact, check: _Check, satisfies: tuple[int, ...]) -> ArtifactCheck:
    return ArtifactCheck(
        artifact=candidate.describe(),
        kind=candidate.kind if isinstance(candidate, LegacyLayer) else "bundle",
        manifest=candidate.manifest if isinstance(candidate, LegacyLayer) else candidate.referrer,
        tag=candidate.tag if isinstance(candidate, LegacyLayer) else "",
        verdict=_VERDICTS.get(check.status, "invalid"),
        detail=check.detail,
        signer=check.signer,
        satisfies=satisfies,
        fields=check.fields,
        provenance=check.provenance,
    )


def _signer_evidence(signed: SignedPayload, signer: Signer) -> SignerEvidence:
    identity = signed.identity
    if signed.key is not None or identity is None:
        return SignerEvidence(key=signed.key, logged=signed.integrated_time)
    wanted = set(_EVIDENCE_EXTENSIONS)
    if isinstance(signer, KeylessSigner):
        wanted.update(name for name, _ in signer.extensions)
    return SignerEvidence(
        subjects=identity.sans,
        issuer=identity.issuer,
        extensions=tuple((name, value) for name, value in identity.extensions if name in wanted),
        logged=signed.integrated_time,
    )


def _provenance(statement: Statement, signed: SignedPayload) -> Provenance | None:
    """What SLSA provenance says about the build; None for other predicates, or when it cannot be read."""
    identity = signed.identity
    try:
        return predicates.read_provenance(
            statement,
            cert_extensions=dict(identity.extensions) if identity is not None else None,
            attested=signed.integrated_time,
        )
    except (ValueError, KeyError, TypeError, ArithmeticError, RecursionError):
        _logger.debug("the provenance of %s could not be read", signed.origin, exc_info=True)
        return None


# --- what a verified payload is ---------------------------------------------------------------------


def _as_signature(signed: SignedPayload) -> tuple[bool, str | None, Statement | None]:
    """(is an image signature, the digest it signs if not a statement, the statement if one)."""
    if signed.payload_type == SIMPLE_SIGNING_TYPE:
        return True, simple_signing_digest(signed.payload), None
    if signed.payload_type is None:
        return True, signed.message_digest, None
    statement = signed.statement()
    return statement.predicate_type == COSIGN_SIGN_PREDICATE, None, statement


def _as_attestation(signed: SignedPayload, predicate_type: str) -> tuple[bool, Statement | None]:
    if signed.payload_type != IN_TOTO_PAYLOAD_TYPE:
        return False, None
    statement = signed.statement()
    return statement.predicate_type == predicate_type, statement


def _claims_signature(candidate: _Artifact) -> bool:
    if isinstance(candidate, LegacyLayer):
        return candidate.kind == "sig"
    claimed = candidate.predicate_type or peek_predicate_type(candidate.content)
    # A message-signature bundle, or one whose claim cannot be read, may be a signature.
    return claimed is None or claimed == COSIGN_SIGN_PREDICATE


def _claims_type(candidate: _Artifact, predicate_type: str) -> bool:
    if isinstance(candidate, LegacyLayer):
        if candidate.kind != "att":
            return False
        claimed = candidate.annotation("predicateType") or _peek_envelope(candidate.content)
        return claimed is None or claimed == predicate_type
    claimed = candidate.predicate_type or peek_predicate_type(candidate.content)
    return claimed is None or claimed == predicate_type


def _peek_envelope(content: bytes) -> str | None:
    # Unverified: only used to explain which requirement an unverifiable layer was meant for.
    try:
        envelope = json.loads(content)
        statement = json.loads(base64.b64decode(envelope["payload"], validate=True))
    except (ValueError, KeyError, TypeError, RecursionError):
        return None
    value = statement.get("predicateType") if isinstance(statement, dict) else None
    return value if isinstance(value, str) else None


# --- small utilities ---------------------------------------------------------------------------------------


def _unique(signers: Sequence[Signer]) -> tuple[Signer, ...]:
    seen: list[Signer] = []
    for signer in signers:
        if signer not in seen:
            seen.append(signer)
    return tuple(seen)


def _short(signer: Signer) -> str:
    if isinstance(signer, KeySigner):
        return f"key {signer.name}"
    who = signer.subject if signer.subject is not None else f"~/{signer.subject_regexp}/"
    return f"keyless {who} (root {signer.root})"


def _expected(signer: Signer) -> str:
    """A signer as the policy names it, with the certificate extensions it requires."""
    extensions = signer.extensions if isinstance(signer, KeylessSigner) else ()
    required = f" with {', '.join(f'{name}={value}' for name, value in extensions)}" if extensions else ""
    return signer.describe() + required


def _describe_signers(signers: Sequence[Signer]) -> str:
    return "; ".join(f"#{i + 1} {s.describe()}" for i, s in enumerate(signers))


def _subjects(statement: Statement | None) -> str:
    if statement is None:
        return "another digest"
    digests = [f"sha256:{s.digests['sha256']}" for s in statement.subjects if "sha256" in s.digests]
    return ", ".join(digests[:_MAX_SHOWN]) if digests else "subjects without a sha256 digest"


def _strip(message: str, candidate: _Artifact) -> str:
    prefix = candidate.describe() + ": "
    return message[len(prefix) :] if message.startswith(prefix) else message


def _join(items: Sequence[str]) -> str:
    unique = list(dict.fromkeys(items))
    if not unique:
        return "nothing"
    shown = "; ".join(unique[:_MAX_SHOWN])
    return shown + (f" (and {len(unique) - _MAX_SHOWN} more)" if len(unique) > _MAX_SHOWN else "")


def _matching(edges: dict[int, list[str]]) -> int:
    """Size of a maximum bipartite matching signers -> signing keys (augmenting paths; n is small)."""
    owner: dict[str, int] = {}

    def augment(signer: int, seen: set[str]) -> bool:
        for candidate in edges[signer]:
            if candidate in seen:
                continue
            seen.add(candidate)
            if candidate not in owner or augment(owner[candidate], seen):
                owner[candidate] = signer
                return True
        return False

    return sum(1 for signer in edges if augment(signer, set()))
