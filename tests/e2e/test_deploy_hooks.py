"""Deploy hooks end to end: examples/fleet on 3 sandbox hosts, hooks in .stagecraft/hooks/.

The tests share one environment and run in order: a failing ``pre-deploy`` hook
stops a deploy before any host changes; then a deploy whose hooks pass runs
``pre-build``, ``pre-deploy`` and ``post-deploy`` in that order, each with the
documented environment and without a secret (the hooks write their name and
their whole environment to one file). One real deploy in all.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from stagecraft.deploy.state import ledger, lock
from stagecraft.localhosts.sandbox import Sandbox
from stagecraft.runtime.ssh import SSHHost
from stagecraft.testing import images

FLEET = Path(__file__).resolve().parents[2] / "examples" / "fleet"
DOMAIN = "fleet.test"
CANARY = "canary-" + uuid.uuid4().hex
pytestmark = [pytest.mark.e2e, pytest.mark.sandbox]

# Every hook appends a header and its whole environment to $HOOK_LOG.
HOOK = """#!/bin/sh
{ echo "== hook $STAGECRAFT_HOOK in $(pwd)"; env; } >> "$HOOK_LOG"
echo "$STAGECRAFT_HOOK: $STAGECRAFT_VERSION to $STAGECRAFT_ENV"
"""
# Prints a line holding the secret (read from a file: the hook's env has none) and fails.
FAILING_PRE_DEPLOY = HOOK + 'echo "token $(cat "$SECRET_FILE")"\necho "not today" >&2\nexit 3\n'
HOOKS = ("pre-build", "pre-deploy", "post-deploy", "on-failure")


@dataclass
class Project:
    """The deployed environment shared by the tests of this module."""

    root: Path
    name: str
    sandbox: Sandbox
    env: dict[str, str]
    hosts: list[SSHHost]
    hook_log: Path

    def cli(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        argv = ["stagecraft", "-c", str(self.root / "stagecraft.yml"), *args]
        return subprocess.run(argv, capture_output=True, text=True, env=self.env, timeout=timeout)

    def hook(self, name: str, script: str) -> None:
        path = self.root / ".stagecraft" / "hooks" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(script)
        path.chmod(0o755)

    def runs(self) -> list[tuple[str, str, dict[str, str]]]:
        """(hook, working directory, STAGECRAFT_* variables) of every hook run so far."""
        found: list[tuple[str, str, dict[str, str]]] = []
        if not self.hook_log.exists():
            return found
        for line in self.hook_log.read_text().splitlines():
            if line.startswith("== hook "):
                name, _, cwd = line.removeprefix("== hook ").partition(" in ")
                found.append((name, cwd, {}))
            elif line.startswith("STAGECRAFT_") and "=" in line and found:
                key, _, value = line.partition("=")
                found[-1][2][key] = value
        return found

    def history(self) -> ledger.History:
        return ledger.history(self.hosts, self.name, "production")


def _config(root: Path, sandbox: Sandbox, name: str, caddy: str) -> None:
    """The fleet example on the sandbox hosts (as tests/e2e/test_deploy_fleet.py writes it)."""
    a, b, c = sandbox.hosts[:3]
    (root / "stagecraft.yml").write_text(
        f"project: {name}\n"
        "compose: docker-compose.yml\n"
        f"proxy: {{provider: caddy, providers: {{caddy: {{image: {caddy}}}}}}}\n"
        "databases:\n"
        "  main: {service: db, url_env: DATABASE_URL,"
        " migrations: {path: migrations, strategy: pre_deploy}}\n"
        "environments:\n"
        "  production:\n"
        "    hosts:\n"
        f"      web-1: {{address: {a.address}, roles: [web]}}\n"
        f"      web-2: {{address: {b.address}, roles: [web]}}\n"
        f"      data-1: {{address: {c.address}, roles: [data, jobs]}}\n"
        "    roles: {web: [web], jobs: [worker], data: [db]}\n"
        f"    routes: {{web: {{host: {DOMAIN}, service: web, port: 8080}}}}\n"
        "    tls: 'off'\n"
        "    env: {POSTGRES_IMAGE: '${POSTGRES_IMAGE}'}\n"
        "    secrets: [POSTGRES_PASSWORD, DATABASE_URL]\n"
        "    secrets_provider: {provider: env}\n"
        "    deploy: {health_timeout: 15s, drain: 2s, retain: 2}\n"
    )


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    from stagecraft.localhosts.sandbox import ssh_options_for
    from stagecraft.testing.pytest_plugin import _require_sandbox, start_sandbox

    _require_sandbox()
    busybox = images.ensure_busybox_image()
    postgres = images.ensure_postgres_image()
    sandbox = start_sandbox(3, tmp_path_factory.mktemp("hooks"), "dh")
    name = f"dh{uuid.uuid4().hex[:8]}"
    root = tmp_path_factory.mktemp("fleet") / "fleet"
    outside = tmp_path_factory.mktemp("outside")  # files the hooks read and write
    hosts: list[SSHHost] = []
    try:
        caddy = images.ensure_caddy_image()
        for host in sandbox.hosts:
            images.copy_image(caddy, None, host.docker_host)
        shutil.copytree(FLEET, root)
        _config(root, sandbox, name, caddy)
        (outside / "secret.txt").write_text(CANARY + "\n")
        env = {
            **os.environ,
            "BUSYBOX_IMAGE": busybox,
            "POSTGRES_IMAGE": postgres,
            "POSTGRES_PASSWORD": CANARY,
            "DATABASE_URL": f"postgres://fleet:{CANARY}@db:5432/fleet",
            "STAGECRAFT_SSH_CONFIG": str(sandbox.ssh_config),
            "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
            "HOOK_LOG": str(outside / "hooks.log"),
            "SECRET_FILE": str(outside / "secret.txt"),
        }
        options = ssh_options_for(sandbox)
        hosts = [SSHHost(h.target(), options) for h in sandbox.hosts]
        yield Project(root, name, sandbox, env, hosts, outside / "hooks.log")
    finally:
        for ssh in hosts:
            ssh.close()
        sandbox.stop()
        images.remove_local_images(f"{name}/*")


def _containers(project: Project, host: SSHHost) -> list[str]:
    label = f"label=com.docker.compose.project={project.name}-production"
    return host.docker("ps", "-aq", "--filter", label).stdout.split()


def test_a_failing_pre_deploy_hook_changes_no_host(project: Project) -> None:
    for name in HOOKS:
        project.hook(name, HOOK)
    project.hook("pre-deploy", FAILING_PRE_DEPLOY)

    out = project.cli("deploy", "--env", "production", "--version", "v0")

    shown = out.stdout + out.stderr
    assert out.returncode == 1, shown
    assert (
        "error: hook pre-deploy exited with 3: deploy aborted before anything on the hosts "
        "changed" in out.stderr
    ), shown
    assert "[hook pre-deploy] not today" in out.stderr  # streamed, and repeated in the error
    assert "error:   [hook pre-deploy] not today" in out.stderr
    assert "[hook pre-deploy] token ***" in out.stderr  # redacted
    assert CANARY not in shown and "Traceback" not in shown
    assert [name for name, _, _ in project.runs()] == ["pre-build", "pre-deploy"]  # no on-failure
    assert CANARY not in project.hook_log.read_text()
    for host in project.hosts:
        assert _containers(project, host) == [], host.name
        listed = host.docker("image", "ls", "--format", "{{.Repository}}", f"{project.name}/*")
        assert listed.stdout.split() == [], host.name  # nothing shipped
    assert lock.status(project.hosts[0], project.name, "production") is None
    assert project.history().releases == []


def test_passing_hooks_run_in_order_with_their_environment_and_no_secret(
    project: Project,
) -> None:
    for name in HOOKS:
        project.hook(name, HOOK)
    project.hook_log.unlink(missing_ok=True)

    dry = project.cli("deploy", "--env", "production", "--version", "v1", "--dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert (
        "hooks that would run (.stagecraft/hooks): pre-build (when an image is built), "
        "pre-deploy, post-deploy (on success), on-failure (if it fails)"
    ) in dry.stderr
    assert project.runs() == []  # --dry-run runs no hook

    out = project.cli("deploy", "--env", "production", "--version", "v1")

    shown = out.stdout + out.stderr
    assert out.returncode == 0, shown
    assert CANARY not in shown
    runs = project.runs()
    assert [name for name, _, _ in runs] == ["pre-build", "pre-deploy", "post-deploy"]
    log = project.hook_log.read_text()
    assert CANARY not in log
    assert "POSTGRES_PASSWORD=" not in log and "DATABASE_URL=" not in log
    newest = project.history().releases[0]
    assert (newest.version, newest.outcome) == ("v1", "success")
    expected = {
        "STAGECRAFT_COMMAND": "deploy",
        "STAGECRAFT_PROJECT": project.name,
        "STAGECRAFT_ENV": "production",
        "STAGECRAFT_VERSION": "v1",
        "STAGECRAFT_RELEASE": newest.id,
        "STAGECRAFT_HOSTS": "web-1,web-2,data-1",
        "STAGECRAFT_PERFORMER": lock.local_identity(),
    }
    for name, cwd, env in runs:
        assert cwd == str(project.root), name
        assert {key: env.get(key) for key in expected} == expected, name
        assert env["STAGECRAFT_HOOK"] == name
    by_name = {name: env for name, _, env in runs}
    assert "STAGECRAFT_OUTCOME" not in by_name["pre-deploy"]
    assert by_name["post-deploy"]["STAGECRAFT_OUTCOME"] == "success"
    assert by_name["post-deploy"]["STAGECRAFT_RUNTIME"].isdigit()
    lines = out.stderr.splitlines()

    def first(text: str) -> int:
        return next(i for i, line in enumerate(lines) if text in line)

    assert first("[hook pre-build] pre-build: v1 to production") < first("[local web] image ")
    assert first("[hook pre-deploy] pre-deploy: v1 to production") < first("images on host")
    assert first("[hook post-deploy] post-deploy: v1 to production") > first("[web-1 web]")
    for host in project.hosts[:2]:
        assert _containers(project, host), host.name
    assert lock.status(project.hosts[0], project.name, "production") is None


def _on_a_terminal(argv: list[str], env: dict[str, str], timeout: float) -> tuple[int, str]:
    """Run ``argv`` with a pseudo-terminal as stdin, stdout and stderr: exit code, output."""
    import os as _os
    import pty
    import select
    import time

    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        argv, stdin=follower, stdout=follower, stderr=follower, env=env, close_fds=True
    )
    _os.close(follower)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.5)
        if ready:
            try:
                data = _os.read(leader, 65536)
            except OSError:  # the terminal closed: the process is gone
                break
            if not data:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            break
    _os.close(leader)
    return proc.wait(timeout=30), b"".join(chunks).decode(errors="replace")


def test_on_a_terminal_a_deploy_shows_the_live_view_and_ends_with_the_summary(
    project: Project,
) -> None:
    """Issue 12 item 4: one row per host, updated in place, then the usual summary."""
    argv = ["stagecraft", "-c", str(project.root / "stagecraft.yml"), "deploy"]
    argv += ["--env", "production", "--version", "v2", "--skip-hooks"]
    code, shown = _on_a_terminal(argv, {**project.env, "COLUMNS": "160"}, timeout=600)
    assert code == 0, shown
    assert CANARY not in shown and "Traceback" not in shown
    assert "HOST" in shown and "PHASE" in shown and "OUTCOME" in shown
    for host in ("web-1", "web-2", "data-1"):
        assert host in shown
    assert "\x1b[" in shown  # drawn in place (cursor movement), not one line per event
    assert "[web-1 web] switched" not in shown  # the plain line stream is not printed
    assert shown.rstrip().splitlines()[-1].strip() == "ok"  # render_result's last line
    assert "deploy v2 to production" in shown
