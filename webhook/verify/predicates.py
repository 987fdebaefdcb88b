"""Check attestation predicates (SLSA provenance, verification summaries, vulnerability scans) against policy.

Pure functions over an already verified and parsed :class:`~webhook.verify.statements.Statement`: no I/O,
no clock (``now`` is passed in). Each check returns findings, empty when the predicate satisfies the
policy. Codes: ``attestation-invalid`` when the predicate is of the wrong type or lacks a field the
policy needs, ``provenance-mismatch`` when it has the field but the value is not what the policy allows.
Every message names what was expected and what was found.

**SLSA provenance** (``https://slsa.dev/provenance/v1``, ``/v0.2`` and Cloud Build's ``/v0.1``). Where the
builder id, source repository and source ref are read, in order (the first one present wins):

================  =================================================================================
builder id        v1 ``runDetails.builder.id``; v0.x ``builder.id``
repository, ref   v1 ``buildDefinition.externalParameters`` ``workflow`` {repository, ref} (GitHub
                  Actions: slsa-github-generator v1 and GitHub artifact attestations),
                  ``sourceToBuild`` then ``buildConfigSource`` {repository, ref} (Cloud Build
                  google-worker/v1), ``configSource`` {uri} (BuildKit), ``source`` (a URI string,
                  GitLab), then the first ``resolvedDependencies[].uri`` starting ``git+``;
                  v0.2 ``invocation.configSource.uri`` (slsa-github-generator, npm), then the first
                  ``materials[].uri`` starting ``git+``; v0.1 (Cloud Build) the first
                  ``materials[].uri``
ref only          the ``@ref`` (or BuildKit ``#ref``) part of the repository URI; then (v1) a
                  ``git+`` dependency of the same repository; (v0.2) ``invocation.environment``
                  ``GITHUB_REF``/``github_ref``; (v0.1) Cloud Build substitutions ``TAG_NAME`` /
                  ``BRANCH_NAME``; and finally the signing certificate's source-ref extension
================  =================================================================================

Matching (policies/README.md, the attestation checks): ``builderIds`` compare exactly or as globs;
``sourceRepositories`` compare ignoring the scheme, a ``git+`` prefix, user info, a trailing ``/`` or
``.git``, the ``@ref``/``#ref`` part and the case of the host; ``sourceRefs`` are globs over the full
ref. Globs are the policy's anchored globs (:mod:`webhook.policy.match`: ``*`` within one ``/``-separated
segment, ``**`` across segments); a malformed glob matches nothing.

**Verification summaries** (``https://slsa.dev/verification_summary/v1``): ``verifier.id`` must match one
of ``verifierIds`` (exactly or as a glob), ``verificationResult`` must be ``PASSED``, ``minLevel`` such as
``SLSA_BUILD_LEVEL_3`` is met by a ``verifiedLevels`` entry of the same track (``SLSA_BUILD``) with a
number at least as high (a level that is not of the ``<TRACK>_LEVEL_<n>`` form must appear verbatim),
``maxAge`` bounds the age of ``timeVerified``. ``resourceUri`` must name the admitted image unless
``resourceUri`` in the policy gives a glob over it; these forms name an image (registry and path
normalised as image references are, Docker Hub included):

* a reference ``ghcr.io/acme/app``, optionally with ``:tag`` and/or ``@sha256:...``, optionally behind
  ``oci://``, ``docker://``, ``https://`` or ``http://``;
* a package URL ``pkg:docker/acme/app@<tag or digest>?repository_url=ghcr.io`` (registry defaults to
  ``docker.io``) or ``pkg:oci/app@sha256%3A...?repository_url=ghcr.io/acme/app``.

A digest in the resource URI must equal the admitted digest; a tag is ignored (the subject digest, not a
tag, ties the summary to the image).

**Vulnerability scans**: in-toto ``https://in-toto.io/attestation/vulns/v0.1``
(``scanner.result[]``, each with ``severity[]`` of ``{method, score}``, also accepted nested under
``vulnerability``) and cosign's ``https://cosign.sigstore.dev/attestation/vuln/v1`` whose
``scanner.result`` is SARIF (``runs[].results[]``), Trivy JSON (``Results[].Vulnerabilities[].Severity``)
or Grype JSON (``matches[].vulnerability.severity``). ``maxAge`` bounds the age of
``metadata.scanFinishedOn``. Severity of one finding, fail closed:

* a score is a CVSS number (0 NONE, up to 3.9 LOW, 6.9 MEDIUM, 8.9 HIGH, 10 CRITICAL) or a name
  (``none``; ``negligible``/``info``/``minor``/``low``; ``medium``/``moderate``; ``high``/``important``;
  ``critical``, any case); with several scores the highest one that can be read counts;
* SARIF: ``security-severity`` of the result, else of its rule; else the rule's severity tag; else the
  alert ``level`` read pessimistically (``error`` CRITICAL, ``warning`` HIGH, ``note`` MEDIUM, ``none``
  NONE), because a level is an alert level, not a severity; results of kind ``pass`` or
  ``notApplicable`` are not findings; a report without runs, or a run without a ``results`` array
  (the tool did not produce results), cannot be judged and is ``attestation-invalid``;
* **a finding without any score that can be read (``UNKNOWN``, only a bare CVSS vector, no score at
  all) counts as CRITICAL**: a finding nobody rated is not known to be harmless.

The module is over 600 lines because its three checkers share the reading of untrusted predicates
(the helpers at its end) and the one table of fields above; each checker is a section of its own.
"""

from __future__ import annotations

__all__ = [
    "COSIGN_VULN_V1",
    "SEVERITIES",
    "SLSA_PROVENANCE_V01",
    "SLSA_PROVENANCE_V02",
    "SLSA_PROVENANCE_V1",
    "VERIFICATION_SUMMARY_V1",
    "VULNS_V01",
    "check_slsa",
    "check_verification_summary",
    "check_vulnerabilities",
    "compare_slsa",
    "compare_verification_summary",
    "compare_vulnerabilities",
    "failures",
    "normalize_repository",
    "read_provenance",
]

import functools
import logging
import math
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, unquote

from webhook._json import json_kind, mapping
from webhook.errors import InvalidReference
from webhook.facts import FieldCheck, Finding, Provenance
from webhook.formats import SEVERITIES
from webhook.images.reference import ImageRef, repository_name
from webhook.policy.match import GlobError, glob_match
from webhook.policy.model import SlsaCheck, VerificationSummaryCheck, VulnerabilityCheck
from webhook.reasons import Reason
from webhook.text import show_value
from webhook.times import CLOCK_SKEW, parse_rfc3339, require_aware
from webhook.verify.statements import Statement

_logger = logging.getLogger(__name__)

SLSA_PROVENANCE_V1 = "https://slsa.dev/provenance/v1"
SLSA_PROVENANCE_V02 = "https://slsa.dev/provenance/v0.2"
SLSA_PROVENANCE_V01 = "https://slsa.dev/provenance/v0.1"
VERIFICATION_SUMMARY_V1 = "https://slsa.dev/verification_summary/v1"
VULNS_V01 = "https://in-toto.io/attestation/vulns/v0.1"
COSIGN_VULN_V1 = "https://cosign.sigstore.dev/attestation/vuln/v1"

_RANK = {name: rank for rank, name in enumerate(SEVERITIES)}
_SEVERITY_NAMES = {
    "none": "NONE",
    "negligible": "LOW",
    "info": "LOW",
    "informational": "LOW",
    "minor": "LOW",
    "low": "LOW",
    "medium": "MEDIUM",
    "moderate": "MEDIUM",
    "high": "HIGH",
    "important": "HIGH",
    "critical": "CRITICAL",
}
_SARIF_LEVELS = {"error": "CRITICAL", "warning": "HIGH", "note": "MEDIUM", "none": "NONE"}
_SARIF_NOT_FINDINGS = frozenset({"pass", "notApplicable"})

# ASCII digits, and few of them: int() of a 5000-digit level from a predicate would raise ValueError.
_LEVEL = re.compile(r"(?P<track>.+)_LEVEL_(?P<number>[0-9]{1,9})")
# How many offending vulnerabilities a message lists.
_LIST = 5
# How much of a value from a predicate a message quotes, and evidence keeps.
_SHOW = 120
_EVIDENCE = 512
# A value from outside, quoted (escaped, cut short) for a message.
_show = functools.partial(show_value, limit=_SHOW)


# --------------------------------------------------------------------------------------------------
# SLSA provenance

_SLSA_TYPES = (SLSA_PROVENANCE_V1, SLSA_PROVENANCE_V02, SLSA_PROVENANCE_V01)


def check_slsa(
    statement: Statement,
    check: SlsaCheck,
    *,
    cert_source_ref: str | None = None,
    cert_source_repository: str | None = None,
) -> tuple[Finding, ...]:
    """The failures of :func:`compare_slsa`: empty when every requirement holds."""
    return failures(
        compare_slsa(
            statement, check, cert_source_ref=cert_source_ref, cert_source_repository=cert_source_repository
        )
    )


def compare_slsa(
    statement: Statement,
    check: SlsaCheck,
    *,
    cert_source_ref: str | None = None,
    cert_source_repository: str | None = None,
) -> tuple[FieldCheck, ...]:
    """Compare SLSA provenance (v1, v0.2, Cloud Build v0.1) with ``builderIds``, ``sourceRepositories``
    and ``sourceRefs``.

    Args:
        statement: the verified statement; its predicate type must be a SLSA provenance type.
        check: what the policy requires; empty tuples are not compared.
        cert_source_ref: the signing certificate's source-ref extension (1.3.6.1.4.1.57264.1.14), used
            when the provenance names no ref.
        cert_source_repository: the certificate's source-repository-URI extension, used when the
            provenance names no repository.

    Returns:
        One comparison per field the policy constrains (a failing one carries its finding), or the
        predicate type's failure when it is not SLSA provenance.
    """
    kind = statement.predicate_type
    if kind not in _SLSA_TYPES:
        return (
            _wrong_type(
                kind,
                _SLSA_TYPES,
                f"expected SLSA provenance ({SLSA_PROVENANCE_V1}, {SLSA_PROVENANCE_V02} or "
                f"{SLSA_PROVENANCE_V01})",
            ),
        )
    predicate = statement.predicate
    fields: list[FieldCheck] = []

    if check.builder_ids:
        builder_field = _builder_field(kind)
        builder_id = _string_at(predicate, builder_field)
        failure = None
        if builder_id is None:
            failure = Finding(
                Reason.ATTESTATION_INVALID,
                f"provenance has no {builder_field}; expected one of builderIds {_list(check.builder_ids)}",
            )
        elif not any(_glob(allowed, builder_id) for allowed in check.builder_ids):
            failure = Finding(
                Reason.PROVENANCE_MISMATCH,
                f"builder id {_show(builder_id)} (from {builder_field}) is not one of builderIds "
                f"{_list(check.builder_ids)}",
            )
        fields.append(
            FieldCheck(
                "builder id", "builderIds", check.builder_ids, _found(builder_id), builder_field, failure
            )
        )

    source = _slsa_source(kind, predicate)
    if check.source_repositories:
        fields.append(_check_repository(source, check.source_repositories, cert_source_repository))
    if check.source_refs:
        fields.append(_check_ref(source, check.source_refs, cert_source_ref))
    return tuple(fields)


def read_provenance(
    statement: Statement,
    *,
    cert_extensions: Mapping[str, str] | None = None,
    attested: datetime | None = None,
) -> Provenance | None:
    """What SLSA provenance (v1, v0.2, Cloud Build v0.1) says about the build; None for another type.

    The builder id, repository and ref are read as :func:`compare_slsa` reads them (the table in the
    module docstring), the repository normalised (:func:`normalize_repository`). The commit is the
    ``gitCommit`` (or ``sha1``) digest of the source: v1 the ``resolvedDependencies`` entry of the
    source repository (else the first ``git+`` one), then Cloud Build's ``COMMIT_SHA`` system
    substitution; v0.2 ``invocation.configSource.digest``, then the ``materials`` entry of the source
    repository, then ``invocation.environment`` ``GITHUB_SHA``/``github_sha1``; v0.1 ``materials[0]``'s
    digest, then the ``COMMIT_SHA`` substitution. Only a 40 or 64 hex digit value is a commit. The finish
    time is v1 ``runDetails.metadata.finishedOn``, v0.x ``metadata.buildFinishedOn`` (RFC 3339).

    Args:
        statement: the verified statement.
        cert_extensions: the signing certificate's Fulcio extensions by policy-file name: its
            ``sourceRepositoryURI``, ``sourceRepositoryRef`` and ``sourceRepositoryDigest`` stand in
            when the provenance names no repository, ref or commit (the digest only for that repository).
        attested: the attestation's transparency-log time, if known.
    """
    kind = statement.predicate_type
    if kind not in _SLSA_TYPES:
        return None
    predicate = statement.predicate
    extensions = cert_extensions or {}
    source = _slsa_source(kind, predicate)
    repository = source.repository or extensions.get("sourceRepositoryURI") or None
    normalised = normalize_repository(repository) if repository else None
    commit = _commit(kind, predicate, normalised)
    cert_repository = extensions.get("sourceRepositoryURI")
    if commit is None and cert_repository and normalize_repository(cert_repository) == normalised:
        commit = _hex_commit(extensions.get("sourceRepositoryDigest"))
    finished_field = (
        "runDetails.metadata.finishedOn" if kind == SLSA_PROVENANCE_V1 else "metadata.buildFinishedOn"
    )
    return Provenance(
        predicate_type=kind,
        builder_id=_string_at(predicate, _builder_field(kind)),
        repository=normalised,
        ref=source.ref or extensions.get("sourceRepositoryRef") or None,
        commit=commit,
        finished=_utc(_timestamp(_string_at(predicate, finished_field))),
        attested=attested,
    )


def _builder_field(kind: str) -> str:
    return "runDetails.builder.id" if kind == SLSA_PROVENANCE_V1 else "builder.id"


@dataclass(frozen=True, slots=True)
class _Source:
    """Where the provenance says the source came from (values as found, with the field they came from)."""

    repository: str | None = None
    repository_field: str = ""
    ref: str | None = None
    ref_field: str = ""


def _check_repository(source: _Source, allowed: tuple[str, ...], cert_repository: str | None) -> FieldCheck:
    repository, where = source.repository, source.repository_field
    if repository is None and cert_repository:
        repository, where = cert_repository, "the signing certificate's source repository"
    if repository is None:
        return FieldCheck(
            "source repository",
            "sourceRepositories",
            allowed,
            None,
            failure=Finding(
                Reason.ATTESTATION_INVALID,
                f"provenance names no source repository; expected one of sourceRepositories {_list(allowed)}",
            ),
        )
    found = normalize_repository(repository)
    failure = None
    if found not in {normalize_repository(entry) for entry in allowed}:
        failure = Finding(
            Reason.PROVENANCE_MISMATCH,
            f"source repository {_show(found)} (from {where}: {_show(repository)}) is not one of "
            f"sourceRepositories {_list(allowed)}",
        )
    return FieldCheck("source repository", "sourceRepositories", allowed, _found(found), where, failure)


def _check_ref(source: _Source, allowed: tuple[str, ...], cert_ref: str | None) -> FieldCheck:
    ref, where = source.ref, source.ref_field
    if ref is None and cert_ref:
        ref, where = cert_ref, "the signing certificate's source ref"
    if ref is None:
        return FieldCheck(
            "source ref",
            "sourceRefs",
            allowed,
            None,
            failure=Finding(
                Reason.ATTESTATION_INVALID,
                f"provenance names no source ref; expected one of sourceRefs {_list(allowed)}",
            ),
        )
    failure = None
    if not any(_glob(pattern, ref) for pattern in allowed):
        failure = Finding(
            Reason.PROVENANCE_MISMATCH,
            f"source ref {_show(ref)} (from {where}) does not match sourceRefs {_list(allowed)}",
        )
    return FieldCheck("source ref", "sourceRefs", allowed, _found(ref), where, failure)


def _commit(kind: str, predicate: Mapping[str, Any], repository: str | None) -> str | None:
    if kind == SLSA_PROVENANCE_V1:
        definition = mapping(predicate.get("buildDefinition"))
        found = _dependency_commit(definition.get("resolvedDependencies"), repository)
        if found is None:
            internal = mapping(definition.get("internalParameters"))
            found = _hex_commit(mapping(internal.get("systemSubstitutions")).get("COMMIT_SHA"))
        return found
    if kind == SLSA_PROVENANCE_V02:
        invocation = mapping(predicate.get("invocation"))
        config = mapping(invocation.get("configSource"))
        uri = config.get("uri")
        found = None
        if isinstance(uri, str) and (repository is None or normalize_repository(uri) == repository):
            found = _digest_commit(config.get("digest"))
        if found is None:
            found = _dependency_commit(predicate.get("materials"), repository)
        environment = mapping(invocation.get("environment"))
        for name in ("GITHUB_SHA", "github_sha1"):
            if found is None:
                found = _hex_commit(environment.get(name))
        return found
    materials = _list_of(predicate.get("materials"))
    found = _digest_commit(mapping(materials[0]).get("digest")) if materials else None
    if found is None:
        arguments = mapping(mapping(predicate.get("recipe")).get("arguments"))
        found = _hex_commit(mapping(arguments.get("substitutions")).get("COMMIT_SHA"))
    return found


def _dependency_commit(dependencies: object, repository: str | None) -> str | None:
    """The commit of the ``git+`` dependency (or material) of ``repository``, else of the first one."""
    candidates = [
        mapping(item)
        for item in _list_of(dependencies)
        if isinstance(mapping(item).get("uri"), str) and mapping(item)["uri"].startswith("git+")
    ]
    if repository is not None:
        same = [item for item in candidates if normalize_repository(item["uri"]) == repository]
        candidates = same or candidates
    return _digest_commit(candidates[0].get("digest")) if candidates else None


def _digest_commit(digest: object) -> str | None:
    digests = mapping(digest)
    return _hex_commit(digests.get("gitCommit")) or _hex_commit(digests.get("sha1"))


_COMMIT = re.compile(r"[0-9a-f]{40}(?:[0-9a-f]{24})?", re.ASCII)


def _hex_commit(value: object) -> str | None:
    """A git commit id (40 hex digits, or 64 for SHA-256 repositories), lower-cased; else None."""
    if not isinstance(value, str):
        return None
    value = value.lower()
    return value if _COMMIT.fullmatch(value) else None


def _utc(when: datetime | None) -> datetime | None:
    if when is None:
        return None
    try:
        return when.astimezone(UTC)
    except OverflowError:
        return None


def _slsa_source(kind: str, predicate: Mapping[str, Any]) -> _Source:
    if kind == SLSA_PROVENANCE_V1:
        return _source_v1(predicate)
    if kind == SLSA_PROVENANCE_V02:
        return _source_v02(predicate)
    return _source_v01(predicate)


def _source_v1(predicate: Mapping[str, Any]) -> _Source:
    definition = mapping(predicate.get("buildDefinition"))
    external = mapping(definition.get("externalParameters"))
    dependencies = _git_uris(definition.get("resolvedDependencies"), "buildDefinition.resolvedDependencies")
    base = "buildDefinition.externalParameters"
    for key, uri_key in (
        ("workflow", "repository"),
        ("sourceToBuild", "repository"),
        ("buildConfigSource", "repository"),
        ("configSource", "uri"),
    ):
        holder = mapping(external.get(key))
        repository = holder.get(uri_key)
        if isinstance(repository, str) and repository:
            ref = holder.get("ref")
            if isinstance(ref, str) and ref:
                return _Source(repository, f"{base}.{key}.{uri_key}", ref, f"{base}.{key}.ref")
            return _with_ref_from(repository, f"{base}.{key}.{uri_key}", dependencies)
    source = external.get("source")
    if isinstance(source, str) and source:
        return _with_ref_from(source, f"{base}.source", dependencies)
    if dependencies:
        uri, where = dependencies[0]
        return _with_ref_from(uri, where, ())
    return _Source()


def _source_v02(predicate: Mapping[str, Any]) -> _Source:
    invocation = mapping(predicate.get("invocation"))
    environment = mapping(invocation.get("environment"))
    env_ref: tuple[str, str] | None = None
    for name in ("GITHUB_REF", "github_ref"):
        value = environment.get(name)
        if isinstance(value, str) and value:
            env_ref = (value, f"invocation.environment.{name}")
            break
    uri = mapping(invocation.get("configSource")).get("uri")
    if isinstance(uri, str) and uri:
        found = _with_ref_from(uri, "invocation.configSource.uri", ())
    else:
        materials = _git_uris(predicate.get("materials"), "materials")
        if not materials:
            return _Source(ref=env_ref[0], ref_field=env_ref[1]) if env_ref else _Source()
        found = _with_ref_from(materials[0][0], materials[0][1], ())
    if found.ref is None and env_ref is not None:
        return _Source(found.repository, found.repository_field, env_ref[0], env_ref[1])
    return found


def _source_v01(predicate: Mapping[str, Any]) -> _Source:
    # Cloud Build's v0.1 provenance names the repository in materials[0] (no ref) and the ref only in
    # the build's substitutions.
    found = _Source()
    materials = predicate.get("materials")
    if isinstance(materials, list) and materials:
        uri = mapping(materials[0]).get("uri")
        if isinstance(uri, str) and uri:
            found = _with_ref_from(uri, "materials[0].uri", ())
    if found.ref is not None:
        return found
    arguments = mapping(mapping(predicate.get("recipe")).get("arguments"))
    substitutions = mapping(arguments.get("substitutions"))
    where = "recipe.arguments.substitutions"
    for name, prefix in (("TAG_NAME", "refs/tags/"), ("BRANCH_NAME", "refs/heads/")):
        value = substitutions.get(name)
        if isinstance(value, str) and value:
            return _Source(found.repository, found.repository_field, prefix + value, f"{where}.{name}")
    return found


def _with_ref_from(uri: str, where: str, dependencies: Iterable[tuple[str, str]]) -> _Source:
    ref = _uri_ref(uri)
    if ref is not None:
        return _Source(uri, where, ref, where)
    wanted = normalize_repository(uri)
    for dependency, dependency_where in dependencies:
        dependency_ref = _uri_ref(dependency)
        if dependency_ref is not None and normalize_repository(dependency) == wanted:
            return _Source(uri, where, dependency_ref, dependency_where)
    return _Source(uri, where)


def _git_uris(value: object, where: str) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, list):
        return ()
    found = []
    for index, item in enumerate(value):
        uri = mapping(item).get("uri")
        if isinstance(uri, str) and uri.startswith("git+"):
            found.append((uri, f"{where}[{index}].uri"))
    return tuple(found)


def normalize_repository(uri: str) -> str:
    """The comparable form of a source repository: ``host/path``, e.g. ``github.com/acme/app``.

    Drops a ``git+`` prefix, the scheme, user info, the ``@ref`` or ``#ref`` part, a trailing ``/`` and
    ``.git``; lower-cases the host (paths stay case-sensitive).
    """
    text = uri.strip()
    text = text.removeprefix("git+")
    scheme = re.match(r"[A-Za-z][A-Za-z0-9+.-]*://", text)
    if scheme:
        text = text[scheme.end() :]
    text = text.split("#", 1)[0]
    host, slash, path = text.partition("/")
    if "@" in host:
        host = host.rsplit("@", 1)[1]
    path = path.split("@", 1)[0]
    path = path.rstrip("/").removesuffix(".git").rstrip("/")
    return f"{host.lower()}{slash}{path}" if path else host.lower()


def _uri_ref(uri: str) -> str | None:
    """The ``@ref`` (git+ URIs) or ``#ref`` (BuildKit) part of a repository URI, if any."""
    text = uri.removeprefix("git+")
    scheme = re.match(r"[A-Za-z][A-Za-z0-9+.-]*://", text)
    if scheme:
        text = text[scheme.end() :]
    text, _, fragment = text.partition("#")
    _, _, path = text.partition("/")
    if "@" in path:
        ref = path.split("@", 1)[1]
        return ref or None
    return fragment or None


# --------------------------------------------------------------------------------------------------
# Verification summaries


def check_verification_summary(
    statement: Statement,
    check: VerificationSummaryCheck,
    *,
    image_name: str,
    digest: str,
    now: datetime,
) -> tuple[Finding, ...]:
    """The failures of :func:`compare_verification_summary`: empty when every requirement holds."""
    return failures(
        compare_verification_summary(statement, check, image_name=image_name, digest=digest, now=now)
    )


def compare_verification_summary(
    statement: Statement,
    check: VerificationSummaryCheck,
    *,
    image_name: str,
    digest: str,
    now: datetime,
) -> tuple[FieldCheck, ...]:
    """Compare a SLSA verification summary (VSA v1) from an earlier promotion stage with the policy.

    Args:
        statement: the verified statement; its predicate type must be ``VERIFICATION_SUMMARY_V1``.
        check: ``verifierIds``, ``minLevel``, ``maxAge`` and an optional ``resourceUri`` glob.
        image_name: the admitted image (any reference form; its normalised name is compared).
        digest: the admitted ``sha256:<hex>`` digest.
        now: the current time (timezone-aware).

    Returns:
        One comparison per field (verifier, result, level and age when the policy sets them, resource
        URI); a failing one carries its finding.
    """
    require_aware(now)
    if statement.predicate_type != VERIFICATION_SUMMARY_V1:
        return (
            _wrong_type(
                statement.predicate_type, (VERIFICATION_SUMMARY_V1,), f"expected {VERIFICATION_SUMMARY_V1}"
            ),
        )
    predicate = statement.predicate
    fields: list[FieldCheck] = []

    verifier_id = _string_at(predicate, "verifier.id")
    failure = None
    if verifier_id is None:
        failure = Finding(Reason.ATTESTATION_INVALID, "verification summary has no verifier.id")
    elif check.verifier_ids and not any(_glob(allowed, verifier_id) for allowed in check.verifier_ids):
        failure = Finding(
            Reason.PROVENANCE_MISMATCH,
            f"verifier {_show(verifier_id)} is not one of verifierIds {_list(check.verifier_ids)}",
        )
    fields.append(
        FieldCheck("verifier", "verifierIds", check.verifier_ids, _found(verifier_id), "verifier.id", failure)
    )

    result = predicate.get("verificationResult")
    failure = None
    if not isinstance(result, str):
        failure = Finding(
            Reason.ATTESTATION_INVALID, "verification summary has no verificationResult; expected 'PASSED'"
        )
    elif result != "PASSED":
        failure = Finding(
            Reason.PROVENANCE_MISMATCH, f"verificationResult is {_show(result)}, expected 'PASSED'"
        )
    fields.append(
        FieldCheck(
            "verification result",
            "",
            ("PASSED",),
            _found(result if isinstance(result, str) else None),
            "verificationResult",
            failure,
        )
    )

    if check.min_level is not None:
        levels = predicate.get("verifiedLevels")
        shown = (
            ", ".join(levels)
            if isinstance(levels, list) and all(isinstance(x, str) for x in levels)
            else None
        )
        fields.append(
            FieldCheck(
                "verified levels",
                "minLevel",
                (check.min_level,),
                _found(shown),
                "verifiedLevels",
                _check_level(levels, check.min_level),
            )
        )
    if check.max_age is not None:
        fields.append(
            _check_age(
                predicate.get("timeVerified"),
                "timeVerified",
                name="time verified",
                max_age=check.max_age,
                now=now,
            )
        )
    resource = predicate.get("resourceUri")
    fields.append(
        FieldCheck(
            "resource",
            "resourceUri",
            (check.resource_uri,) if check.resource_uri is not None else (repository_name(image_name),),
            _found(resource if isinstance(resource, str) and resource else None),
            "resourceUri",
            _check_resource(resource, check, image_name=image_name, digest=digest),
        )
    )
    return tuple(fields)


def _check_level(levels: object, minimum: str) -> Finding | None:
    if not isinstance(levels, list) or not all(isinstance(level, str) for level in levels):
        return Finding(
            Reason.ATTESTATION_INVALID,
            f"verifiedLevels is not a list of strings; expected a level >= {minimum}",
        )
    wanted = _LEVEL.fullmatch(minimum)
    for level in levels:
        if level == minimum:
            return None
        found = _LEVEL.fullmatch(level)
        if (
            wanted is not None
            and found is not None
            and found["track"] == wanted["track"]
            and int(found["number"]) >= int(wanted["number"])
        ):
            return None
    return Finding(
        Reason.PROVENANCE_MISMATCH, f"verifiedLevels {_list(levels)} do not reach minLevel {minimum}"
    )


def _check_resource(
    resource: object, check: VerificationSummaryCheck, *, image_name: str, digest: str
) -> Finding | None:
    if not isinstance(resource, str) or not resource:
        return Finding(Reason.ATTESTATION_INVALID, "verification summary has no resourceUri")
    if check.resource_uri is not None:
        if _glob(check.resource_uri, resource):
            return None
        return Finding(
            Reason.PROVENANCE_MISMATCH,
            f"resourceUri {_show(resource)} does not match {_show(check.resource_uri)}",
        )
    admitted = ImageRef.parse(image_name)
    try:
        named = _image_from_resource_uri(resource)
    except (InvalidReference, ValueError) as exc:
        return Finding(
            Reason.PROVENANCE_MISMATCH,
            f"resourceUri {_show(resource)} does not name an image ({exc}); expected {admitted.name}",
        )
    if named.name != admitted.name:
        return Finding(
            Reason.PROVENANCE_MISMATCH,
            f"resourceUri {_show(resource)} names {named.name}, expected {admitted.name}",
        )
    if named.digest is not None and named.digest != digest:
        return Finding(
            Reason.PROVENANCE_MISMATCH,
            f"resourceUri {_show(resource)} names digest {named.digest}, expected {digest}",
        )
    return None


def _image_from_resource_uri(uri: str) -> ImageRef:
    if uri.startswith("pkg:"):
        return _image_from_purl(uri)
    text = uri
    for prefix in ("oci://", "docker://", "https://", "http://"):
        if text.startswith(prefix):
            text = text[len(prefix) :]
            break
    return ImageRef.parse(text)


def _image_from_purl(purl: str) -> ImageRef:
    text = purl.removeprefix("pkg:").split("#", 1)[0]
    text, _, query = text.partition("?")
    qualifiers = {key.lower(): values[0] for key, values in parse_qs(query).items() if values}
    kind, _, path = text.partition("/")
    path, _, version = path.partition("@")
    path = unquote(path.strip("/"))
    version = unquote(version)
    repository_url = qualifiers.get("repository_url", "")
    repository_url = re.sub(r"^[A-Za-z][A-Za-z0-9+.-]*://", "", repository_url).rstrip("/")
    kind = kind.lower()
    if kind == "docker":
        base = f"{repository_url or 'docker.io'}/{path}"
    elif kind == "oci":
        if not repository_url:
            raise ValueError("a pkg:oci URL needs a repository_url qualifier")
        if repository_url.rsplit("/", 1)[-1] != path:
            raise ValueError(f"repository_url {repository_url!r} does not end in the package name {path!r}")
        base = repository_url
    else:
        raise ValueError(f"package type {kind!r} is not an image (expected pkg:docker or pkg:oci)")
    if not version:
        return ImageRef.parse(base)
    separator = "@" if ":" in version else ":"
    return ImageRef.parse(f"{base}{separator}{version}")


# --------------------------------------------------------------------------------------------------
# Vulnerability scans


@dataclass(frozen=True, slots=True)
class _Vulnerability:
    id: str
    severity: str


def check_vulnerabilities(
    statement: Statement, check: VulnerabilityCheck, *, now: datetime
) -> tuple[Finding, ...]:
    """The failures of :func:`compare_vulnerabilities`: empty when every requirement holds."""
    return failures(compare_vulnerabilities(statement, check, now=now))


def compare_vulnerabilities(
    statement: Statement, check: VulnerabilityCheck, *, now: datetime
) -> tuple[FieldCheck, ...]:
    """Compare a vulnerability scan with the policy: no finding above ``maxSeverity``, scan finished
    within ``maxAge``.

    Args:
        statement: the verified statement; in-toto vulns v0.1 or cosign vuln v1.
        check: ``max_severity`` (``NONE`` ... ``CRITICAL``) and optional ``max_age``.
        now: the current time (timezone-aware).

    Returns:
        The severity comparison (``found`` says how many findings and the worst severity), and the
        age comparison when ``maxAge`` is set; a failing one carries its finding.

    Raises:
        ValueError: ``check.max_severity`` is not one of :data:`SEVERITIES` (the policy loader refuses it).
    """
    require_aware(now)
    limit = check.max_severity.upper()
    if limit not in _RANK:
        raise ValueError(f"maxSeverity {check.max_severity!r} is not one of {', '.join(SEVERITIES)}")
    kind = statement.predicate_type
    if kind not in (VULNS_V01, COSIGN_VULN_V1):
        return (
            _wrong_type(
                kind,
                (VULNS_V01, COSIGN_VULN_V1),
                f"expected a vulnerability scan ({VULNS_V01} or {COSIGN_VULN_V1})",
            ),
        )
    predicate = statement.predicate
    fields: list[FieldCheck] = []
    scanner = predicate.get("scanner")
    found: str | None = None
    failure = None
    if not isinstance(scanner, dict) or "result" not in scanner:
        failure = Finding(Reason.ATTESTATION_INVALID, "scan has no scanner.result")
    else:
        try:
            vulnerabilities = list(_scan_results(scanner["result"], kind))
        except _Unreadable as exc:
            failure = Finding(Reason.ATTESTATION_INVALID, f"scanner.result cannot be read: {exc}")
        else:
            worst = max((v.severity for v in vulnerabilities), key=_RANK.__getitem__, default=None)
            found = f"{len(vulnerabilities)} findings, worst {worst}" if worst else "no findings"
            above = [v for v in vulnerabilities if _RANK[v.severity] > _RANK[limit]]
            if above:
                above.sort(key=lambda v: (-_RANK[v.severity], v.id))
                shown = ", ".join(f"{v.id} ({v.severity})" for v in above[:_LIST])
                more = f" and {len(above) - _LIST} more" if len(above) > _LIST else ""
                failure = Finding(
                    Reason.PROVENANCE_MISMATCH,
                    f"{len(above)} of {len(vulnerabilities)} vulnerabilities are above maxSeverity "
                    f"{limit}: {shown}{more}",
                )
    fields.append(FieldCheck("vulnerabilities", "maxSeverity", (limit,), found, "scanner.result", failure))
    if check.max_age is not None:
        finished = mapping(predicate.get("metadata")).get("scanFinishedOn")
        fields.append(
            _check_age(
                finished, "metadata.scanFinishedOn", name="scan finished", max_age=check.max_age, now=now
            )
        )
    return tuple(fields)


class _Unreadable(ValueError):
    """A scan result whose shape we do not know: an attestation we cannot judge."""


def _scan_results(result: object, kind: str) -> Iterator[_Vulnerability]:
    if isinstance(result, list):
        yield from _intoto_results(result)
        return
    if kind == COSIGN_VULN_V1 and isinstance(result, dict):
        if isinstance(result.get("runs"), list):
            yield from _sarif_results(result["runs"])
            return
        if isinstance(result.get("Results"), list):
            yield from _trivy_results(result["Results"])
            return
        if "SchemaVersion" in result and "ArtifactName" in result and result.get("Results") is None:
            # Trivy leaves Results out when it found nothing to report.
            return
        if isinstance(result.get("matches"), list):
            yield from _grype_results(result["matches"])
            return
        raise _Unreadable("expected SARIF (runs), Trivy JSON (Results) or Grype JSON (matches)")
    raise _Unreadable(f"expected a list of vulnerabilities, found a JSON {json_kind(result)}")


def _intoto_results(items: list[Any]) -> Iterator[_Vulnerability]:
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise _Unreadable(f"result[{index}] is a JSON {json_kind(item)}, expected an object")
        nested = item.get("vulnerability")
        entry: Mapping[str, Any] = nested if isinstance(nested, dict) else item
        ident = entry.get("id")
        name = ident if isinstance(ident, str) and ident else f"result[{index}]"
        severities = entry.get("severity")
        if isinstance(severities, dict):
            severities = [severities]
        scores = []
        if isinstance(severities, list):
            scores = [mapping(s).get("score") for s in severities]
        yield _Vulnerability(name, _worst(scores))


def _sarif_results(runs: list[Any]) -> Iterator[_Vulnerability]:
    # SARIF: an absent results array means the tool did not produce results (it failed or did not
    # run), unlike an empty one; a report without runs scanned nothing. Neither says "no findings".
    if not runs:
        raise _Unreadable("the SARIF report has no runs")
    for run_index, run in enumerate(runs):
        run = mapping(run)
        tool = mapping(run.get("tool"))
        rules = [mapping(rule) for rule in _list_of(mapping(tool.get("driver")).get("rules"))]
        by_id = {rule.get("id"): rule for rule in rules if isinstance(rule.get("id"), str)}
        results = run.get("results")
        if not isinstance(results, list):
            raise _Unreadable(f"runs[{run_index}].results is not a list (the scan produced no results)")
        for index, result in enumerate(results):
            result = mapping(result)
            if result.get("kind") in _SARIF_NOT_FINDINGS:
                continue
            rule = _sarif_rule(result, rules, by_id)
            ident = result.get("ruleId") or rule.get("id") or f"runs[{run_index}].results[{index}]"
            yield _Vulnerability(str(ident), _sarif_severity(result, rule))


def _sarif_rule(result: Mapping[str, Any], rules: list[Mapping[str, Any]], by_id: Mapping[Any, Any]) -> Any:
    index = result.get("ruleIndex")
    if isinstance(index, int) and not isinstance(index, bool) and 0 <= index < len(rules):
        return rules[index]
    rule_id = result.get("ruleId")
    # Only a string can name a rule (a JSON object or array would not even be hashable).
    return by_id.get(rule_id, {}) if isinstance(rule_id, str) else {}


def _sarif_severity(result: Mapping[str, Any], rule: Mapping[str, Any]) -> str:
    for holder in (result, rule):
        severity = _score_severity(mapping(holder.get("properties")).get("security-severity"))
        if severity is not None:
            return severity
    tags = _list_of(mapping(rule.get("properties")).get("tags"))
    named = [_score_severity(tag) for tag in tags if isinstance(tag, str) and tag.lower() in _SEVERITY_NAMES]
    if named:
        return max((s for s in named if s is not None), key=_RANK.__getitem__)
    level = result.get("level")
    if not isinstance(level, str):
        level = mapping(rule.get("defaultConfiguration")).get("level", "warning")
    return _SARIF_LEVELS.get(str(level), "CRITICAL")


def _trivy_results(results: list[Any]) -> Iterator[_Vulnerability]:
    for target in results:
        for index, item in enumerate(_list_of(mapping(target).get("Vulnerabilities"))):
            item = mapping(item)
            ident = item.get("VulnerabilityID") or f"Vulnerabilities[{index}]"
            yield _Vulnerability(str(ident), _worst([item.get("Severity")]))


def _grype_results(matches: list[Any]) -> Iterator[_Vulnerability]:
    for index, match in enumerate(matches):
        vulnerability = mapping(mapping(match).get("vulnerability"))
        ident = vulnerability.get("id") or f"matches[{index}]"
        yield _Vulnerability(str(ident), _worst([vulnerability.get("severity")]))


def _worst(scores: Iterable[object]) -> str:
    known = [s for s in (_score_severity(score) for score in scores) if s is not None]
    if not known:
        return "CRITICAL"
    return max(known, key=_RANK.__getitem__)


def _score_severity(score: object) -> str | None:
    """A severity name for a score (CVSS number or qualitative name), None when it is not one."""
    if isinstance(score, bool):
        return None
    if isinstance(score, int | float):
        try:
            return _cvss_severity(float(score))
        except OverflowError:  # an integer beyond any float is no CVSS score
            return None
    if not isinstance(score, str):
        return None
    text = score.strip()
    named = _SEVERITY_NAMES.get(text.lower())
    if named is not None:
        return named
    try:
        return _cvss_severity(float(text))
    except ValueError:
        return None


def _cvss_severity(score: float) -> str | None:
    if math.isnan(score) or score < 0 or score > 10:
        return None
    if score == 0:
        return "NONE"
    if score < 4:
        return "LOW"
    if score < 7:
        return "MEDIUM"
    if score < 9:
        return "HIGH"
    return "CRITICAL"


# --------------------------------------------------------------------------------------------------
# Shared helpers


def _glob(pattern: str, text: str) -> bool:
    """Exact comparison, else the policy's anchored glob; a malformed glob matches nothing."""
    if pattern == text:
        return True
    try:
        return glob_match(pattern, text)
    except GlobError:
        return False


def _check_age(value: object, field: str, *, name: str, max_age: timedelta, now: datetime) -> FieldCheck:
    when = _timestamp(value)
    failure = None
    found = _found(value if isinstance(value, str) else None)
    if when is None:
        failure = Finding(
            Reason.ATTESTATION_INVALID,
            f"{field} is {_show(value)}, expected an RFC 3339 timestamp (maxAge is set)",
        )
    else:
        age = now - when
        found = f"{found} ({_duration(age)} old)" if age >= timedelta(0) else f"{found} (in the future)"
        if age > max_age:
            failure = Finding(
                Reason.PROVENANCE_MISMATCH,
                f"{field} {_show(value)} is {_duration(age)} old, more than maxAge {_duration(max_age)}",
            )
        # Clocks disagree a little; further in the future is a claim we cannot check, and is refused.
        elif age < -CLOCK_SKEW:
            failure = Finding(
                Reason.PROVENANCE_MISMATCH, f"{field} {_show(value)} is {_duration(-age)} in the future"
            )
    return FieldCheck(name, "maxAge", (_duration(max_age),), found, field, failure)


def failures(fields: Iterable[FieldCheck]) -> tuple[Finding, ...]:
    """The findings of the comparisons that failed, in order."""
    return tuple(field.failure for field in fields if field.failure is not None)


def _wrong_type(kind: str, expected: tuple[str, ...], what: str) -> FieldCheck:
    return FieldCheck(
        "predicate type",
        "predicateType",
        expected,
        _found(kind),
        "predicateType",
        Finding(Reason.ATTESTATION_INVALID, f"predicate type is {_show(kind)}, {what}"),
    )


def _found(value: str | None) -> str | None:
    """A value from a predicate as evidence: cut short when long (it is escaped when printed)."""
    if value is None or len(value) <= _EVIDENCE:
        return value
    return value[:_EVIDENCE] + f"... ({len(value)} characters)"


def _timestamp(value: object) -> datetime | None:
    try:
        return parse_rfc3339(value)
    except ValueError:
        return None


def _duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    text = f"{hours}h{minutes:02d}m{seconds:02d}s"
    return f"{days}d{text}" if days else text


def _string_at(mapping: Mapping[str, Any], dotted: str) -> str | None:
    value: Any = mapping
    for key in dotted.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value if isinstance(value, str) and value else None


def _list_of(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _list(values: Iterable[object]) -> str:
    return "[" + ", ".join(_show(v) for v in values) + "]"
