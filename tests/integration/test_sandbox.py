"""Sandbox hosts: isolation, networking, lifecycle, complete teardown, crash cleanup; images."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from stagecraft.localhosts.sandbox import (
    STATE_ROOT,
    Sandbox,
    SandboxBusyError,
    cleanup_leftovers,
    find_leftovers,
)
from stagecraft.runtime.process import run
from stagecraft.runtime.ssh import SSHHost
from stagecraft.testing import images
from stagecraft.testing.pytest_plugin import start_sandbox

pytestmark = [pytest.mark.integration, pytest.mark.sandbox]


def eventually(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def nothing_left(prefix: str, workdir: Path) -> dict[str, object]:
    """Leftovers found independently of the sandbox's own bookkeeping (empty when clean)."""
    netns = run(["ip", "netns", "list"]).stdout.split()
    links = run(["ip", "-o", "link", "show"]).stdout
    rules = run(["iptables", "-w", "-S", "FORWARD"]).stdout
    rules += run(["iptables", "-w", "-t", "nat", "-S", "POSTROUTING"]).stdout
    mounts = Path("/proc/self/mountinfo").read_text()
    procs = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if str(workdir).encode() in cmdline or f"{STATE_ROOT}/{prefix}/".encode() in cmdline:
            procs.append(pid)
    found = {
        "netns": [n for n in netns if n.startswith(f"{prefix}-")],
        "links": [ln for ln in links.splitlines() if f": {prefix}-h" in ln or f"{prefix}br0" in ln],
        "rules": [r for r in rules.splitlines() if f"stagecraft-sandbox:{prefix}" in r],
        "mounts": [m for m in mounts.splitlines() if f"{STATE_ROOT}/{prefix}" in m],
        "processes": procs,
        "data": sorted(p.name for p in workdir.glob("h*")) if workdir.exists() else [],
        "cgroups": [str(p) for p in Path("/sys/fs/cgroup").glob(f"*/{prefix}-h*")],
        "state": [str(STATE_ROOT / prefix)] if (STATE_ROOT / prefix).exists() else [],
    }
    return {key: value for key, value in found.items() if value}


def test_hosts_are_isolated_yet_reach_each_other(sandbox3: Sandbox) -> None:
    h1, h2, _ = (sandbox3.ssh_host(h.name) for h in sandbox3.hosts)
    marker = f"/root/only-on-h1-{os.getpid()}"
    h1.run(["touch", marker])
    try:
        assert h1.run(["ls", marker], check=False).ok
        assert not h2.run(["ls", marker], check=False).ok
        # Host to host over the bridge (the FORWARD rule lets it through).
        h2_ssh = f"</dev/tcp/{sandbox3.host('h2').address}/22"
        assert h1.run(["timeout", "5", "bash", "-c", h2_ssh], check=False).ok
        # Inside a host, the default docker socket is that host's own daemon.
        own = h1.run("DOCKER_HOST= docker info --format '{{.DockerRootDir}}'").stdout.strip()
        assert own == str(sandbox3.workdir / "h1" / "docker")
        assert (
            h1.run("cat ~/.bashrc").stdout == Path("/usr/share/base-files/dot.bashrc").read_text()
        )
    finally:
        h1.run(["rm", "-f", marker])


def test_a_sandbox_starts_fast_and_tears_down_completely(
    tmp_path: Path, busybox_image: str
) -> None:
    began = time.monotonic()
    sandbox = start_sandbox(3, tmp_path, "st")
    startup = time.monotonic() - began
    prefix, workdir = sandbox.prefix, sandbox.workdir
    try:
        assert startup < 30, f"3 hosts took {startup:.1f}s"
        images.copy_image(busybox_image, None, sandbox.hosts[0].docker_host)
        # A running container adds shims, mounts, a cgroup and a veth to clean up.
        sandbox.docker("h1", "run", "-d", "--init", "-p", "8080:80", busybox_image, "sleep", "600")
        assert any(find_leftovers(prefix).values())
        with pytest.raises(SandboxBusyError):
            cleanup_leftovers(prefix)  # a live sandbox is never "left over"
    finally:
        sandbox.stop()
    assert not any(find_leftovers(prefix).values()), find_leftovers(prefix)
    assert nothing_left(prefix, workdir) == {}
    sandbox.stop()  # idempotent


CRASHING_CHILD = """
import sys, time
from pathlib import Path
from stagecraft.localhosts.sandbox import Sandbox
sandbox = Sandbox(2, workdir=Path(sys.argv[1]), prefix=sys.argv[2]).start()
print("up", flush=True)
time.sleep(600)
"""


def test_a_bare_host_runs_its_own_system_reaches_the_internet_and_leaves_nothing(
    tmp_path: Path,
) -> None:
    """A bare host: its own Debian 13 root (pivot_root), its own sshd, no Docker, apt works."""
    rootfs = images.bare_server_rootfs("trixie")
    sandbox = Sandbox(2, workdir=tmp_path, prefix="sbb", bare=1, bare_rootfs=rootfs).start()
    try:
        regular, bare = sandbox.hosts
        assert bare.bare and not regular.bare
        host = sandbox.ssh_host(bare.name)
        facts = host.run(
            ["sh", "-c", ". /etc/os-release; echo $VERSION_CODENAME; command -v docker || echo -"]
        ).stdout.split()
        assert facts == ["trixie", "-"]
        assert not host.run(["test", "-e", str(tmp_path)], check=False).ok  # not our files
        assert host.run(["apt-get", "update", "-q"], timeout=120).ok  # masqueraded out
        # the regular host still has this machine's system (and Docker)
        assert sandbox.ssh_host(regular.name).run(["docker", "version"]).ok
        sshd = [
            pid
            for pid in filter(str.isdigit, os.listdir("/proc"))
            if _root_of(pid) == _inode(tmp_path / bare.name / "rootfs")
        ]
        assert sshd, "no process runs in the bare host's root"
        host.close()
    finally:
        sandbox.stop()
    assert nothing_left("sbb", tmp_path) == {}
    assert find_leftovers("sbb") == {key: [] for key in find_leftovers("sbb")}
    assert [pid for pid in sshd if Path(f"/proc/{pid}").exists()] == []


def _inode(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_dev, stat.st_ino


def _root_of(pid: str) -> tuple[int, int] | None:
    try:
        return _inode(Path(f"/proc/{pid}/root"))
    except OSError:
        return None


def test_cleanup_leftovers_removes_what_a_killed_run_left(tmp_path: Path) -> None:
    prefix = free_prefix("sk")
    child = subprocess.Popen(
        [sys.executable, "-c", CRASHING_CHILD, str(tmp_path), prefix],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "up"
        with pytest.raises(SandboxBusyError):
            cleanup_leftovers(prefix)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    assert nothing_left(prefix, tmp_path) != {}  # dockerd, sshd, netns... all survive a crash
    cleanup_leftovers(prefix)
    assert nothing_left(prefix, tmp_path) == {}


def free_prefix(base: str) -> str:
    for prefix in [base, *(f"{base}{n}" for n in range(1, 10))]:
        try:
            cleanup_leftovers(prefix)
        except SandboxBusyError:
            continue
        return prefix
    pytest.fail(f"no free prefix {base}..{base}9")


def test_images_are_built_once_and_copied_between_daemons(sandbox3: Sandbox) -> None:
    tag = images.ensure_busybox_image()
    first = images.image_id(tag)
    began = time.monotonic()
    assert images.ensure_busybox_image() == tag
    assert time.monotonic() - began < 2  # reused, not rebuilt
    assert images.image_id(tag) == first
    target = sandbox3.hosts[2].docker_host
    images.copy_image(tag, None, target)
    assert images.image_id(tag, target) == first
    out = sandbox3.docker("h3", "run", "--rm", tag, "sh", "-c", "echo $((6 * 7))").stdout
    assert out == "42\n"


def test_caddy_image_serves_on_a_sandbox_host(sandbox3: Sandbox) -> None:
    host = sandbox3.hosts[1]
    tag = images.ensure_caddy_image(host.docker_host)
    name = f"caddy-{os.getpid()}"
    sandbox3.docker("h2", "run", "-d", "--name", name, "-p", "80", tag)
    try:
        port = sandbox3.docker("h2", "port", name, "80/tcp").stdout.split()[0].rsplit(":", 1)[1]
        url = f"http://{host.address}:{port}/"
        assert eventually(lambda: fetch(url) == "caddy ok", timeout=15)
    finally:
        sandbox3.docker("h2", "rm", "-f", name, check=False)


def fetch(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return str(response.read().decode())
    except OSError:
        return ""


def test_debian_image_from_a_cached_debootstrap(tmp_path: Path) -> None:
    assert images.debian_mirror().startswith(("http://", "https://"))
    tag = images.ensure_debian_image()
    assert images.debian_rootfs_tarball().stat().st_size > 50_000_000
    version = run(["docker", "run", "--rm", tag, "cat", "/etc/debian_version"]).stdout
    assert version.startswith("12.")


def test_sandbox_ssh_config_works_for_plain_ssh(sandbox3: Sandbox) -> None:
    """The written ssh_config is enough for the system ssh client, by address or alias."""
    host = sandbox3.hosts[0]
    by_address = run(["ssh", "-F", str(sandbox3.ssh_config), host.address, "echo", "$DOCKER_HOST"])
    assert by_address.stdout.strip() == host.docker_host
    by_alias = run(["ssh", "-F", str(sandbox3.ssh_config), f"{sandbox3.prefix}-h1", "true"])
    assert by_alias.ok
    assert isinstance(sandbox3.ssh_host("h1"), SSHHost)
