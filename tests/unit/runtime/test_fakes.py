"""stagecraft.testing.fakes: scripted answers, recorded calls, loud surprises."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from stagecraft.errors import CommandFailed, HostUnreachable
from stagecraft.runtime.fanout import fan_out
from stagecraft.runtime.ssh import SSHHost
from stagecraft.testing.fakes import FakeRunner, FakeSSHHost, UnexpectedCommandError


def test_fake_host_answers_docker_and_compose_like_the_real_one_builds_them() -> None:
    host = FakeSSHHost("web-1")
    host.expect("docker ps -q", stdout="abc\n")
    host.expect(
        re.compile(r"^cd /srv/shop && docker compose -p shop up"),
        returncode=1,
        stderr="no such image",
    )
    assert host.docker("ps", "-q").stdout == "abc\n"
    with pytest.raises(CommandFailed) as info:
        host.compose("up", "-d", project_dir="/srv/shop", project_name="shop")
    assert info.value.host == "web-1"
    assert host.commands == ["docker ps -q", "cd /srv/shop && docker compose -p shop up -d"]
    host.assert_all_used()


def test_fake_host_is_strict_and_can_raise_host_errors() -> None:
    host = FakeSSHHost("web-2").expect("uptime", raises=HostUnreachable("web-2", "refused"))
    with pytest.raises(HostUnreachable):
        host.run("uptime")
    with pytest.raises(UnexpectedCommandError, match="rm -rf /"):
        host.run(["rm", "-rf", "/"])
    lenient = FakeSSHHost(strict=False)
    assert lenient.run("anything").ok


def test_fake_host_keeps_files_in_memory(tmp_path: Path) -> None:
    host = FakeSSHHost()
    host.write_file("/srv/.env", b"A=1\n")
    local = tmp_path / "compose.yml"
    local.write_text("services: {}\n")
    host.upload(local, "/srv/compose.yml", mode=0o644)
    assert host.files == {
        "/srv/.env": (b"A=1\n", 0o600),
        "/srv/compose.yml": (b"services: {}\n", 0o644),
    }
    assert host.read_file("/srv/.env") == b"A=1\n"
    assert host.read_file("/nope") is None
    with host.forward("127.0.0.1", 5432) as port:
        assert port == 5432
    assert host.forwards == [("127.0.0.1", 5432, 0)]
    assert host.probe().docker_version
    host.close()
    assert host.closed


def test_expectation_counts_and_unused_expectations() -> None:
    host = FakeSSHHost().expect("true", times=2).expect("never-run")
    host.run("true")
    host.run("true")
    with pytest.raises(UnexpectedCommandError):
        host.run("true")
    with pytest.raises(AssertionError, match="never-run"):
        host.assert_all_used()


def test_fake_hosts_work_with_fan_out_as_ssh_hosts() -> None:
    hosts: list[SSHHost] = [
        FakeSSHHost(f"web-{i}").expect("hostname", stdout=f"web-{i}\n") for i in (1, 2)
    ]
    result = fan_out(hosts, lambda h: h.run("hostname").stdout.strip(), name=lambda h: h.name)
    assert [o.value for o in result.outcomes] == ["web-1", "web-2"]


def test_fake_runner_replaces_process_run(monkeypatch: pytest.MonkeyPatch) -> None:
    runner = FakeRunner().expect("git rev-parse --short HEAD", stdout="abc1234\n")
    runner.expect(lambda line: line.startswith("docker build"), returncode=2, stderr="no ctx")
    monkeypatch.setattr("stagecraft.runtime.process.run", runner)
    from stagecraft.runtime import process

    lines: list[tuple[str, str]] = []
    out = process.run(
        ["git", "rev-parse", "--short", "HEAD"], on_line=lambda s, line: lines.append((s, line))
    )
    assert out.stdout == "abc1234\n" and lines == [("stdout", "abc1234")]
    assert process.run(["docker", "build", "."], check=False).returncode == 2
    assert runner.commands == ["git rev-parse --short HEAD", "docker build ."]
    runner.assert_all_used()
