"""deploy/Containerfile agrees with the package and with the Deployment (nothing here can build the image)."""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.support.deploy import DEPLOY, REPO, one, server_container


@dataclass
class Stage:
    image: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [arg for kw, arg in self.instructions if kw == keyword]


def parse_containerfile(path: Path) -> list[Stage]:
    """Splits a Containerfile into stages of (INSTRUCTION, arguments), joining continuation lines."""
    text = re.sub(r"\\\n", " ", path.read_text())
    stages: list[Stage] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            parts = rest.split()
            name = parts[2] if len(parts) == 3 and parts[1].upper() == "AS" else None
            stages.append(Stage(image=parts[0], name=name))
        else:
            assert stages, f"{keyword} before the first FROM"
            stages[-1].instructions.append((keyword, rest.strip()))
    return stages


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return parse_containerfile(DEPLOY / "Containerfile")


@pytest.fixture(scope="module")
def final(stages: list[Stage]) -> Stage:
    return stages[-1]


def exec_form(stage: Stage, keyword: str) -> list[str]:
    (value,) = stage.all(keyword)
    parsed = json.loads(value)
    assert isinstance(parsed, list), f"{keyword} must use the exec (JSON) form"
    return parsed


DIGEST_PIN = re.compile(r"^(?P<name>[a-z0-9./_-]+(?::[\w.-]+)?)@sha256:[0-9a-f]{64}$")


def test_every_base_image_is_pinned_by_digest(stages: list[Stage]) -> None:
    names = set()
    for stage in stages:
        if stage.image in names:
            continue  # FROM an earlier stage
        assert DIGEST_PIN.match(stage.image), f"FROM {stage.image}: pin the base image by digest"
        if stage.name:
            names.add(stage.name)
    for stage in stages:
        for copy in stage.all("COPY"):
            source = re.search(r"--from=(\S+)", copy)
            assert source is None or source.group(1) in names, f"COPY {copy}: from a stage, not an image"


def test_builder_python_is_the_final_images_python(stages: list[Stage], final: Stage) -> None:
    # The venv is built by Debian 12's python3 and run by distroless' (the same Debian package); both are
    # Python 3.11, the floor pyproject declares.
    (builder,) = [s for s in stages if s.name == "builder"]
    assert builder.image.startswith("docker.io/library/debian:12-slim@")
    assert final.image.startswith("gcr.io/distroless/python3-debian12:nonroot@")
    requires = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"]
    assert requires == ">=3.11"
    assert "--python-version 3.11.2" in (REPO / "Makefile").read_text(), "the lock targets the image's Python"


def test_final_stage_is_the_runtime_venv_on_distroless(final: Stage) -> None:
    # No RUN: distroless has no shell to run it with, and nothing is installed or fetched there.
    assert final.name is None
    assert not final.all("RUN") and not final.all("SHELL") and not final.all("ADD")
    assert final.all("COPY") == ["--from=builder /venv /venv"], "only the runtime venv, no sources"
    (env,) = final.all("ENV")
    assert re.search(r"\bPATH=/venv/bin:", env), "the venv's console scripts and python3 come first"


def test_the_runtime_venv_is_made_without_pip(stages: list[Stage]) -> None:
    (builder,) = [s for s in stages if s.name == "builder"]
    runs = " ".join(builder.all("RUN"))
    assert "python3 -m venv --without-pip /venv" in runs
    # Only the throw-away /build venv has pip; it installs into /venv from outside.
    assert "/venv/bin/pip" not in runs
    for install in re.findall(r"pip (?:--python /venv/bin/python )?install[^&]*", runs):
        assert "--no-deps" in install, install
        assert "--require-hashes" in install or "--no-index" in install, install


def test_copied_sources_exist(stages: list[Stage]) -> None:
    for stage in stages:
        for copy in stage.all("COPY"):
            if "--from=" in copy:
                continue
            *sources, _dest = shlex.split(copy)
            for source in sources:
                assert (REPO / source).exists(), f"COPY {source}: not in the repository"


def test_entrypoint_is_the_console_script(final: Stage) -> None:
    entrypoint = exec_form(final, "ENTRYPOINT")
    assert entrypoint == ["imagegate", "serve"]
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    target = scripts[entrypoint[0]]
    module, _, attribute = target.partition(":")
    import importlib

    main = getattr(importlib.import_module(module), attribute)
    assert callable(main)
    assert main([entrypoint[1], "--help"]) == 0


def test_default_arguments_match_the_deployment(
    final: Stage, rendered: dict[str, list[dict[str, Any]]]
) -> None:
    for overlay in ("cert-manager", "static-certs"):
        container = server_container(rendered[overlay])
        assert "command" not in container, "the Deployment relies on the image's ENTRYPOINT"
        assert exec_form(final, "CMD") == container["args"]


def test_user_matches_the_security_context(final: Stage, rendered: dict[str, list[dict[str, Any]]]) -> None:
    (user,) = final.all("USER")
    uid, _, gid = user.partition(":")
    docs = rendered["static-certs"]
    context = server_container(docs)["securityContext"]
    pod_context = one(docs, "Deployment", "imagegate")["spec"]["template"]["spec"]["securityContext"]
    assert (int(uid), int(gid)) == (context["runAsUser"], context["runAsGroup"]) == (65532, 65532)
    assert pod_context["runAsUser"] == int(uid)


def test_exposed_port_is_the_container_port(final: Stage, rendered: dict[str, list[dict[str, Any]]]) -> None:
    ports = [int(p.split("/")[0]) for p in " ".join(final.all("EXPOSE")).split()]
    container_ports = [p["containerPort"] for p in server_container(rendered["static-certs"])["ports"]]
    assert ports == container_ports == [8443]


def test_prestop_command_exists_in_the_image(final: Stage, rendered: dict[str, list[dict[str, Any]]]) -> None:
    command = server_container(rendered["static-certs"])["lifecycle"]["preStop"]["exec"]["command"]
    # distroless has no sleep binary; python3 is the venv's (first on PATH) and the image's own.
    assert final.image.startswith("gcr.io/distroless/python3")
    assert command[0] == "python3"


def test_the_wheel_carries_every_data_file_of_the_package() -> None:
    # The image installs the wheel, not the source tree: a data file the package reads at run time (the
    # policy JSON Schemas) must be listed in package-data or the image fails where the checkout works.
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]
    package_root = REPO / "webhook"
    data_files = [
        p
        for p in package_root.rglob("*")
        if p.is_file() and p.suffix not in {".py", ".pyc"} and "__pycache__" not in p.parts
    ]
    assert data_files
    covered: set[Path] = set()
    for package, globs in patterns.items():
        # setuptools resolves each glob relative to the package's own directory.
        if package == "*":
            directories = [
                d for d in (package_root, *package_root.rglob("*")) if (d / "__init__.py").is_file()
            ]
        else:
            directories = [REPO / package.replace(".", "/")]
        for directory in directories:
            for glob in globs:
                covered.update(directory.glob(glob))
    missing = [str(p.relative_to(REPO)) for p in data_files if p not in covered]
    assert not missing, f"not in [tool.setuptools.package-data], so missing from the image: {missing}"


def test_build_context_filter_keeps_what_the_builder_copies(stages: list[Stage]) -> None:
    lines = [
        line.strip()
        for line in (DEPLOY / "Containerfile.dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*", "allow-list: exclude everything, then re-include the sources"
    included = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    copied = set()
    for stage in stages:
        for copy in stage.all("COPY"):
            if "--from=" not in copy:
                copied.update(s.rstrip("/") for s in shlex.split(copy)[:-1])
    assert copied
    assert copied <= included
