"""policies/README.md, the policy reference, held to what it describes, so that it cannot rot:

* every property of the three JSON Schemas (walked through ``$ref``, ``items``, ``oneOf`` ... into
  ``$defs``) has a ``description`` in its schema and a row in the field table of its format in the
  reference, with its meaning, its default (the schema's, or "required") and an example; a row for a
  field the schema does not have fails too;
* the reason-code table lists exactly the reason codes of :mod:`webhook.reasons`, and the outcome table
  exactly the allowed outcomes;
* the complete examples (a YAML block right after ``<!-- checked: PATH -->``) lint clean with the real
  loader as the file PATH of a copy of ``policies/``, and complete test suites pass under ``imagegate
  test``;
* every command example marked ``<!-- checked: output -->`` prints exactly the output block after it,
  run with bash from a copy of the repository's ``policies/``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from webhook.cli import main
from webhook.policy.loader import lint_file, load_policy
from webhook.reasons import ALLOWED_OUTCOMES, Reason

REPO = Path(__file__).resolve().parents[2]
REFERENCE = REPO / "policies" / "README.md"
SCHEMAS = {
    "imagepolicy.schema.json": "The policy file",
    "quarantine.schema.json": "The quarantine list",
    "policytest.schema.json": "Policy test suites",
}
KINDS = {"ImagePolicy", "Quarantine", "PolicyTest"}
FIELD_TABLE = "| field | meaning | default | example |"
# The clock the complete examples are linted at (their exemptions expire after it).
EXAMPLES_NOW = datetime(2026, 12, 1, tzinfo=UTC)

# What the reference documents before the code has it, while that change is on its way in. Once the code
# has it, the entry must go (a test below says so): the reference then describes the code again.
AHEAD_CODES: frozenset[str] = frozenset()
AHEAD_FIELDS: Mapping[str, frozenset[str]] = {}  # schema file -> field paths
AHEAD_DEFAULTS: Mapping[str, Mapping[str, object]] = {}  # schema file -> {field path: default}


# -- the reference's text ----------------------------------------------------------------------------


def reference() -> str:
    return REFERENCE.read_text()


def section(title: str) -> str:
    """The text under ``## title`` up to the next ``## `` heading."""
    parts = re.split(r"^## ", reference(), flags=re.MULTILINE)
    found = [part for part in parts if part.split("\n", 1)[0].strip() == title]
    assert len(found) == 1, f"policies/README.md needs exactly one section '## {title}'"
    return found[0]


def cells(line: str) -> list[str]:
    """The cells of a Markdown table row (``\\|`` is a pipe inside a cell)."""
    inner = line.strip().removeprefix("|").removesuffix("|")
    return [cell.strip().replace("\\|", "|") for cell in re.split(r"(?<!\\)\|", inner)]


def table_rows(text: str, header: str) -> Iterator[list[str]]:
    """The rows of every table in ``text`` whose header row starts with ``header``."""
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if not line.startswith(header):
            continue
        for row in lines[index + 2 :]:
            if not row.startswith("|"):
                break
            yield cells(row)


def code_span(cell: str) -> str | None:
    """``x`` of a cell that is exactly one code span `` `x` ``."""
    found = re.fullmatch(r"`([^`]+)`", cell)
    return found[1] if found else None


def anchors(text: str) -> set[str]:
    """The anchors GitHub gives the headings of ``text``."""
    headings = re.findall(r"^#+ (.+)$", re.sub(r"^```.*?^```", "", text, flags=re.M | re.S), flags=re.M)
    return {re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-") for heading in headings}


def test_links_of_the_reference_lead_somewhere() -> None:
    for target in re.findall(r"\]\(([^)\s]+)\)", reference()):
        path, _, anchor = target.partition("#")
        document = (REFERENCE.parent / path).resolve() if path else REFERENCE
        assert document.exists(), f"policies/README.md links to {target}: no such file"
        if anchor:
            assert anchor in anchors(document.read_text()), (
                f"policies/README.md links to {target}: no such heading"
            )


# -- schema fields -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Field:
    """A property of a schema: its path (``spec.rules[].name``), own schema, default and whether required.

    A definition that holds properties and is referenced from several places (the signers of rules and
    of attestations) is documented once, under the name of the property that holds it:
    ``signers[].keyless.root``.
    """

    path: str
    schema: Mapping[str, Any]
    required: bool
    default: object


_NO_DEFAULT = object()


def schema_fields(name: str) -> dict[str, Field]:
    schema = json.loads((REPO / "policies" / name).read_text())
    defs: Mapping[str, Mapping[str, Any]] = schema.get("$defs", {})

    def target(ref: str) -> tuple[str, Mapping[str, Any]]:
        assert ref.startswith("#/$defs/"), f"{name}: only local $defs references are walked: {ref}"
        key = ref.removeprefix("#/$defs/")
        return key, defs[key]

    def has_properties(node: Mapping[str, Any], seen: frozenset[str] = frozenset()) -> bool:
        if "properties" in node:
            return True
        subs = [node[k] for k in ("items", "additionalProperties") if isinstance(node.get(k), dict)]
        subs += [s for k in ("oneOf", "anyOf", "allOf") for s in node.get(k, [])]
        if "$ref" in node:
            key, sub = target(node["$ref"])
            if key in seen:
                return False
            seen, subs = seen | {key}, [*subs, sub]
        return any(has_properties(sub, seen) for sub in subs)

    counts = Counter(re.findall(r'"\$ref":\s*"([^"]+)"', json.dumps(schema)))
    shared = {ref for ref, count in counts.items() if count > 1 and has_properties(target(ref)[1])}

    def default_of(node: Mapping[str, Any]) -> object:
        if "default" in node:
            return node["default"]
        if "$ref" in node:
            return default_of(target(node["$ref"])[1])
        return _NO_DEFAULT

    fields: dict[str, Field] = {}
    visited: set[str] = set()

    def walk(node: Mapping[str, Any], path: str, stack: frozenset[str]) -> None:
        if "$ref" in node:
            key, sub = target(node["$ref"])
            if key not in stack:
                visited.add(key)
                walk(sub, path.rsplit(".", 1)[-1] if node["$ref"] in shared else path, stack | {key})
        required = set(node.get("required", []))
        for prop, sub in node.get("properties", {}).items():
            child = f"{path}.{prop}" if path else prop
            fields.setdefault(child, Field(child, sub, prop in required, default_of(sub)))
            walk(sub, child, stack)
        if isinstance(node.get("items"), dict):
            walk(node["items"], f"{path}[]", stack)
        for key in ("additionalProperties", "patternProperties"):
            value = node.get(key)
            subs = [value] if key == "additionalProperties" else list((value or {}).values())
            for sub in subs:
                if isinstance(sub, dict):
                    walk(sub, f"{path}.*", stack)
        for key in ("oneOf", "anyOf", "allOf"):
            for sub in node.get(key, []):
                walk(sub, path, stack)

    walk(schema, "", frozenset())
    unreached = {key for key, sub in defs.items() if has_properties(sub)} - visited
    assert not unreached, f"{name}: $defs with properties that no field reaches: {sorted(unreached)}"
    return fields


def rendered(value: object) -> str:
    """A default as a policy author writes it in YAML: ``enforce``, ``[latest]``, ``['*']``, ``false``."""
    return str(yaml.safe_dump(value, default_flow_style=True)).strip().removesuffix("...").strip()


@pytest.mark.parametrize("name", SCHEMAS)
def test_every_schema_property_has_a_description(name: str) -> None:
    fields = schema_fields(name).values()
    missing = [f.path for f in fields if not str(f.schema.get("description", "")).strip()]
    assert not missing, f"{name}: give these properties a `description` (as in policies/README.md): {missing}"


@pytest.mark.parametrize("name", SCHEMAS)
def test_every_schema_property_is_documented_in_the_reference(name: str) -> None:
    fields = schema_fields(name)
    rows = list(table_rows(section(SCHEMAS[name]), FIELD_TABLE))
    documented = Counter(code_span(row[0]) for row in rows)
    missing = sorted(set(fields) - set(documented))
    assert not missing, (
        f"policies/README.md, section '{SCHEMAS[name]}': add a row ({FIELD_TABLE}) for {missing}"
    )
    unknown = sorted(set(documented) - set(fields) - AHEAD_FIELDS.get(name, frozenset()))
    assert not unknown, f"policies/README.md documents fields {name} does not have: {unknown}"
    twice = sorted(path for path, count in documented.items() if count > 1)
    assert not twice, f"policies/README.md documents these fields twice: {twice}"


@pytest.mark.parametrize("name", SCHEMAS)
def test_every_documented_field_has_meaning_default_and_example(name: str) -> None:
    fields = schema_fields(name)
    ahead = AHEAD_DEFAULTS.get(name, {})
    for row in table_rows(section(SCHEMAS[name]), FIELD_TABLE):
        path = code_span(row[0])
        assert path is not None and len(row) == 4 and all(row), f"incomplete row in policies/README.md: {row}"
        field = fields.get(path)
        if field is None:
            continue  # documented ahead of the schema (checked above)
        default = row[2]
        if field.required:
            assert default == "required", f"{path}: the schema requires it, the reference says {default!r}"
            continue
        assert not default.startswith("required"), f"{path}: not required by the schema"
        expected = ahead.get(path, field.default)
        if expected is not _NO_DEFAULT:
            assert f"`{rendered(expected)}`" in default, f"{path}: default is `{rendered(expected)}`"


def test_what_is_documented_ahead_of_the_code_is_not_in_it_yet() -> None:
    """Once the code has a change the reference describes ahead of it, the entry goes: it is not ahead."""
    landed = sorted(AHEAD_CODES & produced_reason_codes())
    for name, paths in AHEAD_FIELDS.items():
        landed += sorted(paths & set(schema_fields(name)))
    for name, defaults in AHEAD_DEFAULTS.items():
        fields = schema_fields(name)
        landed += sorted(p for p, value in defaults.items() if p in fields and fields[p].default == value)
    assert not landed, f"the code has these now: remove them from AHEAD_* in {Path(__file__).name}: {landed}"


# -- reason codes and outcomes -----------------------------------------------------------------------


def produced_reason_codes() -> set[str]:
    """Every reason code the webhook can put into an answer: the members of its one enumeration.

    Every producer names its code from :class:`webhook.reasons.Reason` (tests/test_reasons.py holds
    the source to that), so the enumeration is the whole list.
    """
    return {reason.value for reason in Reason}


def documented_codes() -> list[str]:
    return [code_span(row[0]) or row[0] for row in table_rows(section("Reason codes"), "| code |")]


def test_the_reason_code_table_lists_exactly_the_codes_the_webhook_produces() -> None:
    documented = documented_codes()
    assert len(documented) == len(set(documented)), "a reason code is listed twice"
    produced = produced_reason_codes()
    assert not produced - set(documented), (
        f"policies/README.md, '## Reason codes': document {sorted(produced - set(documented))}"
    )
    assert set(documented) - AHEAD_CODES == produced, (
        f"policies/README.md documents codes the enumeration lacks: {sorted(set(documented) - produced)}"
    )
    assert AHEAD_CODES <= set(documented)


def test_the_reason_code_table_says_when_which_mode_and_how_to_fix() -> None:
    for row in table_rows(section("Reason codes"), "| code |"):
        assert len(row) == 4 and all(row), f"incomplete row: {row}"


def test_the_outcome_table_lists_exactly_the_allowed_outcomes() -> None:
    rows = list(table_rows(section("Reason codes"), "| outcome |"))
    assert all(len(row) == 2 and all(row) for row in rows), rows
    outcomes = [code_span(row[0]) for row in rows]
    assert len(outcomes) == len(set(outcomes)) and set(outcomes) == ALLOWED_OUTCOMES, outcomes
    assert not ALLOWED_OUTCOMES & set(documented_codes())


# -- complete examples -------------------------------------------------------------------------------


def checked_files() -> dict[str, str]:
    """PATH -> content of every YAML block after ``<!-- checked: PATH -->``."""
    found = re.findall(r"^<!-- checked: (\S+) -->\n```yaml\n(.*?)^```$", reference(), flags=re.M | re.S)
    paths = [path for path, _ in found]
    assert len(paths) == len(set(paths)), f"two examples are checked as the same file: {paths}"
    return dict(found)


def _kind(text: str) -> object:
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError:
        return None
    return doc.get("kind") if isinstance(doc, dict) and "imagegate" in str(doc.get("apiVersion")) else None


def test_every_complete_document_in_the_reference_is_checked() -> None:
    blocks = re.findall(r"^```yaml\n(.*?)^```$", reference(), flags=re.M | re.S)
    complete = [block for block in blocks if _kind(block) in KINDS]
    checked = set(checked_files().values())
    unchecked = [block.splitlines()[:4] for block in complete if block not in checked]
    assert not unchecked, f"mark these complete documents with <!-- checked: PATH -->: {unchecked}"
    assert {_kind(text) for text in checked} == KINDS, "every kind needs a complete, checked example"


@pytest.fixture
def policies_copy(tmp_path: Path) -> Path:
    """A copy of the repository's ``policies/`` with the reference's checked examples written into it."""
    shutil.copytree(REPO / "policies", tmp_path / "policies")
    for relative, text in checked_files().items():
        assert relative.startswith("policies/"), f"checked examples live under policies/: {relative}"
        path = tmp_path / relative
        assert not path.exists(), f"{relative} exists in the repository: check the example under another name"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


@pytest.mark.parametrize("relative", sorted(checked_files()))
def test_complete_example_lints_clean_and_loads(relative: str, policies_copy: Path) -> None:
    path = policies_copy / relative
    text = path.read_text()
    kind = _kind(text)
    schema = json.loads((REPO / "policies" / f"{str(kind).lower()}.schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(yaml.safe_load(text))
    if kind == "PolicyTest":
        return  # run below
    problems = [str(problem) for problem in lint_file(path, now=EXAMPLES_NOW)]
    assert not problems, "\n".join(problems)
    if kind == "ImagePolicy":
        load_policy(path, now=EXAMPLES_NOW)


@pytest.mark.parametrize(
    "relative", sorted(p for p, text in checked_files().items() if _kind(text) == "PolicyTest")
)
def test_complete_test_suite_passes(
    relative: str, policies_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = policies_copy / relative
    cases = yaml.safe_load(path.read_text())["cases"]
    status = main(["test", str(path)])
    out = capsys.readouterr().out
    assert status == 0, out
    assert out.count("PASS ") == len(cases) and out.strip().endswith(f"{len(cases)} passed, 0 failed"), out


# -- command examples --------------------------------------------------------------------------------


def command_examples() -> list[tuple[str, str]]:
    """(script, output) of every ``sh`` block after ``<!-- checked: output -->`` and the block after it."""
    pattern = r"^<!-- checked: output -->\n```sh\n(.*?)^```\n```\n(.*?)^```$"
    return re.findall(pattern, reference(), flags=re.M | re.S)


def test_there_are_command_examples_for_lint_test_and_evaluate() -> None:
    scripts = "\n".join(script for script, _ in command_examples())
    for command in ("imagegate lint", "imagegate test", "imagegate evaluate"):
        assert command in scripts


@pytest.mark.parametrize(
    ("script", "output"), command_examples(), ids=[s.splitlines()[-1][:60] for s, _ in command_examples()]
)
def test_command_example_prints_what_the_reference_shows(script: str, output: str, tmp_path: Path) -> None:
    shutil.copytree(REPO / "policies", tmp_path / "policies")
    env = {
        **os.environ,
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]),
        # Interleave stdout and stderr as a terminal shows them.
        "PYTHONUNBUFFERED": "1",
    }
    result = subprocess.run(
        ["bash", "-c", "exec 2>&1\n" + script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.stdout == output
