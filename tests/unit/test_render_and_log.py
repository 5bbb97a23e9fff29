"""The one error renderer, the exit-code mapping and the structured log formatter."""

from __future__ import annotations

import io
import json
import logging

import pytest

from stagecraft import log
from stagecraft.cli.context import AppContext
from stagecraft.cli.main import run
from stagecraft.cli.render import REPORT_HINT, render_error
from stagecraft.errors import (
    ConfigError,
    ConfigIssue,
    ExitCode,
    HostKeyMismatch,
    LockHeld,
    StagecraftError,
)


def test_expected_error_is_one_line_plus_hint(capsys: pytest.CaptureFixture[str]) -> None:
    code = render_error(LockHeld("lock held by ana@laptop since 10:02", hint="wait"), AppContext())
    err = capsys.readouterr().err
    assert code == ExitCode.LOCK_HELD == 4
    assert err == "error: lock held by ana@laptop since 10:02\nhint: wait\n"


def test_config_error_lists_every_issue_in_file_order(capsys: pytest.CaptureFixture[str]) -> None:
    issues = [
        ConfigIssue("stagecraft.yml", 9, "b", "second"),
        ConfigIssue("stagecraft.yml", 3, "a", "first", hint="did you mean 'x'?"),
    ]
    code = render_error(ConfigError(issues), AppContext())
    err = capsys.readouterr().err.splitlines()
    assert code == ExitCode.USAGE
    assert err == [
        "error: stagecraft.yml:3: a: first (did you mean 'x'?)",
        "error: stagecraft.yml:9: b: second",
    ]


def test_host_errors_name_the_host() -> None:
    exc = HostKeyMismatch("web-2", "host key changed")
    assert exc.message.startswith("web-2: ")
    assert exc.exit_code == ExitCode.UNREACHABLE


def test_unexpected_error_prints_traceback_and_report_hint(
    capsys: pytest.CaptureFixture[str],
) -> None:
    try:
        raise ZeroDivisionError("boom")
    except ZeroDivisionError as exc:
        code = render_error(exc, AppContext())
    err = capsys.readouterr().err
    assert code == ExitCode.INTERNAL
    assert "Traceback" in err
    assert REPORT_HINT in err


def test_json_mode_also_writes_the_error_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    render_error(StagecraftError("nope", hint="try again"), AppContext(json=True))
    out = json.loads(capsys.readouterr().out)
    assert out["error"] == {
        "type": "StagecraftError",
        "message": "nope",
        "lines": ["nope"],
        "hint": "try again",
        "exit_code": 1,
    }


def test_run_maps_usage_errors_and_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["--version"]) == 0
    assert "stagecraft" in capsys.readouterr().out
    assert run(["--no-such-flag"]) == ExitCode.USAGE
    assert run(["--log-format", "xml", "doctor"]) == ExitCode.USAGE


def test_json_log_formatter_has_context_fields() -> None:
    stream = io.StringIO()
    log.configure(stream=stream, fmt="json", verbose=True)
    logger = logging.getLogger("stagecraft.test")
    log.event(
        logger,
        logging.INFO,
        "switched",
        host="web-1",
        service="api",
        phase="rollout",
        version="abc123",
    )
    record = json.loads(stream.getvalue())
    assert record["level"] == "info"
    assert (record["host"], record["service"], record["phase"]) == ("web-1", "api", "rollout")
    assert record["message"] == "switched"
    assert record["version"] == "abc123"
    assert record["timestamp"].endswith("+00:00")


def test_human_log_formatter_prefixes_host_and_service() -> None:
    stream = io.StringIO()
    log.configure(stream=stream, fmt="human", quiet=False)
    logger = logging.getLogger("stagecraft.test")
    log.event(logger, logging.INFO, "healthy", host="web-1", service="api")
    log.event(logger, logging.DEBUG, "hidden without --verbose")
    log.event(logger, logging.WARNING, "slow")
    assert stream.getvalue().splitlines() == ["[web-1] api: healthy", "warning: slow"]


def test_quiet_hides_info() -> None:
    stream = io.StringIO()
    log.configure(stream=stream, fmt="human", quiet=True)
    logger = logging.getLogger("stagecraft.test")
    log.event(logger, logging.INFO, "progress")
    log.event(logger, logging.ERROR, "broken")
    assert stream.getvalue() == "error: broken\n"
