"""Every shipped policy, quarantine list and policy test suite names its JSON Schema in a modeline
(``# yaml-language-server: $schema=...``), so editors validate and complete it, and it validates."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import jsonschema
import pytest
import yaml

from webhook.errors import ConfigError
from webhook.policy.loader import load_suite

REPO = Path(__file__).resolve().parents[2]
SCHEMAS = {
    "ImagePolicy": REPO / "policies" / "imagepolicy.schema.json",
    "Quarantine": REPO / "policies" / "quarantine.schema.json",
    "PolicyTest": REPO / "policies" / "policytest.schema.json",
}
MODELINE = re.compile(r"\A# yaml-language-server: \$schema=(?P<path>\S+)\n")


def shipped() -> list[Path]:
    # deploy/chart holds Go templates, and links to the deploy/base files checked here.
    chart = REPO / "deploy" / "chart"
    files = [*(REPO / "policies").rglob("*.yaml"), *(REPO / "deploy").rglob("*.yaml")]
    files = [path for path in files if chart not in path.parents]
    found = []
    for path in sorted(files):
        doc = next(yaml.safe_load_all(path.read_text()), None)
        if (
            isinstance(doc, dict)
            and doc.get("kind") in SCHEMAS
            and doc.get("apiVersion", "").startswith("imagegate.")
        ):
            found.append(path)
    return found


def test_every_kind_is_shipped() -> None:
    kinds = {yaml.safe_load(p.read_text())["kind"] for p in shipped()}
    assert kinds == set(SCHEMAS)
    assert REPO / "deploy" / "base" / "policy.yaml" in shipped()


@pytest.mark.parametrize("path", shipped(), ids=lambda p: str(p.relative_to(REPO)))
def test_modeline_names_the_schema_of_the_files_kind(path: Path) -> None:
    text = path.read_text()
    match = MODELINE.match(text)
    assert match, f"{path}: the first line must be '# yaml-language-server: $schema=<relative path>'"
    doc = yaml.safe_load(text)
    assert (path.parent / match["path"]).resolve() == SCHEMAS[doc["kind"]].resolve()
    schema = json.loads(SCHEMAS[doc["kind"]].read_text())
    jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker()).validate(doc)


def test_the_runner_reads_suites_with_the_shipped_schema() -> None:
    schema = json.loads(SCHEMAS["PolicyTest"].read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    packaged = REPO / "webhook" / "policy" / "schema" / "policytest.schema.json"
    assert SCHEMAS["PolicyTest"].resolve() == packaged.resolve()


@pytest.mark.parametrize(
    "case",
    [
        {"name": "two inputs", "images": ["a"], "manifest": "m.yaml", "expect": {"allowed": True}},
        {"name": "no input", "expect": {"allowed": True}},
        {"name": "no decision", "images": ["a"], "expect": {}},
        {"name": "typo", "images": ["a"], "expect": {"allowed": True, "outcome": ["x"]}},
    ],
)
def test_policy_test_schema_rejects_what_the_runner_rejects(case: dict[str, object], tmp_path: Path) -> None:
    suite = {
        "apiVersion": "imagegate.dev/v1alpha1",
        "kind": "PolicyTest",
        "policy": "p.yaml",
        "cases": [case],
    }
    schema = json.loads(SCHEMAS["PolicyTest"].read_text())
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(suite, schema)
    (tmp_path / "p.yaml").write_text("apiVersion: imagegate.dev/v1alpha1\nkind: ImagePolicy\nspec: {}\n")
    path = tmp_path / "suite.test.yaml"
    path.write_text(yaml.safe_dump(suite))
    with pytest.raises(ConfigError) as raised:
        load_suite(path, now=datetime.now(UTC))
    assert any(p.pointer.startswith("/cases/0") for p in raised.value.problems), raised.value.problems
