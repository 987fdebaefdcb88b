"""Realistic trusted roots for the refresh tests (real public-good roots and a test Sigstore's), and a
test Sigstore's root with one key's validity window ended."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.support.fake_sigstore import FakeSigstore

CONFORMANCE = Path(__file__).resolve().parents[1] / "verify" / "data" / "conformance"
# Two real public-good trusted roots: cosign's older copy (one Rekor log, no TSA) and the one
# sigstore-python 4.5.1 ships (adds the log2025-1 Rekor log and the timestamp authority).
PUBLIC_GOOD_OLDER = (CONFORMANCE / "cosign" / "trusted_root_pgi.json").read_bytes()
PUBLIC_GOOD_NEWER = (CONFORMANCE / "sigstore-python" / "trusted_root.production.json").read_bytes()
# Log ids (hex) of what the newer one adds.
REKOR_2025_LOG_ID = "cf1199155bddd051268d1f16ac5c0c75c009f6fb5a63f4177f8e18d7051e3fa0"
REKOR_2021_LOG_ID = "c0d23d6ad406973f9559f3ba2d1ca01f84147d8ffc5b8445c224f98b9591801d"


def refused_by_serve(tmp_path: Path) -> bytes:
    """A well-formed trusted root of a test Sigstore that serve refuses: it lists no CT log."""
    document = FakeSigstore.create(tmp_path / "sigstore").trusted_root()
    document["ctlogs"] = []
    return json.dumps(document, indent=2).encode()


#: The parts of a trusted root whose ``validFor`` window :func:`with_window_ended` ends.
KEY_PARTS = ("rekor-key", "fulcio-ca", "ct-log-key")


def with_window_ended(root: dict[str, Any], part: str) -> dict[str, Any]:
    """``root`` with the validity of its Rekor key, Fulcio CA or CT log key (``part``) ended an hour ago."""
    ended = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    # Through JSON, not deepcopy: the parts of a test Sigstore's root share one validFor object, which
    # deepcopy keeps shared (ending one window would end them all).
    changed: dict[str, Any] = json.loads(json.dumps(root))
    if part == "rekor-key":
        changed["tlogs"][0]["publicKey"]["validFor"]["end"] = ended
    elif part == "fulcio-ca":
        changed["certificateAuthorities"][0]["validFor"]["end"] = ended
    elif part == "ct-log-key":
        changed["ctlogs"][0]["publicKey"]["validFor"]["end"] = ended
    else:
        raise ValueError(f"unknown part {part!r}")
    return changed
