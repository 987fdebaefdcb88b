"""The ``imagegate`` entry point: --version, global options after the subcommand, examples in every
subcommand's --help (each one a command line the parser accepts)."""

from __future__ import annotations

import argparse
import shlex

import pytest

import webhook
from tests.support.cli import REPO, imagegate
from webhook.cli import build_parser, main, subcommand_parsers

POLICY = REPO / "policies" / "default.yaml"


@pytest.mark.parametrize(
    "argv",
    [
        ["--version"],
        ["lint", "--version"],
        ["quarantine", "list", "--version"],
        ["audit", "--version"],
        ["test", "--version"],
    ],
)
def test_version(argv: list[str]) -> None:
    done = imagegate(*argv)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"imagegate {webhook.__version__}\n"


@pytest.mark.parametrize(
    "argv",
    [
        ["-v", "lint", str(POLICY)],
        ["lint", "-v", str(POLICY)],
        ["lint", str(POLICY), "--verbose"],
    ],
)
def test_the_verbose_flag_counts_before_and_after_the_subcommand(argv: list[str]) -> None:
    done = imagegate(*argv)
    assert done.returncode == 0, done.stderr
    assert "webhook.verify.trust: trust material built" in done.stderr  # a debug-level line


@pytest.mark.parametrize(
    "argv",
    [
        ["audit", "--policy", "p.yaml", "-v", "cluster.json"],
        ["test", "policies/tests", "--verbose"],
        ["verify", "-v", "--policy", "p.yaml", "nginx"],
    ],
)
def test_every_subcommand_takes_the_verbose_flag_after_it(argv: list[str]) -> None:
    assert build_parser(argv[0]).parse_args(argv).verbose is True
    assert (
        build_parser(argv[0]).parse_args([a for a in argv if a not in ("-v", "--verbose")]).verbose is False
    )


def test_without_the_verbose_flag_nothing_debug_is_logged() -> None:
    done = imagegate("lint", str(POLICY))
    assert done.returncode == 0, done.stderr
    assert "trust material built" not in done.stderr
    args = build_parser("lint").parse_args(["lint", str(POLICY)])
    assert args.verbose is False


def _parsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    return {parser.prog: parser, **{sub.prog: sub for sub in subcommand_parsers(parser)}}


def _examples(help_text: str) -> list[str]:
    """The command lines after ``examples:`` (continuation lines joined), comments left out."""
    _, found, tail = help_text.partition("\nexamples:\n")
    assert found, f"no examples at the end of:\n{help_text}"
    joined = tail.replace("\\\n", " ")
    return [line.strip() for line in joined.splitlines() if line.strip() and not line.strip().startswith("#")]


PARSERS = _parsers()


def test_every_subcommand_has_a_help_page() -> None:
    assert set(PARSERS) == {
        "imagegate",
        *(
            f"imagegate {name}"
            for name in (
                "serve",
                "lint",
                "evaluate",
                "verify",
                "audit",
                "resolve",
                "quarantine",
                "quarantine add",
                "quarantine remove",
                "quarantine list",
                "test",
                "certs",
                "trust",
                "trust refresh",
            )
        ),
    }


@pytest.mark.parametrize("prog", sorted(PARSERS))
def test_help_ends_with_examples_the_parser_accepts(prog: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    help_text = PARSERS[prog].format_help()
    examples = _examples(help_text)
    assert examples, help_text
    commands = [c.strip() for line in examples for c in line.split("|") if c.strip().startswith("imagegate ")]
    assert commands, examples
    for command in commands:
        argv = shlex.split(command)[1:]
        if prog != "imagegate":
            # A subcommand's examples run that subcommand.
            assert command.startswith(prog + " "), (prog, command)
        # A file of this repository an example names exists (a policy renamed or removed fails here).
        for before, arg in zip(["", *argv], argv, strict=False):
            if arg.startswith(("policies/", "deploy/")):
                made = before == "--out" and (REPO / arg).parent.is_dir()  # a directory the command makes
                assert made or list(REPO.glob(arg)), (prog, command, arg)
        if "--help" in argv:
            continue
        try:
            build_parser(argv[0]).parse_args(argv)
        except SystemExit as exit_:
            pytest.fail(f"{command!r} does not parse (exit {exit_.code})")


def test_help_of_a_subcommand_exits_0() -> None:
    assert main(["quarantine", "add", "--help"]) == 0
