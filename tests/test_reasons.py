"""The reason codes have one home: every producer names its code from :mod:`webhook.reasons`, and the table
in that module's docstring says truly where each code is decided.

The policy reference's table of codes is held to the same enumeration in test_policy_reference.py.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import webhook.reasons
from webhook.reasons import ALLOWED_OUTCOMES, Allowed, Reason

PACKAGE = Path(webhook.reasons.__file__).resolve().parent


def modules() -> Iterator[tuple[str, ast.Module]]:
    """(dotted module name, syntax tree) of every module of the package."""
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        yield name, ast.parse(path.read_text(), filename=str(path))


def code_expressions(tree: ast.Module) -> Iterator[tuple[str, ast.expr]]:
    """(what, expression) for every place a reason code is made or passed on.

    The first argument of ``Finding(...)``; every ``code=`` and ``codes=`` keyword argument
    (``Finding``, ``RegistryError``, ``VerificationFailed``, ``error_response``, the verifier's
    requirements); and the default of a parameter named ``code``.
    """
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            called = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            if called == "Finding" and node.args:
                yield "Finding", node.args[0]
            yield from ((f"{called}({k.arg}=)", k.value) for k in node.keywords if k.arg in ("code", "codes"))
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            arguments = node.args
            positional = [*arguments.posonlyargs, *arguments.args]
            defaulted = positional[len(positional) - len(arguments.defaults) :]
            pairs = [*zip(defaulted, arguments.defaults, strict=True)]
            pairs += [(a, d) for a, d in zip(arguments.kwonlyargs, arguments.kw_defaults, strict=True) if d]
            yield from ((f"default of {node.name}(code)", d) for a, d in pairs if a.arg == "code")


def leaves(expr: ast.expr) -> Iterator[ast.expr]:
    if isinstance(expr, ast.Tuple | ast.List | ast.Set):
        for element in expr.elts:
            yield from leaves(element)
    elif isinstance(expr, ast.IfExp):
        yield from leaves(expr.body)
        yield from leaves(expr.orelse)
    else:
        yield expr


def member(expr: ast.expr) -> Reason | None:
    """The member an expression names (``Reason.TAG_DENIED``), or None."""
    if isinstance(expr, ast.Attribute) and isinstance(expr.value, ast.Name) and expr.value.id == "Reason":
        return Reason[expr.attr]
    return None


def test_every_producer_names_its_code_from_the_enumeration() -> None:
    named: set[Reason] = set()
    kinds: set[str] = set()
    wrong: list[str] = []
    for module, tree in modules():
        for what, expr in code_expressions(tree):
            kinds.add(what.split("(")[0])
            if what.startswith("default of"):
                wrong.append(f"{module}: {what}: a code is never defaulted, its producer names it")
                continue
            for leaf in leaves(expr):
                found = member(leaf)
                if found is not None:
                    named.add(found)
                elif isinstance(leaf, ast.Constant):
                    wrong.append(f"{module}: {what}: {leaf.value!r} is not named from webhook.reasons.Reason")
    assert not wrong, "\n".join(wrong)
    # A guard on the scan itself: it sees every kind of producer, and codes of every layer.
    assert {"Finding", "RegistryError", "VerificationFailed", "error_response"} <= kinds, kinds
    assert {Reason.TAG_DENIED, Reason.DIGEST_MISMATCH, Reason.PROVENANCE_MISMATCH} <= named
    assert {Reason.INTERNAL_ERROR, Reason.UNSIGNED, Reason.ATTESTATION_MISSING} <= named


def naming_modules() -> dict[Reason, set[str]]:
    """Reason -> the modules whose code names it, type annotations aside (``Literal[Reason.X]``)."""
    found: dict[Reason, set[str]] = {}
    for module, tree in modules():
        if module == "webhook.reasons":
            continue
        annotations = {
            id(node)
            for top in ast.walk(tree)
            for annotation in _annotations(top)
            for node in ast.walk(annotation)
        }
        for node in ast.walk(tree):
            reason = member(node) if isinstance(node, ast.expr) and id(node) not in annotations else None
            if reason is not None:
                found.setdefault(reason, set()).add(module)
    return found


def _annotations(node: ast.AST) -> Iterator[ast.expr]:
    if isinstance(node, ast.AnnAssign):
        yield node.annotation
        if isinstance(node.annotation, ast.Name) and node.annotation.id == "TypeAlias" and node.value:
            yield node.value
    elif isinstance(node, ast.arg) and node.annotation is not None:
        yield node.annotation
    elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.returns is not None:
        yield node.returns


def documented_modules() -> dict[Reason, set[str]]:
    """Reason -> the modules the table in webhook.reasons' docstring names for it."""
    doc = webhook.reasons.__doc__ or ""
    rows = re.search(r"^=+ =+\n.*?\n=+ =+\n(.*?)^=+ =+$", doc, flags=re.M | re.S)
    assert rows is not None, "webhook.reasons' docstring has no table of where each code is decided"
    table: dict[Reason, set[str]] = {}
    current: Reason | None = None
    for line in rows[1].splitlines():
        code, _, text = line.partition(" ")
        if code:
            current = Reason(code)
            assert current not in table, f"{code} is in the table twice"
            table[current] = set()
        assert current is not None, line
        table[current] |= set(re.findall(r"\bwebhook(?:\.[a-z_]+)+", text))
    return table


def test_the_table_of_where_each_code_is_decided_is_true() -> None:
    documented = documented_modules()
    assert list(documented) == list(Reason), "the table lists every code once, in the enumeration's order"
    named = naming_modules()
    for reason in Reason:
        assert documented[reason] == named.get(reason, set()), (
            f"{reason}: the table names {sorted(documented[reason])}, "
            f"the code names it in {sorted(named.get(reason, ()))}"
        )


def test_allowed_outcomes_are_not_reason_codes() -> None:
    assert {a.value for a in Allowed} == {"verified", "admitted", "exempted", "unmatched-allowed"}
    assert ALLOWED_OUTCOMES == frozenset(Allowed)
    assert not {a.value for a in Allowed} & {r.value for r in Reason}


def test_the_operator_guide_troubleshoots_every_code_and_only_those() -> None:
    guide = (PACKAGE.parent / "deploy" / "README.md").read_text()
    section = guide.split("## Troubleshooting by reason code", 1)[1].split("\n## ", 1)[0]
    codes = re.findall(r"^\| `([a-z-]+)` \|", section, flags=re.M)
    assert len(codes) == len(set(codes)), "a code is listed twice"
    assert set(codes) == {reason.value for reason in Reason}
