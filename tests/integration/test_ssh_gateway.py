"""SSHHost against real sshd + dockerd sandbox hosts: commands, docker, files, tunnels, keys."""

from __future__ import annotations

import socket
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from stagecraft.errors import (
    CommandFailed,
    HostError,
    HostKeyMismatch,
    HostKeyUnknown,
    HostUnreachable,
)
from stagecraft.localhosts.sandbox import Sandbox
from stagecraft.runtime.fanout import fan_out
from stagecraft.runtime.process import run
from stagecraft.runtime.ssh import SSHHost, SSHOptions, SSHTarget
from stagecraft.testing.images import copy_image

pytestmark = [pytest.mark.integration, pytest.mark.sandbox]


def eventually(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


@pytest.fixture
def options(sandbox3: Sandbox, tmp_path: Path) -> SSHOptions:
    """The sandbox's ssh_config, with a control directory of this test's own."""
    return SSHOptions(config_file=sandbox3.ssh_config, control_dir=tmp_path / "cm")


@pytest.fixture
def hosts(sandbox3: Sandbox, options: SSHOptions) -> Iterator[list[SSHHost]]:
    made = [SSHHost(h.target(), options) for h in sandbox3.hosts]
    yield made
    for host in made:
        host.close()


@pytest.fixture(scope="module")
def on_every_host(sandbox3: Sandbox, busybox_image: str) -> str:
    """The busybox image, loaded into every sandbox host's daemon."""
    for host in sandbox3.hosts:
        copy_image(busybox_image, None, host.docker_host)
    return busybox_image


def accepted_logins(sandbox: Sandbox, name: str) -> int:
    return sandbox.log_file(name, "sshd").read_text().count("Accepted publickey")


def test_run_works_and_reuses_one_control_connection(
    sandbox3: Sandbox, hosts: list[SSHHost]
) -> None:
    host = hosts[0]
    before = accepted_logins(sandbox3, "h1")
    outputs = [host.run(["echo", f"call {i}", "$HOME"]).stdout for i in range(5)]
    assert outputs == [f"call {i} $HOME\n" for i in range(5)]
    assert host.run("echo $HOME").stdout == "/root\n"
    assert eventually(lambda: accepted_logins(sandbox3, "h1") == before + 1, timeout=3)
    assert host.control_path().is_socket()
    argv = host.ssh_argv(None)
    check = run([*argv[:-2], "-O", "check", *argv[-2:]], check=False)
    assert check.returncode == 0, check.stderr
    host.close()
    assert eventually(lambda: not host.control_path().exists(), timeout=5)


def test_docker_on_each_host_reaches_that_hosts_own_daemon(
    sandbox3: Sandbox, hosts: list[SSHHost], on_every_host: str
) -> None:
    name = f"only-on-h1-{uuid.uuid4().hex[:8]}"
    h1 = hosts[0]
    h1.docker("run", "-d", "--init", "--name", name, on_every_host, "sleep", "300")
    try:
        seen = {h.name: h.docker("ps", "--format", "{{.Names}}").stdout.split() for h in hosts}
        assert name in seen["h1"]
        assert name not in seen["h2"] and name not in seen["h3"]
        direct = sandbox3.docker("h1", "ps", "--format", "{{.Names}}").stdout.split()
        assert name in direct
        roots = {h.name: h.docker("info", "--format", "{{.DockerRootDir}}").stdout for h in hosts}
        assert len(set(roots.values())) == 3
    finally:
        h1.docker("rm", "-f", name, check=False)


def test_write_file_is_0600_with_exact_bytes_and_private_to_the_host(
    hosts: list[SSHHost], tmp_path: Path
) -> None:
    h1, h2, _ = hosts
    path = f"/srv/stagecraft-test/{uuid.uuid4().hex[:8]}/app.env"
    data = b"DATABASE_URL=postgres://u:p@db/x\n\x00\xff tail without newline"
    h1.write_file(path, data)
    assert h1.run(["stat", "-c", "%a %s", path]).stdout.split() == ["600", str(len(data))]
    assert h1.read_file(path) == data
    assert h2.read_file(path) is None  # /srv is per host
    h1.write_file(path, b"replaced", mode=0o640)
    assert h1.run(["stat", "-c", "%a", path]).stdout.strip() == "640"
    assert h1.read_file(path) == b"replaced"
    local = tmp_path / "compose.yml"
    local.write_bytes(b"services:\n  web: {image: busybox}\n")
    h1.upload(local, path + ".compose", mode=0o644)
    assert h1.read_file(path + ".compose") == local.read_bytes()
    h1.run(["rm", "-rf", str(Path(path).parent)])


def test_forward_reaches_a_tcp_service_on_the_host(
    hosts: list[SSHHost], on_every_host: str
) -> None:
    h2 = hosts[1]
    name = f"web-{uuid.uuid4().hex[:8]}"
    serve = "mkdir /www && echo hello from h2 > /www/index.html && exec httpd -f -p 80 -h /www"
    h2.docker("run", "-d", "--init", "--name", name, "-p", "127.0.0.1::80", on_every_host,
              "sh", "-c", serve)  # fmt: skip
    try:
        published = h2.docker("port", name, "80/tcp").stdout.split()[0]  # 127.0.0.1:NNNNN
        remote_port = int(published.rsplit(":", 1)[1])
        with h2.forward("127.0.0.1", remote_port) as port:
            assert port > 0

            def fetch() -> str:
                try:
                    url = f"http://127.0.0.1:{port}/index.html"
                    with urllib.request.urlopen(url, timeout=2) as response:
                        return str(response.read().decode())
                except OSError:
                    return ""

            assert eventually(lambda: fetch() == "hello from h2\n")
        assert eventually(lambda: not can_connect(port), timeout=5)
    finally:
        h2.docker("rm", "-f", name, check=False)


def can_connect(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def test_probe_reports_docker_and_compose_on_every_host(hosts: list[SSHHost]) -> None:
    result = fan_out(hosts, lambda h: h.probe(), name=lambda h: h.name)
    assert result.ok
    for outcome in result.outcomes:
        probe = outcome.value
        assert probe is not None and probe.docker_version and probe.compose_version
        assert probe.arch


def test_unknown_host_key_is_refused_not_accepted(sandbox3: Sandbox, tmp_path: Path) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    options = SSHOptions(config_file=sandbox3.ssh_config, known_hosts=empty, control_dir=tmp_path)
    host = SSHHost(sandbox3.hosts[0].target(), options)
    with pytest.raises(HostKeyUnknown) as info:
        host.run("true")
    assert info.value.host == "h1"
    assert empty.read_text() == ""
    # Opting out of strict checking accepts a *new* key and records it.
    lenient = SSHHost(
        sandbox3.hosts[0].target(),
        SSHOptions(config_file=sandbox3.ssh_config, known_hosts=empty, strict_host_keys=False,
                   control_dir=tmp_path),
    )  # fmt: skip
    assert lenient.run("echo ok").stdout == "ok\n"
    assert sandbox3.hosts[0].address in empty.read_text()
    lenient.close()


def test_a_rotated_host_key_raises_mismatch_even_without_strict_checking(
    sandbox_factory: Callable[[int], Sandbox], tmp_path: Path
) -> None:
    sandbox = sandbox_factory(1)
    target = sandbox.hosts[0].target()
    strict = SSHHost(target, SSHOptions(config_file=sandbox.ssh_config, control_dir=tmp_path))
    assert strict.run("echo before").stdout == "before\n"
    sandbox.rotate_host_key("h1")
    assert eventually(lambda: not strict.control_path().exists(), timeout=5)
    with pytest.raises(HostKeyMismatch) as info:
        strict.run("echo after")
    assert "ssh-keygen -R" in (info.value.hint or "")
    lenient = SSHHost(
        target,
        SSHOptions(config_file=sandbox.ssh_config, strict_host_keys=False, control_dir=tmp_path),
    )
    with pytest.raises(HostKeyMismatch):
        lenient.run("echo after")


def test_wrong_key_is_an_auth_error_and_a_closed_port_is_unreachable(
    sandbox3: Sandbox, tmp_path: Path
) -> None:
    stranger = tmp_path / "stranger"
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(stranger)])
    config = tmp_path / "ssh_config"
    config.write_text(
        f"Host *\n  IdentityFile {stranger}\n  IdentitiesOnly yes\n  IdentityAgent none\n"
        f"  UserKnownHostsFile {sandbox3.known_hosts}\n"
    )
    address = sandbox3.hosts[0].address
    host = SSHHost(
        SSHTarget("h1", address, "root"), SSHOptions(config_file=config, control_dir=tmp_path)
    )
    with pytest.raises(HostError) as info:
        host.run("true")
    assert type(info.value) is HostError
    assert "authentication failed for root@" in info.value.message
    closed = SSHHost(
        SSHTarget("h1", address, "root", 2222), SSHOptions(config_file=config, control_dir=tmp_path)
    )
    with pytest.raises(HostUnreachable, match=f"h1: cannot connect to {address}:2222"):
        closed.run("true")
    with pytest.raises(HostUnreachable), closed.forward("127.0.0.1", 80):
        pytest.fail("a tunnel through an unreachable host must not open")


def test_a_host_lost_mid_command_is_unreachable_and_a_remote_255_is_not(
    sandbox_factory: Callable[[int], Sandbox],
) -> None:
    """A cut connection ends ssh with 255 and no message, like a command's own `exit 255`."""
    sandbox = sandbox_factory(1)
    host = sandbox.ssh_host("h1")
    try:
        own = host.run(["sh", "-c", "exit 255"], check=False)
        assert own.returncode == 255  # the remote command's code: the host still answers
        with pytest.raises(CommandFailed, match="exited with 255"):
            host.run(["sh", "-c", "exit 255"])

        stopper = threading.Timer(1.0, sandbox.stop_host, args=("h1",))
        stopper.start()
        try:
            lost = r"lost the connection to \S+ during `sleep 30`"
            with pytest.raises(HostUnreachable, match=lost):
                host.run(["sleep", "30"])
        finally:
            stopper.join()
    finally:
        host.close()
