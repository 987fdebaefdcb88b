"""Mode overrides for an audit: judge a policy as if some of its modes were changed, without editing it.

"What breaks if this warn rule enforces?" is ``--rule-mode NAME=enforce``; "what breaks if the whole
policy enforces?" is ``--mode enforce``, which sets ``spec.mode`` and the mode of every rule (a rule's
own ``mode`` included); ``--unmatched`` replaces ``spec.unmatched``. Per-rule modes apply after
``--mode``. Modes decide only what a failure comes to (deny, warn, record), never which checks run, so
an overridden policy needs the same lookups as the policy as written.
"""

from __future__ import annotations

__all__ = ["Overrides"]

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from webhook.errors import ConfigError
from webhook.policy.model import Mode, Policy, Unmatched


@dataclass(frozen=True, slots=True)
class Overrides:
    mode: Mode | None = None
    rule_modes: Mapping[str, Mode] = field(default_factory=dict)
    unmatched: Unmatched | None = None

    @property
    def active(self) -> bool:
        return self.mode is not None or bool(self.rule_modes) or self.unmatched is not None

    def describe(self) -> str:
        """``--mode enforce, rule dev-signed: enforce`` (empty when nothing is overridden)."""
        parts = [f"--mode {self.mode}"] if self.mode is not None else []
        parts += [f"rule {name}: {mode}" for name, mode in self.rule_modes.items()]
        if self.unmatched is not None:
            parts.append(f"--unmatched {self.unmatched}")
        return ", ".join(parts)

    def apply(self, policy: Policy) -> Policy:
        """``policy`` with the modes changed.

        Raises:
            ConfigError: a rule named in ``rule_modes`` is not in the policy.
        """
        names = [rule.name for rule in policy.rules]
        unknown = [name for name in self.rule_modes if name not in names]
        if unknown:
            close = difflib.get_close_matches(unknown[0], names, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"its rules: {', '.join(names) or 'none'}"
            raise ConfigError(f"--rule-mode: policy {policy.name} has no rule {unknown[0]!r} ({hint})")
        rules = tuple(
            replace(rule, mode=self.rule_modes.get(rule.name, self.mode or rule.mode))
            for rule in policy.rules
        )
        return replace(
            policy,
            mode=self.mode or policy.mode,
            unmatched=self.unmatched or policy.unmatched,
            rules=rules,
        )
