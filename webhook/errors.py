"""The one error hierarchy of imagegate: every error carries a short user-facing message."""

from __future__ import annotations

__all__ = [
    "BadRequest",
    "ConfigError",
    "ImagegateError",
    "InvalidReference",
    "PolicyProblem",
    "RegistryCode",
    "RegistryError",
    "TrustRefreshFailed",
    "VerificationFailed",
    "causes",
]

from dataclasses import dataclass
from typing import Literal, TypeAlias

from webhook.reasons import Reason

#: The codes a registry failure can carry.
RegistryCode: TypeAlias = Literal[Reason.REGISTRY_ERROR, Reason.DIGEST_MISMATCH, Reason.REGISTRY_NOT_ALLOWED]


class ImagegateError(Exception):
    """Root of all imagegate errors.

    ``user_message`` is what a user sees (kubectl, CLI); ``details`` is extra context for logs and
    must never hold credentials.
    """

    def __init__(self, user_message: str, *, details: str = "") -> None:
        super().__init__(user_message)
        self.user_message = user_message
        self.details = details


class BadRequest(ImagegateError):
    """A malformed AdmissionReview: answered with HTTP 400, never with a decision."""


class InvalidReference(ImagegateError):
    """An image reference that does not follow the distribution/reference grammar."""


@dataclass(frozen=True, slots=True)
class PolicyProblem:
    """One problem found in a policy or quarantine file.

    ``line`` is 1-based (0 when unknown); ``pointer`` is an RFC 6901 JSON pointer.
    """

    file: str
    line: int
    pointer: str
    message: str
    hint: str = ""
    severity: str = "error"  # "error" | "warning"

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        label = "warning: " if self.severity == "warning" else ""
        text = f"{where}: {label}{self.pointer or '/'}: {self.message}"
        if self.hint:
            text += f" (fix: {self.hint})"
        return text


class ConfigError(ImagegateError):
    """Invalid configuration (policy, quarantine list, trust material): fatal at start-up."""

    def __init__(
        self, user_message: str, *, problems: tuple[PolicyProblem, ...] = (), details: str = ""
    ) -> None:
        super().__init__(user_message, details=details)
        self.problems = problems


class RegistryError(ImagegateError):
    """A registry could not answer what we asked; ``code`` says how (:mod:`webhook.reasons`).

    ``registry-error`` (no usable answer), ``digest-mismatch`` (content that does not hash to its digest)
    or ``registry-not-allowed`` (a host or scheme the policy does not allow). Every raiser names it.
    """

    def __init__(self, user_message: str, *, code: RegistryCode, details: str = "") -> None:
        super().__init__(user_message, details=details)
        self.code = code


class VerificationFailed(ImagegateError):
    """A signature or attestation check failed; ``code`` is its reason code (:mod:`webhook.reasons`)."""

    def __init__(self, user_message: str, *, code: Reason, details: str = "") -> None:
        super().__init__(user_message, details=details)
        self.code = code


class TrustRefreshFailed(ImagegateError):
    """A trusted-root refresh could not complete: the repository was unreachable, its metadata or
    target did not verify, or the trusted root it served would not load. Nothing was replaced."""


def causes(error: BaseException, *, limit: int = 32) -> list[BaseException]:
    """``error`` and what it wraps, nearest first: causes, contexts, the ``reason`` urllib3 errors carry
    and exceptions in ``args``; each once, at most ``limit`` (a hostile chain cannot loop or grow).

    Adapters read it to say in a few words why a network call failed (refused, TLS, timed out).
    """
    seen: list[BaseException] = []
    pending = [error]
    while pending and len(seen) < limit:
        current = pending.pop(0)
        if any(current is known for known in seen):
            continue
        seen.append(current)
        linked = [current.__cause__, current.__context__, getattr(current, "reason", None), *current.args]
        pending.extend(item for item in linked if isinstance(item, BaseException))
    return seen
