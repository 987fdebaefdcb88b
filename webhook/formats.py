"""Names fixed by imagegate's file formats and by the Sigstore formats it reads: one owner each.

The policy loader, the policy-test runner, the quarantine-list editor, the verifiers and the
vulnerability checks all use these; none spells them again.
"""

from __future__ import annotations

__all__ = ["API_VERSION", "DNS_LABEL", "DNS_SUBDOMAIN", "FULCIO_EXTENSIONS", "SEVERITIES"]

import re
from collections.abc import Mapping
from types import MappingProxyType

#: The ``apiVersion`` of every imagegate document (ImagePolicy, Quarantine, PolicyTest).
API_VERSION = "imagegate.dev/v1alpha1"

#: Kubernetes names, for ``fullmatch`` only: a DNS-1123 label (namespaces, Services) and a DNS-1123
#: subdomain of at most 253 characters (most object names). Unanchored, because ``$`` also matches before
#: a final newline.
DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
DNS_SUBDOMAIN = re.compile(r"(?=.{1,253}\Z)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")

#: Fulcio certificate extensions a keyless signer may constrain: policy-file name -> OID. The names are
#: Fulcio's documented ones; 1.2-1.6 (GitHub-specific) hold raw bytes, 1.9 and later DER UTF8Strings.
FULCIO_EXTENSIONS: Mapping[str, str] = MappingProxyType(
    {
        "githubWorkflowTrigger": "1.3.6.1.4.1.57264.1.2",
        "githubWorkflowSHA": "1.3.6.1.4.1.57264.1.3",
        "githubWorkflowName": "1.3.6.1.4.1.57264.1.4",
        "githubWorkflowRepository": "1.3.6.1.4.1.57264.1.5",
        "githubWorkflowRef": "1.3.6.1.4.1.57264.1.6",
        "buildSignerURI": "1.3.6.1.4.1.57264.1.9",
        "buildSignerDigest": "1.3.6.1.4.1.57264.1.10",
        "runnerEnvironment": "1.3.6.1.4.1.57264.1.11",
        "sourceRepositoryURI": "1.3.6.1.4.1.57264.1.12",
        "sourceRepositoryDigest": "1.3.6.1.4.1.57264.1.13",
        "sourceRepositoryRef": "1.3.6.1.4.1.57264.1.14",
        "sourceRepositoryIdentifier": "1.3.6.1.4.1.57264.1.15",
        "sourceRepositoryOwnerURI": "1.3.6.1.4.1.57264.1.16",
        "sourceRepositoryOwnerIdentifier": "1.3.6.1.4.1.57264.1.17",
        "buildConfigURI": "1.3.6.1.4.1.57264.1.18",
        "buildConfigDigest": "1.3.6.1.4.1.57264.1.19",
        "buildTrigger": "1.3.6.1.4.1.57264.1.20",
        "runInvocationURI": "1.3.6.1.4.1.57264.1.21",
        "sourceRepositoryVisibilityAtSigning": "1.3.6.1.4.1.57264.1.22",
    }
)

#: Vulnerability severities, lowest first (``maxSeverity``, and what scan results are read as).
SEVERITIES: tuple[str, ...] = ("NONE", "LOW", "MEDIUM", "HIGH", "CRITICAL")
