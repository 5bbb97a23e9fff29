"""Two environments of one project on one sandbox host: pruning one keeps the other's images.

Staging (retain 1) and production (retain 2) deploy a worker to the same host, so
their images share names (``<project>/worker:<version>``), and staging runs v1
first, the version production later rolls back to. After staging's later deploys
the host must still hold production's retained images, and ``rollback --env
production`` must work from the host alone (the local images are gone, as on a
fresh CI runner).
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from stagecraft.deploy.state.layout import STATE_ROOT
from stagecraft.localhosts.sandbox import Sandbox
from stagecraft.testing import images

pytestmark = [pytest.mark.e2e, pytest.mark.sandbox]


def _env(name: str, address: str, retain: int) -> str:
    return (
        f"  {name}:\n"
        f"    hosts: {{h1: {{address: {address}, roles: [app]}}}}\n"
        "    roles: {app: [worker]}\n"
        f"    deploy: {{retain: {retain}, health_timeout: 15s}}\n"
    )


@pytest.fixture
def project(sandbox3: Sandbox, tmp_path: Path) -> Iterator[tuple[Path, str]]:
    busybox = images.ensure_busybox_image()
    name = "pe" + uuid.uuid4().hex[:8]
    address = sandbox3.hosts[0].address
    (tmp_path / "worker").mkdir()
    (tmp_path / "worker" / "Dockerfile").write_text(
        f"FROM {busybox}\n"
        "ARG STAGECRAFT_VERSION=dev\n"
        "ENV APP_VERSION=${STAGECRAFT_VERSION}\n"
        'CMD ["sh", "-c", "echo worker $APP_VERSION; exec sleep 3600"]\n'
    )
    (tmp_path / "docker-compose.yml").write_text(
        "services:\n"
        "  worker:\n"
        "    build: ./worker\n"
        "    init: true\n"
        "    stop_grace_period: 1s\n"
        "    x-stagecraft: {kind: worker}\n"
    )
    (tmp_path / "stagecraft.yml").write_text(
        f"project: {name}\ncompose: docker-compose.yml\nenvironments:\n"
        + _env("production", address, 2)
        + _env("staging", address, 1)
    )
    try:
        yield tmp_path, name
    finally:
        for env in ("production", "staging"):
            sandbox3.docker(
                "h1", "compose", "-p", f"{name}-{env}", "down", "--remove-orphans", check=False
            )
        listed = sandbox3.docker(
            "h1", "image", "ls", "--format", "{{.Repository}}:{{.Tag}}", f"{name}/*", check=False
        ).stdout.split()
        if listed:
            sandbox3.docker("h1", "image", "rm", "-f", *listed, check=False)
        sandbox3.ssh_host("h1").run(["rm", "-rf", f"{STATE_ROOT}/apps/{name}"], check=False)
        images.remove_local_images(f"{name}/*")


def test_staging_deploys_keep_productions_rollback_images(
    sandbox3: Sandbox, project: tuple[Path, str]
) -> None:
    root, name = project
    environ = {
        **os.environ,
        "STAGECRAFT_SSH_CONFIG": str(sandbox3.ssh_config),
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }

    def cli(*args: str) -> None:
        argv = ["stagecraft", "-c", str(root / "stagecraft.yml"), *args]
        out = subprocess.run(argv, capture_output=True, text=True, env=environ, timeout=300)
        assert out.returncode == 0, f"{args}:\n{out.stdout}\n{out.stderr}"

    def tags() -> list[str]:
        listed = sandbox3.docker("h1", "image", "ls", "--format", "{{.Tag}}", f"{name}/worker")
        return sorted(listed.stdout.split())

    cli("deploy", "--env", "staging", "--version", "v1")
    cli("deploy", "--env", "production", "--version", "v1")
    cli("deploy", "--env", "production", "--version", "v2")
    cli("deploy", "--env", "staging", "--version", "v3")
    cli("deploy", "--env", "staging", "--version", "v4")
    # staging keeps v4 (retain 1) and pruned its own v3; v1 and v2 are production's
    assert tags() == ["v1", "v2", "v4"]

    images.remove_local_images(f"{name}/*")  # the rollback must come from what the host kept
    cli("rollback", "--env", "production")
    running = sandbox3.docker(
        "h1",
        "ps",
        "--format",
        "{{.Image}}",
        "--filter",
        f"label=com.docker.compose.project={name}-production",
    )
    assert running.stdout.split() == [f"{name}/worker:v1"]


def test_prune_on_demand_and_remove_take_only_one_environment_off(
    sandbox3: Sandbox, project: tuple[Path, str]
) -> None:
    """Issue 12 item 6: `prune` (with --dry-run) and `remove` on a host two environments share."""
    import json

    root, name = project
    environ = {
        **os.environ,
        "STAGECRAFT_SSH_CONFIG": str(sandbox3.ssh_config),
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }

    def cli(*args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
        argv = ["stagecraft", "-c", str(root / "stagecraft.yml"), *args]
        out = subprocess.run(
            argv, capture_output=True, text=True, env=environ, timeout=300, stdin=subprocess.DEVNULL
        )
        assert out.returncode == code, f"{args}:\n{out.stdout}\n{out.stderr}"
        return out

    def running(env: str) -> list[str]:
        label = f"label=com.docker.compose.project={name}-{env}"
        found = sandbox3.docker("h1", "ps", "--format", "{{.Image}}", "--filter", label)
        return found.stdout.split()

    for version in ("v1", "v2", "v3"):
        cli("deploy", "--env", "production", "--version", version)
    cli("deploy", "--env", "staging", "--version", "v3")
    # Each deploy pruned down to production's retain 2 (v3, v2). Retaining 1, v2 may go
    # too: the dry run says so and removes nothing.
    dry = cli("prune", "--env", "production", "--retain", "1", "--dry-run")
    assert dry.stdout.strip() == f"h1: would remove {name}/worker:v2"
    shown = json.loads(cli("prune", "--env", "production", "--dry-run", "--json").stdout)
    assert shown["images"] == {"h1": []} and shown["retain"] == 2
    listed = sandbox3.docker("h1", "image", "ls", "--format", "{{.Tag}}", f"{name}/worker")
    assert sorted(listed.stdout.split()) == ["v2", "v3"]
    cli("prune", "--env", "production", "--retain", "1")
    listed = sandbox3.docker("h1", "image", "ls", "--format", "{{.Tag}}", f"{name}/worker")
    assert listed.stdout.split() == ["v3"]  # staging's v3 is production's current too

    # Without a terminal and without --yes, remove shows the plan and refuses.
    refused = cli("remove", "--env", "staging", code=2)
    assert f"remove the whole app of {name} staging:" in refused.stdout
    assert f"{name}-staging-worker" in refused.stdout and "--yes" in refused.stderr
    assert running("staging") == [f"{name}/worker:v3"]

    cli("remove", "--env", "staging", "--yes")
    assert running("staging") == [] and running("production") == [f"{name}/worker:v3"]
    releases = json.loads(cli("releases", "--env", "staging", "--json").stdout)["releases"]
    assert releases[0]["command"] == "remove" and releases[0]["outcome"] == "success"
    gone = sandbox3.ssh_host("h1").run(
        ["test", "-d", f"{STATE_ROOT}/apps/{name}/staging/releases"], check=False
    )
    assert gone.returncode != 0
    again = cli("remove", "--env", "staging", "--yes")  # nothing left: says so, succeeds
    assert "h1: nothing to remove" in again.stdout
    assert sandbox3.docker("h1", "image", "inspect", f"{name}/worker:v3").returncode == 0
