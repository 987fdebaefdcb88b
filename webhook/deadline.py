"""Per-admission time budget: every network call takes its timeout from here."""

from __future__ import annotations

__all__ = ["Deadline"]

import time
from dataclasses import dataclass

from webhook.errors import RegistryError
from webhook.reasons import Reason


@dataclass(frozen=True, slots=True)
class Deadline:
    """A point on the monotonic clock by which an admission must be answered."""

    expires_at: float

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        return cls(time.monotonic() + seconds)

    def remaining(self) -> float:
        return max(0.0, self.expires_at - time.monotonic())

    def expired(self) -> bool:
        return self.remaining() <= 0.0

    def timeout(self, cap: float) -> float:
        """The timeout for one network operation: at most ``cap``, never past the deadline.

        Raises:
            RegistryError: the budget is already spent.
        """
        left = self.remaining()
        if left <= 0.05:
            raise RegistryError("deadline exceeded before the registry answered", code=Reason.REGISTRY_ERROR)
        return min(cap, left)
