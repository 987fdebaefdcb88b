"""YAML parsing that remembers where each value was written: JSON pointer -> 1-based line.

One parse composes the node tree (which carries line marks) and constructs plain Python data from
the same nodes, so the data checked against the schema and the lines reported always agree.
Differences from ``yaml.safe_load``, all in the direction of clearer errors:

* timestamps stay strings: the policy schema checks RFC 3339 itself, and a datetime object would
  only yield a confusing "is not of type 'string'";
* duplicate mapping keys are problems (PyYAML silently keeps the last one, which can hide a rule);
* keys must be strings, there must be exactly one document, and alias expansion is capped so a
  "billion laughs" file cannot exhaust memory in the validator.
"""

from __future__ import annotations

__all__ = ["YamlDocument", "YamlIssue", "escape_pointer", "items", "obj", "parse_yaml", "strings"]

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml
from yaml.events import AliasEvent, CollectionStartEvent, ScalarEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

_Base: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_STR = "tag:yaml.org,2002:str"
_MERGE = "tag:yaml.org,2002:merge"
# Far above any real policy or quarantine list, far below what would hurt a 2-core machine.
_MAX_EXPANDED_NODES = 1_000_000


class _Loader(_Base):  # type: ignore[valid-type,misc]
    """Safe loader without the implicit timestamp type."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != _TIMESTAMP]
    for first, resolvers in _Base.yaml_implicit_resolvers.items()
}


@dataclass(frozen=True, slots=True)
class YamlIssue:
    """A problem found while parsing; ``line`` is 1-based (0 when unknown)."""

    line: int
    pointer: str
    message: str
    hint: str = ""


@dataclass(frozen=True, slots=True)
class YamlDocument:
    """Parsed data plus the line where each JSON pointer's value (or its key) was written."""

    data: object
    lines: Mapping[str, int]

    def line_of(self, pointer: str) -> int:
        """The line of ``pointer``, or of its nearest ancestor that was written in the file."""
        while True:
            line = self.lines.get(pointer)
            if line is not None:
                return line
            if not pointer:
                return 1
            pointer = pointer.rsplit("/", 1)[0]


def escape_pointer(token: str | int) -> str:
    """One RFC 6901 reference token."""
    return str(token).replace("~", "~0").replace("/", "~1")


def obj(value: object) -> dict[str, Any]:
    """``value`` when it is a mapping, else an empty one (data that failed the schema is walked too)."""
    return value if isinstance(value, dict) else {}


def items(value: object, pointer: str) -> list[tuple[str, Any]]:
    """``(pointer of the item, item)`` for each item of ``value`` when it is a list, else none."""
    return [(f"{pointer}/{i}", item) for i, item in enumerate(value)] if isinstance(value, list) else []


def strings(value: object, pointer: str) -> list[tuple[str, str]]:
    """:func:`items` that are strings."""
    return [(p, item) for p, item in items(value, pointer) if isinstance(item, str)]


def parse_yaml(text: str) -> tuple[YamlDocument | None, tuple[YamlIssue, ...]]:
    """Parse one YAML document.

    Returns the document (None when it cannot be used at all) and the issues found. Issues such as
    duplicate keys come with a usable document, so a caller can go on and report more problems.
    """
    try:
        written = _written_values(text)
    except yaml.MarkedYAMLError as error:
        return None, (_syntax_issue(error),)
    except yaml.YAMLError as error:
        return None, (YamlIssue(0, "", f"YAML error: {error}", "fix the YAML syntax"),)
    if written > _MAX_EXPANDED_NODES:
        return None, (_too_large(),)
    loader = _Loader(text)
    try:
        try:
            node = loader.get_single_node()
        except yaml.MarkedYAMLError as error:
            return None, (_syntax_issue(error),)
        except yaml.YAMLError as error:
            return None, (YamlIssue(0, "", f"YAML error: {error}", "fix the YAML syntax"),)
        if node is None:
            return None, (YamlIssue(1, "", "the file holds no YAML document", "write the document"),)
        issues: list[YamlIssue] = []
        lines: dict[str, int] = {"": node.start_mark.line + 1}
        try:
            size = _expanded_size(node, {})
            if size > _MAX_EXPANDED_NODES:
                return None, (_too_large(),)
            _walk(node, "", lines=lines, issues=issues, seen=set())
            data = loader.construct_document(node)
        except RecursionError:
            return None, (YamlIssue(1, "", "the document is nested too deeply", "flatten the document"),)
        except yaml.MarkedYAMLError as error:
            return None, (*issues, _syntax_issue(error))
        return YamlDocument(data=data, lines=lines), tuple(issues)
    finally:
        loader.dispose()


def _written_values(text: str) -> int:
    """How many values are written in ``text``, counted from parser events (one past the cap at most).

    Composing builds a node object with two marks per value (about 400 bytes each): counting first,
    in constant memory, keeps a huge file from costing gigabytes before the cap could be checked.
    """
    loader = _Loader(text)
    count = 0
    try:
        while count <= _MAX_EXPANDED_NODES and loader.check_event():
            if isinstance(loader.get_event(), (ScalarEvent, AliasEvent, CollectionStartEvent)):
                count += 1
    finally:
        loader.dispose()
    return count


def _too_large() -> YamlIssue:
    return YamlIssue(
        1,
        "",
        f"the document has more than {_MAX_EXPANDED_NODES} values (counting those repeated through aliases)",
        "split the file, or use fewer nested YAML aliases",
    )


def _syntax_issue(error: yaml.MarkedYAMLError) -> YamlIssue:
    mark = error.problem_mark or error.context_mark
    line = mark.line + 1 if mark is not None else 0
    what = " ".join(part for part in (error.context, error.problem) if part) or str(error)
    if error.context_mark is not None and mark is not None and error.context_mark.line != mark.line:
        what += f" (it started at line {error.context_mark.line + 1})"
    return YamlIssue(line, "", f"YAML syntax error: {what}", "fix the YAML syntax at this line")


def _expanded_size(node: Node, memo: dict[int, int]) -> int:
    # Aliases share node objects: count each shared subtree once per use, memoised by identity.
    known = memo.get(id(node))
    if known is not None:
        return known
    size = 1
    if isinstance(node, MappingNode):
        memo[id(node)] = size  # a recursive alias counts once instead of looping
        for key, value in node.value:
            size += _expanded_size(key, memo) + _expanded_size(value, memo)
    elif isinstance(node, SequenceNode):
        memo[id(node)] = size
        for item in node.value:
            size += _expanded_size(item, memo)
    memo[id(node)] = size
    return size


def _walk(
    node: Node, pointer: str, *, lines: dict[str, int], issues: list[YamlIssue], seen: set[int]
) -> None:
    if isinstance(node, ScalarNode) or id(node) in seen:
        # A node reached again through an alias keeps the lines of its first use; pointers below
        # the alias fall back to the alias's own line.
        return
    seen.add(id(node))
    if isinstance(node, SequenceNode):
        for index, item in enumerate(node.value):
            child = f"{pointer}/{index}"
            lines[child] = item.start_mark.line + 1
            _walk(item, child, lines=lines, issues=issues, seen=seen)
    elif isinstance(node, MappingNode):
        first_line: dict[str, int] = {}
        for key, value in node.value:
            if key.tag == _MERGE:
                continue
            line = key.start_mark.line + 1
            if not isinstance(key, ScalarNode) or key.tag != _STR:
                shown = key.value if isinstance(key, ScalarNode) else "a collection"
                issues.append(
                    YamlIssue(line, pointer, f"mapping key {shown!r} is not a string", "quote the key")
                )
                continue
            child = f"{pointer}/{escape_pointer(key.value)}"
            if key.value in first_line:
                issues.append(
                    YamlIssue(
                        line,
                        child,
                        f"duplicate key {key.value!r} (first written at line {first_line[key.value]})",
                        "remove or merge one of the two keys: YAML would silently keep only the last",
                    )
                )
                continue
            first_line[key.value] = line
            lines[child] = line
            _walk(value, child, lines=lines, issues=issues, seen=seen)
