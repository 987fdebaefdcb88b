"""SLSA provenance checks: real predicates from GitHub Actions, npm and Cloud Build, plus tables."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from webhook.policy.model import SlsaCheck
from webhook.verify.predicates import (
    SLSA_PROVENANCE_V01,
    SLSA_PROVENANCE_V02,
    SLSA_PROVENANCE_V1,
    check_slsa,
    normalize_repository,
)
from webhook.verify.statements import STATEMENT_V01, STATEMENT_V1, Statement, parse_statement

from ._data import build_statement, data_statement, read_data

GENERATOR = "https://github.com/slsa-framework/slsa-github-generator/.github/workflows/"


def _legacy_container_statement() -> Statement:
    """The statement inside the real legacy cosign .att layer (slsa-github-generator container v2.1.0)."""
    envelope = json.loads(read_data("legacy-att-layer.dsse.json"))
    return parse_statement(envelope["payloadType"], base64.b64decode(envelope["payload"]))


# (statement, builder id, normalised repository, ref) as the real provenance states them.
REAL = [
    (
        "statement-provenance-sigstorejs1.3.0.json",
        "https://github.com/actions/runner",
        "github.com/sigstore/sigstore-js",
        "refs/heads/main",
    ),
    (
        "statement-slsa-v02-generic-generator.json",
        GENERATOR + "generator_generic_slsa3.yml@refs/heads/main",
        "github.com/slsa-framework/example-package",
        "refs/heads/main",
    ),
    (
        "statement-slsa-v1-npm-sigstorejs2.0.0.json",
        "https://github.com/actions/runner/github-hosted",
        "github.com/sigstore/sigstore-js",
        "refs/heads/main",
    ),
    (
        "statement-slsa-v1-github-attestation.json",
        "https://github.com/loosebazooka/aa-test/.github/workflows/provenance.yaml@refs/heads/main",
        "github.com/loosebazooka/aa-test",
        "refs/heads/main",
    ),
    (
        "statement-gcb-v1.json",
        "https://cloudbuild.googleapis.com/GoogleHostedWorker",
        "github.com/khalkie/gcb-prod-prov",
        "refs/heads/main",
    ),
    (
        "statement-gcb-v01.json",
        "https://cloudbuild.googleapis.com/GoogleHostedWorker@v0.3",
        "github.com/slsa-framework/example-package",
        "refs/tags/v33.0.3",
    ),
]


@pytest.mark.parametrize(("file", "builder", "repository", "ref"), REAL)
def test_real_provenance_passes_a_policy_naming_its_builder_source_and_ref(
    file: str, builder: str, repository: str, ref: str
) -> None:
    statement = data_statement(file)
    check = SlsaCheck(builder_ids=(builder,), source_repositories=(repository,), source_refs=(ref,))
    assert check_slsa(statement, check) == ()


@pytest.mark.parametrize(("file", "builder", "repository", "ref"), REAL)
def test_real_provenance_fails_a_policy_for_someone_else(
    file: str, builder: str, repository: str, ref: str
) -> None:
    statement = data_statement(file)
    check = SlsaCheck(
        builder_ids=(builder + "x",),
        source_repositories=("github.com/acme/app",),
        source_refs=("refs/heads/release-*",),
    )
    findings = check_slsa(statement, check)
    assert [f.code for f in findings] == ["provenance-mismatch"] * 3
    assert repr(builder) in findings[0].message
    assert repr(repository) in findings[1].message
    assert repr(ref) in findings[2].message
    assert "'github.com/acme/app'" in findings[1].message
    assert "'refs/heads/release-*'" in findings[2].message


def test_real_legacy_container_provenance_with_globbed_builder() -> None:
    statement = _legacy_container_statement()
    check = SlsaCheck(
        builder_ids=(GENERATOR + "generator_container_slsa3.yml@refs/tags/v*",),
        source_repositories=("https://github.com/slsa-framework/example-package",),
        source_refs=("refs/heads/main",),
    )
    assert check_slsa(statement, check) == ()
    pinned_elsewhere = SlsaCheck(builder_ids=(GENERATOR + "generator_container_slsa3.yml@refs/tags/v1.*",))
    (finding,) = check_slsa(statement, pinned_elsewhere)
    assert finding.code == "provenance-mismatch"
    assert "generator_container_slsa3.yml@refs/tags/v2.1.0" in finding.message


def test_minimal_real_provenance_without_source_falls_back_to_the_certificate() -> None:
    statement = data_statement("statement-slsa-v1-minimal.json")
    check = SlsaCheck(source_repositories=("github.com/acme/app",), source_refs=("refs/heads/main",))
    findings = check_slsa(statement, check)
    assert [f.code for f in findings] == ["attestation-invalid", "attestation-invalid"]
    assert "no source repository" in findings[0].message
    assert "no source ref" in findings[1].message
    assert (
        check_slsa(
            statement,
            check,
            cert_source_repository="https://github.com/acme/app",
            cert_source_ref="refs/heads/main",
        )
        == ()
    )
    (finding,) = check_slsa(
        statement,
        check,
        cert_source_repository="https://github.com/acme/app",
        cert_source_ref="refs/heads/dev",
    )
    assert finding.code == "provenance-mismatch"
    assert "signing certificate" in finding.message


def test_provenance_ref_wins_over_the_certificate_ref() -> None:
    statement = data_statement("statement-slsa-v1-github-attestation.json")
    (finding,) = check_slsa(
        statement, SlsaCheck(source_refs=("refs/heads/release",)), cert_source_ref="refs/heads/release"
    )
    assert finding.code == "provenance-mismatch"
    assert "'refs/heads/main'" in finding.message


def test_other_predicate_types_are_refused() -> None:
    statement = data_statement("statement-cosign-custom-v01.json")
    (finding,) = check_slsa(statement, SlsaCheck(builder_ids=("x",)))
    assert finding.code == "attestation-invalid"
    assert "https://cosign.sigstore.dev/attestation/v1" in finding.message


def test_draft_provenance_type_is_not_taken_for_v1() -> None:
    statement = data_statement("statement-slsa-v1-draft-delegator.json")
    (finding,) = check_slsa(statement, SlsaCheck())
    assert finding.code == "attestation-invalid"


def test_an_empty_check_accepts_any_slsa_provenance() -> None:
    assert check_slsa(build_statement(SLSA_PROVENANCE_V1, {}), SlsaCheck()) == ()


# -- tables over synthetic predicates, for both statement versions -------------------------------

BUILDER = "https://github.com/acme/builder/.github/workflows/build.yml@refs/tags/v1.2.0"


def _v1(external: dict[str, Any], dependencies: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    definition: dict[str, Any] = {"buildType": "https://example.com/build/v1", "externalParameters": external}
    if dependencies is not None:
        definition["resolvedDependencies"] = dependencies
    return {"buildDefinition": definition, "runDetails": {"builder": {"id": BUILDER}}}


def _v02(uri: str | None, materials: list[str] = (), environment: dict[str, str] | None = None) -> dict:  # type: ignore[assignment]
    invocation: dict[str, Any] = {}
    if uri is not None:
        invocation["configSource"] = {"uri": uri, "entryPoint": "build.yml"}
    if environment is not None:
        invocation["environment"] = environment
    return {
        "builder": {"id": BUILDER},
        "invocation": invocation,
        "materials": [{"uri": m} for m in materials],
    }


SOURCES = [
    # GitHub Actions workflow parameters (slsa-github-generator v1 and GitHub artifact attestations)
    (
        SLSA_PROVENANCE_V1,
        _v1(
            {
                "workflow": {
                    "repository": "https://github.com/acme/app",
                    "ref": "refs/tags/v1.0.0",
                    "path": "x",
                }
            }
        ),
        "github.com/acme/app",
        "refs/tags/v1.0.0",
    ),
    # workflow without ref: ref from a git+ dependency of the same repository
    (
        SLSA_PROVENANCE_V1,
        _v1(
            {"workflow": {"repository": "https://github.com/acme/app"}},
            [
                {"uri": "git+https://github.com/other/lib@refs/heads/x"},
                {"uri": "git+https://github.com/acme/app@refs/heads/main"},
            ],
        ),
        "github.com/acme/app",
        "refs/heads/main",
    ),
    # Cloud Build: sourceToBuild (what was built) before buildConfigSource (where the config came from)
    (
        SLSA_PROVENANCE_V1,
        _v1(
            {
                "buildConfigSource": {
                    "repository": "git+https://github.com/acme/config",
                    "ref": "refs/heads/cfg",
                },
                "sourceToBuild": {"repository": "git+https://github.com/acme/app", "ref": "refs/heads/main"},
            }
        ),
        "github.com/acme/app",
        "refs/heads/main",
    ),
    # BuildKit: configSource uri with a #ref
    (
        SLSA_PROVENANCE_V1,
        _v1({"configSource": {"uri": "https://github.com/acme/app.git#refs/tags/v0.11.0"}}),
        "github.com/acme/app",
        "refs/tags/v0.11.0",
    ),
    # GitLab: source is a plain URI
    (
        SLSA_PROVENANCE_V1,
        _v1({"source": "https://gitlab.com/acme/app", "entryPoint": "build"}),
        "gitlab.com/acme/app",
        None,
    ),
    # generic: the first git+ resolved dependency
    (
        SLSA_PROVENANCE_V1,
        _v1(
            {"inputs": {}},
            [
                {"uri": "pkg:docker/golang@1.22", "digest": {"sha256": "a" * 64}},
                {"uri": "git+ssh://git@github.com/acme/app.git@refs/heads/main"},
            ],
        ),
        "github.com/acme/app",
        "refs/heads/main",
    ),
    (SLSA_PROVENANCE_V1, _v1({}), None, None),
    # v0.2: configSource uri, then git+ materials, ref from the environment
    (
        SLSA_PROVENANCE_V02,
        _v02("git+https://github.com/acme/app@refs/heads/main"),
        "github.com/acme/app",
        "refs/heads/main",
    ),
    (
        SLSA_PROVENANCE_V02,
        _v02(
            None,
            ["https://example.com/tarball.tgz", "git+https://github.com/acme/app"],
            {"GITHUB_REF": "refs/tags/v2"},
        ),
        "github.com/acme/app",
        "refs/tags/v2",
    ),
    (
        SLSA_PROVENANCE_V02,
        _v02("git+https://github.com/acme/app", environment={"github_ref": "refs/heads/release/1.x"}),
        "github.com/acme/app",
        "refs/heads/release/1.x",
    ),
    (SLSA_PROVENANCE_V02, _v02(None), None, None),
    # v0.1 (Cloud Build): materials[0] and substitutions
    (
        SLSA_PROVENANCE_V01,
        {
            "builder": {"id": BUILDER},
            "materials": [{"uri": "https://github.com/acme/app"}],
            "recipe": {"arguments": {"substitutions": {"BRANCH_NAME": "main"}}},
        },
        "github.com/acme/app",
        "refs/heads/main",
    ),
]


@pytest.mark.parametrize("statement_type", [STATEMENT_V01, STATEMENT_V1])
@pytest.mark.parametrize(("predicate_type", "predicate", "repository", "ref"), SOURCES)
def test_source_is_read_where_each_builder_puts_it(
    statement_type: str,
    predicate_type: str,
    predicate: dict[str, Any],
    repository: str | None,
    ref: str | None,
) -> None:
    statement = build_statement(predicate_type, predicate, statement_type=statement_type)
    assert check_slsa(statement, SlsaCheck(builder_ids=(BUILDER,))) == ()
    repo_check = SlsaCheck(source_repositories=(repository or "github.com/nobody/none",))
    ref_check = SlsaCheck(source_refs=(ref or "refs/heads/none",))
    if repository is None:
        assert [f.code for f in check_slsa(statement, repo_check)] == ["attestation-invalid"]
    else:
        assert check_slsa(statement, repo_check) == ()
        (mismatch,) = check_slsa(statement, SlsaCheck(source_repositories=(repository + "-evil",)))
        assert mismatch.code == "provenance-mismatch"
    if ref is None:
        assert [f.code for f in check_slsa(statement, ref_check)] == ["attestation-invalid"]
        assert check_slsa(statement, ref_check, cert_source_ref="refs/heads/none") == ()
    else:
        assert check_slsa(statement, ref_check) == ()
        assert check_slsa(statement, ref_check, cert_source_ref="refs/heads/other") == ()


@pytest.mark.parametrize("statement_type", [STATEMENT_V01, STATEMENT_V1])
@pytest.mark.parametrize(
    ("predicate_type", "predicate", "field"),
    [
        (SLSA_PROVENANCE_V1, {"buildDefinition": {}}, "runDetails.builder.id"),
        (SLSA_PROVENANCE_V1, {"runDetails": {"builder": {"id": ""}}}, "runDetails.builder.id"),
        (SLSA_PROVENANCE_V1, {"runDetails": {"builder": "x"}}, "runDetails.builder.id"),
        (SLSA_PROVENANCE_V02, {"builder": {}}, "builder.id"),
        (SLSA_PROVENANCE_V02, {"runDetails": {"builder": {"id": BUILDER}}}, "builder.id"),
        (SLSA_PROVENANCE_V01, {"builder": {"id": 7}}, "builder.id"),
    ],
)
def test_missing_builder_id_is_an_invalid_attestation(
    statement_type: str, predicate_type: str, predicate: dict[str, Any], field: str
) -> None:
    statement = build_statement(predicate_type, predicate, statement_type=statement_type)
    (finding,) = check_slsa(statement, SlsaCheck(builder_ids=(BUILDER,)))
    assert finding.code == "attestation-invalid"
    assert field in finding.message
    assert BUILDER in finding.message


@pytest.mark.parametrize(
    ("allowed", "builder", "ok"),
    [
        (BUILDER, BUILDER, True),
        (BUILDER, BUILDER + "x", False),
        (BUILDER[:-1], BUILDER, False),
        ("https://github.com/acme/builder/.github/workflows/build.yml@refs/tags/v*", BUILDER, True),
        ("https://github.com/acme/builder/.github/workflows/build.yml@refs/tags/v2.*", BUILDER, False),
        ("https://github.com/acme/*/.github/workflows/build.yml@refs/tags/v1.2.0", BUILDER, True),
        ("https://github.com/*/.github/workflows/build.yml@refs/tags/v1.2.0", BUILDER, False),
        ("https://github.com/acme/**", BUILDER, True),
        ("https://github.com/acme/builder/*", BUILDER, False),
        ("https://github.com/acme/builder[", BUILDER, False),
    ],
)
def test_builder_ids_compare_exactly_or_as_anchored_globs(allowed: str, builder: str, ok: bool) -> None:
    statement = build_statement(SLSA_PROVENANCE_V1, {"runDetails": {"builder": {"id": builder}}})
    findings = check_slsa(statement, SlsaCheck(builder_ids=("https://other.example/builder", allowed)))
    assert (findings == ()) is ok


@pytest.mark.parametrize(
    ("pattern", "ref", "ok"),
    [
        ("refs/heads/main", "refs/heads/main", True),
        ("refs/heads/main", "refs/heads/main-evil", False),
        ("refs/heads/main", "refs/heads/mai", False),
        ("refs/tags/v*", "refs/tags/v1.2.3", True),
        ("refs/tags/v*", "refs/tags/v1/evil", False),
        ("refs/tags/v*", "refs/heads/v1", False),
        ("refs/heads/release/**", "refs/heads/release/1.x/hotfix", True),
        ("refs/heads/*", "refs/heads/feature/x", False),
    ],
)
def test_source_refs_are_anchored_globs_over_the_full_ref(pattern: str, ref: str, ok: bool) -> None:
    predicate = _v1({"workflow": {"repository": "https://github.com/acme/app", "ref": ref}})
    statement = build_statement(SLSA_PROVENANCE_V1, predicate)
    assert (check_slsa(statement, SlsaCheck(source_refs=(pattern,))) == ()) is ok


@pytest.mark.parametrize(
    ("uri", "normalised"),
    [
        ("github.com/acme/app", "github.com/acme/app"),
        ("https://github.com/acme/app", "github.com/acme/app"),
        ("git+https://github.com/acme/app", "github.com/acme/app"),
        ("git+https://github.com/acme/app.git", "github.com/acme/app"),
        ("git+https://github.com/acme/app@refs/heads/main", "github.com/acme/app"),
        ("git+https://github.com/acme/app.git@refs/tags/v1.0", "github.com/acme/app"),
        ("https://github.com/acme/app/", "github.com/acme/app"),
        ("https://GitHub.com/acme/app", "github.com/acme/app"),
        ("https://github.com/Acme/App", "github.com/Acme/App"),
        ("git+ssh://git@github.com/acme/app.git", "github.com/acme/app"),
        ("https://token@github.com/acme/app", "github.com/acme/app"),
        ("https://github.com/acme/app.git#refs/tags/v1", "github.com/acme/app"),
        ("https://gitlab.com/group/sub/app", "gitlab.com/group/sub/app"),
    ],
)
def test_repository_normalisation(uri: str, normalised: str) -> None:
    assert normalize_repository(uri) == normalised


@pytest.mark.parametrize(
    ("allowed", "found", "ok"),
    [
        ("github.com/acme/app", "git+https://github.com/acme/app.git@refs/heads/main", True),
        ("https://github.com/acme/app", "git+https://github.com/acme/app@refs/heads/main", True),
        ("git+https://github.com/acme/app.git", "https://github.com/acme/app", True),
        ("github.com/acme/app", "git+https://github.com/acme/app-evil", False),
        ("github.com/acme/app", "git+https://github.com/acme/app/sub", False),
        ("github.com/acme/app", "git+https://github.com.evil.example/acme/app", False),
        ("github.com/acme/app", "git+https://github.com/ACME/app", False),
        ("github.com/acme/app", "git+https://gitlab.com/acme/app", False),
    ],
)
def test_source_repositories_compare_normalised(allowed: str, found: str, ok: bool) -> None:
    statement = build_statement(SLSA_PROVENANCE_V02, _v02(found))
    findings = check_slsa(statement, SlsaCheck(source_repositories=(allowed,)))
    assert (findings == ()) is ok
    if not ok:
        assert findings[0].code == "provenance-mismatch"
        assert "invocation.configSource.uri" in findings[0].message


def test_every_failing_requirement_is_reported() -> None:
    statement = build_statement(SLSA_PROVENANCE_V02, _v02("git+https://github.com/acme/app@refs/heads/dev"))
    check = SlsaCheck(
        builder_ids=("https://trusted.example/builder",),
        source_repositories=("github.com/acme/other",),
        source_refs=("refs/heads/main",),
    )
    findings = check_slsa(statement, check)
    assert [f.code for f in findings] == ["provenance-mismatch"] * 3
    assert "builderIds" in findings[0].message
    assert "sourceRepositories" in findings[1].message
    assert "sourceRefs" in findings[2].message
