"""``imagegate lint FILE...``: checks policy and quarantine files and prints every problem found.

A policy is checked by the loader and then by the serving path (:func:`webhook.wiring.lint_policy_file`):
a policy that lints clean loads wherever ``serve``, ``verify``, ``test`` or hot reload load it.

Each problem is one line ``FILE:LINE: POINTER: message (fix: hint)``. Errors go to stdout; warnings
go to stderr prefixed ``warning:`` and do not change the exit code. Exit 1 when any file has an
error, 2 when a file cannot be read or no file is given, else 0.

``--root DIR`` lints a policy written for the cluster on a machine outside it: the server reads its files
below ``/etc/imagegate/`` (where the Deployment mounts them), so an absolute path ``/etc/imagegate/X``
in the policy is read from ``DIR/X``. Given several times, the first ``DIR`` that has ``X`` wins (an
overlay's directory before the base's); when none has it, the error names ``X`` below the first.
Other paths are read as written: other absolute paths as they are, relative ones from the policy's
directory.

``-`` reads a file from stdin (as ``evaluate -`` does): its problems name it ``<stdin>``, and the relative
paths of a policy read so are read from the current directory.
"""

from __future__ import annotations

__all__ = ["register", "run"]

import argparse
import functools
import sys
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

from webhook.policy.material import read_bounded
from webhook.policy.report import os_reason
from webhook.wiring import lint_policy_file

#: How a file read from stdin is named in problems (its relative paths are read from the current directory).
STDIN = "<stdin>"
# Where the Deployment mounts the policy's files (ConfigMaps and Secrets): the paths ``--root`` maps.
MOUNT_DIR = PurePosixPath("/etc/imagegate")


_EXAMPLES = """\
examples:
  imagegate lint policies/default.yaml policies/examples/*.yaml

  # a policy written for the cluster: its /etc/imagegate/X files are read from deploy/base/X
  imagegate lint --root deploy/base deploy/base/policy.yaml deploy/base/quarantine/quarantine.yaml

  # from stdin, e.g. the policy as another branch has it
  git show main:deploy/base/policy.yaml | imagegate lint --root deploy/base -
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "lint",
        help="check policy and quarantine files",
        description=(
            "Validate policy (kind: ImagePolicy) and quarantine list (kind: Quarantine) files against "
            "the JSON Schema and the semantic rules (unknown trust names, duplicate rules, malformed "
            "globs, missing referenced files, ...); every file a policy names is judged as the server "
            "loads it, so a policy that lints clean loads. Every problem names the file, the line and the "
            "JSON pointer, and says how to fix it. Errors are printed to stdout, warnings to stderr. "
            "Exit status: 0 no errors, 1 errors found, 2 a file cannot be read or no file given."
        ),
        epilog=_EXAMPLES,
    )
    parser.add_argument(
        "--root",
        action="append",
        default=[],
        type=Path,
        metavar="DIR",
        help=f"read the policy's {MOUNT_DIR}/X paths from DIR/X (repeatable: the first DIR that has X wins)",
    )
    parser.add_argument("files", nargs="*", metavar="FILE", help="policy or quarantine files ('-' = stdin)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    files: list[str] = list(args.files)
    if not files:
        print("imagegate lint: no FILE given", file=sys.stderr)
        return 2
    roots: list[Path] = list(args.root)
    for root in roots:
        if not root.is_dir():
            print(f"imagegate lint: --root {root}: not a directory", file=sys.stderr)
            return 2
    locate = functools.partial(_below_roots, roots=tuple(roots)) if roots else None
    now = datetime.now(UTC)
    unreadable = errors = warnings = 0
    for name in files:
        raw, reason = None, None
        if name == "-":
            name = STDIN
            try:
                raw = read_bounded(sys.stdin.buffer)
            except OSError as error:
                reason = os_reason(error)
        else:
            reason = _unreadable(Path(name))
        if reason is not None:
            print(f"{name}: cannot read: {reason}", file=sys.stderr)
            unreadable += 1
            continue
        for problem in lint_policy_file(name, now=now, locate=locate, raw=raw):
            if problem.severity == "error":
                errors += 1
                print(_line(problem.file, problem.line, problem.pointer, problem.message, problem.hint))
            else:
                warnings += 1
                line = _line(problem.file, problem.line, problem.pointer, problem.message, problem.hint)
                print(f"warning: {line}", file=sys.stderr)
    sys.stdout.flush()
    print(
        f"imagegate lint: {len(files)} file(s), {errors} error(s), {warnings} warning(s)"
        + (f", {unreadable} unreadable" if unreadable else ""),
        file=sys.stderr,
    )
    if unreadable:
        return 2
    return 1 if errors else 0


def _below_roots(path: Path, *, roots: tuple[Path, ...]) -> Path:
    """``/etc/imagegate/X`` -> the first ``ROOT/X`` that exists, else under the first root; others as is."""
    try:
        relative = PurePosixPath(path).relative_to(MOUNT_DIR)
    except ValueError:
        return path
    candidates = [root / relative for root in roots]
    return next((candidate for candidate in candidates if candidate.exists()), candidates[0])


def _line(file: str, line: int, pointer: str, message: str, hint: str) -> str:
    text = f"{file}:{line}: {pointer or '/'}: {message}"
    return f"{text} (fix: {hint})" if hint else text


def _unreadable(path: Path) -> str | None:
    try:
        with path.open("rb"):
            return None
    except IsADirectoryError:
        return "is a directory"
    except OSError as error:
        return error.strerror or type(error).__name__
