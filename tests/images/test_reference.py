"""Image references: grammar and normalisation tables, plus Hypothesis round-trip properties."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from webhook.errors import InvalidReference
from webhook.images import DOCKER_HUB, ImageRef, pin_image_text

D = "sha256:" + "0123456789abcdef" * 4
D2 = "sha256:" + "f" * 64


# (written, registry, repository, tag, digest, canonical str)
ACCEPTED = [
    # Docker Hub: short names, library/ normalisation, the three spellings of the registry.
    ("nginx", "docker.io", "library/nginx", None, None, "docker.io/library/nginx"),
    ("nginx:1.25", "docker.io", "library/nginx", "1.25", None, "docker.io/library/nginx:1.25"),
    ("library/nginx", "docker.io", "library/nginx", None, None, "docker.io/library/nginx"),
    ("acme/app", "docker.io", "acme/app", None, None, "docker.io/acme/app"),
    ("docker.io/nginx", "docker.io", "library/nginx", None, None, "docker.io/library/nginx"),
    ("index.docker.io/nginx", "docker.io", "library/nginx", None, None, "docker.io/library/nginx"),
    ("registry-1.docker.io/acme/app", "docker.io", "acme/app", None, None, "docker.io/acme/app"),
    ("Docker.IO/nginx:1", "docker.io", "library/nginx", "1", None, "docker.io/library/nginx:1"),
    ("INDEX.docker.io/acme/app", "docker.io", "acme/app", None, None, "docker.io/acme/app"),
    # Hosts: ports, localhost, IPv4, bracketed IPv6, case.
    ("ghcr.io/acme/app:v1", "ghcr.io", "acme/app", "v1", None, "ghcr.io/acme/app:v1"),
    ("registry.example.com:5000/team/api:v2", "registry.example.com:5000", "team/api", "v2", None, None),
    ("localhost/app", "localhost", "app", None, None, "localhost/app"),
    ("localhost:5000/app:v1", "localhost:5000", "app", "v1", None, "localhost:5000/app:v1"),
    ("LOCALHOST:5000/app", "localhost:5000", "app", None, None, "localhost:5000/app"),
    ("127.0.0.1:5000/demo/app", "127.0.0.1:5000", "demo/app", None, None, None),
    ("10.0.0.1/app", "10.0.0.1", "app", None, None, None),
    ("[::1]:5000/demo/app:v1", "[::1]:5000", "demo/app", "v1", None, None),
    ("[2001:DB8::1]/app", "[2001:db8::1]", "app", None, None, "[2001:db8::1]/app"),
    ("GHCR.io/acme/app", "ghcr.io", "acme/app", None, None, "ghcr.io/acme/app"),
    ("Registry.Example.COM:443/a/b", "registry.example.com:443", "a/b", None, None, None),
    # A single-label host that is a domain only because of its capitals keeps them (see module docs).
    ("Mirror/app", "Mirror", "app", None, None, "Mirror/app"),
    ("host:5000/app", "host:5000", "app", None, None, None),
    # Docker Hub namespace that merely looks like a host: no '.', no ':', lower-case.
    ("foo/bar", "docker.io", "foo/bar", None, None, "docker.io/foo/bar"),
    # Without a '/', a host-like name is a Docker Hub repository (as in distribution).
    ("ghcr.io", "docker.io", "library/ghcr.io", None, None, "docker.io/library/ghcr.io"),
    ("localhost:5000", "docker.io", "library/localhost", "5000", None, "docker.io/library/localhost:5000"),
    # Tags and digests.
    (f"nginx@{D}", "docker.io", "library/nginx", None, D, f"docker.io/library/nginx@{D}"),
    (f"nginx:1.25@{D}", "docker.io", "library/nginx", "1.25", D, f"docker.io/library/nginx:1.25@{D}"),
    (f"127.0.0.1:5000/a@{D}", "127.0.0.1:5000", "a", None, D, None),
    ("app:V1.0_rc-1", "docker.io", "library/app", "V1.0_rc-1", None, None),
    ("app:_x", "docker.io", "library/app", "_x", None, None),
    ("app:" + "t" * 128, "docker.io", "library/app", "t" * 128, None, None),
    # Path separators: '.', '_', '__', one or more '-'.
    ("acme/a.b_c__d---e", "docker.io", "acme/a.b_c__d---e", None, None, None),
    ("docker.io/a.b/c", "docker.io", "a.b/c", None, None, "docker.io/a.b/c"),
    ("ghcr.io/a/b/c/d", "ghcr.io", "a/b/c/d", None, None, None),
    # Longest names: 255 characters after normalisation (written longer through an alias).
    ("ghcr.io/" + "a" * 247, "ghcr.io", "a" * 247, None, None, None),
    ("x" * 237, "docker.io", "library/" + "x" * 237, None, None, None),
    ("registry-1.docker.io/acme/" + "a" * 240, "docker.io", "acme/" + "a" * 240, None, None, None),
]


@pytest.mark.parametrize(("text", "registry", "repository", "tag", "digest", "canonical"), ACCEPTED)
def test_parse_accepts_and_normalises(
    text: str, registry: str, repository: str, tag: str | None, digest: str | None, canonical: str | None
) -> None:
    ref = ImageRef.parse(text)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (registry, repository, tag, digest)
    if canonical is not None:
        assert str(ref) == canonical
    assert ImageRef.parse(str(ref)) == ref


# (written, fragment of the error message)
REJECTED = [
    ("", "empty"),
    (" nginx", "whitespace"),
    ("nginx ", "whitespace"),
    ("ngi nx", "whitespace"),
    ("nginx\n", "whitespace"),
    ("nginx:1\t", "whitespace"),
    ("nginx\u00a0", "whitespace"),
    ("Nginx", "must be lowercase"),
    ("acme/App", "must be lowercase"),
    ("ghcr.io/Acme/app", "must be lowercase"),
    ("ghcr.io/acme/app:", "invalid tag"),
    ("nginx:.hidden", "invalid tag"),
    ("nginx:-x", "invalid tag"),
    ("nginx:a+b", "invalid tag"),
    ("nginx:t\u00e9", "invalid tag"),
    ("nginx:" + "t" * 129, "invalid tag"),
    (f"nginx@sha512:{'a' * 128}", "only sha256 is supported"),
    (f"nginx@sha384:{'a' * 96}", "only sha256 is supported"),
    (f"nginx@sha256:{'A' * 64}", "malformed sha256 digest"),
    (f"nginx@sha256:{'a' * 63}", "malformed sha256 digest"),
    (f"nginx@sha256:{'a' * 65}", "malformed sha256 digest"),
    (f"nginx@sha256:{'g' * 64}", "malformed digest"),
    ("nginx@sha256:abc", "malformed digest"),
    ("nginx@", "malformed digest"),
    (f"nginx@{D}@{D}", "malformed digest"),
    (f"nginx@{D}:tag", "malformed digest"),
    ("nginx:1.25@latest", "malformed digest"),
    (f"@{D}", "no repository name"),
    (":1.0", "no repository name"),
    ("/nginx", "invalid repository path"),
    ("nginx/", "invalid repository path"),
    ("a//b", "invalid repository path"),
    ("ghcr.io/", "invalid repository path"),
    ("-app", "invalid repository path"),
    ("app_", "invalid repository path"),
    ("a___b", "invalid repository path"),
    ("a..b", "invalid repository path"),
    ("ghcr.io:/a", "invalid registry host"),
    ("-ghcr.io/a", "invalid registry host"),
    ("ghcr..io/a", "invalid registry host"),
    ("ghcr_io.com/a", "invalid registry host"),
    ("host:port/a", "invalid registry host"),
    ("[::1/a", "invalid registry host"),
    ("[fe80::1%eth0]:5000/a", "invalid registry host"),
    ("[::1:5000/a", "invalid registry host"),
    ("[1:2:3]/a", "invalid IPv6 address"),
    ("[::::]:5000/a", "invalid IPv6 address"),
    ("ghcr.io/" + "a" * 248, "names are at most 255"),
    ("x" * 238, "names are at most 255"),
    ("a" * 600, "too long"),
    ("0123456789abcdef" * 4, "64-character hex string"),
]


@pytest.mark.parametrize(("text", "fragment"), REJECTED)
def test_parse_rejects_with_reason(text: str, fragment: str) -> None:
    with pytest.raises(InvalidReference) as error:
        ImageRef.parse(text)
    assert fragment in error.value.user_message


@pytest.mark.parametrize("value", [None, 42, b"nginx", ["nginx"]])
def test_parse_rejects_non_strings(value: object) -> None:
    with pytest.raises(InvalidReference, match="must be a string"):
        ImageRef.parse(value)  # type: ignore[arg-type]


def test_error_messages_quote_untrusted_input_briefly() -> None:
    with pytest.raises(InvalidReference) as error:
        ImageRef.parse("A" * 400)
    assert len(error.value.user_message) < 300


@pytest.mark.parametrize(
    ("text", "effective_tag", "pinned", "name", "api_host"),
    [
        ("nginx", "latest", False, "docker.io/library/nginx", "registry-1.docker.io"),
        ("nginx:1.25", "1.25", False, "docker.io/library/nginx", "registry-1.docker.io"),
        (f"nginx@{D}", None, True, "docker.io/library/nginx", "registry-1.docker.io"),
        (f"ghcr.io/acme/app:v1@{D}", "v1", True, "ghcr.io/acme/app", "ghcr.io"),
        ("127.0.0.1:5000/demo/app", "latest", False, "127.0.0.1:5000/demo/app", "127.0.0.1:5000"),
    ],
)
def test_properties(text: str, effective_tag: str | None, pinned: bool, name: str, api_host: str) -> None:
    ref = ImageRef.parse(text)
    assert ref.effective_tag == effective_tag
    assert ref.pinned is pinned
    assert ref.name == name
    assert ref.api_host == api_host


def test_docker_hub_constant() -> None:
    assert DOCKER_HUB == "docker.io"
    assert ImageRef.parse("index.docker.io/acme/app").registry == DOCKER_HUB


def test_with_digest_and_with_tag() -> None:
    ref = ImageRef.parse("ghcr.io/acme/app:v1")
    pinned = ref.with_digest(D)
    assert str(pinned) == f"ghcr.io/acme/app:v1@{D}"
    assert str(pinned.with_digest(D2)) == f"ghcr.io/acme/app:v1@{D2}"
    assert str(pinned.with_tag(None)) == f"ghcr.io/acme/app@{D}"
    assert str(ref.with_tag("v2")) == "ghcr.io/acme/app:v2"
    assert ref == ImageRef.parse("ghcr.io/acme/app:v1"), "values are immutable"


@pytest.mark.parametrize("digest", ["sha512:" + "a" * 128, "sha256:" + "A" * 64, "sha256:abc", "", "latest"])
def test_with_digest_rejects_anything_but_sha256(digest: str) -> None:
    with pytest.raises(InvalidReference):
        ImageRef.parse("nginx").with_digest(digest)


@pytest.mark.parametrize("tag", ["", ".x", "-x", "a/b", "t" * 129, "a b"])
def test_with_tag_rejects_invalid_tags(tag: str) -> None:
    with pytest.raises(InvalidReference, match="invalid tag"):
        ImageRef.parse("nginx").with_tag(tag)


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        ({"registry": "GHCR.io", "repository": "a"}, "normal form"),
        ({"registry": "index.docker.io", "repository": "acme/a"}, "normal form"),
        ({"registry": "docker.io", "repository": "nginx"}, "library/nginx"),
        # "mirror/app" would be read back as the Docker Hub repository mirror/app.
        ({"registry": "mirror", "repository": "app"}, "normal form"),
        ({"registry": "ghcr.io", "repository": "Acme/a"}, "invalid repository path"),
        ({"registry": "ghcr.io/x", "repository": "a"}, "invalid registry host"),
        ({"registry": "ghcr.io", "repository": "a", "tag": ".x"}, "invalid tag"),
        ({"registry": "ghcr.io", "repository": "a", "digest": "sha512:" + "a" * 128}, "only sha256"),
        ({"registry": "ghcr.io", "repository": "a" * 248}, "at most 255"),
    ],
)
def test_constructor_refuses_values_not_in_normal_form(fields: dict[str, str], fragment: str) -> None:
    with pytest.raises(InvalidReference, match=fragment):
        ImageRef(**fields)


def test_frozen() -> None:
    ref = ImageRef.parse("nginx")
    with pytest.raises(dataclasses.FrozenInstanceError):
        ref.tag = "x"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("original", "pinned"),
    [
        ("nginx", f"nginx@{D}"),
        ("nginx:1.25", f"nginx:1.25@{D}"),
        ("GHCR.io/acme/app:v1", f"GHCR.io/acme/app:v1@{D}"),
        (f"ghcr.io/acme/app:v1@{D2}", f"ghcr.io/acme/app:v1@{D}"),
        ("localhost:5000/app", f"localhost:5000/app@{D}"),
        ("[::1]:5000/app:v1", f"[::1]:5000/app:v1@{D}"),
    ],
)
def test_pin_image_text_keeps_what_was_written(original: str, pinned: str) -> None:
    assert pin_image_text(original, D) == pinned
    assert ImageRef.parse(pinned) == ImageRef.parse(original).with_digest(D)


@pytest.mark.parametrize(
    ("original", "digest", "fragment"),
    [
        ("nginx", "sha512:" + "a" * 128, "only sha256"),
        ("nginx", "sha256:" + "A" * 64, "malformed sha256"),
        ("Nginx", D, "must be lowercase"),
        ("", D, "empty"),
    ],
)
def test_pin_image_text_rejects_invalid_input(original: str, digest: str, fragment: str) -> None:
    with pytest.raises(InvalidReference, match=fragment):
        pin_image_text(original, digest)


# --- properties ---------------------------------------------------------------------------------

_ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789"
_alnum = st.text(alphabet=_ALNUM, min_size=1, max_size=6)
_path_component = st.builds(
    lambda first, rest: first + "".join(sep + part for sep, part in rest),
    _alnum,
    st.lists(st.tuples(st.sampled_from([".", "_", "__", "-", "--"]), _alnum), max_size=2),
)
_repository = st.lists(_path_component, min_size=1, max_size=3).map("/".join)
_label = st.from_regex(r"[a-z0-9](?:[a-z0-9-]{0,6}[a-z0-9])?", fullmatch=True)
_port = st.integers(min_value=1, max_value=65535).map(lambda p: f":{p}")
_host = st.one_of(
    st.lists(_label, min_size=2, max_size=3).map(".".join),
    st.just("localhost"),
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(lambda a: f"[{a.compressed}]"),
)
_registry = st.one_of(
    st.just(DOCKER_HUB),
    st.builds(lambda host, port: host + port, _host, st.one_of(st.just(""), _port)),
    st.builds(lambda label, port: label + port, _label, _port),
)
_tag = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}", fullmatch=True)
_digest = st.text(alphabet="0123456789abcdef", min_size=64, max_size=64).map(lambda h: f"sha256:{h}")


@st.composite
def image_refs(draw: st.DrawFn) -> ImageRef:
    registry = draw(_registry)
    repository = draw(_repository)
    if registry == DOCKER_HUB and "/" not in repository:
        repository = f"library/{repository}"
    assume(len(registry) + 1 + len(repository) <= 255)
    return ImageRef(
        registry=registry,
        repository=repository,
        tag=draw(st.one_of(st.none(), _tag)),
        digest=draw(st.one_of(st.none(), _digest)),
    )


@st.composite
def written_refs(draw: st.DrawFn) -> str:
    """Image strings as users write them: Hub short forms, aliases, upper-case hosts."""
    ref = draw(image_refs())
    name = str(ImageRef(ref.registry, ref.repository))
    if ref.registry == DOCKER_HUB:
        short = ref.repository.removeprefix("library/")
        spellings = [f"docker.io/{short}", f"index.docker.io/{short}", f"Docker.IO/{short}"]
        # Without the registry, a first element with a '.' (or "localhost") would be read as a host.
        first = ref.repository.split("/", 1)[0]
        if "." not in first and first != "localhost":
            spellings.append(ref.repository)
            if "." not in short.split("/", 1)[0] and short.split("/", 1)[0] != "localhost":
                spellings.append(short)
        name = draw(st.sampled_from(spellings))
    elif draw(st.booleans()) and "." in ref.registry and not ref.registry.startswith("["):
        name = f"{ref.registry.upper()}/{ref.repository}"
    text = name
    if ref.tag is not None:
        text += f":{ref.tag}"
    if ref.digest is not None:
        text += f"@{ref.digest}"
    return text


@given(image_refs())
def test_str_parse_round_trip(ref: ImageRef) -> None:
    assert ImageRef.parse(str(ref)) == ref


@given(written_refs())
def test_parse_is_idempotent_on_normalised_strings(text: str) -> None:
    ref = ImageRef.parse(text)
    normalised = str(ref)
    assert ImageRef.parse(normalised) == ref
    assert str(ImageRef.parse(normalised)) == normalised


@given(written_refs(), _digest)
def test_pin_image_text_keeps_the_written_name(text: str, digest: str) -> None:
    pinned = pin_image_text(text, digest)
    assert pinned == f"{text.split('@', 1)[0]}@{digest}"
    assert ImageRef.parse(pinned) == ImageRef.parse(text).with_digest(digest)


@given(image_refs(), _digest)
def test_with_digest_round_trips(ref: ImageRef, digest: str) -> None:
    pinned = ref.with_digest(digest)
    assert pinned.pinned
    assert pinned.tag == ref.tag
    assert ImageRef.parse(str(pinned)) == pinned


@given(st.text(max_size=80))
def test_parse_never_fails_with_anything_but_invalid_reference(text: str) -> None:
    try:
        ref = ImageRef.parse(text)
    except InvalidReference:
        return
    assert ImageRef.parse(str(ref)) == ref


def test_invalid_input_is_refused_every_time() -> None:
    # Parsing is memoised; a refusal must never be remembered as anything else.
    for _ in range(3):
        with pytest.raises(InvalidReference, match="must be lowercase"):
            ImageRef.parse("Nginx")
    assert ImageRef.parse("nginx") == ImageRef.parse("nginx") == ImageRef("docker.io", "library/nginx")
