"""A helper has one owner: no function of the package is written again, under any name, in another module.

pylint's duplicate-code (``make lint``) finds longer runs of repeated lines; the copies that drift apart
unnoticed are short helpers under new names (``_first_line``, ``_origin``, ``_check_digest``). This test
compares every function body of two statements or more with names and literal values abstracted away,
so two modules holding the same little helper fail it.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import webhook

PACKAGE = Path(webhook.__file__).resolve().parent


class _Shape(ast.NodeTransformer):
    """Names, argument names, annotations and literal values are not what makes a helper a copy."""

    def visit_Name(self, node: ast.Name) -> ast.AST:
        return ast.copy_location(ast.Name(id="_", ctx=node.ctx), node)

    def visit_arg(self, node: ast.arg) -> ast.AST:
        return ast.copy_location(ast.arg(arg="_"), node)

    def visit_Constant(self, node: ast.Constant) -> ast.AST:
        return ast.copy_location(ast.Constant(value=type(node.value).__name__), node)


def shape(function: ast.FunctionDef | ast.AsyncFunctionDef) -> str | None:
    body = [
        statement
        for statement in function.body
        if not (isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant))
    ]
    if sum(len(ast.unparse(statement).splitlines()) for statement in body) < 2:
        return None  # one-line bodies (delegations, returns of an attribute) are not helpers worth owning
    return ast.dump(_Shape().visit(ast.Module(body=body, type_ignores=[])))


def test_no_function_body_is_written_twice_in_the_package() -> None:
    places: dict[str, list[str]] = defaultdict(list)
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                found = shape(node)
                if found is not None:
                    places[found].append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {node.name}")
    copies = [where for where in places.values() if len({w.split(":")[0] for w in where}) > 1]
    assert not copies, "the same helper in several modules; give it one owner:\n" + "\n".join(
        ", ".join(where) for where in copies
    )


def test_the_check_sees_a_copy_under_another_name() -> None:
    first = ast.parse("def _first_line(error):\n    lines = str(error).splitlines()\n    return lines[0]\n")
    second = ast.parse("def head(e):\n    text = str(e).splitlines()\n    return text[1]\n")
    other = ast.parse("def head(e):\n    text = repr(e).split()\n    return text[1]\n")
    shapes = [shape(tree.body[0]) for tree in (first, second, other)]  # type: ignore[arg-type]
    assert shapes[0] is not None and shapes[0] == shapes[1] != shapes[2]
