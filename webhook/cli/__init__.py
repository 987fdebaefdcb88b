"""The ``imagegate`` command line: one module per subcommand, each with ``register`` and ``run``.

Exit codes (DESIGN.md §1): 0 success/allowed, 1 denied or invalid input found, 2 usage or
configuration error.
"""

from __future__ import annotations

__all__ = ["main"]

import argparse
import logging
import sys

import webhook.cli.certs as certs
import webhook.cli.evaluate as evaluate
import webhook.cli.lint as lint
import webhook.cli.policy_test as policy_test
import webhook.cli.registry_cmds as registry_cmds
import webhook.cli.serve as serve
import webhook.cli.verify_cmd as verify_cmd
from webhook.errors import ConfigError

_COMMANDS = (serve, lint, evaluate, verify_cmd, registry_cmds, policy_test, certs)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="imagegate",
        description="Admission webhook that pins image digests and verifies signatures and attestations.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details to stderr")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in _COMMANDS:
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        # argparse exits 2 on usage errors and 0 for --help.
        return int(exit_.code or 0)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args))
    except ConfigError as error:
        print(f"error: {error.user_message}", file=sys.stderr)
        for problem in error.problems:
            print(f"  {problem}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
