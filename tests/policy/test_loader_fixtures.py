"""One failing fixture per validation rule: each names its expected pointer and message, and marks its line.

A fixture under ``fixtures/invalid/`` starts with ``# expect: POINTER | MESSAGE PART``; the offending line
carries the comment ``# <- error``. Optional headers: ``# expect-file: PATH`` (the problem is reported
in that file, relative to the fixture), ``# errors: N`` (how many errors in all; default 1) and
``# found-by: serving`` (only the serving path's check finds it: ``imagegate lint`` reports it, the
pure loader cannot, and the server refuses to build the policy).

Fixtures are linted as ``imagegate lint`` lints them (:func:`webhook.wiring.lint_policy_file`).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from webhook.errors import ConfigError
from webhook.policy.loader import lint_file, load_policy, load_quarantine
from webhook.settings import Settings
from webhook.wiring import build_services, lint_policy_file

FIXTURES = Path(__file__).parent / "fixtures"
INVALID = sorted((FIXTURES / "invalid").glob("*.yaml"))
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def _header(text: str, name: str) -> str | None:
    found = re.search(rf"^# {name}: (.*)$", text, re.MULTILINE)
    return found.group(1).replace("# <- error", "").strip() if found else None


def _marked_line(path: Path) -> int:
    lines = [i for i, line in enumerate(path.read_text().splitlines(), 1) if "# <- error" in line]
    assert len(lines) == 1, f"{path} must mark exactly one line with '# <- error'"
    return lines[0]


def test_there_is_a_fixture_per_rule() -> None:
    assert len(INVALID) >= 55


@pytest.mark.parametrize("fixture", INVALID, ids=lambda p: p.stem)
def test_invalid_fixture_reports_its_problem(fixture: Path) -> None:
    text = fixture.read_text()
    expect = _header(text, "expect")
    assert expect, f"{fixture} has no '# expect:' header"
    pointer, message = (part.strip() for part in expect.split("|", 1))
    where = fixture.parent / (_header(text, "expect-file") or fixture.name)
    errors_expected = int(_header(text, "errors") or 1)

    problems = lint_policy_file(fixture, now=NOW)
    errors = [p for p in problems if p.severity == "error"]

    matching = [
        p for p in errors if p.pointer == (pointer if pointer != "/" else "") and message in p.message
    ]
    assert matching, f"no error at {pointer} containing {message!r}; got:\n" + "\n".join(map(str, errors))
    problem = matching[0]
    assert Path(problem.file).resolve() == where.resolve()
    assert problem.line == _marked_line(where)
    assert problem.hint, "every error says how to fix it"
    assert len(errors) == errors_expected, "\n".join(map(str, errors))


def _found_by_serving(path: Path) -> bool:
    return _header(path.read_text(), "found-by") == "serving"


@pytest.mark.parametrize("fixture", [p for p in INVALID if _found_by_serving(p)], ids=lambda p: p.stem)
def test_what_only_the_serving_path_finds_is_refused_when_serving(fixture: Path) -> None:
    policy = load_policy(fixture, now=NOW).policy
    assert not [p for p in lint_file(fixture, now=NOW) if p.severity == "error"]
    with pytest.raises(ConfigError):
        build_services(policy, settings=Settings())


@pytest.mark.parametrize(
    "fixture",
    [p for p in INVALID if "kind: ImagePolicy" in p.read_text() and not _found_by_serving(p)],
    ids=lambda p: p.stem,
)
def test_load_policy_raises_with_the_same_problems(fixture: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_policy(fixture, now=NOW)
    linted = [p for p in lint_file(fixture, now=NOW) if p.severity == "error"]
    raised = [p for p in caught.value.problems if p.severity == "error"]
    assert raised == linted
    assert str(fixture) in caught.value.user_message
    assert f"{len(raised)} error(s)" in caught.value.user_message


@pytest.mark.parametrize(
    "fixture",
    [p for p in INVALID if p.stem.startswith("quarantine-")],
    ids=lambda p: p.stem,
)
def test_load_quarantine_raises(fixture: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_quarantine(fixture)
    assert [p for p in caught.value.problems if p.severity == "error"] == [
        p for p in lint_file(fixture, now=NOW) if p.severity == "error"
    ]


def test_a_policy_with_many_problems_reports_all_of_them_in_line_order(tmp_path: Path) -> None:
    policy = tmp_path / "many.yaml"
    policy.write_text(
        "apiVersion: imagegate.dev/v1alpha1\n"
        "kind: ImagePolicy\n"
        "metadata: {name: many}\n"
        "spec:\n"
        "  mode: strict\n"
        "  registries: {allow: [ghcr.io], insecure: [other.io]}\n"
        "  rules:\n"
        "    - {name: a, images: ['ghcr.io/acme**']}\n"
        "    - {name: a, images: ['ghcr.io/x/**'], namespaces: ['[a]']}\n"
    )
    problems = lint_file(policy, now=NOW)
    assert [(p.line, p.pointer) for p in problems] == [
        (5, "/spec/mode"),
        (6, "/spec/registries/insecure/0"),
        (8, "/spec/rules/0/images/0"),
        (9, "/spec/rules/1/name"),
        (9, "/spec/rules/1/namespaces/0"),
    ]
    assert all(p.severity == "error" and p.file == str(policy) for p in problems)
