"""fan_out over real sandbox hosts: parallel commands, and a lost host among healthy ones."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from stagecraft.errors import ExitCode, HostUnreachable
from stagecraft.localhosts.sandbox import Sandbox
from stagecraft.runtime.fanout import GroupError, fan_out
from stagecraft.runtime.ssh import SSHHost, SSHOptions

pytestmark = [pytest.mark.integration, pytest.mark.sandbox]


def daemon_root(host: SSHHost) -> str:
    """Which daemon answers on this host (each has its own data root)."""
    return host.docker("info", "--format", "{{.DockerRootDir}}").stdout.strip()


def test_one_stopped_host_fails_clearly_and_the_others_still_answer(
    sandbox_factory: Callable[[int], Sandbox], tmp_path: Path
) -> None:
    sandbox = sandbox_factory(3)
    options = SSHOptions(config_file=sandbox.ssh_config, control_dir=tmp_path)
    hosts = [SSHHost(h.target(), options) for h in sandbox.hosts]
    sandbox.stop_host("h2")
    done: list[str] = []

    started = time.monotonic()
    result = fan_out(
        hosts, daemon_root, name=lambda h: h.name, on_done=lambda o: done.append(o.name)
    )
    assert time.monotonic() - started < 10

    assert sorted(done) == ["h1", "h2", "h3"]
    assert [o.name for o in result.succeeded] == ["h1", "h3"]
    assert [o.value for o in result.succeeded] == [
        str(sandbox.workdir / "h1" / "docker"),
        str(sandbox.workdir / "h3" / "docker"),
    ]
    (lost,) = result.failed
    assert isinstance(lost.error, HostUnreachable)
    address = sandbox.host("h2").address
    with pytest.raises(GroupError) as info:
        result.raise_for_failures()
    assert info.value.message == (
        f"1 of 3 hosts failed: h2: cannot connect to {address}:22: connection refused"
    )
    assert info.value.exit_code == ExitCode.UNREACHABLE

    sandbox.start_host("h2")
    again = fan_out(hosts, daemon_root, name=lambda h: h.name)
    assert again.ok, [o.error for o in again.failed]


def test_commands_on_three_hosts_run_in_parallel(sandbox3: Sandbox, tmp_path: Path) -> None:
    options = SSHOptions(config_file=sandbox3.ssh_config, control_dir=tmp_path)
    hosts = [SSHHost(h.target(), options) for h in sandbox3.hosts]
    fan_out(hosts, lambda h: h.run("true"), name=lambda h: h.name)  # open the connections
    started = time.monotonic()
    result = fan_out(hosts, lambda h: h.run("sleep 1; echo $DOCKER_HOST"), name=lambda h: h.name)
    elapsed = time.monotonic() - started
    assert result.ok
    assert [o.value.stdout.strip() for o in result.outcomes if o.value] == [
        h.docker_host for h in sandbox3.hosts
    ]
    assert elapsed < 2.5, f"3 x 1 s took {elapsed:.1f}s: not parallel"
    serial = fan_out(hosts, lambda h: h.run("sleep 0.5"), name=lambda h: h.name, parallel=1)
    assert serial.ok and sum(o.duration for o in serial.outcomes) >= 1.5
    for host in hosts:
        host.close()
