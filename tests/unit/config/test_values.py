"""Pure value rules: durations, interpolation, route targets, boot groups, key paths."""

from __future__ import annotations

import pytest

from stagecraft.config.document import render_path
from stagecraft.config.durations import format_duration, parse_duration
from stagecraft.config.interpolate import InterpolationError, interpolate
from stagecraft.config.models import BootConfig, DevRoute, parse_route_target


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("10s", 10.0),
        ("1m30s", 90.0),
        ("500ms", 0.5),
        ("1h", 3600.0),
        ("1.5s", 1.5),
        ("1m0s", 60.0),
        ("250us", 0.00025),
        ("12", 12.0),
        ("0", 0.0),
        (7, 7.0),
        (2.5, 2.5),
    ],
)
def test_durations_parse(text: str | float, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["", "10 s", "s", "1m30", "10sec", "-5s", -1, True, [1], "1.s"])
def test_bad_durations_are_rejected_with_help(bad: object) -> None:
    with pytest.raises(ValueError, match="10s, 1m30s, 500ms or a number of seconds"):
        parse_duration(bad)


def test_format_duration_round_trips() -> None:
    for seconds in (0.5, 10.0, 60.0, 90.0, 0.0):
        assert parse_duration(format_duration(seconds)) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("text", "env", "expected"),
    [
        ("${A}", {"A": "1"}, "1"),
        ("x-${A}-y", {"A": ""}, "x--y"),
        ("${A:-d}", {"A": ""}, "d"),
        ("${A-d}", {"A": ""}, ""),
        ("${A-d}", {}, "d"),
        ("${A:-${B:-z}}", {}, "z"),
        ("${A:-${B}}", {"A": "set"}, "set"),  # an unused default is never evaluated
        ("$$HOME $$", {}, "$HOME $"),
        ("cost: $5", {}, "cost: $5"),
        ("${A:?needed}", {"A": "ok"}, "ok"),
        ("no refs", {}, "no refs"),
    ],
)
def test_interpolation(text: str, env: dict[str, str], expected: str) -> None:
    assert interpolate(text, env) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("${MISSING}", "variable MISSING is not set"),
        ("${A:?tell me}", "variable A is required: tell me"),
        ("${A?}", "variable A is required"),
        ("${A", "unterminated variable reference"),
        ("${A:-x", "unterminated variable reference"),
        ("${1A}", "invalid variable reference"),
        ("${A!}", "invalid variable reference"),
        ("${}", "invalid variable reference"),
    ],
)
def test_interpolation_errors(text: str, message: str) -> None:
    with pytest.raises(InterpolationError, match=message.replace("?", r"\?")):
        interpolate(text, {})


def test_interpolation_records_only_variables_it_used() -> None:
    used: list[str] = []
    interpolate("${A:-${B}} ${C-x}", {"A": "a"}, used)
    assert used == ["A", "C"]


@pytest.mark.parametrize(
    ("target", "route"),
    [
        ("backend", DevRoute("r", "backend")),
        ("frontend", DevRoute("r", "frontend")),
        ("mailpit:8025", DevRoute("r", "service", "mailpit", 8025)),
    ],
)
def test_route_targets(target: str, route: DevRoute) -> None:
    assert parse_route_target("r", target) == route
    assert str(route) == target


@pytest.mark.parametrize(
    "bad", ["mailpit", "mailpit:0", "mailpit:65536", ":80", "a b:80", "back end"]
)
def test_bad_route_targets(bad: str) -> None:
    with pytest.raises(ValueError, match="expected 'backend', 'frontend' or 'service:port'"):
        parse_route_target("r", bad)


def test_boot_group_sizes() -> None:
    assert BootConfig().group_size(7) == 7
    assert BootConfig.model_validate({"limit": 2}).group_size(7) == 2
    assert BootConfig.model_validate({"limit": "25%"}).group_size(8) == 2
    assert BootConfig.model_validate({"limit": "10%"}).group_size(3) == 1
    assert BootConfig.model_validate({"limit": "3"}).limit == 3


def test_render_path() -> None:
    assert render_path(("environments", "staging", "hosts", "web-1", "roles", 0)) == (
        "environments.staging.hosts.web-1.roles[0]"
    )
    assert render_path(()) == ""
    assert render_path(("a", 0, 1, "b")) == "a[0][1].b"
