"""Infrastructure markers: a test says what it needs, and ``-m`` selects by that, never by directory.

* ``registry``: starts Debian's ``docker-registry`` (tests.support.registry);
* ``e2e``: starts imagegate under gunicorn, serving over HTTPS (tests.support.server, or gunicorn itself);
* ``sigstore``: signs or verifies with the local test Sigstore (tests.support.fake_sigstore) or runs the
  third-party Sigstore conformance cases (tests.support.conformance).

A marker that is missing is an error, not a silent pass, checked twice: before a test is set up, against
the fixtures it requests (``FIXTURE_MARKERS``, the whole fixture closure); and whenever the
infrastructure starts (:func:`require`, called by ``start_registry``, ``running_server``,
``FakeSigstore.create`` and ``conformance.admit``), against the test running. Outside a pytest run
(the benchmarks reuse these modules) :func:`require` does nothing.

A test marked ``registry`` fails when ``docker-registry`` is missing (the message says how to install
it); under ``CI=true`` a skipped test is reported as failed, so CI never passes by skipping.

Registered for every test by ``tests/conftest.py``; the markers themselves are declared in
pyproject.toml (``--strict-markers``).
"""

from __future__ import annotations

__all__ = ["FIXTURE_MARKERS", "MARKERS", "require"]

import os
from collections.abc import Generator

import pytest

MARKERS = ("registry", "e2e", "sigstore")

# Fixtures that start infrastructure, and the marker a test needs to request them (directly or not).
FIXTURE_MARKERS: dict[str, str] = {
    "plain_registry": "registry",
    "tls_registry": "registry",
    "token_registry": "registry",
    "registry_factory": "registry",
    "sigstore_instance": "sigstore",
}

# The tests being run, innermost last (a test may run a nested pytest session: see test_markers.py).
_running: list[pytest.Item] = []


def require(marker: str, what: str) -> None:
    """Fail the running test unless it is marked ``marker``; ``what`` says what it was starting."""
    if not _running:
        return
    item = _running[-1]
    if item.get_closest_marker(marker) is None:
        pytest.fail(
            f"{item.nodeid} {what}: mark it @pytest.mark.{marker} (see tests/README.md)", pytrace=False
        )


def _missing_markers(item: pytest.Item) -> list[str]:
    fixtures = getattr(item, "fixturenames", ())
    problems = []
    for fixture in sorted(set(fixtures) & FIXTURE_MARKERS.keys()):
        marker = FIXTURE_MARKERS[fixture]
        if item.get_closest_marker(marker) is None:
            problems.append(f"it requests {fixture}: mark it @pytest.mark.{marker}")
    return problems


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(
    item: pytest.Item, nextitem: pytest.Item | None
) -> Generator[None, object, object]:
    _running.append(item)
    try:
        return (yield)
    finally:
        _running.pop()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    problems = _missing_markers(item)
    if problems:
        pytest.fail(f"{item.nodeid}: " + "; ".join(problems) + " (see tests/README.md)", pytrace=False)
    if item.get_closest_marker("registry") is not None:
        # Imported here: tests.support.registry imports this module.
        from tests.support.registry import require_registry_binary

        require_registry_binary()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if os.environ.get("CI") == "true" and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true, which must run every test: {reason}"
    return report
