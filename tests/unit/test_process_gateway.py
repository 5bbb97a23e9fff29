"""runtime.process.run: capture, streaming, env, timeouts, process groups, errors."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from stagecraft.errors import CommandFailed, CommandTimeout, PrerequisiteMissing
from stagecraft.runtime.process import run


def test_captures_stdout_stderr_and_exit_code() -> None:
    result = run(["sh", "-c", "echo out; echo err >&2; exit 3"], check=False)
    assert (result.returncode, result.stdout, result.stderr) == (3, "out\n", "err\n")
    assert not result.ok


def test_streams_lines_as_they_arrive() -> None:
    lines: list[tuple[str, str]] = []
    run(["sh", "-c", "echo a; echo b >&2; echo c"], on_line=lambda s, line: lines.append((s, line)))
    assert [line for s, line in lines if s == "stdout"] == ["a", "c"]
    assert ("stderr", "b") in lines


def test_env_cwd_and_input(tmp_path: Path) -> None:
    result = run(
        ["sh", "-c", 'echo "$GREETING $(pwd)"; cat'],
        cwd=tmp_path,
        extra_env={"GREETING": "hi"},
        input="from stdin",
    )
    assert result.stdout == f"hi {tmp_path}\nfrom stdin"
    clean = run(["sh", "-c", "echo ${HOME:-unset}"], env={"PATH": os.environ["PATH"]})
    assert clean.stdout.strip() == "unset"


def test_failure_raises_with_last_output_line_and_host() -> None:
    with pytest.raises(CommandFailed) as info:
        run(["sh", "-c", "echo first >&2; echo 'disk full' >&2; exit 4"], host="web-1")
    assert info.value.returncode == 4
    assert info.value.message.startswith("on web-1: ")
    assert info.value.message.endswith("exited with 4: disk full")


DOCKER_RUN_FAILED = """Unable to find image 'caddy:2' locally
docker: Error response from daemon: pull access denied for caddy, repository does not exist

Run 'docker run --help' for more information
"""


def test_failure_names_the_lines_that_say_why_not_the_last_boilerplate_line() -> None:
    script = "printf '%s' \"$OUT\" >&2; exit 125"
    with pytest.raises(CommandFailed) as info:
        run(["sh", "-c", script], extra_env={"OUT": DOCKER_RUN_FAILED}, host="web-1")
    assert info.value.message.endswith(
        "exited with 125: Unable to find image 'caddy:2' locally; "
        "docker: Error response from daemon: pull access denied for caddy, "
        "repository does not exist"
    )
    assert "--help" not in info.value.message
    assert info.value.causes == (
        "Unable to find image 'caddy:2' locally",
        "docker: Error response from daemon: pull access denied for caddy, "
        "repository does not exist",
    )


@pytest.mark.parametrize(
    ("output", "shown"),
    [
        (
            "Error: No such container: web-1\nSee 'docker exec --help'.\n",
            "No such container: web-1",
        ),
        ("pulling\nERROR: failed to solve: denied: no access\ndone\n", "ERROR: failed to solve"),
        ("mkdir: cannot create directory '/srv': Permission denied\nrolled back\n", "Permission"),
        ("step 1\nstep 2 went wrong\n", "step 2 went wrong"),
    ],
)
def test_the_cause_of_other_failures_is_shown(output: str, shown: str) -> None:
    error = CommandFailed(["tool"], 1, output)
    assert shown in error.message


def test_missing_executable_is_a_prerequisite_error() -> None:
    with pytest.raises(PrerequisiteMissing) as info:
        run(["definitely-not-a-stagecraft-tool"], hint="install it")
    assert info.value.hint == "install it"


def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "grandchild.pid"
    script = f"sleep 60 & echo $! > {pidfile}; wait"
    started = time.monotonic()
    with pytest.raises(CommandTimeout):
        run(["sh", "-c", script], timeout=0.5)
    assert time.monotonic() - started < 10
    grandchild = int(pidfile.read_text())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.kill(grandchild, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    pytest.fail("grandchild survived the timeout")


def test_missing_working_directory_is_not_reported_as_missing_tool(tmp_path: Path) -> None:
    with pytest.raises(CommandFailed) as info:
        run(["sh", "-c", "true"], cwd=tmp_path / "nope")
    assert "working directory" in info.value.message
