"""Ctrl-C and SIGTERM while `stagecraft deploy` streams a real-size image to a host (issue 10).

One sandbox host without the image; the app image is the ~200 MB Debian base of
``stagecraft.testing.images`` plus a 1 MB layer, built locally (no registry).
The deploy is signalled once the host has received a few megabytes: it exits
130 saying so, leaves no process of its own behind, no image (neither the tag
nor the ID) and no unpacked temporary directory on the host, and releases the
lock; the next deploy ships the image whole and runs it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from stagecraft.deploy.state import lock
from stagecraft.localhosts.hostos import wait_until
from stagecraft.localhosts.sandbox import Sandbox
from stagecraft.runtime import process
from stagecraft.runtime.ssh import SSHHost
from stagecraft.testing import images

pytestmark = [pytest.mark.e2e, pytest.mark.sandbox]

COMPOSE = """services:
  app:
    build: ./app
    init: true
    x-stagecraft: {kind: worker}
"""


@dataclass
class Project:
    root: Path
    name: str
    sandbox: Sandbox
    host: SSHHost
    env: dict[str, str]
    image_id: str

    @property
    def image(self) -> str:
        return f"{self.name}/app:v1"

    def deploy(self) -> subprocess.Popen[str]:
        argv = ["stagecraft", "-c", str(self.root / "stagecraft.yml"), "deploy", "--env"]
        argv += ["production", "--version", "v1"]
        return subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=self.env
        )

    def remote_id(self, ref: str) -> str | None:
        found = self.host.docker("image", "inspect", "--format", "{{.Id}}", ref, check=False)
        return found.stdout.strip() if found.returncode == 0 else None


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    from stagecraft.localhosts.sandbox import ssh_options_for
    from stagecraft.testing.pytest_plugin import _require_sandbox, start_sandbox

    _require_sandbox()
    sandbox = start_sandbox(1, tmp_path_factory.mktemp("shipint"), "si")
    name = f"si{uuid.uuid4().hex[:8]}"
    root = tmp_path_factory.mktemp("project") / "app"
    (root / "app").mkdir(parents=True)
    (root / "app" / "Dockerfile").write_text("FROM scratch\n")  # never built: the image exists
    (root / "docker-compose.yml").write_text(COMPOSE)
    (root / "stagecraft.yml").write_text(
        f"project: {name}\n"
        "compose: docker-compose.yml\n"
        "environments:\n"
        "  production:\n"
        f"    hosts: {{worker-1: {{address: {sandbox.hosts[0].address}, roles: [jobs]}}}}\n"
        "    roles: {jobs: [app]}\n"
        "    deploy: {retain: 2}\n"
    )
    host = SSHHost(sandbox.hosts[0].target(), ssh_options_for(sandbox))
    try:
        image_id = images.build_with_layer(
            images.ensure_debian_image(), f"{name}/app:v1", os.urandom(1 << 20)
        )
        env = {
            **os.environ,
            "STAGECRAFT_SSH_CONFIG": str(sandbox.ssh_config),
            "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        }
        yield Project(root, name, sandbox, host, env, image_id)
    finally:
        host.close()
        sandbox.stop()
        process.run(["docker", "image", "rm", "-f", f"{name}/app:v1"], check=False)


def _processes(*needles: str) -> dict[int, str]:
    """Local processes whose command line holds every one of ``needles``."""
    found: dict[int, str] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            line = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, UnicodeDecodeError):
            continue
        if all(needle in line for needle in needles):
            found[int(entry)] = line
    return found


def _signal_mid_transfer(project: Project, sig: signal.Signals) -> tuple[int, str]:
    """Deploy; once the host has received 5 MB more than before, send ``sig``.

    The bytes are counted on the host's network interface (the sandbox veth):
    ssh's multiplexing hands a command's stdin to the master connection, so no
    per-command process shows them.
    """
    name = project.sandbox.hosts[0].name
    before = project.sandbox.received_bytes(name)
    proc = project.deploy()
    try:

        def streaming() -> bool:
            received = project.sandbox.received_bytes(name) - before
            return received > 5_000_000 or proc.poll() is not None

        assert wait_until(streaming, timeout=120), "the host did not receive 5 MB"
        assert proc.poll() is None, "the deploy ended before its transfer could be interrupted"
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, out + err


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_mid_transfer_leaves_nothing_half_done(
    project: Project, sig: signal.Signals
) -> None:
    code, shown = _signal_mid_transfer(project, sig)

    assert code == 130, shown
    assert ("interrupted" if sig == signal.SIGINT else f"interrupted by {sig.name}") in shown
    assert "Traceback" not in shown
    # Nothing of the deploy runs on: neither the export nor a connection carrying it.
    address = project.sandbox.hosts[0].address
    assert _processes("ssh", address, "docker load") == {}
    assert _processes("docker", "save", project.image) == {}
    # No image and no half-unpacked stream on the host (docker load unpacks into
    # <data-root>/tmp/docker-import-*, removed when the stream breaks).
    assert project.remote_id(project.image) is None
    assert project.remote_id(project.image_id) is None
    root = project.host.docker("info", "--format", "{{.DockerRootDir}}").stdout.strip()
    assert wait_until(lambda: not list(Path(root, "tmp").glob("docker-import-*")), timeout=30)
    assert lock.status(project.host, project.name, "production") is None


def test_the_next_deploy_ships_the_image_and_runs_it(project: Project) -> None:
    proc = project.deploy()
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, out + err
    assert "[worker-1] images on host: sent 1 image(s)" in err, err
    assert project.remote_id(project.image) == project.image_id
    label = f"label=com.docker.compose.project={project.name}-production"
    running = project.host.docker("ps", "-q", "--filter", label).stdout.split()
    assert len(running) == 1
    assert lock.status(project.host, project.name, "production") is None
