"""Settings from IMAGEGATE_* variables: parsed, validated, and misspellings reported."""

from __future__ import annotations

import logging

import pytest

from webhook.errors import ConfigError
from webhook.settings import Settings, check_server_env


def test_variables_override_defaults_and_cli_overrides_win() -> None:
    settings = Settings.from_env({"IMAGEGATE_TAG_TTL": "5", "IMAGEGATE_AUDIT_LOG": "off"}, tag_ttl=7.0)
    assert settings.tag_ttl == 7.0
    assert settings.audit_log is False


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("IMAGEGATE_DEADLINE_SECONDS", "nan"),
        ("IMAGEGATE_DEADLINE_SECONDS", "0"),
        ("IMAGEGATE_AUDIT_LOG", "maybe"),
        ("IMAGEGATE_MAX_IMAGES", "0"),
        ("IMAGEGATE_MAX_IMAGES", "many"),
        ("IMAGEGATE_FETCHES_PER_REQUEST", "0"),
    ],
)
def test_invalid_values_are_config_errors(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: value})


def test_work_bounds_have_defaults_and_variables() -> None:
    assert (Settings().max_images, Settings().fetches_per_request) == (256, 4)
    settings = Settings.from_env({"IMAGEGATE_MAX_IMAGES": "512", "IMAGEGATE_FETCHES_PER_REQUEST": "2"})
    assert (settings.max_images, settings.fetches_per_request) == (512, 2)


def test_misspelt_variables_are_reported_and_known_ones_are_not(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="webhook.settings"):
        check_server_env({"IMAGEGATE_TAG_TTLL": "5", "IMAGEGATE_TAG_TTL": "5", "IMAGEGATE_WORKERS": "2"})
    warned = [r.getMessage() for r in caplog.records]
    assert warned == ["IMAGEGATE_TAG_TTLL is not a setting imagegate knows; it is ignored"]
