"""The rollout's start script on a real sandbox host: ready by health events, HTTP or uptime."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
import yaml

from stagecraft.deploy.rollout.script import StartResult, StartSpec, parse_start, start_script
from stagecraft.deploy.rollout.steps import HttpCheck
from stagecraft.localhosts.sandbox import Sandbox
from stagecraft.providers.builtin.proxy_caddy import host as edge
from stagecraft.runtime.ssh import SSHHost
from stagecraft.testing import images

pytestmark = [pytest.mark.integration, pytest.mark.sandbox]

RELEASE = "/var/lib/stagecraft-test/rollout-script"
PROJECT = "rs-test"


def _services(image: str) -> dict[str, Any]:
    serve = "mkdir -p /www && echo ok > /www/index.html && exec httpd -f -p 80 -h /www"
    base: dict[str, Any] = {"image": image, "init": True, "networks": ["stagecraft"]}
    return {
        "healthy": {**base, "command": ["sh", "-c", serve],
                    "healthcheck": {"test": ["CMD", "true"], "interval": "1s"}},
        "unhealthy": {**base, "command": ["sleep", "300"],
                      "healthcheck": {"test": ["CMD", "false"], "interval": "1s", "retries": 1}},
        "slow": {**base, "command": ["sleep", "300"],
                 "healthcheck": {"test": ["CMD", "false"], "interval": "30s"}},
        "crashing": {**base, "command": ["sh", "-c", "sleep 0.5; exit 3"]},
        "plain": {**base, "command": ["sleep", "300"]},
        "http": {**base, "command": ["sh", "-c", serve]},
        # on the project's default network, which the first `compose up` creates
        "alone-a": {"image": image, "init": True, "command": ["sleep", "300"]},
        "alone-b": {"image": image, "init": True, "command": ["sleep", "300"]},
    }  # fmt: skip


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SSHHost]:
    from stagecraft.localhosts.sandbox import ssh_options_for
    from stagecraft.testing.pytest_plugin import _require_sandbox, start_sandbox

    _require_sandbox()
    sandbox: Sandbox = start_sandbox(1, tmp_path_factory.mktemp("rs"), "rs")
    try:
        target = sandbox.hosts[0]
        ssh = SSHHost(target.target(), ssh_options_for(sandbox))
        busybox = images.ensure_busybox_image(target.docker_host)
        ssh.docker("network", "create", edge.NETWORK, check=False)
        compose = {
            "services": _services(busybox),
            "networks": {"stagecraft": {"external": True}},
        }
        ssh.run(["mkdir", "-p", RELEASE])
        ssh.write_file(
            f"{RELEASE}/docker-compose.yml", yaml.safe_dump(compose).encode(), mode=0o644
        )
        yield ssh
        ssh.close()
    finally:
        sandbox.stop()


def _start(host: SSHHost, service: str, **changes: Any) -> StartResult:
    spec = StartSpec(PROJECT, RELEASE, service, None, False, 20, None, 1.0, edge.NETWORK)
    result = host.run(["sh", "-c", start_script(replace(spec, **changes))], check=False)
    parsed = parse_start(result.stdout)
    assert (result.returncode == 0) == parsed.ready, result.output
    return parsed


def test_a_healthcheck_is_ready_when_docker_says_healthy(host: SSHHost) -> None:
    first = _start(host, "healthy")
    assert first.ready and first.problem is None and len(first.new) == 1, first
    assert first.addresses[first.new[0]].count(".") == 3
    second = _start(host, "healthy", add=1, side_by_side=True)
    assert second.ready and second.old == first.new and len(second.new) == 1
    assert second.new != first.new and set(second.addresses) == {*first.new, *second.new}


def test_unhealthy_fails_at_once_and_a_never_healthy_one_at_the_timeout(host: SSHHost) -> None:
    unhealthy = _start(host, "unhealthy")
    assert unhealthy.problem == "Docker healthcheck: unhealthy" and unhealthy.new
    slow = _start(host, "slow", timeout=3)
    assert slow.problem == "Docker healthcheck: not healthy after 3s"


def test_without_health_checks_ready_means_running_for_ready_after(host: SSHHost) -> None:
    assert _start(host, "plain", ready_after=1.5).ready
    crashing = _start(host, "crashing", ready_after=2)
    assert crashing.problem is not None and "exited or restarted within 2s" in crashing.problem


def test_an_http_check_is_probed_until_it_answers(host: SSHHost) -> None:
    ok = _start(host, "http", http_check=HttpCheck("/index.html", 80, 1.0, 2.0))
    assert ok.ready, ok
    nope = HttpCheck("/nope", 80, 0.5, 1.0)
    missing = _start(host, "http", http_check=nope, timeout=2, add=1, side_by_side=True)
    assert missing.problem == "HTTP GET /nope on port 80 did not answer 2xx after 2s"


def test_two_services_of_a_new_project_start_at_the_same_time(host: SSHHost) -> None:
    """Both `compose up` would create the project's network; the lock makes it one."""
    project = f"rs-fresh-{int(time.time() * 1000)}"
    results: dict[str, StartResult] = {}

    def start(service: str) -> None:
        spec = StartSpec(project, RELEASE, service, None, False, 20, None, 0.5, edge.NETWORK)
        done = host.run(["sh", "-c", start_script(spec)], check=False)
        results[service] = parse_start(done.stdout)

    threads = [threading.Thread(target=start, args=(s,)) for s in ("alone-a", "alone-b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert all(r.ready for r in results.values()), results
    networks = host.docker("network", "ls", "-q", "--filter", f"name={project}_default").stdout
    assert len(networks.split()) == 1


def test_a_compose_error_is_reported_as_an_error(host: SSHHost) -> None:
    result = _start(host, "no-such-service")
    assert result.error is not None and result.error.startswith("docker compose up failed")
