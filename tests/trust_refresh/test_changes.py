"""What changed between trusted roots: real public-good roots and a key rotation of a test Sigstore."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.support.fake_sigstore import FakeSigstore
from tests.support.trust_roots import PUBLIC_GOOD_NEWER, PUBLIC_GOOD_OLDER, REKOR_2025_LOG_ID
from webhook.trust_refresh.changes import compare, describe, entries

NOW = datetime(2026, 12, 5, tzinfo=UTC)


def _lines(old: bytes | None, new: bytes) -> list[str]:
    return [describe(change, now=NOW) for change in compare(old, new, now=NOW)]


def _dump(document: dict[str, Any]) -> bytes:
    return json.dumps(document, indent=2).encode()


def test_public_good_gains_a_rekor_log_and_a_timestamp_authority() -> None:
    assert _lines(PUBLIC_GOOD_OLDER, PUBLIC_GOOD_NEWER) == [
        f"added    tlog  {REKOR_2025_LOG_ID} https://log2025-1.rekor.sigstore.dev  "
        "valid from 2025-09-23T00:00:00Z",
        "added    TSA   https://timestamp.sigstore.dev/api/v1/timestamp "
        "(sigstore.dev/sigstore-tsa-selfsigned) sha256:85f927bc07ab62ca  valid from 2025-07-04T00:00:00Z",
    ]


def test_going_back_reports_removals() -> None:
    assert [line.split()[:2] for line in _lines(PUBLIC_GOOD_NEWER, PUBLIC_GOOD_OLDER)] == [
        ["removed", "tlog"],
        ["removed", "TSA"],
    ]


def test_identical_roots_have_no_changes() -> None:
    assert compare(PUBLIC_GOOD_NEWER, PUBLIC_GOOD_NEWER, now=NOW) == ()
    # The same instants written differently (".000Z") are no change either.
    reformatted = _dump(json.loads(PUBLIC_GOOD_NEWER))
    assert reformatted != PUBLIC_GOOD_NEWER
    assert compare(PUBLIC_GOOD_NEWER, reformatted, now=NOW) == ()


def test_no_previous_file_lists_everything_as_added_with_expired_marks() -> None:
    lines = _lines(None, PUBLIC_GOOD_NEWER)

    assert len(lines) == len(entries(PUBLIC_GOOD_NEWER)) == 7
    assert all(line.startswith("added ") for line in lines)
    # The 2021 Fulcio CA and the "test" CT log ended in 2022.
    expired = [line for line in lines if line.endswith("(expired)")]
    assert [line.split()[1] for line in expired] == ["CA", "ctlog"]
    assert (
        "https://ctfe.sigstore.dev/test  valid from 2021-03-14T00:00:00Z until 2022-10-31T23:59:59Z"
        in expired[1]
    )


def test_an_unreadable_previous_file_counts_as_none() -> None:
    assert _lines(b"not json {", PUBLIC_GOOD_OLDER) == _lines(None, PUBLIC_GOOD_OLDER)
    assert _lines(b'{"tlogs": "nope", "ctlogs": [1, {"logId": {}}]}', PUBLIC_GOOD_OLDER) == _lines(
        None, PUBLIC_GOOD_OLDER
    )


def _copy(document: dict[str, Any]) -> dict[str, Any]:
    # A JSON round trip, not deepcopy: the test Sigstore shares one validFor object between entries.
    return json.loads(json.dumps(document))  # type: ignore[no-any-return]


def _start(document: dict[str, Any], section: str) -> str:
    return str(document[section][0]["publicKey"]["validFor"]["start"])


def _log_id(document: dict[str, Any], section: str) -> str:
    return base64.b64decode(document[section][0]["logId"]["keyId"]).hex()


@pytest.mark.sigstore
def test_a_log_key_rotation_reads_as_expired_plus_added(tmp_path: Path) -> None:
    before = FakeSigstore.create(tmp_path / "a", name="acme").trusted_root()
    successor = FakeSigstore.create(tmp_path / "b", name="acme-next").trusted_root()
    after = _copy(before)
    after["tlogs"][0]["publicKey"]["validFor"]["end"] = "2026-12-01T00:00:00Z"
    after["tlogs"].append(successor["tlogs"][0])
    # A CT log whose retirement is announced for later: its window changed, it has not expired.
    after["ctlogs"][0]["publicKey"]["validFor"]["end"] = "2027-01-04T00:00:00.000Z"

    lines = _lines(_dump(before), _dump(after))

    tlog_start, ctlog_start = _start(before, "tlogs"), _start(before, "ctlogs")
    assert lines == [
        f"expired  tlog  {_log_id(before, 'tlogs')} https://rekor.acme.invalid  valid from {tlog_start} "
        f"until 2026-12-01T00:00:00Z (was: valid from {tlog_start})",
        f"added    tlog  {_log_id(successor, 'tlogs')} https://rekor.acme-next.invalid  "
        f"valid from {_start(successor, 'tlogs')}",
        f"changed  ctlog {_log_id(before, 'ctlogs')} https://ctfe.acme.invalid/test  "
        f"valid from {ctlog_start} until 2027-01-04T00:00:00Z (was: valid from {ctlog_start})",
    ]


@pytest.mark.sigstore
def test_new_key_material_or_address_under_the_same_identity_is_a_change(tmp_path: Path) -> None:
    document = FakeSigstore.create(tmp_path, name="acme").trusted_root()
    moved = _copy(document)
    moved["tlogs"][0]["baseUrl"] = "https://rekor.elsewhere.invalid"
    rekeyed = _copy(document)
    rekeyed["ctlogs"][0]["publicKey"]["keyDetails"] = "PKIX_ECDSA_P384_SHA_384"

    assert _lines(_dump(document), _dump(moved)) == [
        f"changed  tlog  {_log_id(document, 'tlogs')} https://rekor.elsewhere.invalid  "
        f"valid from {_start(document, 'tlogs')} (was at https://rekor.acme.invalid)"
    ]
    assert _lines(_dump(document), _dump(rekeyed)) == [
        f"changed  ctlog {_log_id(document, 'ctlogs')} https://ctfe.acme.invalid/test  "
        f"valid from {_start(document, 'ctlogs')} (new key material)"
    ]
