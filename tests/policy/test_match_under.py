"""Globs of the form ``<literal segments>/**`` match by prefix: exactly what the segment walk matches."""

from __future__ import annotations

import itertools
import random
from dataclasses import replace

import pytest

from webhook.policy import match
from webhook.policy.match import glob_match, image_glob_match

TEXTS = [
    "",
    "/",
    "ghcr.io",
    "ghcr.io/",
    "ghcr.io/acme",
    "ghcr.io/acme/",
    "ghcr.io/acme/app",
    "ghcr.io/acme/app/x",
    "ghcr.io/acme-evil/app",
    "ghcr.io/acmeapp",
    "ghcr.io//acme/app",
    "ghcr.ioX/acme/app",
    "GHCR.io/acme/app",
    "x/ghcr.io/acme/app",
    "a/b",
    "a//b",
    "a/b/",
]
PATTERNS = [
    "ghcr.io/**",
    "ghcr.io/acme/**",
    "ghcr.io/acme/app/**",
    "a/**",
    "/**",
    "**",
    "ghcr.io/*/**",
    "ghcr.io/**/app",
    "ghcr.io/acme/**/**",
    "ghcr.io/ac?e/**",
]


@pytest.mark.parametrize(("pattern", "text"), list(itertools.product(PATTERNS, TEXTS)))
def test_the_prefix_short_cut_agrees_with_the_segment_walk(pattern: str, text: str) -> None:
    for ipv6_host in (False, True):
        compiled = match._compile(pattern, ipv6_host)
        walked = replace(compiled, under=None)
        assert compiled.match(text) == walked.match(text), (pattern, text, ipv6_host)


def test_the_short_cut_is_taken_only_for_literal_segments_then_a_final_double_star() -> None:
    assert match._compile("ghcr.io/acme/**", False).under == "ghcr.io/acme/"
    assert match._compile("/**", False).under == "/"
    for pattern in ("**", "ghcr.io/*/**", "ghcr.io/**/app", "ghcr.io/acme/**/**", "ghcr.io/ac?e/**"):
        assert match._compile(pattern, False).under is None, pattern
    assert match._compile("[::1]:5000/acme/**", True).under is None


def test_random_globs_agree_with_the_segment_walk() -> None:
    rng = random.Random(12)
    pieces = ["a", "b", "ab", "*", "?", "**", ""]
    for _ in range(3000):
        segments = [rng.choice(pieces) for _ in range(rng.randint(1, 4))] + ["**"]
        pattern = "/".join(segments)
        try:
            compiled = match._compile(pattern, False)
        except match.GlobError:
            continue
        text = "/".join(rng.choice(["a", "b", "ab", "ba", ""]) for _ in range(rng.randint(0, 5)))
        assert compiled.match(text) == replace(compiled, under=None).match(text), (pattern, text)


def test_image_globs_still_refuse_what_they_refused() -> None:
    assert image_glob_match("ghcr.io/acme/**", "ghcr.io/acme/app")
    assert image_glob_match("ghcr.io/acme/**", "GHCR.IO/acme/app")  # hosts compare case-insensitively
    assert not image_glob_match("ghcr.io/acme/**", "ghcr.io/acme-evil/app")
    assert not image_glob_match("ghcr.io/acme/**", "ghcr.io/acme")
    assert not image_glob_match("ghcr.io/acme/**", "ghcr.io/acme/../evil/app")
    assert not image_glob_match("ghcr.io/acme/**", "ghcr.io/acme//app")
    assert glob_match("team-a/**", "team-a/x/y") and not glob_match("team-a/**", "team-ab/x")
