"""Matching images and namespaces against a policy: anchored globs, exemptions, registries, tags (pure).

Glob language (the same for image names, namespaces, refs, builder ids and resource URIs):

* a glob always matches the WHOLE text (anchored at both ends); there is no substring matching;
* ``*`` matches any run of characters (possibly empty) within one ``/``-separated segment and
  ``?`` matches exactly one character other than ``/``: neither ever crosses ``/``;
* ``**`` matches one or more whole segments, ``/`` included. It must stand alone between slashes
  (``ghcr.io/acme/**``, ``**/nginx``, ``a/**/b``): ``ghcr.io/acme**`` is rejected because it would
  also match ``ghcr.io/acme-evil/x`` (the same class of bypass as Portieris' unanchored wildcard,
  fixed in v0.14.2);
* there are no character classes, brace alternatives or escapes: ``[``, ``]``, ``{``, ``}`` and
  ``\\`` are rejected with a reason, so a pattern never means something other than it appears to.
  The one exception is the bracketed IPv6 literal that starts an image glob (``[::1]:5000/app``),
  which is matched literally;
* matching is case-sensitive; image names are lower-case after normalisation.

Image globs match the normalised name (``docker.io/library/nginx``, no tag, no digest) and are
normalised the way image names are where that is unambiguous: ``nginx`` -> ``docker.io/library/nginx``,
``acme/app`` -> ``docker.io/acme/app``, ``index.docker.io/x/y`` -> ``docker.io/x/y``. A glob that starts
with a wildcard is kept as written. Ambiguous globs are rejected: a first segment with a wildcard that
does not look like a host (``acme*/app``), and a lone segment that looks like a host (``ghcr.io``).

Matching is linear in practice: ``*`` compiles to atomic regex groups (no catastrophic backtracking) and
``**`` is matched segment by segment. Compiled globs are cached per process.
"""

from __future__ import annotations

__all__ = [
    "GlobError",
    "canonical_registry",
    "check_glob",
    "denied_tag",
    "find_exemption",
    "glob_match",
    "host_allowed",
    "host_wildcard_match",
    "image_glob_match",
    "is_expired",
    "matching_rules",
    "normalise_image_glob",
    "registry_allowed",
    "split_digest_entry",
]

import functools
import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from webhook.errors import InvalidReference
from webhook.images.reference import DOCKER_HUB, DOCKER_HUB_ALIASES, ImageRef
from webhook.policy.model import Exemption, Policy, Rule

_MAX_GLOB = 1024
_WILDCARDS = frozenset("*?")
_HOST_SEGMENT_RE = re.compile(r"[a-zA-Z0-9.:*?-]+")
_PATH_SEGMENT_RE = re.compile(r"[a-z0-9._*?-]+")
# A leading bracketed text with a ':' is an IPv6 host literal (validated later), never a class.
_IPV6_PREFIX_RE = re.compile(r"\[([^\]/]*:[^\]/]*)\]")
_CACHE_SIZE = 4096


class GlobError(ValueError):
    """A malformed glob. ``reason`` says what is wrong, ``hint`` how to fix it."""

    def __init__(self, pattern: str, reason: str, hint: str = "") -> None:
        super().__init__(f"malformed glob {pattern!r}: {reason}")
        self.pattern = pattern
        self.reason = reason
        self.hint = hint


@dataclass(frozen=True, slots=True)
class _Glob:
    """A compiled glob: one regex when it has no ``**``, else one regex per segment (None = ``**``).

    ``under`` is set for the common ``<literal segments>/**``: the glob matches exactly the texts that
    start with it (``**`` takes whatever follows, one or more segments).
    """

    whole: re.Pattern[str] | None
    segments: tuple[re.Pattern[str] | None, ...]
    under: str | None = None

    def match(self, text: str) -> bool:
        if self.whole is not None:
            return self.whole.fullmatch(text) is not None
        if self.under is not None:
            return text.startswith(self.under)
        parts = text.split("/")
        count = len(parts)
        # Positions in ``parts`` reachable after matching the segments seen so far.
        reachable = {0}
        for segment in self.segments:
            if segment is None:  # '**': one or more whole segments
                reachable = set(range(min(reachable) + 1, count + 1))
            else:
                reachable = {i + 1 for i in reachable if i < count and segment.fullmatch(parts[i])}
            if not reachable:
                return False
        return count in reachable


# -- glob compilation -------------------------------------------------------------------------------


def check_glob(pattern: str) -> None:
    """Raise :class:`GlobError` when ``pattern`` is not a valid glob (see the module docstring)."""
    _compile(pattern, False)


def glob_match(pattern: str, text: str) -> bool:
    """Whether ``pattern`` matches all of ``text``.

    Raises:
        GlobError: ``pattern`` is malformed (a loaded policy never holds one).
    """
    return _compile(pattern, False).match(text)


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _compile(pattern: str, ipv6_host: bool) -> _Glob:
    if not isinstance(pattern, str) or not pattern:
        raise GlobError(str(pattern), "the glob is empty", "write a pattern such as ghcr.io/acme/**")
    if len(pattern) > _MAX_GLOB:
        raise GlobError(pattern[:40] + "...", f"longer than {_MAX_GLOB} characters", "shorten the pattern")
    literal_prefix = ""
    body = pattern
    if ipv6_host:
        found = _IPV6_PREFIX_RE.match(pattern)
        if found:
            literal_prefix, body = found.group(0), pattern[found.end() :]
    _reject_unsupported(pattern, body)
    segments = body.split("/")
    for segment in segments:
        if "***" in segment:
            raise GlobError(
                pattern, "'***' is not a wildcard", "use '*' within a segment or '**' as a whole segment"
            )
        if "**" in segment and segment != "**":
            raise GlobError(
                pattern,
                f"'**' must be a whole '/'-separated segment, not part of {segment!r}",
                "write e.g. 'ghcr.io/acme/**' ('acme**' would also match 'acme-evil/...'); "
                "use '*' to match within a segment",
            )
    if "**" not in segments:
        regex = "/".join(_segment_regex(s) for s in segments)
        return _Glob(whole=re.compile(re.escape(literal_prefix) + regex, re.DOTALL), segments=())
    compiled: list[re.Pattern[str] | None] = []
    for index, segment in enumerate(segments):
        if segment == "**":
            compiled.append(None)
            continue
        prefix = re.escape(literal_prefix) if index == 0 else ""
        compiled.append(re.compile(prefix + _segment_regex(segment), re.DOTALL))
    literal = segments[:-1]
    if (
        literal
        and segments[-1] == "**"
        and not literal_prefix
        and not any(_WILDCARDS.intersection(s) for s in literal)
    ):
        return _Glob(whole=None, segments=tuple(compiled), under="/".join(literal) + "/")
    return _Glob(whole=None, segments=tuple(compiled))


def _reject_unsupported(pattern: str, body: str) -> None:
    if any(c.isspace() for c in pattern) or any(ord(c) < 32 or ord(c) == 127 for c in pattern):
        raise GlobError(pattern, "contains whitespace or control characters", "remove them")
    if "[" in body or "]" in body:
        raise GlobError(
            pattern,
            "character classes ('[...]') are not supported",
            "list each alternative as its own pattern",
        )
    if "{" in body or "}" in body:
        raise GlobError(
            pattern,
            "brace alternatives ('{a,b}') are not supported",
            "list each alternative as its own pattern",
        )
    if "\\" in body:
        raise GlobError(pattern, "backslash escapes are not supported", "remove the backslash")


def _segment_regex(segment: str) -> str:
    """Regex for one segment without '**'.

    ``P0*P1*...*Pn`` becomes ``P0(?>[^/]*?P1)...[^/]*Pn``: taking the earliest occurrence of each
    middle piece is always safe (the next '*' absorbs any gap, and no piece crosses '/'), so the
    atomic groups never need to backtrack and a failing match stays linear.
    """
    pieces = [_piece_regex(p) for p in segment.split("*")]
    if len(pieces) == 1:
        return pieces[0]
    middle = "".join(f"(?>[^/]*?{p})" for p in pieces[1:-1])
    return f"{pieces[0]}{middle}[^/]*{pieces[-1]}"


def _piece_regex(piece: str) -> str:
    return "".join("[^/]" if c == "?" else re.escape(c) for c in piece)


# -- image globs ------------------------------------------------------------------------------------


def normalise_image_glob(pattern: str) -> str:
    """The image glob as it is matched, normalised like an image name where that is unambiguous.

    Raises:
        GlobError: the glob is malformed, ambiguous, or names a tag or digest.
    """
    return _normalise_image_glob(pattern)


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _normalise_image_glob(pattern: str) -> str:
    _compile(pattern, True)  # rejects the malformed before the normalisation looks at it
    if "@" in pattern:
        raise GlobError(
            pattern,
            "rule globs match image names, not digests",
            "drop the '@sha256:...' part (only exemptions may name an exact digest)",
        )
    if pattern[0] in _WILDCARDS:
        normalised = pattern
    else:
        first, sep, rest = pattern.partition("/")
        if not sep:
            if "." in pattern or ":" in pattern:
                # 'ghcr.io' alone is, by the reference grammar, the Docker Hub image
                # docker.io/library/ghcr.io: almost surely not what was meant, and a rule that
                # silently matches nothing leaves images unverified.
                raise GlobError(
                    pattern,
                    "a lone segment with '.' or ':' looks like a registry host but names a Docker Hub image",
                    f"write '{pattern}/**' for every image of that registry, "
                    f"or 'docker.io/library/{pattern}' for the Docker Hub image",
                )
            normalised = f"{DOCKER_HUB}/library/{pattern}"
        elif _looks_like_host(first):
            # Lower-cased like ImageRef's host, except a single-label host that is a host only because
            # of its capitals ('Mirror/**'): lower-cased it would read as the Docker Hub path 'mirror/**'
            # the next time it is normalised (every match normalises the policy's stored glob again).
            host = first.lower() if _looks_like_host(first.lower()) else first
            if host in DOCKER_HUB_ALIASES:
                host = DOCKER_HUB
                if "/" not in rest and rest != "**":
                    rest = f"library/{rest}"
            normalised = f"{host}/{rest}"
        elif _WILDCARDS.intersection(first):
            raise GlobError(
                pattern,
                f"the first segment {first!r} holds a wildcard but is not a registry host: it is ambiguous",
                f"write the registry explicitly, e.g. 'docker.io/{pattern}' or '{first}.example.com/{rest}'",
            )
        else:
            normalised = f"{DOCKER_HUB}/{pattern}"
    _check_image_glob_characters(pattern, normalised)
    return normalised


def _looks_like_host(segment: str) -> bool:
    # The distribution/reference rule: a first segment with '.' or ':', 'localhost', an IPv6
    # literal, or upper-case letters names a registry host.
    return (
        "." in segment
        or ":" in segment
        or segment == "localhost"
        or segment.startswith("[")
        or (segment != segment.lower())
    )


def _check_image_glob_characters(pattern: str, normalised: str) -> None:
    segments = normalised.split("/")
    first = segments[0]
    found = _IPV6_PREFIX_RE.match(first)
    host_rest = first[found.end() :] if found else first
    if found:
        try:
            ipaddress.IPv6Address(found.group(1))
        except ValueError:
            raise GlobError(
                pattern, f"{found.group(0)!r} is not an IPv6 address", "fix the address"
            ) from None
    if host_rest and not _HOST_SEGMENT_RE.fullmatch(host_rest):
        raise GlobError(
            pattern,
            f"the registry part {first!r} holds characters a registry host cannot have",
            "write a host like ghcr.io or registry.example.com:5000",
        )
    for segment in segments[1:]:
        if segment == "**":
            continue
        if ":" in segment:
            raise GlobError(
                pattern,
                "image globs match the repository name without a tag",
                "drop the ':tag' part; refuse tags with spec.tags.deny",
            )
        if segment != segment.lower():
            raise GlobError(pattern, "repository names are lower-case", f"write {segment.lower()!r}")
        if not _PATH_SEGMENT_RE.fullmatch(segment):
            raise GlobError(
                pattern,
                f"the segment {segment!r} holds characters an image name cannot have",
                "image names use lower-case letters, digits, '.', '_' and '-'",
            )


def image_glob_match(pattern: str, name: str) -> bool:
    """Whether image glob ``pattern`` matches the normalised image ``name`` (no tag or digest).

    A name with an empty, ``.`` or ``..`` segment never matches: the reference grammar forbids them,
    and a registry that resolved ``a/../b`` would otherwise escape the glob.

    Raises:
        GlobError: ``pattern`` is malformed (a loaded policy never holds one).
    """
    matchable = _matchable(name)
    return matchable is not None and _image_glob(pattern).match(matchable)


def _matchable(name: str) -> str | None:
    """``name`` as image globs match it (host lower-cased), or None when no glob may match it."""
    if any(part in ("", ".", "..") for part in name.split("/")):
        return None
    # Host names are case-insensitive: 'Mirror/app' and 'MIRROR/app' are the same image.
    return _lower_host(name)


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _image_glob(pattern: str) -> _Glob:
    """The compiled image glob: normalised, its host lower-cased (see :func:`_matchable`)."""
    return _compile(_lower_host(_normalise_image_glob(pattern)), True)


def host_wildcard_match(pattern: str) -> str | None:
    """What else an image glob with a wildcard in its registry host matches, for a lint warning; else None.

    ``registry.acme.com*/debug/**`` gives ``'registry.acme.com.attacker.example'``; a host that is all
    wildcard (``*/acme/app``, ``**/app``) gives ``any registry host``. Such a glob covers every host the
    allowlist opens that fits it, which is rarely what was meant.

    Raises:
        GlobError: ``pattern`` is malformed.
    """
    normalised = normalise_image_glob(pattern)
    host = normalised.split("/", 1)[0]
    found = _IPV6_PREFIX_RE.match(host)
    literal, rest = (found.group(0), host[found.end() :]) if found else ("", host)
    if not _WILDCARDS.intersection(rest):
        return None
    if rest in ("*", "**"):
        return "any registry host"
    example = literal
    for index, char in enumerate(rest):
        before = example[-1:] if example else ""
        after = rest[index + 1 : index + 2]
        if char == "?":
            example += "0" if before == ":" else "x"
        elif char != "*":
            example += char
        elif before == ":":
            example += "1"
        elif before in ("", "."):
            example += "attacker.example" if not after else "attacker" if after == "." else "attacker-"
        else:
            example += ".attacker.example" if not after else "-attacker"
    return repr(example)


def split_digest_entry(entry: str) -> tuple[str, str] | None:
    """``(name, digest)`` of an exemption entry ``name@sha256:<hex>``, None for a glob entry.

    The name is normalised (``nginx@sha256:...`` -> ``docker.io/library/nginx``).

    Raises:
        InvalidReference: the entry has an '@' but is not a valid ``name@sha256:<64 hex>``.
    """
    if "@" not in entry:
        return None
    return _split_digest_entry(entry)


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _split_digest_entry(entry: str) -> tuple[str, str]:
    ref = ImageRef.parse(entry)
    if ref.tag is not None or ref.digest is None:
        raise InvalidReference(f"exemption entry {entry!r} must be 'name@sha256:<64 hex>' without a tag")
    return ref.name, ref.digest


# -- policy questions -------------------------------------------------------------------------------


def matching_rules(policy: Policy, ref: ImageRef, namespace: str) -> tuple[Rule, ...]:
    """Every rule whose image globs match ``ref.name`` and whose namespace globs match, in file order."""
    name = _matchable(ref.name)
    if name is None:
        return ()
    return tuple(
        rule
        for rule in policy.rules
        if any(_image_glob(p).match(name) for p in rule.images)
        and any(glob_match(n, namespace) for n in rule.namespaces)
    )


def is_expired(exemption: Exemption, *, now: datetime) -> bool:
    """An exemption stops applying at ``expires`` (``now`` must be timezone-aware)."""
    return now >= exemption.expires


def find_exemption(policy: Policy, ref: ImageRef, namespace: str, *, now: datetime) -> Exemption | None:
    """The first unexpired exemption that covers ``ref`` in ``namespace``, or None.

    An entry ``name@sha256:...`` covers only that exact digest of that name (a reference that is not
    yet pinned never matches it); any other entry is an image glob over ``ref.name``.
    """
    for exemption in policy.exemptions:
        if is_expired(exemption, now=now):
            continue
        if not any(glob_match(n, namespace) for n in exemption.namespaces):
            continue
        if any(_exemption_entry_matches(entry, ref) for entry in exemption.images):
            return exemption
    return None


def _exemption_entry_matches(entry: str, ref: ImageRef) -> bool:
    try:
        pinned = split_digest_entry(entry)
    except InvalidReference:
        return False  # fail closed: a malformed entry exempts nothing
    if pinned is None:
        return image_glob_match(entry, ref.name)
    name, digest = pinned
    return ref.digest is not None and ref.digest == digest and _lower_host(name) == _match_name(ref)


def _match_name(ref: ImageRef) -> str:
    return _lower_host(ref.name)


def _lower_host(name: str) -> str:
    """``name`` with its first segment lower-cased.

    A single-label host written with capitals (``Mirror/app``) keeps them in :class:`ImageRef` (they
    are what makes it a host); host names are case-insensitive, and repository paths are lower-case
    by grammar, so names and globs compare with the host lower-cased.
    """
    host, sep, path = name.partition("/")
    return f"{host.lower()}{sep}{path}"


def canonical_registry(host: str) -> str:
    """``host`` lower-cased, with Docker Hub's aliases spelled ``docker.io``."""
    host = host.lower()
    return DOCKER_HUB if host in DOCKER_HUB_ALIASES else host


def host_allowed(allow: Iterable[str], host: str) -> bool:
    """Whether ``host`` (``host`` or ``host:port``) is exactly one of ``allow``.

    A port-less entry does not open other ports of that host; Docker Hub's three host names are one
    registry. Use this for ``registries.insecure`` too, and for a registry client's API host
    (``registry-1.docker.io``).
    """
    target = canonical_registry(host)
    return any(canonical_registry(entry) == target for entry in allow)


def registry_allowed(policy: Policy, ref: ImageRef) -> bool:
    """Whether the registry of ``ref`` is in ``spec.registries.allow``."""
    return host_allowed(policy.registries.allow, ref.registry)


def denied_tag(policy: Policy, ref: ImageRef) -> str | None:
    """The effective tag of ``ref`` (``nginx`` means ``latest``) when it is in ``spec.tags.deny``, else None.

    Tags compare exactly; a digest-only reference has no tag and is never denied here.
    """
    tag = ref.effective_tag
    if tag is not None and tag in policy.tags.deny:
        return tag
    return None
