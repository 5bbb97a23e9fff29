"""`hosts bootstrap` takes a bare Debian server to a deploy host, then a deploy runs on it.

The bare host is a sandbox host with its own root filesystem: Debian 13 (trixie)
made by debootstrap with only openssh-server, sudo, iproute2, ca-certificates and
netcat (what a cloud's Debian image has that matters here), no Docker, and a
route to the internet through this machine, so the bootstrap installs Docker
and Compose v2 from Debian's own packages with apt, starts the daemon (by its
init script: no systemd runs in the sandbox), creates the deploy user, turns
on ufw and starts the proxy; each a real step on a real system.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from stagecraft.localhosts.sandbox import Sandbox, SandboxHost
from stagecraft.runtime.ssh import SSHHost
from stagecraft.testing import images

pytestmark = [pytest.mark.e2e, pytest.mark.sandbox]

DOMAIN = "bare.test"


@dataclass
class Bare:
    root: Path
    sandbox: Sandbox
    host: SandboxHost
    name: str
    env: dict[str, str]
    caddy: str

    def configure(self, *, user: str = "root", bootstrap: str = "") -> None:
        (self.root / "stagecraft.yml").write_text(
            f"project: {self.name}\n"
            "compose: docker-compose.yml\n"
            f"proxy: {{provider: caddy, providers: {{caddy: {{image: '{self.caddy}'}}}}}}\n"
            "environments:\n"
            "  prod:\n"
            f"    hosts: {{app-1: {{address: {self.host.address}, user: {user}, roles: [web]}}}}\n"
            "    roles: {web: [web]}\n"
            f"    routes: {{web: {{host: {DOMAIN}, service: web, port: 8080}}}}\n"
            "    tls: 'off'\n"
            f"    bootstrap: {{{bootstrap}}}\n"
            "    deploy: {health_timeout: 30s, drain: 1s}\n"
        )

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        argv = ["stagecraft", "-c", str(self.root / "stagecraft.yml"), *args]
        return subprocess.run(argv, capture_output=True, text=True, env=self.env, timeout=900)

    def bootstrap(self) -> tuple[int, dict[str, Any], str]:
        out = self.cli("hosts", "bootstrap", "--env", "prod", "--json")
        [host] = json.loads(out.stdout)["hosts"]
        return out.returncode, host, out.stderr

    def ssh(self, user: str = "root") -> SSHHost:
        from stagecraft.localhosts.sandbox import ssh_options_for
        from stagecraft.runtime.ssh import SSHTarget

        return SSHHost(SSHTarget("app-1", self.host.address, user), ssh_options_for(self.sandbox))


@pytest.fixture(scope="module")
def bare(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bare]:
    from stagecraft.testing.pytest_plugin import _require_sandbox, start_sandbox

    _require_sandbox()
    busybox = images.ensure_busybox_image()
    caddy = images.ensure_caddy_image()
    rootfs = images.bare_server_rootfs("trixie")
    sandbox = start_sandbox(1, tmp_path_factory.mktemp("bare"), "bb", bare=1, bare_rootfs=rootfs)
    root = tmp_path_factory.mktemp("project")
    name = "bb" + uuid.uuid4().hex[:8]
    (root / "web").mkdir()
    (root / "web" / "Dockerfile").write_text(
        f"FROM {busybox}\n"
        "ARG STAGECRAFT_VERSION=dev\n"
        'RUN mkdir /www && echo "hello from $STAGECRAFT_VERSION" > /www/index.html\n'
        'CMD ["httpd", "-f", "-p", "8080", "-h", "/www"]\n'
    )
    (root / "docker-compose.yml").write_text(
        "services:\n  web:\n    build: ./web\n    stop_grace_period: 1s\n"
    )
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("STAGECRAFT_")},
        "STAGECRAFT_SSH_CONFIG": str(sandbox.ssh_config),
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }
    try:
        yield Bare(root, sandbox, sandbox.hosts[0], name, env, caddy)
    finally:
        sandbox.stop()
        images.remove_local_images(f"{name}/*")


def _reachable(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=2):
            return True
    except OSError:
        return False


def _listening(address: str, port: int) -> bool:
    deadline = time.monotonic() + 10
    while not _reachable(address, port):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def test_a_bare_debian_server_is_bootstrapped_step_by_step_and_only_once(bare: Bare) -> None:
    root = bare.ssh()
    try:
        assert root.run(["sh", "-c", "command -v docker || echo none"]).stdout.strip() == "none"

        # Not allowed to install: the error says what is missing and the two ways out.
        bare.configure(bootstrap="docker: none")
        code, report, stderr = bare.bootstrap()
        assert code != 0 and not report["ok"]
        assert "Docker Engine or Compose v2 is missing" in report["error"], report
        assert "environments.prod.bootstrap.docker is none" in report["error"]
        assert "Traceback" not in stderr

        bare.configure(bootstrap="user: deploy")
        code, report, stderr = bare.bootstrap()
        assert code == 0, (report, stderr)
        changes = report["changes"]
        assert "installed docker.io docker-cli docker-compose" in changes, changes
        assert "started docker" in changes
        assert "created user deploy (docker group)" in changes
        assert "gave deploy 1 SSH key(s) of root" in changes
        assert report["proxy_started"] is True
        assert report["compose"].startswith("2.")

        deploy = bare.ssh("deploy")
        try:  # the deploy user reaches Docker without sudo
            names = deploy.run(["docker", "ps", "--format", "{{.Names}}"]).stdout.split()
            assert "stagecraft-proxy" in names
        finally:
            deploy.close()

        # A listener outside Docker is open until the firewall goes on; SSH stays open.
        root.run(["sh", "-c", "setsid nohup nc -lk 8088 >/dev/null 2>&1 </dev/null &"])
        assert _listening(bare.host.address, 8088)
        bare.configure(bootstrap="user: deploy, firewall: true")
        code, report, stderr = bare.bootstrap()
        assert code == 0, (report, stderr)
        assert report["changes"] == [
            "installed ufw",
            "firewall on: only 22/tcp, 80/tcp, 443/tcp let in",
        ]
        assert not _reachable(bare.host.address, 8088)
        assert _reachable(bare.host.address, 22)

        apt_log = "wc -c < /var/log/apt/history.log"
        before = root.run(["sh", "-c", apt_log]).stdout
        code, report, stderr = bare.bootstrap()
        assert code == 0, (report, stderr)
        assert report["changes"] == []
        assert report["proxy_started"] is False
        assert root.run(["sh", "-c", apt_log]).stdout == before  # apt installed nothing
    finally:
        root.close()


def test_the_deploy_user_deploys_to_the_bootstrapped_server(bare: Bare) -> None:
    bare.configure(user="deploy", bootstrap="user: deploy, firewall: true")
    out = bare.cli("deploy", "--env", "prod", "--version", "v1")
    assert out.returncode == 0, out.stdout + out.stderr
    request = urllib.request.Request(f"http://{bare.host.address}/", headers={"Host": DOMAIN})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.read().decode().strip() == "hello from v1"
