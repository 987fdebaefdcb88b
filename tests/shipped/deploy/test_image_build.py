"""The image's Python environment, built by deploy/Containerfile's own commands outside a container engine.

The lock files pin every runtime and build dependency with hashes and agree with pyproject.toml. The
builder stage's RUN lines (all but the apt-get one) then run as written in bash, with the image's
/build, /venv and /dist moved into a scratch directory and the machine's Python 3.11 standing for
Debian 12's: the downloads are checked against the hashes, the runtime venv has everything imagegate
needs and no pip, and its console script serves the CLI.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.shipped.deploy.test_containerfile import parse_containerfile
from tests.support.deploy import DEPLOY, REPO

LOCKS = {"runtime": DEPLOY / "requirements.txt", "build": DEPLOY / "build-requirements.txt"}
PINNED = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[^\s;\\]+)")


def locked(path: Path) -> dict[str, tuple[str, int]]:
    """Name -> (version, number of hashes) of every requirement in a pip requirements file."""
    text = path.read_text().replace("\\\n", " ")
    found: dict[str, tuple[str, int]] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = PINNED.match(line)
        assert match, f"{path.name}: not pinned with ==: {line}"
        found[canonicalize_name(match["name"])] = (match["version"], line.count("--hash=sha256:"))
    return found


def declared(source: str) -> list[str]:
    """pyproject.toml's runtime dependencies or build-system requirements."""
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    found = (
        config["project"]["dependencies"] if source == "dependencies" else config["build-system"]["requires"]
    )
    return list(found)


@pytest.mark.parametrize(("lock", "source"), [("runtime", "dependencies"), ("build", "requires")])
def test_the_lock_pins_every_declared_requirement_within_its_range(lock: str, source: str) -> None:
    pins = locked(LOCKS[lock])
    for text in declared(source):
        requirement = Requirement(text)
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{LOCKS[lock].name} lacks {name}: run `make lock`"
        version, hashes = pins[name]
        assert requirement.specifier.contains(version, prereleases=True), (
            f"{LOCKS[lock].name} pins {name}=={version}, outside pyproject's {requirement.specifier}: "
            "run `make lock`"
        )
        assert hashes >= 1


def test_every_pin_carries_its_hashes() -> None:
    for path in LOCKS.values():
        for name, (_version, hashes) in locked(path).items():
            assert hashes >= 1, f"{path.name}: {name} has no --hash"
    # Wheels for the image's architectures: one hash per file, so a compiled package has several.
    assert locked(LOCKS["runtime"])["cryptography"][1] >= 4


def test_nothing_but_the_project_and_its_dependencies_is_locked() -> None:
    runtime = locked(LOCKS["runtime"])
    assert not {"pip", "setuptools", "wheel", "imagegate"} & set(runtime)
    assert set(locked(LOCKS["build"])) == {"setuptools"}


def builder_script(tmp: Path) -> str:
    """The builder stage's RUN lines with the image's top-level directories moved below ``tmp``."""
    (builder,) = [s for s in parse_containerfile(DEPLOY / "Containerfile") if s.name == "builder"]
    runs = builder.all("RUN")
    apt = [r for r in runs if "apt-get" in r]
    assert len(apt) == 1 and "install -y --no-install-recommends python3-venv" in apt[0]
    script = "\n".join(r for r in runs if r not in apt)
    for directory in ("build", "venv", "dist"):
        script = re.sub(rf"(?<![\w.-])/{directory}\b", str(tmp / directory), script)
    return script


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("image")
    context = tmp / "src"
    # The build context the Containerfile's COPY lines see.
    (context / "deploy").mkdir(parents=True)
    for name in ("requirements.txt", "build-requirements.txt"):
        shutil.copy(DEPLOY / name, context / "deploy" / name)
    shutil.copy(REPO / "pyproject.toml", context)
    shutil.copy(REPO / "README.md", context)
    shutil.copytree(REPO / "webhook", context / "webhook", ignore=shutil.ignore_patterns("__pycache__"))
    python = shutil.which("python3") or sys.executable
    bin_dir = tmp / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").symlink_to(python)
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", builder_script(tmp)],
        cwd=context,
        # The machine's pip configuration and cache (the builder has neither: same files, same hashes).
        env={**os.environ, "PATH": f"{bin_dir}:/usr/bin:/bin", "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return tmp / "venv"


def test_the_runtime_venv_has_no_pip(built: Path) -> None:
    site = next(built.glob("lib/python3.*/site-packages"))
    assert not list(site.glob("pip*")), "pip reached the runtime venv"
    assert not list(site.glob("setuptools*")), "the build backend reached the runtime venv"
    assert not (built / "bin" / "pip").exists()


def test_the_runtime_venv_is_complete(built: Path) -> None:
    # pip check (run from outside, the venv has no pip): every installed distribution's requirements,
    # imagegate's included, are met by the locked set alone.
    check = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(built / "bin" / "python"), "check"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert "No broken requirements found" in check.stdout


def test_the_console_script_runs_in_the_runtime_venv(built: Path) -> None:
    # What the image's ENTRYPOINT runs, with only the locked packages importable.
    result = subprocess.run(
        [str(built / "bin" / "imagegate"), "lint", str(REPO / "policies" / "default.yaml")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": f"{built / 'bin'}:/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (built / "bin" / "python3").exists(), "the Deployment's preStop runs python3"
