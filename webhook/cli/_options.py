"""What the subcommands share on the command line: the parser class (examples at the end of every
``--help``), time budgets written as seconds or durations, and ``-o json``."""

from __future__ import annotations

__all__ = ["OUTPUTS", "Parser", "add_output", "seconds"]

import argparse
import math
from collections.abc import Callable

from webhook.policy.times import parse_duration

#: ``-o``/``--output`` values: the text for people (the default), or one JSON document on stdout.
OUTPUTS = ("text", "json")


class Parser(argparse.ArgumentParser):
    """An argument parser whose ``epilog`` (each command's examples) is printed as written, after the
    options, while the description is wrapped to the terminal as usual."""

    def format_help(self) -> str:
        epilog, self.epilog = self.epilog, None
        try:
            text = super().format_help()
        finally:
            self.epilog = epilog
        return f"{text}\n{epilog.strip(chr(10))}\n" if epilog else text


def seconds(*, maximum: float | None = None) -> Callable[[str], float]:
    """An argparse ``type`` for a time budget: seconds (``10``, ``2.5``) or a duration (``10s``, ``5m``,
    ``1h30m``), more than 0 and at most ``maximum`` seconds."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            try:
                value = parse_duration(text).total_seconds()
            except ValueError:
                raise argparse.ArgumentTypeError(
                    f"{text!r} is neither a number of seconds nor a duration like 10s, 5m or 1h30m"
                ) from None
        if not 0 < value < math.inf:  # NaN too
            raise argparse.ArgumentTypeError(f"{text!r} must be more than 0 seconds, and finite")
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(f"{text!r} must be at most {maximum:g} seconds")
        return value

    return parse


def add_output(parser: argparse.ArgumentParser, *, what: str) -> None:
    """``-o``/``--output text|json``; ``what`` says what the JSON document holds."""
    parser.add_argument(
        "-o",
        "--output",
        choices=OUTPUTS,
        default="text",
        help=f"text (default), or json: {what}",
    )
