"""`plan` against sandbox hosts: empty hosts, an older release running, an unreachable host."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from stagecraft.config.loader import load_project
from stagecraft.deploy.model_planning import compute_plan
from stagecraft.deploy.plan import render_text
from stagecraft.localhosts.sandbox import Sandbox
from stagecraft.runtime.ssh import SSHOptions
from stagecraft.testing.images import copy_image

FLEET = Path(__file__).resolve().parents[2] / "examples" / "fleet"
pytestmark = pytest.mark.integration


def _project(tmp_path: Path, sandbox: Sandbox, name: str, *, web2_port: int = 22) -> Path:
    root = tmp_path / "fleet"
    shutil.copytree(FLEET, root)
    a, b, c = sandbox.hosts[:3]
    (root / "stagecraft.yml").write_text(
        f"project: {name}\n"
        "compose: docker-compose.yml\n"
        "databases:\n"
        "  main: {service: db, url_env: DATABASE_URL, migrations: {path: migrations}}\n"
        "environments:\n"
        "  production:\n"
        "    hosts:\n"
        f"      web-1: {{address: {a.address}, roles: [web]}}\n"
        f"      web-2: {{address: {b.address}, port: {web2_port}, roles: [web]}}\n"
        f"      data-1: {{address: {c.address}, roles: [data, jobs]}}\n"
        "    roles: {web: [web], jobs: [worker], data: [db]}\n"
        "    routes: {web: {host: fleet.test, service: web, port: 8080}}\n"
        "    secrets: [POSTGRES_PASSWORD, DATABASE_URL]\n"
    )
    return root


def test_plan_on_sandbox_hosts(
    tmp_path: Path,
    sandbox3: Sandbox,
    busybox_image: str,
    ssh_options_for: Callable[[Sandbox], SSHOptions],
) -> None:
    name = f"planit{uuid.uuid4().hex[:8]}"
    options = ssh_options_for(sandbox3)
    loaded = load_project(_project(tmp_path, sandbox3, name) / "stagecraft.yml")

    empty = compute_plan(loaded, "production", explicit_version="v1", ssh_options=options)
    assert [(h.host, [(s.service, s.action) for s in h.services]) for h in empty.hosts] == [
        ("web-1", [("web", "create")]),
        ("web-2", [("web", "create")]),
        ("data-1", [("db", "create"), ("worker", "create")]),
    ]
    assert empty.migrations[0].pending is None and "not running" in (
        empty.migrations[0].reason or ""
    )

    data = sandbox3.hosts[2]
    copy_image(busybox_image, None, data.docker_host)
    labels = {
        "stagecraft.project": name,
        "stagecraft.env": "production",
        "stagecraft.service": "worker",
        "stagecraft.release": "20260101T000000Z-v0",
        "stagecraft.version": "v0",
        "stagecraft.config-hash": "sha256:old",
        "stagecraft.kind": "worker",
    }
    flags = [arg for key, value in labels.items() for arg in ("--label", f"{key}={value}")]
    container = f"{name}-worker-old"
    sandbox3.docker(
        data.name, "run", "-d", "--init", "--name", container, *flags, busybox_image, "sleep", "600"
    )
    try:
        older = compute_plan(loaded, "production", explicit_version="v1", ssh_options=options)
        worker = next(s for s in older.hosts[2].services if s.service == "worker")
        assert (worker.action, worker.changes) == ("replace", ("image", "config"))
        assert worker.current_release == "20260101T000000Z-v0"
        assert worker.desired_image == f"{name}/worker:v1"
        assert "worker   replace" in render_text(older)
    finally:
        sandbox3.docker(data.name, "rm", "-f", container, check=False)


def test_unreachable_host_is_reported_and_others_planned(
    tmp_path: Path,
    sandbox3: Sandbox,
    ssh_options_for: Callable[[Sandbox], SSHOptions],
) -> None:
    name = f"planit{uuid.uuid4().hex[:8]}"
    # Port 9 on a sandbox host: nothing listens there, so ssh is refused.
    loaded = load_project(_project(tmp_path, sandbox3, name, web2_port=9) / "stagecraft.yml")
    plan = compute_plan(
        loaded, "production", explicit_version="v1", ssh_options=ssh_options_for(sandbox3)
    )
    assert [h.host for h in plan.unreachable] == ["web-2"]
    assert plan.hosts[1].services == ()
    assert plan.hosts[0].services[0].action == "create"
    assert [s.action for s in plan.hosts[2].services] == ["create", "create"]
    assert "host web-2" in render_text(plan) and "unreachable:" in render_text(plan)


def test_docs_plan_commands(tmp_path: Path, sandbox3: Sandbox) -> None:
    import json
    import os
    import subprocess
    import sys

    name = f"planit{uuid.uuid4().hex[:8]}"
    config = _project(tmp_path, sandbox3, name) / "stagecraft.yml"
    env = {
        **os.environ,
        "STAGECRAFT_SSH_CONFIG": str(sandbox3.ssh_config),
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }
    base = ["stagecraft", "-c", str(config), "plan", "--env", "production", "--version", "v1"]
    text = subprocess.run(base, capture_output=True, text=True, env=env, timeout=120)
    assert text.returncode == 0, text.stderr
    assert "host data-1" in text.stdout and "0 replace" in text.stdout
    out = subprocess.run([*base, "--json"], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["summary"] == {"create": 4, "replace": 0, "keep": 0, "remove": 0}
    down = _project(tmp_path / "down", sandbox3, name, web2_port=9) / "stagecraft.yml"
    failed = subprocess.run(
        ["stagecraft", "-c", str(down), *base[3:]],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert failed.returncode == 5 and "web-2" in failed.stderr and "host web-2" in failed.stdout
