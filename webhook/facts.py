"""What the adapters found out about one image: the input of the pure decision core."""

from __future__ import annotations

__all__ = ["Finding", "ImageFacts", "ListedManifest", "RuleVerification"]

from dataclasses import dataclass

from webhook.policy.model import QuarantineEntry
from webhook.reasons import Reason


@dataclass(frozen=True, slots=True)
class Finding:
    """A failed check: its reason code and a message naming what was expected and what was found."""

    code: Reason
    message: str


@dataclass(frozen=True, slots=True)
class RuleVerification:
    """Outcome of the signature and attestation requirements of one rule for one digest.

    ``findings`` is empty when every requirement of the rule passed; ``steps`` explains each check
    (printed by ``imagegate verify``).
    """

    rule: str
    digest: str
    findings: tuple[Finding, ...] = ()
    steps: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        return not self.findings


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
