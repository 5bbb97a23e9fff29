"""The installed `stagecraft status|logs|exec|ssh|secrets check` against sandbox hosts."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from stagecraft.localhosts.sandbox import Sandbox
from stagecraft.testing.images import copy_image

FLEET = Path(__file__).resolve().parents[2] / "examples" / "fleet"
RELEASE = "20261124T110000Z-bbbbbbbbbbbb"
CANARY = "canary-7f3a9e-never-print-me"
TICKER = 'i=0; while true; do echo "tick $i"; i=$((i+1)); sleep 0.3; done'
pytestmark = pytest.mark.e2e


def stagecraft_exe() -> str:
    beside = Path(sys.executable).with_name("stagecraft")
    exe = str(beside) if beside.exists() else shutil.which("stagecraft")
    assert exe, "the stagecraft command is not installed"
    return exe


class Ops:
    """A fleet project aimed at sandbox hosts, its labelled containers, and a CLI runner."""

    def __init__(self, root: Path, sandbox: Sandbox, image: str, *, web2_port: int = 22) -> None:
        self.sandbox = sandbox
        self.image = image
        self.project = f"opse2e{uuid.uuid4().hex[:8]}"
        self.started: list[tuple[str, str]] = []
        shutil.copytree(FLEET, root)
        a, b, c = sandbox.hosts[:3]
        self.config = root / "stagecraft.yml"
        self.config.write_text(
            f"project: {self.project}\n"
            "compose: docker-compose.yml\n"
            "environments:\n"
            "  production:\n"
            "    hosts:\n"
            f"      web-1: {{address: {a.address}, roles: [web]}}\n"
            f"      web-2: {{address: {b.address}, port: {web2_port}, roles: [web]}}\n"
            f"      data-1: {{address: {c.address}, roles: [data, jobs]}}\n"
            "    roles: {web: [web], jobs: [worker], data: [db]}\n"
            "    secrets: [POSTGRES_PASSWORD, DATABASE_URL, STRIPE_KEY]\n"
        )
        self.env = {
            **os.environ,
            "STAGECRAFT_SSH_CONFIG": str(sandbox.ssh_config),
            "NO_COLOR": "1",
        }

    def argv(self, *args: str) -> list[str]:
        return [stagecraft_exe(), "-c", str(self.config), *args]

    def cli(
        self, *args: str, stdin: str = "", env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.argv(*args),
            input=stdin,
            capture_output=True,
            text=True,
            env={**self.env, **(env or {})},
            timeout=120,
        )

    def run(self, host: str, service: str, script: str) -> str:
        """Start a labelled container of ``service``; return its full id."""
        labels = {
            "stagecraft.project": self.project,
            "stagecraft.env": "production",
            "stagecraft.service": service,
            "stagecraft.release": RELEASE,
            "stagecraft.version": RELEASE.split("-", 1)[1],
            "stagecraft.config-hash": "sha256:test",
            "stagecraft.kind": "web",
        }
        flags = [arg for key, value in labels.items() for arg in ("--label", f"{key}={value}")]
        name = f"{self.project}-{service}-{uuid.uuid4().hex[:6]}"
        started = self.sandbox.docker(
            host, "run", "-d", "--init", "--name", name, *flags, self.image, "sh", "-c", script
        )
        self.started.append((host, name))
        return started.stdout.strip()

    def remove(self) -> None:
        for host, name in self.started:
            self.sandbox.docker(host, "rm", "-f", name, check=False)


@pytest.fixture
def ops(tmp_path: Path, sandbox3: Sandbox, busybox_image: str) -> Iterator[Ops]:
    for host in sandbox3.hosts[:3]:
        copy_image(busybox_image, None, host.docker_host)
    made = Ops(tmp_path / "fleet", sandbox3, busybox_image)
    try:
        yield made
    finally:
        made.remove()


def _wait(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _processes(text: str) -> list[str]:
    """Command lines on this machine (sandbox hosts share its PIDs) that contain ``text``."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline and proc.name != str(os.getpid()):
            found.append(cmdline)
    return found


def _followers(container: str) -> list[str]:
    """Local ssh and remote ``docker logs --follow`` processes reading ``container``."""
    return [cmd for cmd in _processes(container) if "--follow" in cmd]


def test_status_text_json_and_unreachable(ops: Ops, tmp_path: Path) -> None:
    web1, web2 = (h.name for h in ops.sandbox.hosts[:2])
    ops.run(web1, "web", "sleep 600")
    ops.run(web2, "web", "sleep 600")
    text = ops.cli("status", "--env", "production")
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert lines[0] == f"{ops.project} production"
    assert lines[1].split() == [
        "HOST",
        "SERVICE",
        "RELEASE",
        "VERSION",
        "HEALTH",
        "UPTIME",
        "REPLICAS",
    ]
    assert lines[2].split()[:5] == ["web-1", "web", RELEASE, "bbbbbbbbbbbb", "running"]
    assert lines[2].split()[-1] == "1/1"
    assert any(line.split()[:2] == ["data-1", "db"] and "not deployed" in line for line in lines)
    data = json.loads(ops.cli("status", "--env", "production", "--json").stdout)
    assert data["unreachable"] == [] and data["hosts"][1]["services"][0]["release"] == RELEASE

    down = Ops(tmp_path / "down", ops.sandbox, ops.image, web2_port=9)
    down.config.write_text(down.config.read_text().replace(down.project, ops.project))
    failed = down.cli("status", "--env", "production", "--json")
    assert failed.returncode == 5, failed.stderr
    assert "web-2" in failed.stderr
    report = json.loads(failed.stdout)  # still one JSON document
    assert (
        report["unreachable"] == ["web-2"]
        and report["hosts"][0]["services"][0]["replicas"]["running"] == 1
    )
    shown = down.cli("status", "--env", "production")
    rows = [line.split()[:2] for line in shown.stdout.splitlines()]
    assert shown.returncode == 5 and ["web-2", "?"] in rows and ["web-1", "web"] in rows


@pytest.mark.parametrize(
    "command",
    [
        ("status",),
        ("releases",),
        ("logs", "web"),
        ("plan", "--version", "cafe00000001"),
    ],
    ids=lambda c: c[0],
)
def test_every_command_that_reads_hosts_exits_5_naming_the_unreachable_one(
    ops: Ops, tmp_path: Path, command: tuple[str, ...]
) -> None:
    """Issue 9 item 12: `releases` used to list nothing and exit 0 with a host down."""
    down = Ops(tmp_path / "down", ops.sandbox, ops.image, web2_port=9)
    text = down.cli(*command, "--env", "production")
    assert text.returncode == 5, (text.stdout, text.stderr)
    assert "web-2: unreachable" in text.stderr and "Traceback" not in text.stderr
    as_json = down.cli(*command, "--env", "production", "--json")
    assert as_json.returncode == 5, as_json.stderr
    assert "web-2: unreachable" in as_json.stderr
    if command[0] == "logs":  # JSON lines: the reachable hosts' lines, no error document
        lines = [json.loads(line) for line in as_json.stdout.splitlines() if line.strip()]
        assert all("error" not in line for line in lines)
        return
    report = json.loads(as_json.stdout)  # still one document
    assert "web-2" in report["unreachable"]


def test_logs_merged_and_follow_stops_on_ctrl_c(ops: Ops) -> None:
    web1, web2 = (h.name for h in ops.sandbox.hosts[:2])
    first = ops.run(web1, "web", TICKER)
    second = ops.run(web2, "web", TICKER)

    def both() -> bool:
        out = ops.cli("logs", "web", "--env", "production", "--tail", "3").stdout
        return "web-1/web | tick 2" in out and "web-2/web | tick 2" in out

    _wait(both, 30, "both containers to log")
    one = ops.cli("logs", "web", "--env", "production", "--host", "web-2", "--since", "10m")
    assert one.returncode == 0, one.stderr
    assert one.stdout.startswith("web-2/web | tick 0\n") and "web-1" not in one.stdout
    as_json = ops.cli("logs", "web", "--env", "production", "--host", "web-2", "--json")
    assert as_json.returncode == 0, as_json.stderr
    records = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert records[0] == {"source": "web-2/web", "stream": "stdout", "line": "tick 0"}
    bad = ops.cli("logs", "web", "--env", "production", "--since", "yesterday")
    assert bad.returncode == 2 and "--since 'yesterday'" in bad.stderr

    follow = subprocess.Popen(
        ops.argv("logs", "web", "--env", "production", "-f", "--tail", "1"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ops.env,
    )
    try:
        seen: set[str] = set()
        assert follow.stdout is not None
        deadline = time.monotonic() + 30
        while seen != {"web-1/web", "web-2/web"} and time.monotonic() < deadline:
            line = follow.stdout.readline()
            seen.add(line.split(" | ")[0].strip())
        assert seen == {"web-1/web", "web-2/web"}
        assert _followers(first) and _followers(second)
        follow.send_signal(signal.SIGINT)
        assert follow.wait(timeout=30) == 130
    finally:
        if follow.poll() is None:
            follow.kill()
            follow.wait()
    _wait(lambda: not _followers(first) and not _followers(second), 15, "followers to end")
    # The shared ssh connections were closed too: no ssh process names the project any more.
    _wait(lambda: not _processes(ops.project), 15, "ssh control masters to exit")


def test_exec_propagates_exit_code_and_stdin(ops: Ops) -> None:
    ops.run(ops.sandbox.hosts[1].name, "web", "sleep 600")
    done = ops.cli("exec", "web", "--env", "production", "--", "sh", "-c", "echo in $0; exit 7")
    assert (done.returncode, done.stdout) == (7, "in sh\n"), done.stderr
    piped = ops.cli("exec", "web", "--env", "production", "--", "cat", stdin="through stdin\n")
    assert (piped.returncode, piped.stdout) == (0, "through stdin\n"), piped.stderr
    missing = ops.cli("exec", "worker", "--env", "production", "--", "true")
    assert missing.returncode == 2 and "no running container of 'worker'" in missing.stderr
    unknown = ops.cli("exec", "nope", "--env", "production", "--", "true")
    assert unknown.returncode == 2 and "unknown service 'nope'" in unknown.stderr
    assert "known: db, web, worker" in unknown.stderr


def test_ssh_runs_a_command_on_the_host(ops: Ops) -> None:
    done = ops.cli("ssh", "data-1", "--env", "production", "--", "hostname", "&&", "exit", "3")
    assert done.returncode == 3, done.stderr
    assert done.stdout.strip()
    shell = ops.cli("ssh", "web-1", "--env", "production", stdin="echo from-a-shell\n")
    assert (shell.returncode, shell.stdout.strip().splitlines()[-1]) == (0, "from-a-shell")
    unknown = ops.cli("ssh", "web-9", "--env", "production")
    assert unknown.returncode == 2, unknown.stderr
    assert (
        "unknown host 'web-9' in environment production; known: web-1, web-2, data-1 "
        "(did you mean 'web-1' or 'web-2'?)"
    ) in unknown.stderr


def test_secrets_check_names_only(ops: Ops) -> None:
    partial = {"POSTGRES_PASSWORD": CANARY, "DATABASE_URL": f"postgres://u:{CANARY}@db/x"}
    failed = ops.cli("secrets", "check", "--env", "production", env=partial)
    assert failed.returncode == 2
    assert failed.stdout.split() == [
        "POSTGRES_PASSWORD",
        "ok",
        "DATABASE_URL",
        "ok",
        "STRIPE_KEY",
        "missing",
    ]
    assert "STRIPE_KEY" in failed.stderr and "POSTGRES_PASSWORD" not in failed.stderr
    as_json = ops.cli("secrets", "check", "--env", "production", "--json", env=partial)
    assert as_json.returncode == 2
    assert json.loads(as_json.stdout)["missing"] == ["STRIPE_KEY"]
    complete = ops.cli(
        "secrets", "check", "--env", "production", env={**partial, "STRIPE_KEY": CANARY}
    )
    assert complete.returncode == 0, complete.stderr
    for result in (failed, as_json, complete):
        assert CANARY not in result.stdout + result.stderr


def test_exec_attaches_a_terminal_when_stdin_is_one(ops: Ops) -> None:
    import pty

    ops.run(ops.sandbox.hosts[0].name, "web", "sleep 600")
    controller, terminal = pty.openpty()
    try:
        done = subprocess.run(
            ops.argv("exec", "web", "--env", "production", "--", "sh", "-c", "test -t 0; echo $?"),
            stdin=terminal,
            capture_output=True,
            text=True,
            env=ops.env,
            timeout=120,
        )
    finally:
        os.close(terminal)
        os.close(controller)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "0"  # a terminal inside the container
    piped = ops.cli("exec", "web", "--env", "production", "--", "sh", "-c", "test -t 0; echo $?")
    assert piped.stdout.strip() == "1"
