"""SLSA provenance checks: real predicates from GitHub Actions, npm and Cloud Build, plus tables."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from webhook.facts import Provenance
from webhook.policy.model import SlsaCheck
from webhook.verify.predicates import (
    SLSA_PROVENANCE_V01,
    SLSA_PROVENANCE_V02,
    SLSA_PROVENANCE_V1,
    check_slsa,
    compare_slsa,
    normalize_repository,
    read_provenance,
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


# --- what the provenance says about the build (recorded on admitted objects) -----------------------

# (statement, builder id, repository, ref, commit, finish time) as the real provenance states them.
REAL_BUILDS = [
    (  # npm's GitHub Actions provenance, SLSA v0.2
        "statement-provenance-sigstorejs1.3.0.json",
        "https://github.com/actions/runner",
        "github.com/sigstore/sigstore-js",
        "refs/heads/main",
        "dae8bd8eb433a4147b4655c00fe73e0f22bc0fb1",
        None,
    ),
    (  # slsa-github-generator's generic generator, SLSA v0.2
        "statement-slsa-v02-generic-generator.json",
        GENERATOR + "generator_generic_slsa3.yml@refs/heads/main",
        "github.com/slsa-framework/example-package",
        "refs/heads/main",
        "0bf409adc654198ef6bf3c3823df82963a83068c",
        None,
    ),
    (  # the GitHub Actions workflow build type of SLSA v1 (slsa-github-generator v2, npm)
        "statement-slsa-v1-npm-sigstorejs2.0.0.json",
        "https://github.com/actions/runner/github-hosted",
        "github.com/sigstore/sigstore-js",
        "refs/heads/main",
        "f0b49a04e5a62250e0f60fb128004a73110fe311",
        None,
    ),
    (  # a GitHub artifact attestation (actions/attest-build-provenance), SLSA v1
        "statement-slsa-v1-github-attestation.json",
        "https://github.com/loosebazooka/aa-test/.github/workflows/provenance.yaml@refs/heads/main",
        "github.com/loosebazooka/aa-test",
        "refs/heads/main",
        "ebff8dfbd609b7b22237c7719ce07f2dc7934f5f",
        None,
    ),
    (  # Google Cloud Build, SLSA v1 (google-worker/v1)
        "statement-gcb-v1.json",
        "https://cloudbuild.googleapis.com/GoogleHostedWorker",
        "github.com/khalkie/gcb-prod-prov",
        "refs/heads/main",
        "2ce3f90facdb51aeb950d5bc641e981be61fdf48",
        datetime(2023, 8, 8, 18, 40, 29, 55034, tzinfo=UTC),
    ),
    (  # Google Cloud Build, SLSA v0.1
        "statement-gcb-v01.json",
        "https://cloudbuild.googleapis.com/GoogleHostedWorker@v0.3",
        "github.com/slsa-framework/example-package",
        "refs/tags/v33.0.3",
        "d8e834cecc09efb7099196b005441606298e47b9",
        datetime(2023, 3, 8, 21, 38, 5, 119259, tzinfo=UTC),
    ),
]


@pytest.mark.parametrize(("file", "builder", "repository", "ref", "commit", "finished"), REAL_BUILDS)
def test_real_provenance_says_which_commit_was_built(
    file: str, builder: str, repository: str, ref: str, commit: str, finished: datetime | None
) -> None:
    statement = data_statement(file)
    provenance = read_provenance(statement, attested=datetime(2026, 1, 1, tzinfo=UTC))
    assert provenance == Provenance(
        predicate_type=statement.predicate_type,
        builder_id=builder,
        repository=repository,
        ref=ref,
        commit=commit,
        finished=finished,
        attested=datetime(2026, 1, 1, tzinfo=UTC),
    )


def test_real_legacy_container_provenance_says_which_commit_was_built() -> None:
    provenance = read_provenance(_legacy_container_statement())
    assert provenance is not None
    assert provenance.builder_id == GENERATOR + "generator_container_slsa3.yml@refs/tags/v2.1.0"
    assert (provenance.repository, provenance.ref) == (
        "github.com/slsa-framework/example-package",
        "refs/heads/main",
    )
    assert provenance.commit == "4d329c75e7ec1725f7c9ce917a8799d408d06be3"


def test_a_provenance_without_source_takes_it_from_the_signing_certificate() -> None:
    statement = data_statement("statement-slsa-v1-minimal.json")
    assert read_provenance(statement) == Provenance(
        SLSA_PROVENANCE_V1,
        builder_id="https://github.com/sigstore-conformance/rekor2-dsse-hashedrekord-regen",
    )
    certificate = {
        "sourceRepositoryURI": "https://github.com/acme/app",
        "sourceRepositoryRef": "refs/tags/v1.2.0",
        "sourceRepositoryDigest": "A" * 40,
    }
    provenance = read_provenance(statement, cert_extensions=certificate)
    assert provenance is not None
    assert (provenance.repository, provenance.ref, provenance.commit) == (
        "github.com/acme/app",
        "refs/tags/v1.2.0",
        "a" * 40,
    )


def test_the_certificates_commit_is_used_only_for_its_own_repository() -> None:
    predicate = {
        "buildDefinition": {
            "externalParameters": {"workflow": {"repository": "https://github.com/acme/app"}}
        },
        "runDetails": {"builder": {"id": "b"}},
    }
    statement = build_statement(SLSA_PROVENANCE_V1, predicate)
    other = {"sourceRepositoryURI": "https://github.com/acme/other", "sourceRepositoryDigest": "b" * 40}
    same = {"sourceRepositoryURI": "https://github.com/acme/app.git", "sourceRepositoryDigest": "b" * 40}
    assert read_provenance(statement, cert_extensions=other) == Provenance(
        SLSA_PROVENANCE_V1, builder_id="b", repository="github.com/acme/app"
    )
    provenance = read_provenance(statement, cert_extensions=same)
    assert provenance is not None and provenance.commit == "b" * 40


@pytest.mark.parametrize(
    ("dependencies", "commit"),
    [
        # The source repository's dependency, not the first git dependency.
        (
            [
                {
                    "uri": "git+https://github.com/acme/tools@refs/heads/main",
                    "digest": {"gitCommit": "1" * 40},
                },
                {"uri": "git+https://github.com/acme/app@refs/tags/v1", "digest": {"gitCommit": "2" * 40}},
            ],
            "2" * 40,
        ),
        ([{"uri": "git+https://github.com/acme/app", "digest": {"sha1": "3" * 40}}], "3" * 40),
        ([{"uri": "git+https://github.com/acme/app", "digest": {"gitCommit": "4" * 64}}], "4" * 64),
        # What is not a commit id is not recorded as one.
        ([{"uri": "git+https://github.com/acme/app", "digest": {"gitCommit": "main"}}], None),
        ([{"uri": "git+https://github.com/acme/app", "digest": {"gitCommit": "5" * 39}}], None),
        ([{"uri": "git+https://github.com/acme/app", "digest": {"gitCommit": ["6" * 40]}}], None),
        ([{"uri": "git+https://github.com/acme/app", "digest": "7" * 40}], None),
        ("not a list", None),
    ],
)
def test_the_commit_is_the_source_repositorys(dependencies: object, commit: str | None) -> None:
    predicate = {
        "buildDefinition": {
            "externalParameters": {
                "workflow": {"repository": "https://github.com/acme/app", "ref": "refs/tags/v1"}
            },
            "resolvedDependencies": dependencies,
        },
        "runDetails": {"builder": {"id": "b"}, "metadata": {"finishedOn": "not a time"}},
    }
    provenance = read_provenance(build_statement(SLSA_PROVENANCE_V1, predicate))
    assert provenance is not None
    assert provenance.commit == commit
    assert provenance.finished is None


def test_other_predicates_say_nothing_about_a_build() -> None:
    assert read_provenance(build_statement("https://slsa.dev/verification_summary/v1", {})) is None


def test_every_compared_field_is_evidence_with_where_it_was_read() -> None:
    statement = data_statement("statement-gcb-v1.json")
    check = SlsaCheck(
        builder_ids=("https://cloudbuild.googleapis.com/*",),
        source_repositories=("github.com/khalkie/gcb-prod-prov",),
        source_refs=("refs/tags/*",),
    )
    fields = compare_slsa(statement, check)
    assert [(f.name, f.policy, f.found, f.source, f.passed) for f in fields] == [
        (
            "builder id",
            "builderIds",
            "https://cloudbuild.googleapis.com/GoogleHostedWorker",
            "runDetails.builder.id",
            True,
        ),
        (
            "source repository",
            "sourceRepositories",
            "github.com/khalkie/gcb-prod-prov",
            "buildDefinition.externalParameters.buildConfigSource.repository",
            True,
        ),
        (
            "source ref",
            "sourceRefs",
            "refs/heads/main",
            "buildDefinition.externalParameters.buildConfigSource.ref",
            False,
        ),
    ]
    assert fields[2].expected == ("refs/tags/*",)
    assert fields[2].failure == check_slsa(statement, check)[0]
    wrong = compare_slsa(build_statement("https://example.com/other", {}), check)
    assert [(f.name, f.found, f.expected) for f in wrong] == [
        (
            "predicate type",
            "https://example.com/other",
            (SLSA_PROVENANCE_V1, SLSA_PROVENANCE_V02, SLSA_PROVENANCE_V01),
        )
    ]
