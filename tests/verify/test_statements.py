"""in-toto Statement parsing: v0.1 and v1, real payloads, and every structural rejection."""

from __future__ import annotations

import json
from typing import Any

import pytest

from webhook.errors import VerificationFailed
from webhook.verify.statements import (
    IN_TOTO_PAYLOAD_TYPE,
    MAX_STATEMENT_BYTES,
    STATEMENT_V01,
    STATEMENT_V1,
    parse_statement,
)

from ._data import DIGEST, DIGEST_HEX, read_data

GOOD: dict[str, Any] = {
    "_type": STATEMENT_V1,
    "subject": [{"name": "ghcr.io/acme/app", "digest": {"sha256": DIGEST_HEX}}],
    "predicateType": "https://slsa.dev/provenance/v1",
    "predicate": {"buildDefinition": {}},
}


def _parse(document: Any) -> Any:
    return parse_statement(IN_TOTO_PAYLOAD_TYPE, json.dumps(document).encode())


@pytest.mark.parametrize("statement_type", [STATEMENT_V01, STATEMENT_V1])
def test_both_statement_versions_parse(statement_type: str) -> None:
    statement = _parse({**GOOD, "_type": statement_type})
    assert statement.statement_type == statement_type
    assert statement.predicate_type == "https://slsa.dev/provenance/v1"
    assert statement.subjects[0].name == "ghcr.io/acme/app"
    assert statement.subjects[0].digests == {"sha256": DIGEST_HEX}
    assert statement.covers(DIGEST)


@pytest.mark.parametrize(
    ("file", "statement_type", "predicate_type"),
    [
        ("statement-provenance-sigstorejs1.3.0.json", STATEMENT_V01, "https://slsa.dev/provenance/v0.2"),
        ("statement-slsa-v02-generic-generator.json", STATEMENT_V01, "https://slsa.dev/provenance/v0.2"),
        ("statement-slsa-v1-npm-sigstorejs2.0.0.json", STATEMENT_V1, "https://slsa.dev/provenance/v1"),
        ("statement-slsa-v1-github-attestation.json", STATEMENT_V1, "https://slsa.dev/provenance/v1"),
        ("statement-slsa-v1-minimal.json", STATEMENT_V1, "https://slsa.dev/provenance/v1"),
        ("statement-cosign-custom-v01.json", STATEMENT_V01, "https://cosign.sigstore.dev/attestation/v1"),
        ("statement-gcb-v1.json", STATEMENT_V1, "https://slsa.dev/provenance/v1"),
        ("statement-gcb-v01.json", STATEMENT_V01, "https://slsa.dev/provenance/v0.1"),
    ],
)
def test_real_payloads_parse(file: str, statement_type: str, predicate_type: str) -> None:
    statement = parse_statement(IN_TOTO_PAYLOAD_TYPE, read_data(file))
    assert statement.statement_type == statement_type
    assert statement.predicate_type == predicate_type
    assert statement.subjects


def test_real_payload_with_empty_predicate_type_is_refused() -> None:
    # slsa-verifier's gha-bundle/valid.intoto.sigstore carries predicateType "".
    with pytest.raises(VerificationFailed, match="predicateType") as caught:
        parse_statement(IN_TOTO_PAYLOAD_TYPE, read_data("statement-empty-predicate-type.json"))
    assert caught.value.code == "attestation-invalid"


def test_cosign_sign_statement_without_subject_name_parses() -> None:
    statement = _parse({**GOOD, "subject": [{"digest": {"sha256": DIGEST_HEX}}], "predicate": {}})
    assert statement.subjects[0].name == ""
    assert statement.covers(DIGEST)


@pytest.mark.parametrize("predicate", [None, {}])
def test_absent_or_null_predicate_reads_as_empty(predicate: Any) -> None:
    document = {key: value for key, value in GOOD.items() if key != "predicate"}
    if predicate is None:
        document["predicate"] = None
    assert dict(_parse(document).predicate) == {}
    assert dict(_parse({k: v for k, v in GOOD.items() if k != "predicate"}).predicate) == {}


def test_unknown_top_level_fields_are_ignored() -> None:
    # Cloud Build puts slsaProvenance next to predicate in its signed v0.1 payloads.
    statement = _parse({**GOOD, "slsaProvenance": {"builder": {}}})
    assert "slsaProvenance" not in statement.predicate


def test_predicate_is_read_only() -> None:
    statement = _parse(GOOD)
    with pytest.raises(TypeError):
        statement.predicate["buildDefinition"] = {}  # type: ignore[index]


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b"not json", "not JSON"),
        (b"\xff\xfe{}", "not UTF-8"),
        (b"[]", "expected an object"),
        (b'{"_type": NaN}', "NaN"),
        (
            b'{"_type": "https://in-toto.io/Statement/v1", "_type": "https://in-toto.io/Statement/v0.1"}',
            "twice",
        ),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    ],
)
def test_undecodable_payloads_are_refused(payload: bytes, expected: str) -> None:
    with pytest.raises(VerificationFailed, match=expected) as caught:
        parse_statement(IN_TOTO_PAYLOAD_TYPE, payload)
    assert caught.value.code == "attestation-invalid"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"_type": "https://in-toto.io/Statement/v0.2"}, "_type is 'https://in-toto.io/Statement/v0.2'"),
        ({"_type": None}, "_type is missing"),
        ({"subject": []}, "subject is an empty array, expected a non-empty list"),
        ({"subject": None}, "subject is missing"),
        ({"subject": {"name": "x"}}, "subject is a JSON object"),
        ({"subject": ["x"]}, r"subject\[0\] is a JSON string"),
        (
            {"subject": [{"name": 3, "digest": {"sha256": DIGEST_HEX}}]},
            r"subject\[0\]\.name is a JSON number",
        ),
        ({"subject": [{"name": "a"}]}, r"subject\[0\]\.digest is missing"),
        ({"subject": [{"name": "a", "digest": {}}]}, r"subject\[0\]\.digest is an empty object"),
        ({"subject": [{"digest": {"sha256": 5}}]}, r"digest\.sha256 is a JSON number"),
        ({"subject": [{"digest": {"sha256": DIGEST_HEX.upper()}}]}, "64 lower-case hex digits"),
        ({"subject": [{"digest": {"sha256": DIGEST_HEX[:-1]}}]}, "64 lower-case hex digits"),
        ({"predicateType": ""}, "predicateType is '', expected a non-empty string"),
        ({"predicateType": ["x"]}, "predicateType"),
        ({"predicate": []}, "predicate is a JSON array, expected an object"),
        ({"predicate": "x"}, "predicate is a JSON string"),
    ],
)
def test_structural_violations_are_refused(change: dict[str, Any], expected: str) -> None:
    with pytest.raises(VerificationFailed, match=expected) as caught:
        _parse({**GOOD, **change})
    assert caught.value.code == "attestation-invalid"


def test_other_payload_types_are_refused() -> None:
    with pytest.raises(VerificationFailed, match="payload type is 'application/json'") as caught:
        parse_statement("application/json", json.dumps(GOOD).encode())
    assert caught.value.code == "attestation-invalid"


def test_oversized_payload_is_refused_before_parsing() -> None:
    with pytest.raises(VerificationFailed, match="more than"):
        parse_statement(IN_TOTO_PAYLOAD_TYPE, b" " * (MAX_STATEMENT_BYTES + 1))


@pytest.mark.parametrize(
    ("digest", "covered"),
    [
        (DIGEST, True),
        (DIGEST.upper(), False),
        (f"sha256:{DIGEST_HEX.upper()}", False),
        (DIGEST_HEX, False),
        (f"sha512:{DIGEST_HEX}", False),
        (f"sha256:{'0' * 64}", False),
        (DIGEST + "0", False),
        (" " + DIGEST, False),
    ],
)
def test_covers_compares_the_admitted_digest_exactly(digest: str, covered: bool) -> None:
    assert _parse(GOOD).covers(digest) is covered


def test_covers_looks_at_every_subject_and_only_sha256() -> None:
    other = "1" * 64
    statement = _parse(
        {
            **GOOD,
            "subject": [
                {"name": "a", "digest": {"sha512": DIGEST_HEX + DIGEST_HEX}},
                {"name": "b", "digest": {"sha1": DIGEST_HEX[:40], "sha256": other}},
                {"name": "c", "digest": {"sha256": DIGEST_HEX}},
            ],
        }
    )
    assert statement.covers(DIGEST)
    assert statement.covers(f"sha256:{other}")
    assert not statement.covers(f"sha256:{'2' * 64}")


def test_real_slsa_generator_payload_covers_its_artifact() -> None:
    statement = parse_statement(IN_TOTO_PAYLOAD_TYPE, read_data("statement-slsa-v02-generic-generator.json"))
    assert statement.covers(DIGEST)
    assert not statement.covers("sha256:" + "0" * 64)
