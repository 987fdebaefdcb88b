"""Test data of the verification-layer unit tests (see data/SOURCES.md) and statement factories."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from webhook.verify.statements import STATEMENT_V1, Statement, parse_statement

DATA = Path(__file__).parent / "data"
DIGEST_HEX = "2892146b063a94cb4a4318c0e98d38af12dcf2b1e29237486b58463b59607bbd"
DIGEST = f"sha256:{DIGEST_HEX}"


def read_data(name: str) -> bytes:
    return (DATA / name).read_bytes()


def build_statement(
    predicate_type: str,
    predicate: dict[str, Any] | None,
    *,
    statement_type: str = STATEMENT_V1,
    digest_hex: str = DIGEST_HEX,
) -> Statement:
    """A statement as a signer would write it, run through the real parser."""
    document: dict[str, Any] = {
        "_type": statement_type,
        "subject": [{"name": "ghcr.io/acme/app", "digest": {"sha256": digest_hex}}],
        "predicateType": predicate_type,
    }
    if predicate is not None:
        document["predicate"] = predicate
    return parse_statement("application/vnd.in-toto+json", json.dumps(document).encode())


def data_statement(name: str) -> Statement:
    return parse_statement("application/vnd.in-toto+json", read_data(name))
