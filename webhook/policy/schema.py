"""The JSON Schemas of policies, quarantine lists and test suites, and their errors in words an author reads.

The schemas live in ``webhook/policy/schema/`` (``policies/*.schema.json`` link to them for editors);
their validators are built once per process, on first use.

Their ``pattern`` regexes are ECMA-262, as JSON Schema says and as editors check them: there a final
``$`` matches only at the end of the value. Python's ``$`` also matches before a final newline, so the
validators here read a final ``$`` as ``\\Z``: a YAML block scalar such as ``latest\\n`` is refused, as
an editor refuses it, rather than linting clean and never equalling the tag or digest it names.
"""

from __future__ import annotations

__all__ = ["Kind", "schema_check", "translate", "validator"]

import difflib
import functools
import json
import re
from collections.abc import Iterator, Mapping
from importlib import resources
from typing import Any, Literal, cast

import jsonschema

from webhook._json import json_kind
from webhook.policy._yaml_lines import escape_pointer
from webhook.policy.report import Report

Kind = Literal["ImagePolicy", "Quarantine", "PolicyTest"]

_FILES: dict[str, str] = {
    "ImagePolicy": "imagepolicy.schema.json",
    "Quarantine": "quarantine.schema.json",
    "PolicyTest": "policytest.schema.json",
}


@functools.cache
def python_pattern(pattern: str) -> re.Pattern[str]:
    """A schema pattern (ECMA-262) as a Python regex that accepts the same values.

    The schemas' patterns differ from Python's only in ``$``: ECMA-262's matches at the end of the value
    alone, Python's also before a final newline, where ``\\Z`` is the end alone. A ``$`` anywhere but at
    the end of a pattern is refused rather than guessed at (the schemas have none).
    """
    body = pattern[:-1] if pattern.endswith("$") and not pattern.endswith("\\$") else None
    unanchored = pattern if body is None else body
    if re.search(r"(?<!\\)\$", unanchored):
        raise ValueError(f"schema pattern {pattern!r}: '$' is read only at its end")
    return re.compile(unanchored if body is None else body + r"\Z")


def _pattern(
    checker: jsonschema.protocols.Validator, pattern: str, instance: object, schema: object
) -> Iterator[jsonschema.ValidationError]:
    if isinstance(instance, str) and not python_pattern(pattern).search(instance):
        yield jsonschema.ValidationError(f"{instance!r} does not match {pattern!r}")


#: Draft 2020-12 with ``pattern`` read as ECMA-262 reads it (see :func:`python_pattern`).
_Draft202012 = jsonschema.validators.extend(  # type: ignore[no-untyped-call]
    jsonschema.Draft202012Validator, validators={"pattern": _pattern}
)


@functools.cache
def validator(kind: Kind) -> jsonschema.protocols.Validator:
    # Built once per process on first use (building and checking a 2020-12 schema is the costly part).
    name = _FILES[kind]
    text = resources.files("webhook.policy").joinpath("schema").joinpath(name).read_text(encoding="utf-8")
    schema = json.loads(text)
    return cast(jsonschema.protocols.Validator, _Draft202012(schema))


def schema_check(kind: Kind, data: object, report: Report) -> None:
    errors = sorted(
        validator(kind).iter_errors(cast(Any, data)), key=lambda e: [str(p) for p in e.absolute_path]
    )
    for error in errors:
        for pointer, message, hint in translate(error):
            report.error(pointer, message, hint)


_JSON_TYPES = {
    "string": "a string",
    "array": "a list",
    "object": "a mapping",
    "integer": "an integer",
    "boolean": "true or false",
    "number": "a number",
    "null": "empty",
}


_YAML_READ_AS = {"boolean": "a boolean", "integer": "a number", "number": "a number", "null": "empty (null)"}


def _json_type(value: object) -> str:
    """JSON Schema's name for a value's type: like :func:`json_kind`, with integers apart."""
    if isinstance(value, int) and not isinstance(value, bool):
        return "integer"
    return json_kind(value)


def translate(error: jsonschema.ValidationError) -> Iterator[tuple[str, str, str]]:
    """Schema error -> (pointer, message, hint), in words a policy author understands."""
    pointer = "".join(f"/{escape_pointer(p)}" for p in error.absolute_path)
    schema: Mapping[str, Any] = error.schema if isinstance(error.schema, Mapping) else {}
    keyword = str(error.validator)
    value: Any = error.validator_value
    instance: Any = error.instance
    custom = schema.get("x-messages", {}).get(keyword)
    hint = str(schema.get("x-hint", ""))
    if custom:
        yield pointer, str(custom).replace("{value}", repr(instance)), hint
    elif keyword == "additionalProperties" and isinstance(instance, dict):
        known = list(schema.get("properties", {}))
        # Keys that are not strings were already reported by the YAML layer, at their own line.
        for extra in sorted(k for k in set(instance) - set(known) if isinstance(k, str)):
            close = difflib.get_close_matches(str(extra), known, n=1)
            fix = f"did you mean {close[0]!r}?" if close else f"allowed here: {', '.join(known)}"
            yield f"{pointer}/{escape_pointer(extra)}", f"unknown field {extra!r}", fix
    elif keyword == "required" and isinstance(instance, dict):
        for missing in (r for r in value if r not in instance):
            yield pointer, f"missing required field {missing!r}", f"add `{missing}:`"
    elif keyword == "type":
        expected = " or ".join(_JSON_TYPES.get(t, t) for t in ([value] if isinstance(value, str) else value))
        got = _json_type(instance)
        fix = hint
        if value == "string" and got in _YAML_READ_AS:
            fix = f"put the value in quotes: YAML read it as {_YAML_READ_AS[got]}"
        elif value == "array" and got != "array":
            fix = "write a list, e.g. [value] or one '- value' per line"
        shown = _YAML_READ_AS.get(got) or _JSON_TYPES.get(got, got)
        yield pointer, f"must be {expected}, not {shown}", fix
    elif keyword == "const":
        yield pointer, f"must be {value!r}, not {instance!r}", hint or f"write {value!r}"
    elif keyword == "enum":
        choices = [str(c) for c in value]
        close = difflib.get_close_matches(str(instance), choices, n=1)
        fix = f"did you mean {close[0]!r}?" if close else hint or f"use one of {', '.join(choices)}"
        yield pointer, f"{instance!r} is not one of {', '.join(choices)}", fix
    elif keyword == "pattern":
        yield pointer, f"{instance!r} is not valid here", hint
    elif keyword == "minLength":
        yield pointer, "must not be empty" if value == 1 else f"must be at least {value} characters", hint
    elif keyword == "maxLength":
        yield pointer, f"must be at most {value} characters", hint
    elif keyword == "minItems":
        yield (
            pointer,
            "must list at least one entry" if value == 1 else f"must list at least {value} entries",
            hint,
        )
    elif keyword == "minProperties":
        yield pointer, "must not be empty", hint or "remove it or fill it in"
    elif keyword == "minimum":
        yield pointer, f"must be at least {value}, not {instance!r}", hint
    else:
        yield pointer, error.message, hint
