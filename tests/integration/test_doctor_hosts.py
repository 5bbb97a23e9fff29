"""`stagecraft doctor --env E` against real sandbox hosts (network namespaces with sshd+dockerd)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from stagecraft.localhosts.sandbox import Sandbox

COMPOSE = """\
services:
  api:
    image: ${API_IMAGE:-busybox:1.36}
  worker:
    image: ${API_IMAGE:-busybox:1.36}
"""


def write_project(root: Path, sandbox: Sandbox) -> Path:
    hosts = "\n".join(
        f"      {h.name}: {{address: {h.address}, user: {h.user}, roles: [{role}]}}"
        for h, role in zip(sandbox.hosts, ["web", "web", "jobs"], strict=False)
    )
    (root / "docker-compose.yml").write_text(COMPOSE)
    (root / "stagecraft.yml").write_text(
        "project: doctortest\n"
        "environments:\n"
        "  sandbox:\n"
        "    hosts:\n"
        f"{hosts}\n"
        "    roles:\n"
        "      web: [api]\n"
        "      jobs: [worker]\n"
    )
    return root


def doctor(root: Path, sandbox: Sandbox, *args: str) -> tuple[int, dict[str, Any], str]:
    exe = str(Path(sys.executable).with_name("stagecraft"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("STAGECRAFT_")}
    env["STAGECRAFT_SSH_CONFIG"] = str(sandbox.ssh_config)
    result = subprocess.run(
        [exe, "doctor", "--env", "sandbox", "--json", *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    return result.returncode, json.loads(result.stdout), result.stderr


def host_checks(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in report["checks"] if c["group"] == "hosts"}


def test_doctor_env_reports_all_hosts_reachable(sandbox3: Sandbox, tmp_path: Path) -> None:
    root = write_project(tmp_path, sandbox3)
    code, report, stderr = doctor(root, sandbox3)
    hosts = host_checks(report)
    assert sorted(hosts) == sorted(h.name for h in sandbox3.hosts), stderr
    for host in sandbox3.hosts:
        check = hosts[host.name]
        assert check["status"] == "ok", check
        assert host.address in check["detail"]
        assert "docker" in check["detail"]
    failed = [c for c in report["checks"] if c["status"] == "fail"]
    assert code == (1 if failed else 0)
    assert not failed, failed


def test_doctor_reports_changed_key_and_down_host_per_host(
    sandbox_factory: Any, tmp_path: Path
) -> None:
    sandbox: Sandbox = sandbox_factory(3)
    first, second, third = (h.name for h in sandbox.hosts)
    root = write_project(tmp_path, sandbox)
    sandbox.rotate_host_key(second)
    sandbox.stop_host(third)
    code, report, _ = doctor(root, sandbox)
    hosts = host_checks(report)
    assert code == 1
    assert hosts[first]["status"] == "ok"
    assert hosts[second]["status"] == "fail"
    assert "host key" in hosts[second]["detail"]
    assert "does not match known_hosts" in hosts[second]["detail"]
    assert hosts[second]["fix"], "a key mismatch must say how to fix it"
    assert hosts[third]["status"] == "fail"
    assert third in hosts[third]["detail"]
    # The mismatching key was not silently accepted into known_hosts.
    known = sandbox.known_hosts.read_text()
    assert known.count(sandbox.host(second).address) == 1
