"""Loading policies: shipped files lint clean, defaults, model, fingerprint, warnings, schema files."""

from __future__ import annotations

import json
import os
import re
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import trustme
import yaml
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from webhook.errors import ConfigError
from webhook.policy import schema
from webhook.policy.loader import (
    FULCIO_EXTENSIONS,
    lint_file,
    load_policy,
    load_quarantine,
    parse_duration,
    parse_time,
)
from webhook.policy.model import KeylessSigner, KeySigner

REPO = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).parent / "fixtures"
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
HEAD = "apiVersion: imagegate.dev/v1alpha1\nkind: ImagePolicy\nmetadata: {name: t}\n"


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# -- shipped policies ---------------------------------------------------------------------------------


SHIPPED = [
    REPO / "policies" / "default.yaml",
    REPO / "policies" / "examples" / "air-gapped.yaml",
    REPO / "policies" / "examples" / "key-signing.yaml",
    REPO / "policies" / "examples" / "local-registry.yaml",
    REPO / "policies" / "examples" / "promotion.yaml",
    REPO / "policies" / "examples" / "quarantine.yaml",
]


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_policies_lint_clean(path: Path) -> None:
    assert lint_file(path, now=NOW) == ()


def test_every_shipped_yaml_is_covered() -> None:
    # Policy test suites (*.test.yaml) are run by `imagegate test`, not linted as policies.
    shipped = [p for p in (REPO / "policies").rglob("*.yaml") if not p.name.endswith(".test.yaml")]
    assert sorted(shipped) == sorted(SHIPPED)


def test_default_policy_is_a_safe_baseline() -> None:
    loaded = load_policy(REPO / "policies" / "default.yaml", now=NOW)
    policy = loaded.policy
    assert loaded.warnings == ()
    assert (policy.name, policy.mode, policy.unmatched) == ("default", "enforce", "deny")
    assert policy.tags.resolve is True
    assert policy.tags.deny == ("latest",)
    assert set(policy.registries.allow) == {
        "docker.io",
        "ghcr.io",
        "registry.k8s.io",
        "quay.io",
        "gcr.io",
        "mcr.microsoft.com",
        "public.ecr.aws",
    }
    assert policy.registries.insecure == ()
    assert policy.trust.roots == ()
    assert policy.trust.keys == ()
    assert policy.quarantine.files == ()
    assert dict(policy.quarantined) == {}
    assert [r.name for r in policy.rules] == ["public-registries"]
    assert not policy.rules[0].needs_verification
    assert policy.exemptions == ()


def test_promotion_example_loads_everything() -> None:
    path = REPO / "policies" / "examples" / "promotion.yaml"
    policy = load_policy(path, now=NOW).policy
    assert policy.source == str(path)
    assert policy.trust.roots[0].file == (path.parent / "trust" / "trusted_root.json").absolute()
    assert policy.trust.keys[0].file == (path.parent / "trust" / "staging-gate.pub").absolute()
    assert len(policy.quarantined) == 2
    assert {e.source for e in policy.quarantined.values()} == {str(path.parent / "quarantine.yaml")}
    assert [rule.name for rule in policy.rules] == ["dev", "staging", "production", "cluster-addons"]
    release = policy.rules[2]
    assert release.signatures is not None
    (keyless,) = release.signatures.signers
    assert isinstance(keyless, KeylessSigner)
    assert keyless.subject is None
    assert keyless.subject_regexp
    assert dict(keyless.extensions) == {
        "sourceRepositoryOwnerURI": "https://github.com/acme",
        "runnerEnvironment": "github-hosted",
    }
    # The YAML alias gives staging and production one release identity.
    assert policy.rules[1].signatures is not None and policy.rules[1].signatures.signers == (keyless,)
    provenance, summary, vulns = release.attestations
    (gate,) = summary.signers
    assert isinstance(gate, KeySigner) and gate.name == "staging-gate" and gate.require_tlog is True
    assert provenance.slsa is not None
    assert provenance.slsa.source_refs == ("refs/heads/main", "refs/tags/v*")
    assert summary.verification_summary is not None
    assert summary.verification_summary.min_level == "SLSA_BUILD_LEVEL_3"
    assert summary.verification_summary.max_age == timedelta(days=30)
    assert vulns.vulnerabilities is not None
    assert vulns.vulnerabilities.max_severity == "MEDIUM"
    assert vulns.vulnerabilities.max_age == timedelta(hours=168)
    # The YAML alias reuses the release workflow identity for the scan attestation.
    assert vulns.signers == (keyless,)
    assert policy.rules[0].mode == "warn"
    assert policy.rules[0].namespaces == ("dev-*",)


# -- defaults and model -----------------------------------------------------------------------------


def test_defaults_of_a_minimal_policy(tmp_path: Path) -> None:
    path = _write(tmp_path / "p.yaml", HEAD + "spec:\n  rules: [{name: r, images: [nginx]}]\n")
    loaded = load_policy(path, now=NOW)
    policy = loaded.policy
    assert (policy.mode, policy.unmatched) == ("enforce", "deny")
    assert (policy.tags.resolve, policy.tags.deny) == (True, ("latest",))
    assert policy.quarantine.registry_markers is False
    assert policy.rules[0].namespaces == ("*",)
    assert policy.rules[0].images == ("docker.io/library/nginx",)
    # Nothing is allowed: that is legal but worth a warning.
    assert [(w.severity, w.pointer) for w in loaded.warnings] == [("warning", "/spec")]
    assert "no registry is allowed" in loaded.warnings[0].message


def test_signature_minimum_defaults_to_one_and_inline_pem_keys_load(tmp_path: Path) -> None:
    pem = (FIXTURES / "trust" / "release.pub").read_text()
    indented = "".join(f"          {line}\n" for line in pem.splitlines())
    path = _write(
        tmp_path / "p.yaml",
        HEAD
        + "spec:\n  registries: {allow: [ghcr.io]}\n  trust:\n    keys:\n      - name: k\n        pem: |\n"
        + indented
        + "  rules:\n    - {name: r, images: ['ghcr.io/**'], signatures: {signers: [{key: {name: k}}]}}\n",
    )
    policy = load_policy(path, now=NOW).policy
    assert policy.trust.keys[0].pem == pem
    assert policy.trust.keys[0].file is None
    assert policy.rules[0].signatures is not None
    assert policy.rules[0].signatures.minimum == 1
    assert policy.key("k") is policy.trust.keys[0]


def test_registry_ca_and_credentials_files_load(tmp_path: Path) -> None:
    trustme.CA().cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    _write(tmp_path / "auth.json", json.dumps({"auths": {"ghcr.io": {"auth": "dXNlcjpwYXNz"}}}))
    path = _write(
        tmp_path / "p.yaml",
        HEAD
        + "spec:\n  registries:\n    allow: [GHCR.io, index.docker.io, 'localhost:5000']\n"
        + "    insecure: ['localhost:5000']\n    caFile: ca.pem\n    credentialsFile: auth.json\n",
    )
    policy = load_policy(path, now=NOW).policy
    assert policy.registries.allow == ("ghcr.io", "docker.io", "localhost:5000")
    assert policy.registries.insecure == ("localhost:5000",)
    assert policy.registries.ca_file == (tmp_path / "ca.pem").absolute()
    assert policy.registries.credentials_file == (tmp_path / "auth.json").absolute()


def test_a_credentials_problem_never_quotes_the_secret(tmp_path: Path) -> None:
    _write(tmp_path / "auth.json", '{"auths": "hunter2-secret"')
    path = _write(
        tmp_path / "p.yaml", HEAD + "spec:\n  registries: {allow: [ghcr.io], credentialsFile: auth.json}\n"
    )
    problems = lint_file(path, now=NOW)
    assert [p.pointer for p in problems if p.severity == "error"] == ["/spec/registries/credentialsFile"]
    assert all("hunter2" not in str(p) for p in problems)


def test_unquoted_yaml_timestamps_are_accepted(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "p.yaml",
        HEAD
        + "spec:\n  registries: {allow: [ghcr.io]}\n  exemptions:\n"
        + "    - {images: [ghcr.io/a/b], expires: 2027-01-01T00:00:00Z, reason: x}\n",
    )
    assert load_policy(path, now=NOW).policy.exemptions[0].expires == datetime(2027, 1, 1, tzinfo=UTC)


def test_an_expired_exemption_is_a_warning_and_is_dropped(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "p.yaml",
        HEAD
        + "spec:\n  registries: {allow: [ghcr.io]}\n  exemptions:\n"
        + "    - {images: [ghcr.io/a/b], expires: '2026-11-26T11:59:59Z', reason: INC-1}\n"
        + "    - {images: [ghcr.io/a/c], expires: '2026-11-26T12:00:01+00:00', reason: INC-2}\n",
    )
    loaded = load_policy(path, now=NOW)
    assert [e.reason for e in loaded.policy.exemptions] == ["INC-2"]
    (warning,) = loaded.warnings
    assert (warning.severity, warning.line, warning.pointer) == ("warning", 7, "/spec/exemptions/0/expires")
    assert "expired" in warning.message
    assert warning.hint
    assert lint_file(path, now=NOW) == (warning,)


def test_now_must_be_timezone_aware(tmp_path: Path) -> None:
    path = _write(tmp_path / "p.yaml", HEAD + "spec: {}\n")
    with pytest.raises(ValueError, match="timezone-aware"):
        load_policy(path, now=datetime(2026, 1, 1))


def test_an_unreadable_policy_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_policy(tmp_path / "missing.yaml", now=NOW)
    assert "cannot read" in caught.value.user_message
    (problem,) = caught.value.problems
    assert problem.file == str(tmp_path / "missing.yaml")
    (linted,) = lint_file(tmp_path / "missing.yaml", now=NOW)
    assert linted.line == 0
    assert "cannot read" in linted.message


def test_a_billion_laughs_document_is_refused(tmp_path: Path) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    path = _write(tmp_path / "p.yaml", "\n".join(lines) + "\n")
    (problem,) = lint_file(path, now=NOW)
    assert "aliases" in problem.message


def test_a_document_with_too_many_written_values_is_refused_before_it_is_built(tmp_path: Path) -> None:
    # No aliases: 1.1 million values actually written out. Composing them first would cost about
    # 400 MB (a 32 MiB file: several GB), so the count is checked while only reading parser events.
    # The syntax error placed after the values proves it: building the document first would have
    # reached it and reported it; counting stops before it.
    path = _write(tmp_path / "q.yaml", "entries: [" + "0," * 1_100_000 + "0]\n  broken: [\n")
    (problem,) = lint_file(path, now=NOW)
    assert "more than 1000000 values" in problem.message


def test_quarantine_files_merge_and_keep_their_source(tmp_path: Path) -> None:
    digest = "sha256:" + "1" * 64
    for name, reason in (("a.yaml", "first"), ("b.yaml", "second")):
        _write(
            tmp_path / name,
            "apiVersion: imagegate.dev/v1alpha1\nkind: Quarantine\nentries:\n"
            f"  - {{digest: '{digest}', reason: {reason}}}\n"
            f"  - {{digest: 'sha256:{name[0] * 64}', reason: {reason}}}\n",
        )
    path = _write(
        tmp_path / "p.yaml",
        HEAD + "spec:\n  registries: {allow: [ghcr.io]}\n  quarantine: {files: [a.yaml, b.yaml]}\n",
    )
    policy = load_policy(path, now=NOW).policy
    assert policy.quarantined[digest].reason == "first"
    assert policy.quarantined[digest].source == str(tmp_path / "a.yaml")
    assert policy.quarantined["sha256:" + "b" * 64].source == str(tmp_path / "b.yaml")
    assert len(policy.quarantined) == 3


def test_load_quarantine() -> None:
    entries = load_quarantine(FIXTURES / "quarantine" / "valid.yaml")
    assert [e.digest[-4:] for e in entries] == ["1111", "2222"]
    assert entries[0].since == datetime(2026, 11, 1, tzinfo=UTC)
    assert (entries[0].by, entries[1].by, entries[1].since) == ("sec", "", None)
    assert entries[0].source == str(FIXTURES / "quarantine" / "valid.yaml")


# -- fingerprint ------------------------------------------------------------------------------------


@pytest.fixture
def trusted_policy(tmp_path: Path) -> Path:
    shutil.copytree(FIXTURES / "trust", tmp_path / "trust")
    shutil.copy(FIXTURES / "quarantine" / "valid.yaml", tmp_path / "q.yaml")
    _write(tmp_path / "unrelated.txt", "x")
    return _write(
        tmp_path / "p.yaml",
        HEAD
        + "spec:\n  registries: {allow: [ghcr.io]}\n"
        + "  trust:\n    roots: [{name: pg, file: trust/trusted_root.json}]\n"
        + "    keys: [{name: k, file: trust/release.pub}]\n"
        + "  quarantine: {files: [q.yaml]}\n"
        + "  rules:\n    - name: r\n      images: ['ghcr.io/**']\n      signatures:\n        signers:\n"
        + "          - key: {name: k}\n"
        + "          - keyless: {root: pg, issuer: 'https://accounts.google.com', subject: a@example.com}\n",
    )


def _fingerprint(path: Path) -> str:
    fingerprint = load_policy(path, now=NOW).policy.fingerprint
    assert len(fingerprint) == 64
    assert int(fingerprint, 16) >= 0
    return fingerprint


def test_fingerprint_is_stable(trusted_policy: Path) -> None:
    assert _fingerprint(trusted_policy) == _fingerprint(trusted_policy)
    (trusted_policy.parent / "unrelated.txt").write_text("changed")
    os.utime(trusted_policy)
    assert _fingerprint(trusted_policy) == _fingerprint(trusted_policy)


@pytest.mark.parametrize("changed", ["p.yaml", "q.yaml", "trust/trusted_root.json", "trust/release.pub"])
def test_fingerprint_changes_when_a_referenced_file_changes(trusted_policy: Path, changed: str) -> None:
    before = _fingerprint(trusted_policy)
    target = trusted_policy.parent / changed
    text = target.read_text()
    if changed.endswith(".json"):
        doc = json.loads(text)
        doc["tlogs"] = doc["tlogs"][:1]
        target.write_text(json.dumps(doc))
    elif changed.endswith(".pub"):
        key = ec.generate_private_key(ec.SECP256R1()).public_key()
        target.write_bytes(key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo))
    else:
        target.write_text(text + "# a comment changes the bytes\n")
    assert _fingerprint(trusted_policy) != before


# -- lint dispatch and machinery ------------------------------------------------------------------


def test_lint_dispatches_on_kind() -> None:
    assert lint_file(FIXTURES / "quarantine" / "valid.yaml", now=NOW) == ()
    problems = lint_file(FIXTURES / "quarantine" / "invalid.yaml", now=NOW)
    assert [(p.line, p.pointer) for p in problems] == [(5, "/entries/1/digest")]


def test_the_schema_validator_is_built_once(tmp_path: Path) -> None:
    path = _write(tmp_path / "p.yaml", HEAD + "spec: {registries: {allow: [ghcr.io]}}\n")
    lint_file(path, now=NOW)
    built = schema.validator.cache_info().misses
    for _ in range(3):
        lint_file(path, now=NOW)
        load_policy(path, now=NOW)
    assert schema.validator.cache_info().misses == built


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("30m", timedelta(minutes=30)),
        ("168h", timedelta(days=7)),
        ("7d", timedelta(days=7)),
        ("1d12h", timedelta(hours=36)),
        ("1h30m15s", timedelta(seconds=5415)),
    ],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "7", "h", "1w", "30m1h", "1.5h", " 7d", "-1h"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_parse_time() -> None:
    assert parse_time("2026-12-31T00:00:00Z") == datetime(2026, 12, 31, tzinfo=UTC)
    assert parse_time("2026-12-31t01:00:00.5+01:00") == datetime(2026, 12, 31, 0, 0, 0, 500000, tzinfo=UTC)
    for bad in ("2026-12-31", "2026-12-31T00:00:00", "2026-02-30T00:00:00Z", "yesterday"):
        with pytest.raises(ValueError, match=r"RFC 3339|valid date"):
            parse_time(bad)


# -- schema files -------------------------------------------------------------------------------------


SCHEMAS = ["imagepolicy.schema.json", "quarantine.schema.json"]


@pytest.mark.parametrize("name", SCHEMAS)
def test_schemas_are_valid_2020_12_and_linked_from_policies(name: str) -> None:
    shipped = REPO / "webhook" / "policy" / "schema" / name
    schema = json.loads(shipped.read_text())
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    link = REPO / "policies" / name
    assert link.is_symlink()
    assert link.resolve() == shipped.resolve()


def _objects(node: object, path: str = "#"):  # type: ignore[no-untyped-def]
    if isinstance(node, dict):
        if node.get("type") == "object":
            yield path, node
        for key, value in node.items():
            yield from _objects(value, f"{path}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _objects(value, f"{path}/{index}")


@pytest.mark.parametrize("name", SCHEMAS)
def test_schemas_are_strict_and_describe_every_field(name: str) -> None:
    schema = json.loads((REPO / "webhook" / "policy" / "schema" / name).read_text())
    defs = schema.get("$defs", {})
    for path, obj in _objects(schema):
        assert obj.get("additionalProperties") is False, path
        for field, sub in obj.get("properties", {}).items():
            target = defs.get(sub.get("$ref", "").rsplit("/", 1)[-1], {}) if "$ref" in sub else {}
            assert sub.get("description") or target.get("description"), f"{path}/properties/{field}"


def test_fulcio_extension_names_match_the_schema_and_sigstore() -> None:
    from sigstore.verify import policy as sigstore_policy

    schema = json.loads((REPO / "webhook" / "policy" / "schema" / "imagepolicy.schema.json").read_text())
    extensions = schema["$defs"]["keylessSigner"]["properties"]["extensions"]["properties"]
    assert set(extensions) == set(FULCIO_EXTENSIONS)
    sigstore_oids = {
        cls.oid.dotted_string
        for cls in vars(sigstore_policy).values()
        if isinstance(cls, type) and getattr(cls, "oid", None) is not None
    }
    assert set(FULCIO_EXTENSIONS.values()) <= sigstore_oids
    for name, oid in FULCIO_EXTENSIONS.items():
        assert oid in extensions[name]["description"], name


# -- robustness ---------------------------------------------------------------------------------------

_FIELDS = sorted(
    {
        key
        for name in SCHEMAS
        for key in re.findall(
            r'"([A-Za-z]+)": \{', (REPO / "webhook" / "policy" / "schema" / name).read_text()
        )
    }
)
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.sampled_from(
        ["", "x", "ghcr.io/acme/**", "**", "[a]", "2020-01-01T00:00:00Z", "1h", "sha256:" + "a" * 64]
    ),
)
_documents = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(_FIELDS), inner, max_size=4)
    ),
    max_leaves=25,
)


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(spec=_documents, kind=st.sampled_from(["ImagePolicy", "Quarantine"]))
def test_lint_never_raises_on_arbitrary_documents(tmp_path: Path, spec: object, kind: str) -> None:
    document = {"apiVersion": "imagegate.dev/v1alpha1", "kind": kind, "metadata": {"name": "f"}}
    document["spec" if kind == "ImagePolicy" else "entries"] = spec
    path = tmp_path / "fuzz.yaml"
    path.write_text(yaml.safe_dump(document))
    problems = lint_file(path, now=NOW)
    assert all(p.severity in ("error", "warning") for p in problems)
    if not any(p.severity == "error" for p in problems) and kind == "ImagePolicy":
        assert load_policy(path, now=NOW).policy.name == "f"
