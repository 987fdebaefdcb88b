"""``imagegate test --junit FILE`` and ``-o json``: reports CI systems and scripts read.

The JUnit report is read back with junitparser (what CI result publishers use) and checked element
by element: one ``testsuite`` per suite file with its counts, one ``testcase`` per case, a
``failure`` with expected and actual for a wrong decision, an ``error`` for a suite that does not load.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import junitparser
import pytest

from webhook.cli import main

POLICY = """\
apiVersion: imagegate.dev/v1alpha1
kind: ImagePolicy
metadata: {name: p}
spec:
  registries: {allow: [ghcr.io]}
  rules: [{name: acme, images: ["ghcr.io/acme/**"]}]
"""
DIGEST = "sha256:" + "1" * 64
SUITE = f"""\
apiVersion: imagegate.dev/v1alpha1
kind: PolicyTest
metadata: {{name: reports}}
policy: policy.yaml
images:
  - {{name: ghcr.io/acme/app, digest: "{DIGEST}", tags: ["1.0"]}}
cases:
  - name: admitted
    images: ["ghcr.io/acme/app:1.0"]
    expect: {{allowed: true, outcomes: [admitted]}}
  - name: expects <latest> & "quotes" to pass
    images: ["ghcr.io/acme/app:latest"]
    expect: {{allowed: true}}
  - name: a manifest that is not there
    manifest: missing.yaml
    expect: {{allowed: true}}
"""


@pytest.fixture
def suites(tmp_path: Path) -> Path:
    (tmp_path / "policy.yaml").write_text(POLICY)
    (tmp_path / "a.test.yaml").write_text(SUITE)
    (tmp_path / "b.test.yaml").write_text(SUITE.replace("policy: policy.yaml", "policy: missing.yaml"))
    return tmp_path


def test_junit_report_reads_as_ci_systems_read_it(suites: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = suites / "out" / "junit.xml"
    report.parent.mkdir()
    assert main(["test", "--junit", str(report), str(suites)]) == 2  # b.test.yaml does not load
    capsys.readouterr()

    xml = junitparser.JUnitXml.fromfile(str(report))
    assert isinstance(xml, junitparser.JUnitXml)
    assert (xml.tests, xml.failures, xml.errors) == (4, 1, 2)
    first, second = list(xml)
    assert (first.name, first.tests, first.failures, first.errors, first.skipped) == ("reports", 3, 1, 1, 0)
    cases = {case.name: case for case in first}
    assert set(cases) == {"admitted", 'expects <latest> & "quotes" to pass', "a manifest that is not there"}
    assert cases["admitted"].is_passed and cases["admitted"].classname == "reports"
    (failure,) = cases['expects <latest> & "quotes" to pass'].result
    assert isinstance(failure, junitparser.Failure)
    assert failure.message.startswith("expected allowed=True, got False")
    assert "[tag-denied]" in (failure.text or "")
    (error,) = cases["a manifest that is not there"].result
    assert isinstance(error, junitparser.Error) and "missing.yaml" in error.message
    (load,) = list(second)
    (load_error,) = load.result
    assert (
        isinstance(load_error, junitparser.Error) and "the policy under test does not load" in load_error.text
    )

    root = ET.parse(report).getroot()  # noqa: S314 - the file this test just had written
    assert root.tag == "testsuites" and [s.tag for s in root] == ["testsuite", "testsuite"]
    testcase = root.find("testsuite/testcase")
    assert testcase is not None and testcase.get("file", "").endswith("a.test.yaml")
    assert testcase.get("line") == "8"
    assert float(testcase.get("time", "x")) >= 0
    properties = {p.get("name"): p.get("value") for p in root.iterfind("testsuite[1]/properties/property")}
    assert properties["mode"] == "hermetic" and properties["policy"].endswith("policy.yaml")


def test_json_report_has_expected_and_actual_per_case(
    suites: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["test", "-o", "json", str(suites / "a.test.yaml")]) == 1
    report = json.loads(capsys.readouterr().out)
    assert (report["passed"], report["failed"]) == (1, 2)
    (suite,) = report["suites"]
    assert suite["name"] == "reports" and suite["mode"] == "hermetic" and suite["problems"] == []
    admitted, wrong, missing = suite["cases"]
    assert admitted["passed"] and admitted["admissions"][0]["images"][0]["digest"] == DIGEST
    assert wrong["expect"] == {"allowed": True}
    (image,) = wrong["admissions"][0]["images"]
    assert (image["outcome"], image["status"], image["failures"][0]["code"]) == (
        "tag-denied",
        "denied",
        "tag-denied",
    )
    assert missing["error"] is True and missing["admissions"] == []


def test_an_unwritable_junit_file_is_a_usage_error(suites: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["test", "--junit", str(suites / "no" / "such" / "dir.xml"), str(suites / "a.test.yaml")]) == 2
    )
    assert "cannot write" in capsys.readouterr().err
