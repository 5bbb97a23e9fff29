"""runtime.ssh: ssh's failures (exit 255 + stderr) become the right host errors."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from stagecraft.errors import (
    CommandFailed,
    CommandTimeout,
    ExitCode,
    HostError,
    HostKeyMismatch,
    HostKeyUnknown,
    HostUnreachable,
)
from stagecraft.runtime.ssh import SSHHost, SSHOptions, SSHTarget, classify_ssh_failure
from stagecraft.testing.fakes import FakeRunner

TARGET = SSHTarget("web-2", "10.213.0.3", user="root")

MISMATCH = """\
@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\r
@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\r
@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\r
IT IS POSSIBLE THAT SOMEONE IS DOING SOMETHING NASTY!\r
Someone could be eavesdropping on you right now (man-in-the-middle attack)!\r
It is also possible that a host key has just been changed.\r
Host key for 10.213.0.3 has changed and you have requested strict checking.\r
Host key verification failed.\r
"""
UNKNOWN = (
    "No ED25519 host key is known for 10.213.0.3 and you have requested strict checking.\r\n"
    "Host key verification failed.\r\n"
)


@pytest.mark.parametrize(
    ("stderr", "error", "fragment"),
    [
        (MISMATCH, HostKeyMismatch, "does not match known_hosts"),
        (UNKNOWN, HostKeyUnknown, "not in known_hosts"),
        ("Host key verification failed.\r\n", HostKeyUnknown, "not in known_hosts"),
        (
            "ssh: connect to host 10.213.0.3 port 22: Connection refused\r\n",
            HostUnreachable,
            "cannot connect to 10.213.0.3:22: connection refused",
        ),
        (
            "ssh: connect to host 10.213.0.3 port 22: Connection timed out\r\n",
            HostUnreachable,
            "connection timed out",
        ),
        (
            "ssh: connect to host 10.213.0.3 port 22: No route to host\r\n",
            HostUnreachable,
            "no route to host",
        ),
        (
            "ssh: Could not resolve hostname web-2.invalid: Name or service not known\r\n",
            HostUnreachable,
            "could not resolve the host name",
        ),
        (
            "kex_exchange_identification: read: Connection reset by peer\r\n"
            "Connection reset by 10.213.0.3 port 22\r\n",
            HostUnreachable,
            "closed before login",
        ),
        ("root@10.213.0.3: Permission denied (publickey).\r\n", HostError, "authentication"),
    ],
)
def test_ssh_stderr_maps_to_an_error_naming_the_host(
    stderr: str, error: type[HostError], fragment: str
) -> None:
    found = classify_ssh_failure(TARGET, stderr)
    assert type(found) is error
    assert found.host == "web-2"
    assert found.message.startswith("web-2: ")
    assert fragment in found.message
    assert found.hint
    assert found.exit_code == ExitCode.UNREACHABLE


def test_hints_say_how_to_fix_without_blindly_trusting_a_new_key() -> None:
    mismatch = classify_ssh_failure(TARGET, MISMATCH)
    unknown = classify_ssh_failure(TARGET, UNKNOWN)
    auth = classify_ssh_failure(TARGET, "root@10.213.0.3: Permission denied (publickey).")
    assert mismatch is not None and unknown is not None and auth is not None
    assert "ssh-keygen -R 10.213.0.3" in (mismatch.hint or "")
    assert "verify" in (mismatch.hint or "")
    assert "ssh-keyscan 10.213.0.3" in (unknown.hint or "")
    assert "ssh-add" in (auth.hint or "")


def test_a_remote_commands_own_stderr_is_not_mistaken_for_ssh() -> None:
    assert classify_ssh_failure(TARGET, "curl: (7) Failed to connect: Connection refused\n") is None
    assert classify_ssh_failure(TARGET, "") is None


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> FakeRunner:
    fake = FakeRunner()
    monkeypatch.setattr("stagecraft.runtime.process.run", fake)
    return fake


@pytest.fixture
def host(tmp_path: Path) -> SSHHost:
    return SSHHost(TARGET, SSHOptions(control_dir=tmp_path))


def test_run_raises_the_mapped_error_for_ssh_failures(runner: FakeRunner, host: SSHHost) -> None:
    runner.expect(lambda line: line.startswith("ssh "), returncode=255, stderr=MISMATCH)
    with pytest.raises(HostKeyMismatch) as info:
        host.run("true", check=False)
    assert info.value.host == "web-2"


def test_remote_non_zero_exit_is_command_failed_naming_host_and_command(
    runner: FakeRunner, host: SSHHost
) -> None:
    runner.expect(lambda line: line.endswith("'docker ps'"), returncode=1, stderr="daemon down\n")
    with pytest.raises(CommandFailed) as info:
        host.run(["docker", "ps"])
    assert info.value.host == "web-2"
    assert info.value.message == "on web-2: `docker ps` exited with 1: daemon down"


def test_exit_255_from_the_remote_command_itself_is_command_failed(
    runner: FakeRunner, host: SSHHost
) -> None:
    runner.expect(lambda line: line.endswith("my-tool"), returncode=255, stderr="my-tool: fatal\n")
    runner.expect(lambda line: line.endswith(" true"))  # a fresh connection: the host answers
    with pytest.raises(CommandFailed):
        host.run("my-tool")


def test_an_unexplained_255_on_a_host_that_no_longer_answers_is_unreachable(
    runner: FakeRunner, host: SSHHost
) -> None:
    """A connection cut mid-command: ssh exits 255 with nothing on stderr."""
    runner.expect(lambda line: "sleep 30" in line, returncode=255)
    refused = "ssh: connect to host 10.213.0.3 port 22: Connection refused\n"
    runner.expect(lambda line: line.endswith(" true"), returncode=255, stderr=refused)
    with pytest.raises(HostUnreachable) as info:
        host.run("sleep 30")
    assert "lost the connection to 10.213.0.3 during `sleep 30`" in info.value.message
    assert "connection refused" in info.value.message
    runner.expect(lambda line: "sleep 30" in line, returncode=255)
    runner.expect(lambda line: line.endswith(" true"), raises=CommandTimeout("no answer"))
    with pytest.raises(HostUnreachable, match="did not answer within 15s"):
        host.run("sleep 30")


def test_unchecked_failures_are_returned(runner: FakeRunner, host: SSHHost) -> None:
    runner.expect(lambda line: True, returncode=3, stdout="partial\n")
    result = host.run("false", check=False)
    assert (result.returncode, result.stdout) == (3, "partial\n")


def test_a_dead_master_is_retried_once_without_multiplexing(
    runner: FakeRunner, host: SSHHost
) -> None:
    dead = "mux_client_request_session: read from master failed: Broken pipe\r\n"
    runner.expect(lambda line: "ControlMaster=auto" in line, returncode=255, stderr=dead)
    runner.expect(lambda line: "ControlPath=none" in line, stdout="ok\n")
    data = io.BytesIO(b"payload")
    assert host.run("cat", input=data).stdout == "ok\n"
    assert [call.input for call in runner.calls] == [b"payload", b"payload"]
    runner.assert_all_used()


def test_read_file_returns_none_for_a_missing_file(runner: FakeRunner, host: SSHHost) -> None:
    runner.expect(lambda line: True, returncode=3, stderr="stagecraft: no such file\n")
    assert host.read_file("/srv/nope") is None
    runner.expect(lambda line: True, stdout="aGVsbG8K\n")
    assert host.read_file("/srv/yes") == b"hello\n"


def test_write_file_sends_data_on_stdin_never_on_the_command_line(
    runner: FakeRunner, host: SSHHost
) -> None:
    runner.expect(lambda line: True)
    host.write_file("/srv/app/.env", b"PASSWORD=hunter2\n")
    (call,) = runner.calls
    assert call.input == b"PASSWORD=hunter2\n"
    assert "hunter2" not in call.line
    assert "chmod 600" in call.line
