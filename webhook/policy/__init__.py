"""The policy: typed model, loading and validation of policy files, and matching (pure core)."""

from __future__ import annotations

from webhook.policy.loader import (
    FULCIO_EXTENSIONS,
    SEVERITIES,
    LoadedPolicy,
    lint_file,
    load_policy,
    load_quarantine,
    parse_duration,
    parse_time,
)
from webhook.policy.match import (
    GlobError,
    denied_tag,
    find_exemption,
    glob_match,
    host_allowed,
    image_glob_match,
    matching_rules,
    registry_allowed,
)
from webhook.policy.model import Policy, QuarantineEntry, Rule

__all__ = [
    "FULCIO_EXTENSIONS",
    "SEVERITIES",
    "GlobError",
    "LoadedPolicy",
    "Policy",
    "QuarantineEntry",
    "Rule",
    "denied_tag",
    "find_exemption",
    "glob_match",
    "host_allowed",
    "image_glob_match",
    "lint_file",
    "load_policy",
    "load_quarantine",
    "matching_rules",
    "parse_duration",
    "parse_time",
    "registry_allowed",
]
