"""Which output line a failed build's error shows."""

from __future__ import annotations

from stagecraft.deploy.build import _failure_line

COBRA = "building...\nError: unknown flag: --bogus\nUsage:\n  encore build docker [flags] IMAGE\n"


def test_a_command_build_shows_its_error_line_not_the_usage_after_it() -> None:
    assert _failure_line(COBRA, prefer_error=True) == ": Error: unknown flag: --bogus"
    assert _failure_line("step 1\ncompiling failed\n", prefer_error=True) == ": compiling failed"


def test_a_docker_build_shows_its_last_line() -> None:
    output = "error: in RUN\nThe command '/bin/sh -c false' returned a non-zero code: 1\n"
    assert _failure_line(output, prefer_error=False).endswith("returned a non-zero code: 1")
    assert _failure_line("\n  \n", prefer_error=False) == ""
