"""README.md's tag-pinning example, run as written against a real registry.

The README copies an image into a registry on 127.0.0.1:5000 with skopeo and evaluates a ``kubectl
create`` Deployment against ``policies/examples/local-registry.yaml``. Here the registry listens on a
free port and the image is pushed over the registry API (what skopeo does); every other command of the
example runs in bash as written, and its output must be the README's, digest and port aside.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.support.registry import RegistryServer
from tests.support.reviews import kubectl

pytestmark = pytest.mark.registry

REPO_ROOT = Path(__file__).resolve().parents[2]
README_HOST = "127.0.0.1:5000"
POLICY = "policies/examples/local-registry.yaml"


def example() -> tuple[list[str], str]:
    """The example's commands and the output the README shows for them."""
    text = (REPO_ROOT / "README.md").read_text()
    match = re.search(r"```sh\n(skopeo copy .*?)```\n```\n(.*?)```", text, flags=re.DOTALL)
    assert match, "README.md lost its tag-pinning example"
    return match[1].splitlines(), match[2]


def test_the_readme_pinning_example_prints_what_the_readme_shows(
    tmp_path: Path, plain_registry: RegistryServer
) -> None:
    commands, expected = example()
    copy, *rest = commands
    assert copy.endswith(f"docker://{README_HOST}/team/app:1.0"), copy
    assert POLICY in "\n".join(rest)
    # What `skopeo copy` does: put an image at team/app:1.0 (unique content: this test's own digest).
    pushed = plain_registry.pusher().push_image("team/app", "1.0", content=uuid.uuid4().bytes)

    # The repository's files as the reader has them, with the registry's real port.
    policy = tmp_path / POLICY
    policy.parent.mkdir(parents=True)
    policy.write_text((REPO_ROOT / POLICY).read_text().replace(README_HOST, plain_registry.host))
    venv_bin = tmp_path / ".venv" / "bin"
    venv_bin.mkdir(parents=True)
    (venv_bin / "imagegate").symlink_to(Path(sys.executable).parent / "imagegate")
    kubectl_dir = tmp_path / "kubectl-bin"
    kubectl_dir.mkdir()
    (kubectl_dir / "kubectl").symlink_to(kubectl())
    script = "\n".join(rest).replace(README_HOST, plain_registry.host)
    result = subprocess.run(
        ["bash", "-c", script],
        cwd=tmp_path,
        env={**os.environ, "PATH": f"{kubectl_dir}{os.pathsep}{os.environ['PATH']}"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr

    shown = expected.replace(README_HOST, plain_registry.host).replace("sha256:...", pushed.digest)
    assert result.stdout == shown, result.stderr
