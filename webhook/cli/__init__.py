"""The ``imagegate`` command line: one module per subcommand, each with ``register`` and ``run``.

Exit codes (README.md, "Command line"): 0 success/allowed, 1 denied or invalid input found, 2 usage
or configuration error. The global options (``-v``, ``--version``) are accepted before the subcommand
and after it (``imagegate lint -v FILE``); every subcommand's ``--help`` ends with examples.
"""

from __future__ import annotations

__all__ = ["build_parser", "main", "subcommand_parsers"]

import argparse
import importlib
import logging
import sys
from collections.abc import Iterator

from webhook import __version__
from webhook.cli._options import Parser
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
    parser = Parser(
        prog="imagegate",
        description="Admission webhook that pins image digests and verifies signatures and attestations.",
        epilog=_EXAMPLES,
    )
    _global_options(parser, default=False)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    modules = [_COMMANDS[command]] if command in _COMMANDS else list(dict.fromkeys(_COMMANDS.values()))
    for name in modules:
        importlib.import_module(name).register(subparsers)
    for sub in subcommand_parsers(parser):
        # Suppressed defaults: given after the subcommand they count, absent they leave the main value.
        _global_options(sub, default=argparse.SUPPRESS)
    return parser


def subcommand_parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    """Every subcommand's parser below ``parser``, nested ones (``quarantine add``) included."""
    for action in parser._actions:  # argparse has no public way to list them
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):
                yield sub
                yield from subcommand_parsers(sub)


def _global_options(parser: argparse.ArgumentParser, *, default: object) -> None:
    parser.add_argument(
        "-v", "--verbose", action="store_true", default=default, help="log debug details to stderr"
    )
    parser.add_argument(
        "--version", action="version", version=f"imagegate {__version__}", help="print the version and exit"
    )


_EXAMPLES = """examples:
  # check a policy, then dry-run a manifest against it
  imagegate lint policies/default.yaml
  imagegate evaluate --policy policies/default.yaml web.yaml

  # the same with debug logs (-v goes before or after the command)
  imagegate evaluate -v --policy policies/default.yaml web.yaml

  # what each command takes, with its own examples
  imagegate quarantine add --help
"""


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
