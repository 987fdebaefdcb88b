"""webhook/policy/schema.py: the schemas' ``pattern`` regexes read as ECMA-262 reads them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from webhook.policy.schema import python_pattern

SCHEMAS = sorted((Path(__file__).parents[2] / "webhook" / "policy" / "schema").glob("*.schema.json"))


def _patterns(node: object) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "pattern" and isinstance(value, str):
                yield value
            else:
                yield from _patterns(value)
    elif isinstance(node, list):
        for item in node:
            yield from _patterns(item)


PATTERNS = sorted({p for schema in SCHEMAS for p in _patterns(json.loads(schema.read_text()))})
ANCHORED = [p for p in PATTERNS if p.endswith("$")]


def test_the_schemas_have_anchored_patterns_to_check() -> None:
    assert len(SCHEMAS) == 3
    assert len(ANCHORED) >= 6


@pytest.mark.parametrize("pattern", ANCHORED)
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_an_anchored_schema_pattern_refuses_what_it_accepts_followed_by_a_newline(
    pattern: str, data: st.DataObject
) -> None:
    value = data.draw(st.from_regex(python_pattern(pattern), fullmatch=True))
    assert python_pattern(pattern).search(value)
    assert not python_pattern(pattern).search(value + "\n")


@pytest.mark.parametrize("pattern", PATTERNS)
def test_every_schema_pattern_reads_as_python(pattern: str) -> None:
    python_pattern(pattern)


def test_a_dollar_sign_only_ends_a_pattern() -> None:
    assert python_pattern(r"^a+$").pattern == r"^a+\Z"
    assert python_pattern(r"^a\$").search("a$")
    assert python_pattern(r"\S").search("x")
    with pytest.raises(ValueError, match="only at its end"):
        python_pattern(r"^(a$|b)")
