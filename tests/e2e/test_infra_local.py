"""`infra up` with the local cloud -> `deploy` the fleet example -> `status` -> `infra down`.

The `local` cloud makes throw-away hosts on this machine (network namespaces
with their own dockerd and sshd: the test sandbox's implementation) that
outlive the command; `infra down` must leave no namespace, process, mount,
link, firewall rule, cgroup or file of them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.request
import uuid
from pathlib import Path

import pytest

from stagecraft.config.infra_state import known_hosts_path, read_state, state_path
from stagecraft.localhosts.state import STATE_ROOT, find_leftovers, kept_prefixes
from stagecraft.testing import images

pytestmark = [pytest.mark.e2e, pytest.mark.sandbox]

FLEET = Path(__file__).resolve().parents[2] / "examples" / "fleet"
DOMAIN = "fleet.test"
CANARY = "canary-" + uuid.uuid4().hex


def _config(name: str, caddy: str, workdir: Path) -> str:
    return (
        f"project: {name}\n"
        "compose: docker-compose.yml\n"
        f"proxy: {{provider: caddy, providers: {{caddy: {{image: {caddy}}}}}}}\n"
        "databases:\n"
        "  main: {service: db, url_env: DATABASE_URL,"
        " migrations: {path: migrations, strategy: pre_deploy}}\n"
        "environments:\n"
        "  sandbox:\n"
        f"    cloud: {{provider: local, providers: {{local: {{workdir: {workdir}}}}}}}\n"
        "    hosts:\n"
        "      web-1: {roles: [web]}\n"
        "      web-2: {roles: [web]}\n"
        "      data-1: {roles: [data, jobs]}\n"
        "    roles: {web: [web], jobs: [worker], data: [db]}\n"
        f"    routes: {{web: {{host: {DOMAIN}, service: web, port: 8080}}}}\n"
        "    tls: 'off'\n"
        "    env: {POSTGRES_IMAGE: '${POSTGRES_IMAGE}'}\n"
        "    secrets: [POSTGRES_PASSWORD, DATABASE_URL]\n"
        "    secrets_provider: {provider: env}\n"
        "    deploy: {health_timeout: 30s, drain: 1s}\n"
    )


def _get(address: str) -> str:
    request = urllib.request.Request(f"http://{address}/", headers={"Host": DOMAIN})
    with urllib.request.urlopen(request, timeout=10) as response:
        return str(response.read().decode())


def test_local_hosts_from_infra_up_take_a_deploy_and_infra_down_leaves_nothing(
    tmp_path: Path,
) -> None:
    from stagecraft.testing.pytest_plugin import _require_sandbox

    _require_sandbox()
    name = f"lc{uuid.uuid4().hex[:6]}"
    root = tmp_path / "fleet"
    shutil.copytree(FLEET, root)
    workdir = tmp_path / "local-cloud"
    (root / "stagecraft.yml").write_text(_config(name, images.ensure_caddy_image(), workdir))
    env = {
        **os.environ,
        "BUSYBOX_IMAGE": images.ensure_busybox_image(),
        "POSTGRES_IMAGE": images.ensure_postgres_image(),
        "POSTGRES_PASSWORD": CANARY,
        "DATABASE_URL": f"postgres://fleet:{CANARY}@db:5432/fleet",
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }
    env.pop("STAGECRAFT_SSH_CONFIG", None)  # the recorded key and known_hosts are enough

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        argv = ["stagecraft", "-c", str(root / "stagecraft.yml"), *args]
        return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=900)

    before = set(kept_prefixes())
    try:
        unprovisioned = cli("status", "--env", "sandbox")
        assert unprovisioned.returncode == 2, unprovisioned.stderr
        assert "no address yet" in unprovisioned.stderr
        assert "stagecraft infra up --env sandbox" in unprovisioned.stderr

        up = cli("infra", "up", "--env", "sandbox")
        assert up.returncode == 0, up.stdout + up.stderr
        assert "3 to create, 0 kept" in up.stdout
        for host in ("web-1", "web-2", "data-1"):
            assert f"{host}: ready (docker" in up.stdout
        state = read_state(root, "sandbox")
        assert state is not None and sorted(state.hosts) == ["data-1", "web-1", "web-2"]
        assert state.identity is not None and Path(state.identity).is_file()
        assert len(known_hosts_path(root, "sandbox").read_text().splitlines()) == 3
        (prefix,) = set(kept_prefixes()) - before

        again = cli("infra", "up", "--env", "sandbox", "--plan", "--json")
        assert again.returncode == 0, again.stderr
        assert json.loads(again.stdout)["create"] == []

        deploy = cli("deploy", "--env", "sandbox", "--version", "v1")
        assert deploy.returncode == 0, deploy.stdout + deploy.stderr
        assert CANARY not in deploy.stdout + deploy.stderr
        for host in ("web-1", "web-2"):
            assert "fleet web v1" in _get(state.hosts[host].address)

        status = cli("status", "--env", "sandbox", "--json")
        assert status.returncode == 0, status.stderr
        assert sorted(h["host"] for h in json.loads(status.stdout)["hosts"]) == [
            "data-1",
            "web-1",
            "web-2",
        ]

        down = cli("infra", "down", "--env", "sandbox", "--yes")
        assert down.returncode == 0, down.stdout + down.stderr
        assert "3 to destroy" in down.stdout
        assert find_leftovers(prefix) == {
            "namespaces": [],
            "processes": [],
            "mounts": [],
            "links": [],
            "rules": [],
            "cgroups": [],
            "state": [],
        }
        assert prefix not in kept_prefixes() and not (STATE_ROOT / f"{prefix}.kept").exists()
        assert not workdir.exists() or list(workdir.iterdir()) == []
        assert not state_path(root, "sandbox").exists()
        assert not known_hosts_path(root, "sandbox").exists()
    finally:
        cli("infra", "down", "--env", "sandbox", "--yes")
