"""Reason codes and allowed outcomes: the one enumeration of what a decision about an image can say.

Every failed check carries a :class:`Reason`; an image that passes has an :class:`Allowed` outcome. The
values are stable: they stand in brackets in denial lines and warnings (``[tag-denied] ...``), in the
audit annotations and the audit log, and in the ``outcome`` label of the image-decision metric. The
policy reference (``policies/README.md``, "Reason codes") explains each one to users; a test holds that
table, this enumeration and the table below to each other.

Every producer names its code from here (``Reason.TAG_DENIED``, never a string or a default). Where each
code is decided: the modules that name it (a test keeps this table equal to the code), and how.

======================= ===============================================================================
code                    decided in
======================= ===============================================================================
invalid-reference       webhook.decision (``plan_image``: the reference does not parse)
registry-not-allowed    webhook.decision (``plan_image``: ``registries.allow``); during a lookup,
                        webhook.registry.transport (host, scheme, redirect target) and
                        webhook.registry.auth (token realm); in hermetic policy tests,
                        webhook.declared.registry (as the transport)
tag-denied              webhook.decision (``plan_image``: ``tags.deny``)
unmatched               webhook.decision (``evaluate``: no rule governs the image)
not-pinned              webhook.decision (``plan_image``: a governed tag at ``/validate``)
registry-error          the registry adapters, wherever a lookup fails: webhook.registry.client,
                        webhook.registry.transport, webhook.registry.auth, webhook.registry.listing,
                        webhook.registry.markers, webhook.registry.port, webhook.deadline,
                        webhook.quarantine_facts, webhook.verify.cached; webhook.registry.cached (a
                        cache-only read it cannot answer: never shown, the image is then looked up);
                        webhook.service (no answer within the admission deadline); webhook.decision
                        (a tag left unresolved, or quarantine facts not gathered);
                        webhook.audit.lookups (not looked up within ``imagegate audit --timeout``);
                        in hermetic policy tests, webhook.declared.registry (not declared)
digest-mismatch         webhook.registry.client, webhook.verify.discovery (content that does not hash
                        to the digest it was asked for or claimed)
quarantined             webhook.decision (``quarantine_finding``: lists, markers, listed manifests)
unsigned                webhook.verify.verifier (no signature found); webhook.decision (no digest to
                        verify, or no verification result)
signature-invalid       webhook.verify.verifier (none verifies), with the reasons of
                        webhook.verify.crypto, webhook.verify.bundles, webhook.verify.legacy and
                        webhook.verify.evidence (``signature_invalid``: key-signed bundles, DSSE
                        envelopes, Rekor evidence); in hermetic policy tests, webhook.declared.crypto
identity-mismatch       webhook.verify.verifier (other signers, or fewer than ``minimum``),
                        webhook.verify.bundles (a certificate outside the signer's identity policy)
attestation-missing     webhook.verify.verifier (no attestation of the predicate type found)
attestation-invalid     webhook.verify.verifier, webhook.verify.bundles, webhook.verify.statements,
                        webhook.verify.predicates (malformed, about another digest, a field missing)
provenance-mismatch     webhook.verify.predicates (SLSA, verification summary, vulnerability checks)
too-many-images         webhook.service (more distinct images than ``IMAGEGATE_MAX_IMAGES``)
internal-error          webhook.service (an unexpected error, no policy loaded, the deadline passed),
                        webhook.app (an error outside the service); webhook.audit.judge (an object
                        ``imagegate audit`` saw denied as a whole, when the answer names no code)
======================= ===============================================================================

Which mode owns a failure, and so whether it denies, warns or is only recorded, is decided in one place
too: :mod:`webhook.decision` (its docstring, ``governing_mode`` and ``ImageDecision.status``).
"""

from __future__ import annotations

__all__ = ["ALLOWED_OUTCOMES", "Allowed", "Outcome", "Reason"]

from enum import StrEnum, unique
from typing import TypeAlias


@unique
class Reason(StrEnum):
    """Why an image (or, for the last two, a whole object) was not admitted as it is."""

    INVALID_REFERENCE = "invalid-reference"
    REGISTRY_NOT_ALLOWED = "registry-not-allowed"
    TAG_DENIED = "tag-denied"
    UNMATCHED = "unmatched"
    NOT_PINNED = "not-pinned"
    REGISTRY_ERROR = "registry-error"
    DIGEST_MISMATCH = "digest-mismatch"
    QUARANTINED = "quarantined"
    UNSIGNED = "unsigned"
    SIGNATURE_INVALID = "signature-invalid"
    IDENTITY_MISMATCH = "identity-mismatch"
    ATTESTATION_MISSING = "attestation-missing"
    ATTESTATION_INVALID = "attestation-invalid"
    PROVENANCE_MISMATCH = "provenance-mismatch"
    TOO_MANY_IMAGES = "too-many-images"
    INTERNAL_ERROR = "internal-error"


@unique
class Allowed(StrEnum):
    """The outcome of an image that passed every check that belongs to ``enforce``."""

    VERIFIED = "verified"  # a signature or attestation requirement was checked and held
    ADMITTED = "admitted"  # governed by rules that ask for none
    EXEMPTED = "exempted"  # a live exemption matched (after the registry allowlist)
    UNMATCHED_ALLOWED = "unmatched-allowed"  # no rule governs it and spec.unmatched is allow or warn


#: An image's outcome: the code of the failure that decides it (its first of the strictest mode), or how
#: it passed.
Outcome: TypeAlias = Reason | Allowed

ALLOWED_OUTCOMES: frozenset[Allowed] = frozenset(Allowed)
