"""Global flags honoured before or after the command; did-you-mean for commands and names."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from stagecraft import __version__
from stagecraft.cli.main import run
from stagecraft.errors import ExitCode

CONFIG = """\
project: shop
environments:
  staging:
    hosts:
      web-1: {address: 203.0.113.10, roles: [web]}
      data-1: {address: 203.0.113.12, roles: [data]}
    roles:
      web: [api]
      data: [postgres]
"""
FLAG_VARS = ("STAGECRAFT_LOG_FORMAT", "STAGECRAFT_VERBOSE", "STAGECRAFT_QUIET", "STAGECRAFT_ENV")


@pytest.fixture(autouse=True)
def _restore_logging(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The CLI installs its handler on the `stagecraft` logger; put the logger back after."""
    for name in (*FLAG_VARS, "STAGECRAFT_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    logger = logging.getLogger("stagecraft")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    yield
    logger.handlers[:], logger.level, logger.propagate = saved


@pytest.fixture
def config(tmp_path: Path) -> str:
    path = tmp_path / "stagecraft.yml"
    path.write_text(CONFIG)
    return str(path)


VALIDATE = ["config", "validate", "--no-compose"]


@pytest.mark.parametrize(
    "where",
    ["before the command", "between group and command", "after the command"],
)
def test_verbose_and_log_format_work_in_any_position(
    where: str, config: str, capsys: pytest.CaptureFixture[str]
) -> None:
    flags = ["-v", "--log-format", "json"]
    argv = {
        "before the command": [*flags, *VALIDATE, "-c", config],
        "between group and command": ["config", *flags, "validate", "--no-compose", "-c", config],
        "after the command": [*VALIDATE, "-c", config, *flags],
    }[where]
    assert run(argv) == ExitCode.OK
    err = capsys.readouterr().err
    events = [json.loads(line) for line in err.splitlines()]
    assert any(e["level"] == "debug" and e["message"].startswith("loading ") for e in events), err


def test_quiet_and_verbose_after_the_command_set_the_log_level(config: str) -> None:
    logger = logging.getLogger("stagecraft")
    assert run([*VALIDATE, "-c", config, "--quiet"]) == ExitCode.OK
    assert logger.level == logging.WARNING
    assert run([*VALIDATE, "-c", config, "--verbose"]) == ExitCode.OK
    assert logger.level == logging.DEBUG
    assert run([*VALIDATE, "-c", config]) == ExitCode.OK
    assert logger.level == logging.INFO


@pytest.mark.parametrize("after", [False, True], ids=["flag-before", "flag-after"])
def test_a_flag_wins_over_its_environment_variable_in_either_position(
    after: bool, config: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("STAGECRAFT_LOG_FORMAT", "json")
    flags = ["--log-format", "human", "-v"]
    argv = [*VALIDATE, "-c", config, *flags] if after else [*flags, *VALIDATE, "-c", config]
    assert run(argv) == ExitCode.OK
    assert "debug: loading " in capsys.readouterr().err


def test_environment_variables_still_fill_what_no_flag_gave(
    config: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("STAGECRAFT_LOG_FORMAT", "json")
    monkeypatch.setenv("STAGECRAFT_VERBOSE", "1")
    assert run([*VALIDATE, "-c", config]) == ExitCode.OK
    first = capsys.readouterr().err.splitlines()[0]
    assert json.loads(first)["level"] == "debug"


def test_version_is_the_root_flag_and_commands_keep_their_own(
    capsys: pytest.CaptureFixture[str],
) -> None:
    for flag in ("--version", "-V"):
        assert run([flag]) == ExitCode.OK
        assert capsys.readouterr().out.strip() == f"stagecraft, version {__version__}"
    # `build --version v9` is the release version, not Stagecraft's (a usage error here:
    # no config), never "stagecraft, version ...".
    assert run(["build", "--version", "v9", "--dry-run", "-c", "/nonexistent.yml"]) == 2
    assert "stagecraft, version" not in capsys.readouterr().out


def test_env_after_the_command_overrides_the_variable(
    config: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("STAGECRAFT_ENV", "nope")
    assert run(["config", "show", "-c", config, "--json", "--env", "staging"]) == ExitCode.OK
    shown = json.loads(capsys.readouterr().out)
    assert "web-1" in json.dumps(shown)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["deplyo"], "No such command 'deplyo' (did you mean 'deploy'?)."),
        (["rollbak"], "No such command 'rollbak' (did you mean 'rollback'?)."),
        (["config", "valdate"], "No such command 'valdate' (did you mean 'validate'?)."),
        (["lock", "stauts"], "No such command 'stauts' (did you mean 'status'?)."),
        (["completon", "bash"], "No such command 'completon' (did you mean 'completion'?)."),
        (["frobnicate"], "No such command 'frobnicate'."),
    ],
)
def test_a_mistyped_command_gets_the_closest_one(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(argv) == ExitCode.USAGE
    err = capsys.readouterr().err
    assert err.rstrip().endswith(f"Error: {message}"), err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["config", "show", "--env", "stagign"],
            "error: unknown environment 'stagign'; known: staging (did you mean 'staging'?)",
        ),
        (
            ["ssh", "web1", "--env", "staging"],
            "error: unknown host 'web1' in environment staging; known: web-1, data-1 "
            "(did you mean 'web-1'?)",
        ),
        (
            ["ssh", "db-1", "--env", "stagign"],
            "error: unknown environment 'stagign'; known: staging (did you mean 'staging'?)",
        ),
    ],
)
def test_an_unknown_name_on_the_command_line_gets_the_closest_ones(
    argv: list[str], message: str, config: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run([*argv, "-c", config]) == ExitCode.USAGE
    err = capsys.readouterr().err
    assert err.splitlines()[0] == message, err
    assert "Traceback" not in err
