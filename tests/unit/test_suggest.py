"""Did-you-mean: one function for config keys, providers, commands and names on the command line."""

from __future__ import annotations

import pytest

from stagecraft.errors import ExitCode, UnknownName
from stagecraft.suggest import closest, suggestion


def test_suggestion_names_the_closest_candidate() -> None:
    assert suggestion("stagign", ["production", "staging"]) == " (did you mean 'staging'?)"
    assert suggestion("deplyo", ["deploy", "dev", "doctor"]) == " (did you mean 'deploy'?)"


def test_suggestion_names_several_when_asked_and_nothing_when_none_is_close() -> None:
    hosts = ["web-1", "web-2", "data-1"]
    assert suggestion("web", hosts, n=3) == " (did you mean 'web-1' or 'web-2'?)"
    assert suggestion("web", hosts) == " (did you mean 'web-1'?)"
    assert suggestion("qa", ["production", "staging"]) == ""
    assert suggestion("anything", []) == ""


def test_a_stricter_cutoff_suggests_less() -> None:
    assert closest("prod", ["production"]) == []  # 0.57: too far for the default
    assert closest("prod", ["production"], cutoff=0.5) == ["production"]
    assert suggestion("hots", ["hosts"], 0.95) == ""


def test_unknown_name_lists_the_known_and_suggests_the_closest() -> None:
    error = UnknownName(
        "host", "web1", ["web-1", "data-1"], where="environment staging", hint="see hosts"
    )
    assert error.message == (
        "unknown host 'web1' in environment staging; known: web-1, data-1 (did you mean 'web-1'?)"
    )
    assert (error.hint, error.exit_code, error.known) == (
        "see hosts",
        ExitCode.USAGE,
        ("web-1", "data-1"),
    )
    assert UnknownName("environment", "qa", []).message == "unknown environment 'qa'; known: none"


@pytest.mark.parametrize(
    ("word", "expected"), [("hots", "hosts"), ("rolse", "roles"), ("envirnoments", "environments")]
)
def test_config_keys_use_the_same_function(word: str, expected: str) -> None:
    keys = ["hosts", "roles", "routes", "environments", "images"]
    assert suggestion(word, keys) == f" (did you mean '{expected}'?)"
