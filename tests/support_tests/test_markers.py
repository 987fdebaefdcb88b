"""The infrastructure markers are enforced: a test that starts a registry, a server or a test Sigstore
without saying so fails, a registry test fails without the binary, and CI never passes by skipping."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
INI = """
[pytest]
addopts = -p tests.support.markers --strict-markers
markers =
    registry: r
    e2e: e
    sigstore: s
"""


@pytest.fixture
def inner(pytester: pytest.Pytester) -> pytest.Pytester:
    """A nested pytest session with the marker plugin, as tests/conftest.py registers it."""
    pytester.makeini(INI)
    pytester.makeconftest(
        """
        import pytest

        @pytest.fixture
        def plain_registry():
            return "stand-in"  # what a test asks for is checked, not what the fixture does
        """
    )
    return pytester


def test_requesting_a_registry_fixture_needs_the_registry_marker(inner: pytest.Pytester) -> None:
    inner.makepyfile(
        """
        import pytest

        @pytest.fixture
        def uses_a_registry(plain_registry):
            return plain_registry

        def test_unmarked(uses_a_registry):
            pass

        @pytest.mark.registry
        def test_marked(uses_a_registry):
            pass
        """
    )
    result = inner.runpytest()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        ["*test_unmarked: it requests plain_registry: mark it @pytest.mark.registry*"]
    )


@pytest.mark.parametrize(
    ("marker", "body"),
    [
        pytest.param(
            "registry",
            "from tests.support.registry import start_registry\n    start_registry(tmp_path).stop()",
            id="registry",
        ),
        pytest.param(
            "e2e",
            "from tests.support.server import running_server\n"
            "    with running_server(tmp_path, tmp_path / 'policy.yaml'):\n        pass",
            id="e2e",
        ),
        pytest.param(
            "sigstore",
            "from tests.support.fake_sigstore import FakeSigstore\n    FakeSigstore.create(tmp_path)",
            id="sigstore",
        ),
    ],
)
def test_starting_infrastructure_needs_its_marker(inner: pytest.Pytester, marker: str, body: str) -> None:
    inner.makepyfile(f"def test_unmarked(tmp_path):\n    {body}\n")
    result = inner.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"*test_unmarked * mark it @pytest.mark.{marker}*"])
    assert not list(inner.path.rglob("registry-*")), "nothing may start before the marker is checked"


def test_a_marked_test_starts_the_test_sigstore(inner: pytest.Pytester) -> None:
    inner.makepyfile(
        """
        import pytest
        from tests.support.fake_sigstore import FakeSigstore

        @pytest.mark.sigstore
        def test_marked(tmp_path):
            assert FakeSigstore.create(tmp_path).trusted_root_path.exists()
        """
    )
    inner.runpytest().assert_outcomes(passed=1)


def test_a_registry_test_fails_when_docker_registry_is_missing(
    inner: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing on PATH: no docker-registry
    inner.makepyfile("import pytest\n\n@pytest.mark.registry\ndef test_marked():\n    pass\n")
    result = inner.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*docker-registry not found: install*apt-get install -y docker-registry*"])


@pytest.mark.parametrize(("ci", "outcome"), [("true", "failed"), ("", "skipped")])
def test_a_skip_fails_under_ci(
    inner: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, ci: str, outcome: str
) -> None:
    monkeypatch.setenv("CI", ci)
    inner.makepyfile(
        """
        import pytest

        def test_skips():
            pytest.importorskip("imagegate_absent_module")

        @pytest.mark.xfail(reason="a known defect", strict=True)
        def test_expected_failure():
            assert False
        """
    )
    result = inner.runpytest("-rA")
    result.assert_outcomes(**{outcome: 1}, xfailed=1)
    if outcome == "failed":
        result.stdout.fnmatch_lines(
            ["*skipped under CI=true, which must run every test: *imagegate_absent_module*"]
        )


def test_outside_a_test_run_the_support_modules_start_anything() -> None:
    """The benchmarks start registries and test Sigstores through the same modules, without markers."""
    code = (
        "import tempfile, pathlib\n"
        "from tests.support.fake_sigstore import FakeSigstore\n"
        "print(FakeSigstore.create(pathlib.Path(tempfile.mkdtemp())).name)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "imagegate-test"
