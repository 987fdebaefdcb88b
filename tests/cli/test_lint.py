"""``imagegate lint``: output format, stdout/stderr split and exit codes."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.cli import imagegate
from webhook.cli import lint

REPO = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).parents[1] / "policy" / "fixtures"
LINE = re.compile(
    r"^(?P<file>[^:]+):(?P<line>[0-9]+): (?P<pointer>/[^:]*): (?P<message>.+) \(fix: (?P<hint>.+)\)$"
)


def _run(*files: str | Path) -> int:
    parser = argparse.ArgumentParser(prog="imagegate")
    lint.register(parser.add_subparsers())
    args = parser.parse_args(["lint", *map(str, files)])
    return int(args.func(args))


def _policy(tmp_path: Path, spec: str) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(
        f"apiVersion: imagegate.dev/v1alpha1\nkind: ImagePolicy\nmetadata: {{name: t}}\nspec:\n{spec}"
    )
    return path


def test_clean_files_exit_0_and_print_nothing_on_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    examples = sorted((REPO / "policies" / "examples").glob("*.yaml"))
    suites = sorted((REPO / "policies" / "tests").glob("*.test.yaml"))
    code = _run(REPO / "policies" / "default.yaml", *examples, *suites)
    out, err = capsys.readouterr()
    assert code == 0
    assert out == ""
    assert f"{1 + len(examples) + len(suites)} file(s), 0 error(s), 0 warning(s)" in err


def test_errors_go_to_stdout_one_line_each_and_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _policy(tmp_path, "  mode: enforcing\n  registries: {allow: [ghcr.io], insecure: [other.io]}\n")
    code = _run(path)
    out, err = capsys.readouterr()
    assert code == 1
    lines = out.splitlines()
    assert len(lines) == 2
    parsed = [LINE.match(line) for line in lines]
    assert all(parsed), lines
    first, second = (m.groupdict() for m in parsed if m)
    assert first == {
        "file": str(path),
        "line": "5",
        "pointer": "/spec/mode",
        "message": "'enforcing' is not one of enforce, warn, audit",
        "hint": "did you mean 'enforce'?",
    }
    assert (second["line"], second["pointer"]) == ("6", "/spec/registries/insecure/0")
    assert "2 error(s)" in err
    assert "warning:" not in err


def test_warnings_go_to_stderr_and_keep_exit_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _policy(
        tmp_path,
        "  registries: {allow: [ghcr.io]}\n"
        "  exemptions:\n    - {images: [ghcr.io/a/b], expires: '2020-01-01T00:00:00Z', reason: INC-1}\n",
    )
    code = _run(path)
    out, err = capsys.readouterr()
    assert code == 0
    assert out == ""
    warnings = [line for line in err.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 1
    match = LINE.match(warnings[0].removeprefix("warning: "))
    assert match
    assert match["line"] == "7"
    assert match["pointer"] == "/spec/exemptions/0/expires"
    assert "expired" in match["message"]


def test_warnings_do_not_hide_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _policy(
        tmp_path,
        "  registries: {allow: [ghcr.io]}\n  rules: [{name: a, images: ['ghcr.io/acme**']}]\n"
        "  exemptions:\n    - {images: [ghcr.io/a/b], expires: '2020-01-01T00:00:00Z', reason: INC-1}\n",
    )
    assert _run(path) == 1
    out, err = capsys.readouterr()
    assert "/spec/rules/0/images/0" in out
    assert "warning: " in err
    assert not any(line.startswith("warning") for line in out.splitlines())


def test_no_files_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert _run() == 2
    assert "no FILE" in capsys.readouterr().err


def test_an_unreadable_file_exits_2_even_with_errors_elsewhere(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = _policy(tmp_path, "  mode: nope\n")
    code = _run(bad, tmp_path / "missing.yaml", tmp_path)
    out, err = capsys.readouterr()
    assert code == 2
    assert "/spec/mode" in out  # the readable file is still linted
    assert f"{tmp_path / 'missing.yaml'}: cannot read: No such file or directory" in err
    assert f"{tmp_path}: cannot read: is a directory" in err


def test_problems_in_a_referenced_quarantine_list_name_that_file(capsys: pytest.CaptureFixture[str]) -> None:
    fixture = FIXTURES / "invalid" / "semantic-invalid-quarantine-file.yaml"
    assert _run(fixture) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"{fixture}:10: /spec/quarantine/files/0: ")
    assert out[1].startswith(f"{fixture.parent / '../quarantine/invalid.yaml'}:5: /entries/1/digest: ")


def test_the_installed_command_line_runs_lint() -> None:
    # Through the real entry point, as an operator would run it.
    done = subprocess.run(
        [sys.executable, "-m", "webhook", "lint", str(FIXTURES / "invalid" / "semantic-duplicate-rule.yaml")],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr
    assert ":10: /spec/rules/1/name: duplicate rule name 'a'" in done.stdout


@pytest.mark.parametrize(
    ("glob", "also"),
    [
        ("registry.acme.com*/debug/**", "'registry.acme.com.attacker.example'"),
        ("*/acme/debug", "any registry host"),
        ("**/debug", "any registry host"),
        ("registry.*.com/acme/**", "'registry.attacker.com'"),
        ("*.acme.com/acme/**", "'attacker.acme.com'"),
        ("registr?.acme.com/acme/**", "'registrx.acme.com'"),
    ],
)
def test_a_wildcard_in_the_host_part_of_an_image_glob_is_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], glob: str, also: str
) -> None:
    path = _policy(
        tmp_path,
        "  registries: {allow: [registry.acme.com]}\n"
        "  exemptions:\n"
        f"    - {{images: ['{glob}'], expires: '2999-01-01T00:00:00Z', reason: INC-1}}\n"
        "  rules:\n"
        f"    - {{name: r, images: [registry.acme.com/ok/**, '{glob}']}}\n",
    )
    assert _run(path) == 0
    out, err = capsys.readouterr()
    assert out == ""
    warnings = [line.removeprefix("warning: ") for line in err.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 2, err
    parsed = [LINE.match(line) for line in warnings]
    assert all(parsed), warnings
    assert [(m["line"], m["pointer"]) for m in parsed if m] == [
        ("7", "/spec/exemptions/0/images/0"),
        ("9", "/spec/rules/0/images/1"),
    ]
    for match in parsed:
        assert match is not None
        assert f"{glob!r} has a wildcard in its registry host" in match["message"]
        assert also in match["message"]
        assert "registries.allow" in match["hint"]


def test_an_exemption_for_a_registry_the_allowlist_refuses_is_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    digest = "sha256:" + "a" * 64
    path = _policy(
        tmp_path,
        "  registries: {allow: [ghcr.io, docker.io]}\n"
        "  exemptions:\n"
        f"    - {{images: ['quay.io/acme/tool@{digest}', ghcr.io/acme/tool, nginx, 'index.docker.io/x/y'],"
        " expires: '2999-01-01T00:00:00Z', reason: INC-1}\n",
    )
    assert _run(path) == 0
    out, err = capsys.readouterr()
    assert out == ""
    warnings = [line.removeprefix("warning: ") for line in err.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 1, err
    match = LINE.match(warnings[0])
    assert match and (match["line"], match["pointer"]) == ("7", "/spec/exemptions/0/images/0")
    assert "registry 'quay.io' is not in registries.allow" in match["message"]
    assert "never applies" in match["message"]


def _key_signer_policy(tmp_path: Path, key: str, *, roots: bool) -> Path:
    trust = f"    keys: [{{name: release, file: {FIXTURES / 'trust' / 'release.pub'}}}]\n"
    if roots:
        trust += f"    roots: [{{name: pg, file: {FIXTURES / 'trust' / 'trusted_root.json'}}}]\n"
    rules = (
        "  rules:\n"
        "    - name: signed\n"
        "      images: ['ghcr.io/acme/**']\n"
        "      signatures:\n"
        "        signers:\n"
        f"          - key: {key}\n"
    )
    if roots:
        rules += (
            "          - keyless: {root: pg, issuer: 'https://accounts.google.com', subject: a@example.com}\n"
        )
    return _policy(tmp_path, "  registries: {allow: [ghcr.io]}\n  trust:\n" + trust + rules)


def _only_warning(path: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, str]:
    """Lint ``path``: exit 0, nothing on stdout, exactly one warning line on stderr (parsed)."""
    code = _run(path)
    out, err = capsys.readouterr()
    assert code == 0 and out == ""
    found = [
        LINE.match(line.removeprefix("warning: ")) for line in err.splitlines() if line.startswith("warning")
    ]
    assert len(found) == 1 and found[0], err
    return found[0].groupdict()


def test_require_tlog_false_is_a_warning_with_its_line_and_pointer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    warning = _only_warning(
        _key_signer_policy(tmp_path, "{name: release, requireTlog: false}", roots=True), capsys
    )
    assert warning["line"] == "14"
    assert warning["pointer"] == "/spec/rules/0/signatures/signers/0/key/requireTlog"
    assert "no transparency log has recorded" in warning["message"]
    assert "air-gapped" in warning["hint"]


def test_a_key_signer_that_needs_log_evidence_no_root_can_give_is_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    warning = _only_warning(_key_signer_policy(tmp_path, "{name: release}", roots=False), capsys)
    assert warning["pointer"] == "/spec/rules/0/signatures/signers/0/key"
    assert "requireTlog defaults to true" in warning["message"]
    assert "every signature by this key is refused" in warning["message"]


@pytest.mark.parametrize("key", ["{name: release}", "{name: release, requireTlog: true}"])
def test_a_key_signer_with_log_evidence_required_and_a_root_lints_clean(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], key: str
) -> None:
    from datetime import UTC, datetime

    from webhook.policy.loader import load_policy

    path = _key_signer_policy(tmp_path, key, roots=True)
    assert _run(path) == 0
    _, err = capsys.readouterr()
    assert "0 error(s), 0 warning(s)" in err
    rule = load_policy(path, now=datetime.now(UTC)).policy.rules[0]
    assert rule.signatures is not None
    assert [getattr(s, "require_tlog", None) for s in rule.signatures.signers] == [True, None]


def test_a_root_that_only_gives_key_signers_their_log_keys_is_used(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Key signers are checked against the Rekor keys of every trust root: such a root is not unused.
    path = _policy(
        tmp_path,
        "  registries: {allow: [ghcr.io]}\n"
        "  trust:\n"
        f"    keys: [{{name: release, file: {FIXTURES / 'trust' / 'release.pub'}}}]\n"
        f"    roots: [{{name: pg, file: {FIXTURES / 'trust' / 'trusted_root.json'}}}]\n"
        "  rules:\n"
        "    - name: signed\n"
        "      images: ['ghcr.io/acme/**']\n"
        "      signatures: {signers: [{key: {name: release}}]}\n",
    )
    assert _run(path) == 0
    _, err = capsys.readouterr()
    assert "0 error(s), 0 warning(s)" in err, err


def _lint_stdin(text: str, *argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return imagegate("lint", *argv, stdin=text, cwd=cwd)


def test_dash_lints_stdin_as_evaluate_reads_it(tmp_path: Path) -> None:
    duplicate = FIXTURES / "invalid" / "semantic-duplicate-rule.yaml"
    from_file = _lint_stdin("", str(duplicate), cwd=REPO)
    from_stdin = _lint_stdin(duplicate.read_text(), "-", cwd=REPO)
    assert from_stdin.returncode == from_file.returncode == 1
    # The same problems, named <stdin>.
    assert from_stdin.stdout == from_file.stdout.replace(str(duplicate), "<stdin>")
    assert from_stdin.stdout.startswith("<stdin>:10: /spec/rules/1/name: duplicate rule name 'a'")

    # A policy read from stdin reads its relative paths from the current directory.
    (tmp_path / "quarantine.yaml").write_text(
        "apiVersion: imagegate.dev/v1alpha1\nkind: Quarantine\nentries: []\n"
    )
    policy = (
        "apiVersion: imagegate.dev/v1alpha1\nkind: ImagePolicy\nmetadata: {name: t}\n"
        "spec:\n  registries: {allow: [ghcr.io]}\n  quarantine: {files: [quarantine.yaml]}\n"
    )
    clean = _lint_stdin(policy, "-v", "-", str(tmp_path / "quarantine.yaml"), cwd=tmp_path)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "2 file(s), 0 error(s)" in clean.stderr
    missing = _lint_stdin(policy, "-", cwd=REPO)
    assert missing.returncode == 1
    assert missing.stdout.startswith("<stdin>:6: /spec/quarantine/files/0:")
