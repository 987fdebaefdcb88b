"""webhook._json: compact_json writes what json.dumps with compact separators writes; nesting depth."""

from __future__ import annotations

import json
import threading

import pytest

from webhook._json import compact_json, nested_deeper_than

VALUES = [
    None,
    True,
    0,
    -1.5,
    1e300,
    "",
    'quote " backslash \\ slash / tab \t',
    "non-ASCII: é, ☃, \U0001f600, lone surrogate \ud800",
    "\u2028 line separator and \x00 NUL",
    [],
    {},
    {"images": [{"image": "ghcr.io/acme/app@sha256:" + "a" * 64, "rules": ["a", "b"]}], "n": 2},
    [[[{"nested": [1, 2.0, None, False]}]]],
    {"b": 1, "a": 2},  # insertion order kept, never sorted
]


@pytest.mark.parametrize("value", VALUES)
def test_the_text_equals_json_dumps(value: object) -> None:
    assert compact_json(value) == json.dumps(value, separators=(",", ":"))


def test_what_json_dumps_refuses_it_refuses() -> None:
    looped: list[object] = []
    looped.append(looped)
    with pytest.raises(ValueError, match="Circular reference"):
        compact_json(looped)
    with pytest.raises(TypeError):
        compact_json({"set": {1}})


def test_threads_sharing_the_encoder_get_their_own_text() -> None:
    texts: dict[int, set[str]] = {}

    def write(n: int) -> None:
        value = {"n": n, "items": list(range(n, n + 50))}
        texts[n] = {compact_json(value) for _ in range(200)}

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert texts == {
        n: {json.dumps({"n": n, "items": list(range(n, n + 50))}, separators=(",", ":"))} for n in range(8)
    }


@pytest.mark.parametrize(
    ("value", "depth"),
    [
        (1, 0),
        ("[[[", 0),
        ([], 1),
        ({}, 1),
        ({"a": [1, {"b": []}]}, 4),
        ([[], [[[]]], {}], 4),
        ({"a": {"b": {"c": {}}}, "d": []}, 4),
    ],
)
def test_nesting_depth(value: object, depth: int) -> None:
    assert not nested_deeper_than(value, depth)
    assert nested_deeper_than(value, depth - 1) is (depth > 0)


def test_nesting_far_deeper_than_the_recursion_limit_is_measured() -> None:
    value: list[object] = []
    for _ in range(100_000):
        value = [value]
    assert nested_deeper_than(value, 99_999) and not nested_deeper_than(value, 100_001)
