"""Test suites (``kind: PolicyTest``) lint like policies: file, line, pointer, a fix, "did you mean"."""

from __future__ import annotations

from pathlib import Path

import pytest

from webhook.cli import main

POLICY = """\
apiVersion: imagegate.dev/v1alpha1
kind: ImagePolicy
metadata: {name: p}
spec:
  registries: {allow: [ghcr.io]}
  trust:
    keys:
      - name: release
        pem: |
          -----BEGIN PUBLIC KEY-----
          MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE2G2Y+2tabdTV5BcGiBIx0a9fAFwrkBbmLSGtks4L3qX6yYY0zufBnhC8Ur/iy55GhWP/9A/bY2LhC30M9+RYtw==
          -----END PUBLIC KEY-----
  rules:
    - name: signed
      images: ["ghcr.io/acme/**"]
      signatures: {signers: [{key: {name: release}}]}
"""
DIGEST = "sha256:" + "1" * 64
GOOD = f"""\
apiVersion: imagegate.dev/v1alpha1
kind: PolicyTest
policy: policy.yaml
images:
  - name: ghcr.io/acme/app
    digest: "{DIGEST}"
    tags: ["1.0"]
    signatures:
      - key: release
cases:
  - name: signed
    images: ["ghcr.io/acme/app:1.0"]
    expect: {{allowed: true, outcomes: [verified]}}
"""


def lint(tmp_path: Path, text: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str], str]:
    (tmp_path / "policy.yaml").write_text(POLICY)
    path = tmp_path / "s.test.yaml"
    path.write_text(text)
    status = main(["lint", str(path)])
    captured = capsys.readouterr()
    prefix = f"{path}:"
    return status, [line.removeprefix(prefix) for line in captured.out.splitlines()], captured.err


def test_a_good_suite_lints_clean_and_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, lines, err = lint(tmp_path, GOOD, capsys)
    assert (status, lines) == (0, []), err
    assert main(["test", str(tmp_path / "s.test.yaml")]) == 0


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("images:", "imags:"), "4: /imags: unknown field 'imags' (fix: did you mean 'images'?)"),
        (("tags:", "tag:"), "7: /images/0/tag: unknown field 'tag' (fix: did you mean 'tags'?)"),
        (
            ("      - key: release", "      - kye: release"),
            "9: /images/0/signatures/0/kye: unknown field 'kye' (fix: did you mean 'key'?)",
        ),
        (
            ("      - key: release", "      - {key: release, keyless: {issuer: i, subject: s}}"),
            "9: /images/0/signatures/0: say who signed it: exactly one of keyless and key "
            "(fix: write `keyless: {issuer: ..., subject: ...}` or `key: NAME`)",
        ),
        (
            (
                "      - key: release",
                "      - keyless: {issuer: i, subject: s, extensions: {sourceRepositoryUri: x}}",
            ),
            "9: /images/0/signatures/0/keyless/extensions: 'sourceRepositoryUri' is not one of",
        ),
        (
            ("  - name: ghcr.io/acme/app", "  - name: ghcr.io/acme/app:1.0"),
            "5: /images/0/name: 'ghcr.io/acme/app:1.0' has a tag or digest: name the repository only "
            "(fix: write `name: ghcr.io/acme/app` and put the tag under `tags:`, the digest under `digest:`)",
        ),
        (
            (f'"{DIGEST}"', '"sha256:abc"'),
            "6: /images/0/digest: 'sha256:abc' is not a sha256 digest (fix: write the digest as sha256: "
            "followed by 64 lower-case hex characters)",
        ),
        (
            ("outcomes: [verified]", "outcomes: [verifed]"),
            "13: /cases/0/expect/outcomes/0: 'verifed' is not a reason code or allowed outcome "
            "(fix: did you mean 'verified'?)",
        ),
        (
            ('    images: ["ghcr.io/acme/app:1.0"]\n', ""),
            "11: /cases/0: a case needs exactly one of images, manifest and object",
        ),
        (("policy: policy.yaml", "policy: nope.yaml"), "3: /policy: the policy under test does not load"),
    ],
)
def test_mistakes_are_named_by_line_and_pointer(
    change: tuple[str, str], expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old, new = change
    assert old in GOOD
    status, lines, _ = lint(tmp_path, GOOD.replace(old, new, 1), capsys)
    assert status == 1
    assert any(line.startswith(expected) for line in lines), lines


def test_a_tag_names_one_digest(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    other = "sha256:" + "2" * 64
    text = GOOD.replace("cases:", f'  - {{name: ghcr.io/acme/app, digest: "{other}", tags: ["1.0"]}}\ncases:')
    status, lines, _ = lint(tmp_path, text, capsys)
    assert status == 1
    assert f"10: /images/1/tags/0: tag '1.0' of ghcr.io/acme/app already names {DIGEST} (line 7)" in lines[0]


def test_declared_quarantine_entries_need_a_list_in_the_policy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = GOOD.replace("cases:", f'quarantine: [{{digest: "{DIGEST}", reason: CVE}}]\ncases:')
    status, lines, _ = lint(tmp_path, text, capsys)
    assert status == 1
    assert lines[0].startswith("10: /quarantine: the policy 'p' reads no quarantine lists")


def test_a_key_the_policy_lacks_is_a_warning_with_a_suggestion(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, lines, err = lint(tmp_path, GOOD.replace("- key: release", "- key: relase"), capsys)
    assert (status, lines) == (0, [])
    assert (
        f"warning: {tmp_path / 's.test.yaml'}:9: /images/0/signatures/0/key: key 'relase' is not in the "
        "policy's spec.trust.keys: the signature verifies for no signer (fix: did you mean 'release'? (a "
        "name the policy lacks stands for one it does not trust))"
    ) in err
    status, lines, err = lint(tmp_path, GOOD.replace("- key: release", "- key: someone-else"), capsys)
    assert (status, lines) == (0, []) and "warning: " not in err, err


def test_test_refuses_a_suite_that_does_not_lint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lint(tmp_path, GOOD.replace("images:", "imags:", 1), capsys)
    assert main(["test", str(tmp_path / "s.test.yaml")]) == 2
    err = capsys.readouterr().err
    assert "s.test.yaml:4: /imags: unknown field 'imags' (fix: did you mean 'images'?)" in err


def test_lint_names_the_kinds_it_knows(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, lines, _ = lint(tmp_path, "apiVersion: imagegate.dev/v1alpha1\nkind: PolicyTests\n", capsys)
    assert status == 1
    assert "expected ImagePolicy, Quarantine or PolicyTest" in lines[0]
