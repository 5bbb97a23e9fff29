"""`stagecraft deploy` in registry mode: push once, every host pulls with the secret's password.

Two sandbox hosts run the web service; the registry is Debian's `docker-registry`
with htpasswd auth (stagecraft.testing.registry): the hosts pull from its bridge
address, the local daemon pushes through `images.push_registry` (localhost).
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from stagecraft.deploy.state import ledger, lock
from stagecraft.localhosts.sandbox import Sandbox, ssh_options_for
from stagecraft.runtime.ssh import SSHHost
from stagecraft.testing import images
from stagecraft.testing.registry import LocalRegistry, local_registry

pytestmark = [pytest.mark.e2e, pytest.mark.sandbox]

DOMAIN = "registry.test"
DOCKERFILE = """\
ARG BUSYBOX_IMAGE
FROM ${BUSYBOX_IMAGE}
ARG STAGECRAFT_VERSION=dev
RUN mkdir -p /www && echo "registry web ${STAGECRAFT_VERSION}" > /www/index.html
CMD ["httpd", "-f", "-p", "8080", "-h", "/www"]
"""
COMPOSE = """\
services:
  web:
    build: {context: ./web, args: {BUSYBOX_IMAGE: "${BUSYBOX_IMAGE}"}}
    init: true
    x-stagecraft: {kind: web, healthcheck: {path: /, port: 8080, interval: 1s}}
"""


def _config(sandbox: Sandbox, project: str, registry: LocalRegistry, caddy: str) -> str:
    a, b = sandbox.hosts
    return (
        f"project: {project}\n"
        f"proxy: {{provider: caddy, providers: {{caddy: {{image: {caddy}}}}}}}\n"
        "environments:\n"
        "  production:\n"
        "    hosts:\n"
        f"      web-1: {{address: {a.address}, roles: [web]}}\n"
        f"      web-2: {{address: {b.address}, roles: [web]}}\n"
        "    roles: {web: [web]}\n"
        f"    routes: {{web: {{host: {DOMAIN}, service: web, port: 8080}}}}\n"
        "    tls: 'off'\n"
        "    secrets: [REGISTRY_PASSWORD]\n"
        "    secrets_provider: {provider: env}\n"
        "    images:\n"
        "      transfer: registry\n"
        f"      registry: {registry.host_address}/acme\n"
        f"      push_registry: {registry.local_address}/acme\n"
        f"      username: {registry.username}\n"
        "      password_secret: REGISTRY_PASSWORD\n"
        "    deploy: {health_timeout: 20s, drain: 1s}\n"
    )


@dataclass(frozen=True)
class App:
    sandbox: Sandbox
    registry: LocalRegistry
    root: Path
    project: str
    env: dict[str, str]


@pytest.fixture
def registry_app(
    sandbox_factory: Callable[[int], Sandbox], tmp_path: Path, busybox_image: str
) -> Iterator[App]:
    sandbox = sandbox_factory(2)
    caddy = images.ensure_caddy_image()
    for host in sandbox.hosts:
        images.copy_image(caddy, None, host.docker_host)
    project = f"rg{uuid.uuid4().hex[:8]}"
    root = tmp_path / "app"
    (root / "web").mkdir(parents=True)
    (root / "web" / "Dockerfile").write_text(DOCKERFILE)
    (root / "docker-compose.yml").write_text(COMPOSE)
    registry_dir = tmp_path / "registry"
    registry_dir.mkdir()
    with local_registry(sandbox.bridge_address, registry_dir) as registry:
        (root / "stagecraft.yml").write_text(_config(sandbox, project, registry, caddy))
        env = {
            **os.environ,
            "BUSYBOX_IMAGE": busybox_image,
            "REGISTRY_PASSWORD": registry.password,
            "STAGECRAFT_SSH_CONFIG": str(sandbox.ssh_config),
            "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        }
        try:
            yield App(sandbox, registry, root, project, env)
        finally:
            listed = subprocess.run(
                ["docker", "images", "--format", "{{.Repository}}:{{.Tag}}", "*/acme/web"],
                capture_output=True,
                text=True,
            ).stdout.split()
            ours = [image for image in listed if image.startswith(registry.host_address)]
            if ours:
                subprocess.run(["docker", "rmi", "-f", *ours], capture_output=True)


def _get(address: str) -> str:
    request = urllib.request.Request(f"http://{address}/", headers={"Host": DOMAIN})
    with urllib.request.urlopen(request, timeout=10) as response:
        return str(response.read().decode())


def _catalog(registry: LocalRegistry) -> list[str]:
    """The repositories the registry stores (its v2 API, with the test user's credentials)."""
    request = urllib.request.Request(f"http://{registry.local_address}/v2/_catalog")
    token = base64.b64encode(f"{registry.username}:{registry.password}".encode()).decode()
    request.add_header("Authorization", f"Basic {token}")
    with urllib.request.urlopen(request, timeout=10) as response:
        found: list[str] = json.load(response)["repositories"]
        return found


def test_registry_mode_pushes_once_and_every_host_pulls(registry_app: App) -> None:
    app = registry_app
    sandbox, registry, root, env = app.sandbox, app.registry, app.root, app.env
    argv = ["stagecraft", "-c", str(root / "stagecraft.yml"), "deploy", "--env", "production"]
    since = time.time()

    out = subprocess.run(
        [*argv, "--version", "v1"], capture_output=True, text=True, env=env, timeout=600
    )

    assert out.returncode == 0, out.stdout + out.stderr
    assert "pushed 1 image(s)" in out.stderr
    assert _catalog(registry) == ["acme/web"]
    for host in sandbox.hosts:
        assert _get(host.address).strip() == "registry web v1"
        pulled = sandbox.image_events(host.name, "pull", since)
        assert pulled == [f"{registry.host_address}/acme/web:v1"]  # from the registry ...
        loaded = sandbox.image_events(host.name, "load", since)
        assert not [image for image in loaded if "acme/web" in image]  # ... not over SSH
        on_host = sandbox.ssh_host(host.name).run(["sh", "-c", "cat ~/.docker/config.json || :"])
        assert registry.password not in on_host.stdout  # the login lived in a temporary config
    ssh = [SSHHost(h.target(), ssh_options_for(sandbox)) for h in sandbox.hosts]
    try:
        newest = ledger.history(ssh, app.project, "production").releases[0]
        assert newest.outcome == "success"
        assert registry.password not in json.dumps(newest.to_dict())
    finally:
        for connection in ssh:
            connection.close()
    assert registry.password not in out.stdout + out.stderr

    # A wrong password: the push fails before anything changes, naming the registry.
    bad = {**env, "REGISTRY_PASSWORD": "not-the-password"}
    failed = subprocess.run(
        [*argv, "--version", "v2"], capture_output=True, text=True, env=bad, timeout=600
    )
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert f"push to {registry.host_address}/acme failed" in failed.stderr
    assert "not-the-password" not in failed.stdout + failed.stderr
    for host in sandbox.hosts:
        assert _get(host.address).strip() == "registry web v1"
    first = sandbox.ssh_host(sandbox.hosts[0].name)
    try:
        assert lock.status(first, app.project, "production") is None
    finally:
        first.close()
