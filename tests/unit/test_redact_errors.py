"""Errors are shown through the one redaction: a failed command's argv and output hide secrets."""

from __future__ import annotations

import json
import uuid

import pytest

from stagecraft import redact
from stagecraft.cli.context import AppContext
from stagecraft.cli.render import render_error
from stagecraft.errors import CommandFailed


def test_a_failed_command_s_argv_and_output_are_redacted(
    capsys: pytest.CaptureFixture[str],
) -> None:
    token = f"tok-{uuid.uuid4().hex}"
    redact.remember(token, name="API_TOKEN")
    error = CommandFailed(
        ["curl", "-H", f"Authorization: Bearer {token}", "https://api.example/"],
        22,
        "psql: connection to postgresql://app:pa#ss?wd@db/shop failed",
        hint=f"retry with {token}",
    )
    render_error(error, AppContext(json=True))
    out, err = capsys.readouterr()
    assert token not in out + err and "pa#ss" not in out + err
    assert "Bearer ***" in err and "postgresql://app:***@db/shop" in err
    assert json.loads(out)["error"]["hint"] == "retry with ***"


def test_an_unexpected_error_s_traceback_is_redacted(capsys: pytest.CaptureFixture[str]) -> None:
    try:
        raise RuntimeError("could not open postgres://u:hunter#2?x@db/app")
    except RuntimeError as exc:
        render_error(exc, AppContext())
    err = capsys.readouterr().err
    assert "Traceback" in err and "hunter" not in err
