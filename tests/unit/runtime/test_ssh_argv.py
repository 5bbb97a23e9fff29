"""runtime.ssh: the ssh argv, control paths, quoting, and the remote write script."""

from __future__ import annotations

import os
import shlex
import stat
import subprocess
from pathlib import Path

import pytest

from stagecraft.runtime.ssh import (
    SSHHost,
    SSHOptions,
    SSHTarget,
    command_line,
    compose_command,
    write_script,
)


def option_values(argv: list[str]) -> dict[str, str]:
    """The ``-o Key=Value`` options of an ssh argv."""
    pairs = [argv[i + 1] for i, arg in enumerate(argv) if arg == "-o"]
    return dict(pair.split("=", 1) for pair in pairs)


def test_argv_has_batch_mode_strict_keys_and_a_control_master(tmp_path: Path) -> None:
    host = SSHHost(SSHTarget("web-1", "203.0.113.10"), SSHOptions(control_dir=tmp_path / "cm"))
    argv = host.ssh_argv("uptime")
    opts = option_values(argv)
    assert argv[0] == "ssh"
    assert opts["BatchMode"] == "yes"
    assert opts["StrictHostKeyChecking"] == "yes"
    assert opts["ControlMaster"] == "auto"
    assert opts["ControlPersist"] == "60s"
    assert opts["ControlPath"] == str(host.control_path())
    assert opts["ConnectTimeout"] == "10"
    assert argv[-3:] == ["--", "203.0.113.10", "uptime"]
    assert "-F" not in argv and "-p" not in argv and "-i" not in argv
    assert stat.S_IMODE((tmp_path / "cm").stat().st_mode) == 0o700


def test_argv_config_file_port_user_identity_and_known_hosts(tmp_path: Path) -> None:
    options = SSHOptions(
        config_file=tmp_path / "ssh_config",
        known_hosts=tmp_path / "known hosts",
        identity=tmp_path / "id_ed25519",
        strict_host_keys=False,
        connect_timeout=2.5,
        control_dir=tmp_path,
    )
    host = SSHHost(SSHTarget("db", "db.example.com", user="deploy", port=2222), options)
    argv = host.ssh_argv(None)
    assert argv[argv.index("-F") + 1] == str(tmp_path / "ssh_config")
    assert argv[argv.index("-p") + 1] == "2222"
    assert argv[argv.index("-i") + 1] == str(tmp_path / "id_ed25519")
    assert argv[-2:] == ["--", "deploy@db.example.com"]
    opts = option_values(argv)
    # accept-new still refuses a changed key; "no" is never used.
    assert opts["StrictHostKeyChecking"] == "accept-new"
    assert opts["UserKnownHostsFile"] == f'"{tmp_path / "known hosts"}"'
    assert opts["ConnectTimeout"] == "3"


def test_from_env_reads_the_config_file_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STAGECRAFT_SSH_CONFIG", "/etc/stagecraft/ssh_config")
    assert SSHOptions.from_env().config_file == Path("/etc/stagecraft/ssh_config")
    monkeypatch.delenv("STAGECRAFT_SSH_CONFIG")
    assert SSHOptions.from_env().config_file is None


def test_control_path_is_short_and_distinct_per_target_and_options(tmp_path: Path) -> None:
    target = SSHTarget("web-1", "a-very-long-host-name.internal.example.com", "deploy", 22)
    one = SSHHost(target, SSHOptions()).control_path()
    other_user = SSHHost(SSHTarget("web-1", target.address, "root"), SSHOptions()).control_path()
    other_known = SSHHost(target, SSHOptions(known_hosts=tmp_path / "kh")).control_path()
    assert len({one, other_user, other_known}) == 3
    assert one.parent == Path("/tmp") / f"stagecraft-{os.getuid()}"
    # ssh binds "<path>.<16 random chars>" first; sun_path holds 104 bytes on macOS.
    assert len(str(one)) + 17 < 104


def test_an_overlong_control_dir_disables_multiplexing_instead_of_failing(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 90)
    host = SSHHost(SSHTarget("h", "192.0.2.1"), SSHOptions(control_dir=deep))
    opts = option_values(host.ssh_argv("true"))
    assert opts["ControlPath"] == "none"
    assert "ControlMaster" not in opts


def test_a_retry_connection_does_not_multiplex(tmp_path: Path) -> None:
    host = SSHHost(SSHTarget("h", "192.0.2.1"), SSHOptions(control_dir=tmp_path))
    opts = option_values(host.ssh_argv("true", multiplex=False))
    assert (opts["ControlMaster"], opts["ControlPath"]) == ("no", "none")


def test_control_dir_owned_by_someone_else_or_a_symlink_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "real"
    target.mkdir()
    link = tmp_path / "link"
    link.symlink_to(target)
    host = SSHHost(SSHTarget("h", "192.0.2.1"), SSHOptions(control_dir=link))
    with pytest.raises(Exception, match="not a directory owned by you"):
        host.ssh_argv("true")


def test_a_sequence_command_is_shell_quoted() -> None:
    assert command_line(["echo", "a b", "$HOME", "it's"]) == "echo 'a b' '$HOME' 'it'\"'\"'s'"
    assert command_line("echo $HOME") == "echo $HOME"
    assert shlex.split(command_line(["printf", "%s\n", "x;y"])) == ["printf", "%s\n", "x;y"]


def test_compose_command_changes_directory_and_names_project_and_files() -> None:
    line = compose_command(
        ["up", "-d", "--wait"],
        project_dir="/srv/my app",
        project_name="shop-staging",
        files=["docker-compose.yml", "override.yml"],
    )
    assert line == (
        "cd '/srv/my app' && docker compose -p shop-staging -f docker-compose.yml "
        "-f override.yml up -d --wait"
    )
    assert compose_command(["ps"]) == "docker compose ps"


@pytest.mark.parametrize("mode", [0o600, 0o644, 0o400])
def test_write_script_replaces_the_file_atomically_with_the_mode(tmp_path: Path, mode: int) -> None:
    target = tmp_path / "new dir" / "secret.env"
    data = b"TOKEN=s3cr3t\n\x00binary\xff"
    script = write_script(str(target), mode)
    subprocess.run(["sh", "-c", script], input=data, check=True)
    assert target.read_bytes() == data
    assert stat.S_IMODE(target.stat().st_mode) == mode
    assert [p.name for p in target.parent.iterdir()] == ["secret.env"]


def test_write_script_leaves_the_old_file_when_writing_fails(tmp_path: Path) -> None:
    target = tmp_path / "data" / "app.env"
    target.parent.mkdir()
    target.write_bytes(b"old")
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "cat").write_text("#!/bin/sh\nexit 1\n")
    (fake_bin / "cat").chmod(0o755)
    env = {**os.environ, "PATH": f"{fake_bin}:{os.environ['PATH']}"}
    result = subprocess.run(["sh", "-c", write_script(str(target), 0o600)], input=b"new", env=env)
    assert result.returncode != 0
    assert target.read_bytes() == b"old"
    assert [p.name for p in target.parent.iterdir()] == ["app.env"]


def test_control_path_is_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """`close()` (ssh -O exit) in one process must not stop another process's master."""
    host = SSHHost(SSHTarget("web-1", "10.213.0.2"), SSHOptions())
    mine = host.control_path()
    monkeypatch.setattr("os.getpid", lambda: 1)
    assert host.control_path() != mine
