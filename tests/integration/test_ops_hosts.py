"""status, logs and exec targets against sandbox hosts, with labelled containers we start.

Containers are namespaced by a unique project name and removed after each test, so
the shared ``sandbox3`` stays clean. An unreachable host is simulated by pointing
one host at port 9 (nothing listens there), which does not disturb the sandbox.
"""

from __future__ import annotations

import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from stagecraft.config.loader import LoadedConfig, load_project
from stagecraft.deploy.state.layout import environment_hosts
from stagecraft.errors import UsageError
from stagecraft.localhosts.sandbox import Sandbox
from stagecraft.ops.logs import LogFollower, LogOptions, fetch_logs, find_targets
from stagecraft.ops.shell import find_exec_target
from stagecraft.ops.status import collect_status
from stagecraft.runtime.ssh import SSHHost, SSHOptions
from stagecraft.testing.images import copy_image

FLEET = Path(__file__).resolve().parents[2] / "examples" / "fleet"
NEW = "20261124T110000Z-bbbbbbbbbbbb"
OLD = "20261123T110000Z-aaaaaaaaaaaa"
pytestmark = pytest.mark.integration


def write_project(root: Path, sandbox: Sandbox, name: str, *, web2_port: int = 22) -> Path:
    """The fleet example aimed at the sandbox's three hosts; returns its stagecraft.yml."""
    shutil.copytree(FLEET, root)
    a, b, c = sandbox.hosts[:3]
    config = root / "stagecraft.yml"
    config.write_text(
        f"project: {name}\n"
        "compose: docker-compose.yml\n"
        "environments:\n"
        "  production:\n"
        "    hosts:\n"
        f"      web-1: {{address: {a.address}, roles: [web]}}\n"
        f"      web-2: {{address: {b.address}, port: {web2_port}, roles: [web]}}\n"
        f"      data-1: {{address: {c.address}, roles: [data, jobs]}}\n"
        "    roles: {web: [web], jobs: [worker], data: [db]}\n"
        "    secrets: [POSTGRES_PASSWORD, DATABASE_URL]\n"
    )
    return config


@dataclass
class Fleet:
    """Labelled busybox containers on sandbox hosts, removed by :meth:`remove`."""

    sandbox: Sandbox
    project: str
    image: str
    started: list[tuple[str, str]]

    def run(self, host: str, service: str, release: str, script: str, *extra: str) -> str:
        labels = {
            "stagecraft.project": self.project,
            "stagecraft.env": "production",
            "stagecraft.service": service,
            "stagecraft.release": release,
            "stagecraft.version": release.split("-", 1)[1],
            "stagecraft.config-hash": "sha256:test",
            "stagecraft.kind": "web",
        }
        flags = [arg for key, value in labels.items() for arg in ("--label", f"{key}={value}")]
        name = f"{self.project}-{service}-{uuid.uuid4().hex[:6]}"
        self.sandbox.docker(
            host, "run", "-d", "--init", "--name", name, *flags, *extra, self.image,
            "sh", "-c", script,
        )  # fmt: skip
        self.started.append((host, name))
        return name

    def remove(self) -> None:
        for host, name in self.started:
            self.sandbox.docker(host, "rm", "-f", name, check=False)


@pytest.fixture
def fleet(sandbox3: Sandbox, busybox_image: str) -> Iterator[Fleet]:
    for host in sandbox3.hosts[:3]:
        copy_image(busybox_image, None, host.docker_host)
    made = Fleet(sandbox3, f"opsit{uuid.uuid4().hex[:8]}", busybox_image, [])
    try:
        yield made
    finally:
        made.remove()


def _load(tmp_path: Path, fleet: Fleet, *, web2_port: int = 22) -> LoadedConfig:
    return load_project(
        write_project(tmp_path / "p", fleet.sandbox, fleet.project, web2_port=web2_port)
    )


def _hosts(loaded: LoadedConfig, options: SSHOptions) -> list[SSHHost]:
    return environment_hosts(loaded.environment("production"), options)


def _wait(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _processes_mentioning(text: str) -> list[str]:
    """Command lines of every process on this machine (sandbox hosts share its PIDs) with text."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            found.append(cmdline)
    return found


def _followers(container: str) -> list[str]:
    """Local ssh and remote ``docker logs --follow`` processes reading ``container``."""
    return [cmd for cmd in _processes_mentioning(container) if "--follow" in cmd]


TICKER = 'echo "hi $HOSTNAME"; i=0; while true; do echo "tick $i"; i=$((i+1)); sleep 0.3; done'


def test_status_reads_every_host(
    tmp_path: Path, fleet: Fleet, ssh_options_for: Callable[[Sandbox], SSHOptions]
) -> None:
    web1, web2, data = (h.name for h in fleet.sandbox.hosts[:3])
    fleet.run(web1, "web", NEW, "sleep 600")
    fleet.run(web1, "web", OLD, "sleep 600")
    fleet.run(web2, "web", NEW, "sleep 600")
    fleet.run(web2, "web", NEW, "exit 3")
    fleet.run(data, "worker", NEW, "sleep 600")
    loaded = _load(tmp_path, fleet)
    hosts = _hosts(loaded, ssh_options_for(fleet.sandbox))
    status = collect_status(
        hosts, loaded.environment("production"), project=fleet.project, env="production"
    )
    rows = {
        (h.host, s.service): (s.release, s.running, s.total, s.older_running, s.health)
        for h in status.hosts
        for s in h.services
    }
    assert rows[("web-1", "web")] == (NEW, 1, 1, 1, "running")
    assert rows[("data-1", "worker")] == (NEW, 1, 1, 0, "running")
    assert rows[("data-1", "db")] == (None, 0, 0, 0, "not deployed")
    _wait(
        lambda: (
            collect_status(
                hosts, loaded.environment("production"), project=fleet.project, env="production"
            )
            .hosts[1]
            .services[0]
            .total
            == 2
        ),
        30,
        "the failing replica to be listed",
    )
    assert not status.unreachable
    up = status.hosts[0].services[0].uptime
    assert up is not None and 0 <= up < 120


def test_status_lists_other_hosts_when_one_is_unreachable(
    tmp_path: Path, fleet: Fleet, ssh_options_for: Callable[[Sandbox], SSHOptions]
) -> None:
    fleet.run(fleet.sandbox.hosts[0].name, "web", NEW, "sleep 600")
    loaded = _load(tmp_path, fleet, web2_port=9)
    status = collect_status(
        _hosts(loaded, ssh_options_for(fleet.sandbox)),
        loaded.environment("production"),
        project=fleet.project,
        env="production",
    )
    assert [h.host for h in status.unreachable] == ["web-2"]
    assert status.hosts[0].services[0].running == 1
    assert status.hosts[2].reachable and status.hosts[2].services[0].service == "db"


def test_logs_merge_hosts_and_follow_stops_cleanly(
    tmp_path: Path, fleet: Fleet, ssh_options_for: Callable[[Sandbox], SSHOptions]
) -> None:
    web1, web2 = (h.name for h in fleet.sandbox.hosts[:2])
    fleet.run(web1, "web", NEW, TICKER, "--hostname", "one")
    fleet.run(web2, "web", NEW, TICKER + " >&2", "--hostname", "two")
    fleet.run(web2, "web", OLD, "echo old; sleep 600")
    loaded = _load(tmp_path, fleet)
    hosts = [h for h in _hosts(loaded, ssh_options_for(fleet.sandbox)) if h.name != "data-1"]
    found = find_targets(hosts, project=fleet.project, env="production", service="web")
    assert sorted(t.label for t in found.targets) == ["web-1/web", "web-2/web-1", "web-2/web-2"]

    def both_ticked() -> bool:
        lines = fetch_logs(found.targets, LogOptions())
        return {"web-1/web", "web-2/web-1"} <= {
            line.label for line in lines if "tick 2" in line.text
        }

    _wait(both_ticked, 30, "both tickers to log")
    lines = fetch_logs(found.targets, LogOptions(tail=2))
    assert [line.time for line in lines] == sorted(line.time for line in lines)
    assert {line.label for line in lines} == {"web-1/web", "web-2/web-1", "web-2/web-2"}
    assert len([line for line in lines if line.label == "web-1/web"]) == 2
    assert {line.stream for line in lines if line.label == "web-2/web-1"} == {"stderr"}

    got: list[tuple[str, str]] = []
    follower = LogFollower(
        found.targets, LogOptions(since="1s"), lambda lb, _s, t: got.append((lb, t))
    )
    errors: dict[str, str] = {}
    runner = threading.Thread(target=lambda: errors.update(follower.run()))
    runner.start()
    try:
        _wait(
            lambda: {"web-1/web", "web-2/web-1"} <= {lb for lb, t in got if t.startswith("tick")},
            30,
            "followed lines from both hosts",
        )
        following = _followers(found.targets[0].container)
        assert any(cmd.startswith("docker logs") for cmd in following), following
        assert any(cmd.startswith("ssh ") for cmd in following), following
    finally:
        follower.stop()
        runner.join(timeout=20)
    assert not runner.is_alive()
    assert errors == {}
    ids = [t.container for t in found.targets]
    _wait(
        lambda: not any(_followers(cid) for cid in ids),
        15,
        "every docker logs -f and ssh to end",
    )
    for host in hosts:
        host.close()


def test_exec_target_is_a_running_container_of_the_first_host(
    tmp_path: Path, fleet: Fleet, ssh_options_for: Callable[[Sandbox], SSHOptions]
) -> None:
    web2 = fleet.sandbox.hosts[1].name
    name = fleet.run(web2, "web", NEW, "sleep 600")
    loaded = _load(tmp_path, fleet)
    hosts = _hosts(loaded, ssh_options_for(fleet.sandbox))
    target = find_exec_target(hosts, project=fleet.project, env="production", service="web")
    assert (target.host.name, target.name) == ("web-2", name)
    with pytest.raises(UsageError, match="no running container of 'worker'"):
        find_exec_target(hosts[:2], project=fleet.project, env="production", service="worker")
