"""webhook.cli._options: time budgets as seconds or durations, on every option that takes seconds."""

from __future__ import annotations

import argparse

import pytest

from webhook.cli import build_parser
from webhook.cli._options import seconds


@pytest.mark.parametrize(
    ("text", "value"),
    [("10", 10.0), ("2.5", 2.5), ("10s", 10.0), ("5m", 300.0), ("1h30m", 5400.0), ("1d", 86400.0)],
)
def test_seconds_or_durations(text: str, value: float) -> None:
    assert seconds()(text) == value


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0", "more than 0"),
        ("0s", "more than 0"),
        ("-1", "more than 0"),
        ("nan", "more than 0"),
        ("inf", "finite"),
        ("10x", "neither a number of seconds nor a duration"),
        ("s", "neither"),
        ("", "neither"),
        ("2h", "at most 3600 seconds"),
    ],
)
def test_what_is_not_a_time_budget(text: str, message: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=message):
        seconds(maximum=3600)(text)


@pytest.mark.parametrize(
    "argv",
    [
        ["verify", "--policy", "p.yaml", "--timeout", "{}", "nginx"],
        ["resolve", "--timeout", "{}", "nginx"],
        ["quarantine", "list", "--file", "q.yaml", "--timeout", "{}"],
        ["trust", "refresh", "--out", "t.json", "--timeout", "{}"],
        ["audit", "--policy", "p.yaml", "--timeout", "{}", "cluster.json"],
    ],
)
def test_every_timeout_option_takes_durations_and_plain_seconds(argv: list[str]) -> None:
    for given, expected in (("5m", 300.0), ("300", 300.0), ("1.5", 1.5)):
        filled = [a.format(given) if a == "{}" else a for a in argv]
        assert build_parser(argv[0]).parse_args(filled).timeout == expected


def test_the_audits_lookup_timeout_takes_durations_too() -> None:
    argv = ["audit", "--policy", "p.yaml", "--lookup-timeout", "1m", "cluster.json"]
    assert build_parser("audit").parse_args(argv).lookup_timeout == 60.0
