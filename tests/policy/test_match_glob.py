"""Glob language: tables of matches, misses and malformed patterns; property tests against a spec model."""

from __future__ import annotations

import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from webhook.images.reference import ImageRef
from webhook.policy.match import (
    GlobError,
    check_glob,
    glob_match,
    image_glob_match,
    normalise_image_glob,
)

# -- tables -------------------------------------------------------------------------------------------

IMAGE_MATCHES = [
    ("ghcr.io/acme/**", "ghcr.io/acme/app"),
    ("ghcr.io/acme/**", "ghcr.io/acme/team/app"),
    ("ghcr.io/acme/*", "ghcr.io/acme/app"),
    ("ghcr.io/*/app", "ghcr.io/acme/app"),
    ("ghcr.io/acme/ap?", "ghcr.io/acme/app"),
    ("ghcr.io/acme/app-*", "ghcr.io/acme/app-"),
    ("ghcr.io/acme/*-api", "ghcr.io/acme/billing-api"),
    ("ghcr.io/**/app", "ghcr.io/acme/team/app"),
    ("**/nginx", "docker.io/library/nginx"),
    ("**", "ghcr.io/acme/app"),
    ("*/acme/app", "ghcr.io/acme/app"),
    ("nginx", "docker.io/library/nginx"),
    ("library/nginx", "docker.io/library/nginx"),
    ("acme/app", "docker.io/acme/app"),
    ("acme/*", "docker.io/acme/app"),
    ("index.docker.io/acme/app", "docker.io/acme/app"),
    ("registry-1.docker.io/library/nginx", "docker.io/library/nginx"),
    ("docker.io/nginx", "docker.io/library/nginx"),
    ("docker.io/**", "docker.io/library/nginx"),
    ("GHCR.IO/acme/app", "ghcr.io/acme/app"),
    ("registry.example.com:5000/app", "registry.example.com:5000/app"),
    ("registry.example.com:*/app", "registry.example.com:5000/app"),
    ("localhost/app", "localhost/app"),
    ("[::1]:5000/**", "[::1]:5000/team/app"),
    ("*.example.com/app", "eu.example.com/app"),
    ("ghcr.io/acme/a*b*c*d", "ghcr.io/acme/axbxcxd"),
]

IMAGE_MISSES = [
    # Anchoring: the Portieris v0.14.2 class of bypass.
    ("ghcr.io/acme/**", "ghcr.io/acme-evil/x"),
    ("ghcr.io/acme/**", "evil.io/ghcr.io/acme/x"),
    ("ghcr.io/acme/**", "ghcr.io/acme/x/../y"),
    ("ghcr.io/acme/**", "ghcr.io/acme/../evil/x"),
    ("ghcr.io/acme/**", "ghcr.io/acme//x"),
    ("ghcr.io/acme/**", "ghcr.io/acme/./x"),
    ("ghcr.io/acme/**", "ghcr.io/acme"),
    ("ghcr.io/acme/app", "ghcr.io/acme/app2"),
    ("ghcr.io/acme/app", "ghcr.io/acme/app/x"),
    ("ghcr.io/acme/app", "xghcr.io/acme/app"),
    ("ghcr.io/acme/app", "ghcr.io/acme/ap"),
    ("ghcr.io/acme/*", "ghcr.io/acme/team/app"),
    ("ghcr.io/*/app", "ghcr.io/a/b/app"),
    ("ghcr.io/acme/ap?", "ghcr.io/acme/ap"),
    ("ghcr.io/acme/ap?", "ghcr.io/acme/appp"),
    ("ghcr.io/**/app", "ghcr.io/app"),
    ("*/acme/app", "a/b/acme/app"),
    ("ghcr.io/acme.app", "ghcr.io/acmexapp"),  # '.' is literal, not "any character"
    ("nginx", "docker.io/nginx"),
    ("nginx", "ghcr.io/library/nginx"),
    ("docker.io/library/*", "ghcr.io/library/nginx"),
    ("registry.example.com/app", "registry.example.com:5000/app"),
    ("registry.example.com:5000/app", "registry.example.com:5001/app"),
    ("*.example.com/app", "example.com/app"),
    ("*.example.com/app", "a/b.example.com/app"),
]


@pytest.mark.parametrize(("pattern", "name"), IMAGE_MATCHES)
def test_image_glob_matches(pattern: str, name: str) -> None:
    assert image_glob_match(pattern, name)


@pytest.mark.parametrize(("pattern", "name"), IMAGE_MISSES)
def test_image_glob_does_not_match(pattern: str, name: str) -> None:
    assert not image_glob_match(pattern, name)


def test_dotdot_names_cannot_even_be_referenced() -> None:
    # Belt and braces: the reference grammar rejects the traversal before any glob sees it.
    from webhook.errors import InvalidReference

    with pytest.raises(InvalidReference):
        ImageRef.parse("ghcr.io/acme/x/../y")


NORMALISED = [
    ("nginx", "docker.io/library/nginx"),
    ("ngin*", "docker.io/library/ngin*"),
    ("acme/app", "docker.io/acme/app"),
    ("acme/**", "docker.io/acme/**"),
    ("index.docker.io/acme/app", "docker.io/acme/app"),
    ("registry-1.docker.io/nginx", "docker.io/library/nginx"),
    ("docker.io/*", "docker.io/library/*"),
    ("docker.io/**", "docker.io/**"),
    ("GHCR.io/acme/**", "ghcr.io/acme/**"),
    ("ghcr.io/acme/**", "ghcr.io/acme/**"),
    ("*/acme/app", "*/acme/app"),
    ("**/nginx", "**/nginx"),
    ("?cr.io/x", "?cr.io/x"),
    ("localhost:5000/app", "localhost:5000/app"),
    ("[::1]:5000/app", "[::1]:5000/app"),
]


@pytest.mark.parametrize(("pattern", "normalised"), NORMALISED)
def test_image_globs_are_normalised_like_image_names(pattern: str, normalised: str) -> None:
    assert normalise_image_glob(pattern) == normalised


MALFORMED_IMAGE = [
    ("", "empty"),
    ("ghcr.io/acme**", "'**' must be a whole"),
    ("ghcr.io/**acme", "'**' must be a whole"),
    ("ghcr.io/acme/***", "'***' is not a wildcard"),
    ("ghcr.io/acme/[ab]pp", "character classes"),
    ("ghcr.io/acme/{a,b}", "brace alternatives"),
    ("ghcr.io/acme/a\\*", "backslash"),
    ("ghcr.io/acme/a b", "whitespace"),
    ("ghcr.io/acme/app:v1", "without a tag"),
    ("ghcr.io/acme/app@sha256:" + "a" * 64, "not digests"),
    ("ghcr.io/Acme/app", "lower-case"),
    ("acme*/app", "ambiguous"),
    ("ghcr.io", "looks like a registry host"),
    ("localhost:5000", "looks like a registry host"),
    ("ghcr.io/acme/a+b", "cannot have"),
    ("gh_cr.io/acme/app", "registry host cannot have"),
    ("[::zz]:5000/app", "not an IPv6 address"),
    ("x" * 1025, "longer than"),
]


@pytest.mark.parametrize(("pattern", "reason"), MALFORMED_IMAGE)
def test_malformed_image_globs_are_rejected_with_a_reason(pattern: str, reason: str) -> None:
    with pytest.raises(GlobError) as caught:
        normalise_image_glob(pattern)
    assert reason in caught.value.reason
    assert caught.value.hint or reason == "empty"


def test_malformed_glob_raises_at_match_time_too() -> None:
    # A hand-built policy with a bad glob must not silently match nothing.
    with pytest.raises(GlobError):
        image_glob_match("ghcr.io/acme**", "ghcr.io/acme/x")
    with pytest.raises(GlobError):
        glob_match("[a]", "a")


GENERIC = [
    ("*", "default", True),
    ("*", "", True),
    ("dev-*", "dev-team", True),
    ("dev-*", "prod", False),
    ("dev-*", "xdev-team", False),
    ("refs/tags/v*", "refs/tags/v1.2.3", True),
    ("refs/tags/v*", "refs/tags/v1/evil", False),
    ("refs/tags/v*", "refs/heads/v1", False),
    ("refs/heads/**", "refs/heads/feature/x", True),
    ("refs/heads/main", "refs/heads/main2", False),
    (
        "https://github.com/acme/*/.github/workflows/*.yml@refs/tags/*",
        "https://github.com/acme/app/.github/workflows/r.yml@refs/tags/v1",
        True,
    ),
    (
        "https://github.com/acme/*/.github/workflows/*.yml@refs/tags/*",
        "https://github.com/acme/app/.github/workflows/r.yml@refs/tags/v1/x",
        False,
    ),
    ("https://github.com/**", "https://github.com/a/b", True),
    ("https://github.com/**", "https://github.com.evil.io/a", False),
]


@pytest.mark.parametrize(("pattern", "text", "expected"), GENERIC)
def test_generic_globs(pattern: str, text: str, expected: bool) -> None:
    assert glob_match(pattern, text) is expected


def test_no_catastrophic_backtracking_on_many_stars() -> None:
    # Would take astronomically long with a naive backtracking regex; here it must answer at all.
    pattern = "*a" * 20 + "*b"
    assert not glob_match(pattern, "a" * 5000)
    assert glob_match(pattern, "a" * 5000 + "b")


# -- properties ---------------------------------------------------------------------------------------


def _segment_model(pattern: str, text: str) -> bool:
    """Spec model of one segment: '*' any run, '?' one character, everything else literal."""
    if not pattern:
        return not text
    head = pattern[0]
    if head == "*":
        return any(_segment_model(pattern[1:], text[k:]) for k in range(len(text) + 1))
    if not text:
        return False
    return (head == "?" or head == text[0]) and _segment_model(pattern[1:], text[1:])


def _model(pattern: list[str], text: list[str]) -> bool:
    """Spec model over '/'-separated segments: '**' is one or more whole segments."""
    if not pattern:
        return not text
    head = pattern[0]
    if head == "**":
        return any(_model(pattern[1:], text[k:]) for k in range(1, len(text) + 1))
    return bool(text) and _segment_model(head, text[0]) and _model(pattern[1:], text[1:])


_segment = st.text(alphabet="ab*?", min_size=0, max_size=5).filter(lambda s: "**" not in s)
_patterns = st.lists(st.one_of(_segment, st.just("**")), min_size=1, max_size=5).map("/".join)
_texts = st.lists(st.text(alphabet="ab", max_size=5), min_size=1, max_size=6).map("/".join)


@given(_patterns, _texts)
@example("a/**", "a/b/a")
@example("**/b", "a/b")
@example("a*/b", "ab/b")
@example("*a*a*b", "aaab")
def test_glob_match_agrees_with_the_spec_model(pattern: str, text: str) -> None:
    assume(pattern)
    assert glob_match(pattern, text) is _model(pattern.split("/"), text.split("/"))


@given(st.text(alphabet="ab./-:", min_size=1, max_size=20), st.text(alphabet="ab./-:", max_size=20))
def test_a_pattern_without_wildcards_matches_only_itself(pattern: str, text: str) -> None:
    assert glob_match(pattern, text) is (pattern == text)


@given(st.text(alphabet="ab/", max_size=12))
def test_star_never_crosses_a_slash(tail: str) -> None:
    assert glob_match("x/*", f"x/{tail}") is ("/" not in tail)
    assert glob_match("x/?", f"x/{tail}") is (len(tail) == 1 and tail != "/")


@given(st.text(alphabet="ab", min_size=1, max_size=4), _patterns, _texts)
def test_matching_is_anchored(first: str, rest: str, text: str) -> None:
    # A pattern whose first segment is literal never matches a text that starts elsewhere, and
    # a literal tail never matches a text that goes on after it.
    assert not glob_match(f"{first}/{rest}", f"zz/{text}")
    assert not glob_match(f"{rest}/{first}", f"{text}/{first}z")


_component = st.builds(
    lambda head, separator, tail: head + (separator + tail if separator else ""),
    st.text(alphabet="abz09", min_size=1, max_size=4),
    st.sampled_from(["", ".", "_", "__", "-", "--"]),
    st.text(alphabet="abz09", min_size=1, max_size=3),
)
_registry = st.sampled_from(
    [
        "",
        "docker.io/",
        "index.docker.io/",
        "registry-1.docker.io/",
        "ghcr.io/",
        "localhost:5000/",
        "[::1]:5000/",
        "REG.example.com/",
    ]
)
_names = st.builds(
    lambda reg, parts: reg + "/".join(parts), _registry, st.lists(_component, min_size=1, max_size=3)
)


@given(_names)
def test_an_image_name_used_as_a_glob_matches_that_image(text: str) -> None:
    assume("/" in text or "." not in text)  # a lone 'a.b' is refused as ambiguous (see MALFORMED_IMAGE)
    ref = ImageRef.parse(text)
    assert image_glob_match(text, ref.name)
    assert normalise_image_glob(text) == ref.name


@given(_names)
def test_normalisation_is_idempotent(text: str) -> None:
    assume("/" in text or "." not in text)
    once = normalise_image_glob(text)
    assert normalise_image_glob(once) == once


@given(_names, st.sampled_from(["evil.io/", "ghcr.io.evil.io/", "x/"]))
def test_a_prefixed_name_never_matches_a_host_anchored_glob(text: str, prefix: str) -> None:
    name = ImageRef.parse(text).name
    pattern = "/".join(name.split("/")[:-1]) + "/**"
    assert image_glob_match(pattern, name)
    assert not image_glob_match(pattern, prefix + name)


@given(_patterns)
def test_check_glob_accepts_what_glob_match_compiles(pattern: str) -> None:
    assume(pattern)
    check_glob(pattern)
