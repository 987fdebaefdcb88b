"""``imagegate test``: suites pass, fail with the difference shown, or are refused as malformed."""

from __future__ import annotations

from pathlib import Path

import pytest

from webhook.cli import main

POLICY = """\
apiVersion: imagegate.dev/v1alpha1
kind: ImagePolicy
metadata: {name: t}
spec:
  registries: {allow: [ghcr.io]}
  exemptions:
    - {images: ["ghcr.io/acme/tool"], namespaces: ["ops"], expires: "2030-01-01T00:00:00Z", reason: "INC-9"}
  rules:
    - {name: acme, images: ["ghcr.io/acme/**"]}
"""
DIGEST = "sha256:" + "f" * 64


def _suite(tmp_path: Path, cases: str, *, now: str = "") -> Path:
    (tmp_path / "policy.yaml").write_text(POLICY)
    suite = tmp_path / "p.test.yaml"
    head = "apiVersion: imagegate.dev/v1alpha1\nkind: PolicyTest\npolicy: policy.yaml\n"
    suite.write_text(head + (f'now: "{now}"\n' if now else "") + "cases:\n" + cases)
    return suite


def test_passing_suite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    suite = _suite(
        tmp_path,
        f"""\
  - name: unmatched
    images: ["ghcr.io/other/x@{DIGEST}"]
    expect: {{allowed: false, outcomes: [unmatched]}}
  - name: exempted until it expires
    images: ["ghcr.io/acme/tool@{DIGEST}"]
    namespace: ops
    expect: {{allowed: true, outcomes: [exempted], warnings: 0}}
""",
        now="2029-12-31T00:00:00Z",
    )
    assert main(["test", str(suite)]) == 0
    out = capsys.readouterr().out
    assert "PASS p.test.yaml: unmatched" in out
    assert out.strip().endswith("2 passed, 0 failed")


def test_failing_case_shows_expected_and_found(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _suite(
        tmp_path,
        f"""\
  - name: exemption expired
    images: ["ghcr.io/acme/tool@{DIGEST}"]
    namespace: ops
    expect: {{allowed: true, outcomes: [exempted]}}
""",
        now="2031-01-01T00:00:00Z",
    )
    assert main(["test", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "FAIL p.test.yaml: exemption expired" in out
    # Expired, the exemption no longer applies: rule acme governs the image instead.
    assert "expected outcomes ['exempted'], got ['admitted']" in out


def test_malformed_suite_is_a_usage_error(tmp_path: Path) -> None:
    suite = _suite(tmp_path, '  - name: no expectation\n    images: ["ghcr.io/acme/x:1"]\n')
    assert main(["test", str(suite)]) == 2
