"""`stagecraft hosts bootstrap --env E` on real sandbox hosts (sshd + dockerd per host)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from stagecraft.localhosts.sandbox import Sandbox
from stagecraft.testing.images import ensure_caddy_image


def write_project(root: Path, sandbox: Sandbox, caddy_image: str, extra: str = "") -> None:
    hosts = "\n".join(
        f"      {h.name}: {{address: {h.address}, user: {h.user}, roles: [web]}}"
        for h in sandbox.hosts
    )
    (root / "docker-compose.yml").write_text("services:\n  api:\n    image: busybox\n")
    (root / "stagecraft.yml").write_text(
        "project: boot\n"
        f"proxy: {{provider: caddy, providers: {{caddy: {{image: '{caddy_image}'}}}}}}\n"
        "environments:\n"
        "  sandbox:\n"
        "    hosts:\n"
        f"{hosts}\n"
        "    roles: {web: [api]}\n"
        "    tls: 'off'\n" + extra
    )


def bootstrap(root: Path, sandbox: Sandbox) -> tuple[int, dict[str, Any], str]:
    exe = str(Path(sys.executable).with_name("stagecraft"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("STAGECRAFT_")}
    env["STAGECRAFT_SSH_CONFIG"] = str(sandbox.ssh_config)
    result = subprocess.run(
        [exe, "hosts", "bootstrap", "--env", "sandbox", "--json"],
        cwd=root, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    return result.returncode, json.loads(result.stdout), result.stderr


def test_bootstrap_starts_one_proxy_per_host_and_is_idempotent(
    sandbox_factory: Any, tmp_path: Path
) -> None:
    sandbox: Sandbox = sandbox_factory(2)
    image = ""
    for host in sandbox.hosts:
        image = ensure_caddy_image(host.docker_host)
    write_project(tmp_path, sandbox, image)

    code, report, stderr = bootstrap(tmp_path, sandbox)
    assert code == 0, stderr
    assert [h["proxy_started"] for h in report["hosts"]] == [True, True]
    for host in sandbox.hosts:
        ps = sandbox.docker(host.name, "ps", "--filter", "name=stagecraft-proxy", "-q").stdout
        assert len(ps.split()) == 1
        listing = sandbox.ssh_host(host.name).run(["ls", "/var/lib/stagecraft/apps/boot/sandbox"])
        assert "releases" in listing.stdout

    code, report, stderr = bootstrap(tmp_path, sandbox)
    assert code == 0, stderr
    assert [h["proxy_started"] for h in report["hosts"]] == [False, False]


def test_bootstrap_reports_a_lost_host_and_finishes_the_others(
    sandbox_factory: Any, tmp_path: Path
) -> None:
    sandbox: Sandbox = sandbox_factory(2)
    first, second = sandbox.hosts
    image = ensure_caddy_image(first.docker_host)
    write_project(tmp_path, sandbox, image)
    sandbox.stop_host(second.name)

    code, report, stderr = bootstrap(tmp_path, sandbox)
    by_host = {h["host"]: h for h in report["hosts"]}
    assert code == 5, stderr
    assert by_host[first.name]["ok"] is True
    assert by_host[second.name]["ok"] is False
    assert second.name in by_host[second.name]["error"]


def test_a_proxy_image_the_host_cannot_pull_is_named_with_its_cause_and_fix(
    sandbox_factory: Any, tmp_path: Path
) -> None:
    sandbox: Sandbox = sandbox_factory(1)
    (host,) = sandbox.hosts
    # No registry is reachable from sandbox hosts: `caddy:2` cannot be pulled there.
    write_project(tmp_path, sandbox, "caddy:2")
    exe = str(Path(sys.executable).with_name("stagecraft"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("STAGECRAFT_")}
    env["STAGECRAFT_SSH_CONFIG"] = str(sandbox.ssh_config)
    result = subprocess.run(
        [exe, "hosts", "bootstrap", "--env", "sandbox"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    # The daemon's own reason (no registry answers here), not `Run 'docker run --help'`.
    assert (
        f"{host.name}: the proxy image 'caddy:2' is not on the host and its Docker daemon "
        "cannot pull it: Error response from daemon: " in result.stderr
    )
    assert "--help" not in result.stderr
    assert "set proxy.providers.caddy.image in stagecraft.yml to an image this host can pull" in (
        result.stderr
    )
    assert f"`docker save caddy:2 | ssh {host.user}@{host.address} docker load`" in result.stderr
    # The fix the hint names works: load the image under that name, bootstrap again.
    local = ensure_caddy_image(host.docker_host)
    sandbox.docker(host.name, "tag", local, "caddy:2")
    again = subprocess.run(
        [exe, "hosts", "bootstrap", "--env", "sandbox"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr


def test_a_proxy_image_on_the_local_daemon_is_shipped_to_hosts_that_lack_it(
    sandbox_factory: Any, tmp_path: Path
) -> None:
    """Issue 10 item 6: a fleet that cannot pull at all still gets its proxy."""
    sandbox: Sandbox = sandbox_factory(2)
    image = ensure_caddy_image()  # on the local daemon only
    local_id = subprocess.run(
        ["docker", "image", "inspect", "--format", "{{.Id}}", image],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    for host in sandbox.hosts:
        listed = sandbox.docker(host.name, "image", "inspect", image, check=False)
        assert listed.returncode != 0  # fresh hosts: no image at all
    write_project(tmp_path, sandbox, image)

    code, report, stderr = bootstrap(tmp_path, sandbox)
    assert code == 0, stderr
    assert [h["proxy_started"] for h in report["hosts"]] == [True, True]
    for host in sandbox.hosts:
        found = sandbox.docker(host.name, "image", "inspect", "--format", "{{.Id}}", image)
        assert found.stdout.strip() == local_id
        ps = sandbox.docker(host.name, "ps", "--filter", "name=stagecraft-proxy", "-q").stdout
        assert len(ps.split()) == 1
