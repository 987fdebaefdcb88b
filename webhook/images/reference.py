"""Image references: the distribution/reference grammar, normalised, pure.

``ImageRef.parse("nginx")`` gives ``docker.io/library/nginx`` with no tag and no digest; the container
runtime reads that as ``:latest`` (see :attr:`ImageRef.effective_tag`). Only sha256 digests are accepted:
they are what registries compute and what every later check (quarantine, signatures) compares exactly.

Grammar (github.com/distribution/reference, with its ``ParseNormalizedNamed`` normalisation)::

    reference        := name [ ":" tag ] [ "@" digest ]
    name             := [domain "/"] path
    domain           := host [":" port]
    host             := domain-name | "[" IPv6address "]"
    domain-name      := domain-component ("." domain-component)*
    domain-component := /([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])/
    path             := path-component ("/" path-component)*
    path-component   := /[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*/
    tag              := /[\\w][\\w.-]{0,127}/
    digest           := "sha256:" /[a-f0-9]{64}/          (other algorithms are rejected)

The first path element is a domain only when it contains ``.`` or ``:``, is ``localhost``, or has an
upper-case letter; otherwise the name lives on Docker Hub. The name (domain and path, after
normalisation) is at most 255 characters.

Normalisation: the host is lower-cased (DNS is case-insensitive and ``registries.allow`` compares
exactly), ``index.docker.io`` and ``registry-1.docker.io`` become ``docker.io``, and a one-element Docker
Hub path gains ``library/``. One exception keeps the host as written: a single-label host such as
``Mirror/app`` is a domain only *because* of its capitals, and lower-casing it would turn it into the
Docker Hub repository ``mirror/app``.

Every :class:`ImageRef` is in normal form (the constructor checks it), so ``ImageRef.parse(str(ref)) ==
ref`` always holds, and two references name the same image exactly when they compare equal.
"""

from __future__ import annotations

__all__ = [
    "DOCKER_HUB",
    "DOCKER_HUB_ALIASES",
    "SHA256_HEX_RE",
    "ImageRef",
    "is_sha256_digest",
    "pin_image_text",
    "repository_name",
]

import functools
import ipaddress
import re
from dataclasses import dataclass, replace

from webhook.errors import InvalidReference
from webhook.text import show_value

DOCKER_HUB = "docker.io"
#: The names Docker Hub's registry goes by in references and policies; all mean ``docker.io``.
DOCKER_HUB_ALIASES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})
_DOCKER_HUB_API = "registry-1.docker.io"
_MAX_NAME = 255
# Longer than any valid reference (a 255-character normalised name, which an alias such as
# registry-1.docker.io makes longer as written, ":" tag and "@sha256:" digest). Longer input is refused
# before any regular expression runs, so a hostile multi-megabyte "image" costs nothing.
_MAX_TEXT = 512
# How much of a rejected reference an error message quotes.
_SHOW = 100
# A value from outside, quoted (escaped, cut short) for a message.
_show = functools.partial(show_value, limit=_SHOW)

_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN_NAME = rf"{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*"
_IPV6 = r"\[(?P<ipv6>[a-fA-F0-9:]+)\]"
_DOMAIN_RE = re.compile(rf"(?:{_DOMAIN_NAME}|{_IPV6})(?::[0-9]+)?")
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_PATH_RE = re.compile(rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*")
_TAG_RE = re.compile(r"[\w][\w.-]{0,127}", re.ASCII)
_DIGEST_RE = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}")
#: 64 lower-case hex digits: a sha256 digest's hex (also an image ID and a Rekor log ID).
SHA256_HEX_RE = re.compile(r"[0-9a-f]{64}")
_SHA256_RE = re.compile(r"sha256:[0-9a-f]{64}")
_SPACE_RE = re.compile(r"\s")
# Parsed references by text. The same few images arrive in admission after admission, parsing is pure and
# ImageRef immutable, so a bounded cache serves them; invalid input raises and is never cached.
_PARSE_CACHE_SIZE = 4096

_TAG_RULE = "tags are 1-128 characters of letters, digits, '_', '.' and '-', not starting with '.' or '-'"
_PATH_RULE = "path components are lower-case letters and digits separated by '.', '_', '__' or '-'"


@dataclass(frozen=True, slots=True)
class ImageRef:
    """A normalised image reference.

    Attributes:
        registry: host or host:port, normalised (lower-case, Docker Hub spelled ``docker.io``).
        repository: the path inside the registry, e.g. ``library/nginx``.
        tag: the tag as written, or None.
        digest: ``sha256:<64 lower-case hex>`` or None.

    Raises:
        InvalidReference: (from the constructor) a field is not valid or not in normal form; build
            references from text with :meth:`parse`.
    """

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    def __post_init__(self) -> None:
        # Guards the invariant "equal references name the same image" for values built field by field.
        if not isinstance(self.registry, str) or not _DOMAIN_RE.fullmatch(self.registry):
            raise InvalidReference(f"invalid registry host {_show(self.registry)}")
        if _normalise_host(self.registry) != self.registry or not _reads_as_domain(self.registry):
            raise InvalidReference(f"registry host {_show(self.registry)} is not in normal form")
        if not isinstance(self.repository, str) or not _PATH_RE.fullmatch(self.repository):
            raise InvalidReference(f"invalid repository path {_show(self.repository)} ({_PATH_RULE})")
        if self.registry == DOCKER_HUB and "/" not in self.repository:
            raise InvalidReference(
                f"Docker Hub repository {_show(self.repository)} is not in normal form "
                f"(official images are library/{self.repository})"
            )
        if len(self.registry) + 1 + len(self.repository) > _MAX_NAME:
            raise InvalidReference(f"image name is too long: names are at most {_MAX_NAME} characters")
        if self.tag is not None and (not isinstance(self.tag, str) or not _TAG_RE.fullmatch(self.tag)):
            raise InvalidReference(f"invalid tag {_show(self.tag)} ({_TAG_RULE})")
        if self.digest is not None:
            _check_digest(self.digest, self.digest)

    @classmethod
    def parse(cls, text: str) -> ImageRef:
        """Parse and normalise ``text``.

        Results are memoised per text (bounded, per process): the same images arrive in admission
        after admission.

        Raises:
            InvalidReference: the text is not a valid reference; the message says why.
        """
        if not isinstance(text, str):
            raise InvalidReference(f"image reference must be a string, not {type(text).__name__}")
        if cls is not ImageRef:
            return cls(*_fields(text))
        return _parse_cached(text)

    @property
    def name(self) -> str:
        """The normalised repository name with its registry, e.g. ``docker.io/library/nginx``."""
        return f"{self.registry}/{self.repository}"

    @property
    def effective_tag(self) -> str | None:
        """The tag a runtime pulls: the written tag, ``latest`` when there is neither tag nor digest."""
        if self.tag is None and self.digest is None:
            return "latest"
        return self.tag

    @property
    def pinned(self) -> bool:
        """Whether the reference names a digest (the runtime then ignores any tag)."""
        return self.digest is not None

    @property
    def api_host(self) -> str:
        """The host:port to talk the distribution API to (Docker Hub's API lives elsewhere)."""
        return _DOCKER_HUB_API if self.registry == DOCKER_HUB else self.registry

    def with_digest(self, digest: str) -> ImageRef:
        """This reference pinned to ``digest`` (the tag is kept).

        Raises:
            InvalidReference: ``digest`` is not ``sha256:<64 lower-case hex>``.
        """
        return replace(self, digest=_check_digest(digest, digest))

    def with_tag(self, tag: str | None) -> ImageRef:
        """This reference with ``tag`` (None removes it).

        Raises:
            InvalidReference: ``tag`` does not follow the tag grammar.
        """
        return replace(self, tag=tag)

    def __str__(self) -> str:
        text = self.name
        if self.tag is not None:
            text += f":{self.tag}"
        if self.digest is not None:
            text += f"@{self.digest}"
        return text


def pin_image_text(original: str, digest: str) -> str:
    """The image string that pins ``original`` to ``digest``, keeping how the user wrote it.

    ``nginx:1.25`` becomes ``nginx:1.25@sha256:...``: the tag stays readable in ``kubectl get``
    output while the runtime pulls by digest (it ignores the tag once a digest is present). The name is
    not normalised, so the change is as small as it can be. A digest already present is replaced.

    Raises:
        InvalidReference: ``original`` is not a valid reference or ``digest`` is not a sha256 digest.
    """
    ImageRef.parse(original)
    base = original.split("@", 1)[0]
    return f"{base}@{_check_digest(original, digest)}"


def repository_name(image: str) -> str:
    """The normalised repository of ``image`` (``docker.io/library/nginx`` for ``nginx:1.25``), or
    ``image`` as written when it is not a valid reference (for display and grouping only)."""
    try:
        return ImageRef.parse(image).name
    except InvalidReference:
        return image


def _fields(text: str) -> tuple[str, str, str | None, str | None]:
    """(registry, repository, tag, digest) of ``text``, normalised; see :meth:`ImageRef.parse`."""
    if not text:
        raise InvalidReference("image reference is empty")
    if len(text) > _MAX_TEXT:
        raise InvalidReference(
            f"image reference {_show(text)} is too long ({len(text)} characters; at most {_MAX_TEXT})"
        )
    if _SPACE_RE.search(text):
        raise InvalidReference(f"image reference {_show(text)} contains whitespace")
    if SHA256_HEX_RE.fullmatch(text):
        # distribution refuses these: a bare 64-hex string is an image ID, not a repository name.
        raise InvalidReference(
            f"image reference {_show(text)} is a 64-character hex string: name a repository, "
            "or pin with name@sha256:<hex>"
        )
    rest, digest = text, None
    if "@" in rest:
        rest, digest = rest.split("@", 1)
        digest = _check_digest(text, digest)
    name, tag = rest, None
    # A ':' after the last '/' separates the tag (a ':' before it is a registry port).
    colon = rest.rfind(":")
    if colon > rest.rfind("/"):
        name, tag = rest[:colon], rest[colon + 1 :]
        if not _TAG_RE.fullmatch(tag):
            raise InvalidReference(
                f"image reference {_show(text)} has an invalid tag {_show(tag)} ({_TAG_RULE})"
            )
    if not name:
        raise InvalidReference(f"image reference {_show(text)} has no repository name")
    registry, repository = _split_domain(text, name)
    return registry, repository, tag, digest


@functools.lru_cache(maxsize=_PARSE_CACHE_SIZE)
def _parse_cached(text: str) -> ImageRef:
    return ImageRef(*_fields(text))


def _check_digest(text: str, digest: str) -> str:
    if not isinstance(digest, str):
        raise InvalidReference(f"digest must be a string, not {type(digest).__name__}")
    if _SHA256_RE.fullmatch(digest):
        return digest
    if _DIGEST_RE.fullmatch(digest):
        algorithm = digest.split(":", 1)[0]
        if algorithm != "sha256":
            raise InvalidReference(
                f"image reference {_show(text)} uses digest algorithm {algorithm!r}: only sha256 is supported"
            )
        raise InvalidReference(
            f"image reference {_show(text)} has a malformed sha256 digest "
            "(expected 64 lower-case hex characters)"
        )
    raise InvalidReference(f"image reference {_show(text)} has a malformed digest {_show(digest)}")


def _split_domain(text: str, name: str) -> tuple[str, str]:
    first, sep, remainder = name.partition("/")
    if sep and _reads_as_domain(first):
        match = _DOMAIN_RE.fullmatch(first)
        if not match:
            raise InvalidReference(
                f"image reference {_show(text)} has an invalid registry host {_show(first)}"
            )
        if match.group("ipv6") is not None:
            try:
                ipaddress.IPv6Address(match.group("ipv6"))
            except ValueError:
                raise InvalidReference(
                    f"image reference {_show(text)} has an invalid IPv6 address {_show(first)}"
                ) from None
        registry, repository = _normalise_host(first), remainder
    else:
        registry, repository = DOCKER_HUB, name
    if not _PATH_RE.fullmatch(repository):
        if repository.lower() != repository and _PATH_RE.fullmatch(repository.lower()):
            raise InvalidReference(f"image reference {_show(text)}: repository name must be lowercase")
        raise InvalidReference(
            f"image reference {_show(text)} has an invalid repository path {_show(repository)} ({_PATH_RULE})"
        )
    if registry == DOCKER_HUB and "/" not in repository:
        repository = f"library/{repository}"
    if len(registry) + 1 + len(repository) > _MAX_NAME:
        raise InvalidReference(
            f"image reference {_show(text)} is too long: names are at most {_MAX_NAME} characters"
        )
    return registry, repository


def _reads_as_domain(host: str) -> bool:
    """Whether ``host/path`` is read back with ``host`` as the registry (not as a Docker Hub path)."""
    return "." in host or ":" in host or host == "localhost" or host.startswith("[") or host != host.lower()


def _normalise_host(host: str) -> str:
    lowered = host.lower()
    if lowered in DOCKER_HUB_ALIASES:
        return DOCKER_HUB
    # Lower-casing "Mirror" would make "Mirror/app" mean docker.io/mirror/app: keep such hosts as written.
    return lowered if _reads_as_domain(lowered) else host


def is_sha256_digest(text: str) -> bool:
    """True for ``sha256:`` and 64 lower-case hex digits, the only digests imagegate accepts and compares."""
    return _SHA256_RE.fullmatch(text) is not None
