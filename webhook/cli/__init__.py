"""The ``imagegate`` command line: one module per subcommand, each with ``register`` and ``run``.

Exit codes (README.md, "Command line"): 0 success/allowed, 1 denied or invalid input found, 2 usage
or configuration error.
"""

from __future__ import annotations

__all__ = ["main"]

import argparse
import importlib
import logging
import sys

from webhook.errors import ConfigError

# Subcommand -> module. Only the chosen command's module is imported: the verification stack
# (sigstore) takes a second to import, which `lint` or `resolve` should not pay.
_COMMANDS = {
    "serve": "webhook.cli.serve",
    "lint": "webhook.cli.lint",
    "evaluate": "webhook.cli.evaluate",
    "audit": "webhook.cli.audit",
    "verify": "webhook.cli.verify_cmd",
    "resolve": "webhook.cli.registry_cmds",
    "quarantine": "webhook.cli.registry_cmds",
    "test": "webhook.cli.policy_test",
    "certs": "webhook.cli.certs",
    "trust": "webhook.cli.trust",
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The argument parser, with every subcommand or only ``command``'s module registered."""
    parser = argparse.ArgumentParser(
        prog="imagegate",
        description="Admission webhook that pins image digests and verifies signatures and attestations.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details to stderr")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    modules = [_COMMANDS[command]] if command in _COMMANDS else list(dict.fromkeys(_COMMANDS.values()))
    for name in modules:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else argv
    command = next((a for a in arguments if not a.startswith("-")), None)
    parser = build_parser(command)
    try:
        args = parser.parse_args(arguments)
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
