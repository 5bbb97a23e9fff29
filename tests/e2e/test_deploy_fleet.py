"""`stagecraft deploy` / `rollback` end to end: examples/fleet on 3 private sandbox hosts.

The tests share one deployed environment and run in order: v1 (everything
created), v2 under keep-alive and new-connection load through both web hosts'
proxies, a v3 whose health check fails, a rollback to v1 under load, and a
deploy while another one holds the lock.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
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
from stagecraft.localhosts.sandbox import Sandbox
from stagecraft.runtime.ssh import SSHHost
from stagecraft.testing import images
from stagecraft.testing.load import NewConnectionLoad, WrkLoad

FLEET = Path(__file__).resolve().parents[2] / "examples" / "fleet"
DOMAIN = "fleet.test"
CANARY = "canary-" + uuid.uuid4().hex
pytestmark = [pytest.mark.e2e, pytest.mark.sandbox]


@dataclass
class Fleet:
    """The deployed environment shared by the tests of this module."""

    root: Path
    name: str
    sandbox: Sandbox
    env: dict[str, str]
    hosts: list[SSHHost]

    def cli(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        argv = ["stagecraft", "-c", str(self.root / "stagecraft.yml"), *args]
        return subprocess.run(argv, capture_output=True, text=True, env=self.env, timeout=timeout)

    def deploy(self, version: str) -> subprocess.CompletedProcess[str]:
        return self.cli("deploy", "--env", "production", "--version", version)

    def deploy_until(
        self, version: str, line: str, act: Callable[[subprocess.Popen[str]], None]
    ) -> tuple[int, str]:
        """Deploy ``version``; when stderr shows ``line``, ``act`` on the process. Exit, output."""
        argv = ["stagecraft", "-c", str(self.root / "stagecraft.yml"), "deploy", "--env"]
        argv += ["production", "--version", version]
        proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=self.env
        )
        assert proc.stderr is not None
        seen = []
        try:
            for text in proc.stderr:
                seen.append(text)
                if line in text:
                    act(proc)
                    break
            _, rest = proc.communicate(timeout=300)
        finally:
            if proc.poll() is None:
                proc.kill()
        return proc.returncode, "".join(seen) + rest

    def url(self, index: int, path: str = "/") -> str:
        return f"http://{self.sandbox.hosts[index].address}{path}"

    def get(self, index: int, path: str = "/") -> tuple[int, str]:
        request = urllib.request.Request(self.url(index, path), headers={"Host": DOMAIN})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def history(self) -> ledger.History:
        return ledger.history(self.hosts, self.name, "production")


def _config(root: Path, sandbox: Sandbox, name: str, caddy: str) -> None:
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
        # Compose variables of a deployed environment come from its env: only (ADR 0006)
        "    env: {POSTGRES_IMAGE: '${POSTGRES_IMAGE}'}\n"
        "    secrets: [POSTGRES_PASSWORD, DATABASE_URL]\n"
        "    secrets_provider: {provider: env}\n"
        "    deploy: {health_timeout: 15s, drain: 2s, retain: 2}\n"
    )


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    from stagecraft.localhosts.sandbox import ssh_options_for
    from stagecraft.testing.pytest_plugin import _require_sandbox, start_sandbox

    _require_sandbox()
    busybox = images.ensure_busybox_image()
    postgres = images.ensure_postgres_image()
    sandbox = start_sandbox(3, tmp_path_factory.mktemp("deploy"), "dp")
    name = f"dp{uuid.uuid4().hex[:8]}"
    root = tmp_path_factory.mktemp("fleet") / "fleet"
    hosts: list[SSHHost] = []
    try:
        caddy = images.ensure_caddy_image()
        for host in sandbox.hosts:
            images.copy_image(caddy, None, host.docker_host)
        shutil.copytree(FLEET, root)
        _config(root, sandbox, name, caddy)
        env = {
            **os.environ,
            "BUSYBOX_IMAGE": busybox,
            "POSTGRES_IMAGE": postgres,
            "POSTGRES_PASSWORD": CANARY,
            "DATABASE_URL": f"postgres://fleet:{CANARY}@db:5432/fleet",
            "STAGECRAFT_SSH_CONFIG": str(sandbox.ssh_config),
            "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        }
        options = ssh_options_for(sandbox)
        hosts = [SSHHost(h.target(), options) for h in sandbox.hosts]
        yield Fleet(root, name, sandbox, env, hosts)
    finally:
        for ssh in hosts:
            ssh.close()
        sandbox.stop()
        images.remove_local_images(f"{name}/*")


def _web_reaches_db(host: SSHHost, name: str) -> bool:
    """Whether the web app's own /cgi-bin/db check reaches ``db`` (on data-1, via extra_hosts)."""
    ids = host.docker("ps", "-q", "--filter", f"label=com.docker.compose.project={name}-production")
    script = "wget -q -O- http://127.0.0.1:8080/cgi-bin/db"
    result = host.docker("exec", ids.stdout.split()[0], "sh", "-c", script, check=False)
    return result.ok and "db reachable" in result.stdout


def _no_secret(*texts: str) -> None:
    for text in texts:
        assert CANARY not in text


def test_deploy_v1_creates_everything(fleet: Fleet) -> None:
    dry = fleet.cli("deploy", "--env", "production", "--version", "v1", "--dry-run")
    plan = fleet.cli("plan", "--env", "production", "--version", "v1")
    assert dry.returncode == plan.returncode == 0, dry.stderr
    assert dry.stdout == plan.stdout and "4 create" in dry.stdout

    out = fleet.cli("deploy", "--env", "production", "--version", "v1", "--json")
    assert out.returncode == 0, out.stdout + out.stderr
    _no_secret(out.stdout, out.stderr)
    assert "[web-1 web] switched" in out.stderr and "[data-1 db] ready" in out.stderr
    shipped = {h["host"]: h["shipped"] for h in json.loads(out.stdout)["hosts"]}
    for host in ("web-1", "web-2"):  # each got the web image's layers it lacked, gzipped
        transfer = shipped[host]["transfer"]
        assert transfer["bytes"] > 0 and transfer["layers_sent"] >= 1, shipped
        assert f"{fleet.name}/web:v1" in shipped[host]["sent"]
    for index in (0, 1):
        status, body = fleet.get(index)
        assert status == 200 and "fleet web v1" in body
        assert _web_reaches_db(fleet.hosts[index], fleet.name)
    found = fleet.history()
    newest = found.releases[0]
    assert newest.version == "v1" and newest.outcome == "success"
    assert sorted(newest.hosts) == ["data-1", "web-1", "web-2"]
    assert newest.hosts["data-1"].services["db"].outcome == "success"
    _no_secret(json.dumps(newest.to_dict()))
    data = fleet.hosts[2]
    release_dir = f"/var/lib/stagecraft/apps/{fleet.name}/production/releases/{newest.id}"
    files = [f"{release_dir}/db.env", f"{release_dir}/worker.env"]
    modes = data.run(["stat", "-c", "%a", *files]).stdout.split()
    assert modes == ["600", "600"]
    assert CANARY in (data.read_file(files[0]) or b"").decode()
    _no_secret((data.read_file(f"{release_dir}/docker-compose.yml") or b"").decode())
    assert lock.status(fleet.hosts[0], fleet.name, "production") is None


def test_deploy_v2_under_load_drops_nothing(fleet: Fleet) -> None:
    wrks = [WrkLoad(fleet.url(i), host=DOMAIN, duration=60, connections=8) for i in (0, 1)]
    news = [
        NewConnectionLoad(fleet.url(i), host=DOMAIN, workers=2, max_seconds=120) for i in (0, 1)
    ]
    with contextlib.ExitStack() as stack:
        for wrk in wrks:
            stack.enter_context(wrk)
        for new in news:
            stack.enter_context(new)
        time.sleep(2)  # let the clients see v1 first
        started = time.monotonic()
        out = fleet.deploy("v2")
        took = time.monotonic() - started
    assert out.returncode == 0, out.stdout + out.stderr
    for wrk in wrks:
        assert wrk.result is not None and wrk.result.requests > 100
        assert wrk.result.failures == 0, wrk.result.output
        assert any("v1" in b for b in wrk.result.first_bodies)
        assert all("v2" in b for b in wrk.result.last_bodies), (took, wrk.result.output)
    for new in news:
        assert new.result.failures == 0, new.result.errors[:5]
        assert "v1" in new.result.sequence[0] and "v2" in new.result.sequence[-1]
    assert fleet.history().releases[0].version == "v2"


def test_failing_health_check_keeps_the_old_version(fleet: Fleet) -> None:
    script = fleet.root / "web" / "www" / "cgi-bin" / "index.cgi"
    original = script.read_text()
    broken = (
        'case "$REQUEST_URI" in /healthz*) printf "Status: 500 Broken\\r\\n\\r\\n"; exit 0;; esac\n'
    )
    script.write_text(original.replace("\n", "\n" + broken, 1))
    news = [
        NewConnectionLoad(fleet.url(i), host=DOMAIN, workers=2, max_seconds=120) for i in (0, 1)
    ]
    try:
        for new in news:
            new.__enter__()
        started = time.monotonic()
        out = fleet.deploy("v3")
    finally:
        for new in news:
            new.__exit__(None, None, None)
        script.write_text(original)
    assert out.returncode == 3, out.stdout + out.stderr
    assert time.monotonic() - started < 240
    assert "web-1" in out.stderr and "not healthy" in out.stderr
    _no_secret(out.stdout, out.stderr)
    for new in news:
        assert new.result.failures == 0, new.result.errors[:5]
        assert all("v2" in body for body in new.result.bodies)
    newest = fleet.history().releases[0]
    assert newest.version == "v3" and newest.outcome == "failed"
    assert newest.hosts["web-1"].services["web"].outcome == "failed"
    assert lock.status(fleet.hosts[0], fleet.name, "production") is None
    for index in (0, 1):
        assert "fleet web v2" in fleet.get(index)[1]


def test_rollback_to_v1_under_load(fleet: Fleet) -> None:
    v1 = next(r for r in fleet.history().releases if r.version == "v1")
    wrk = WrkLoad(fleet.url(0), host=DOMAIN, duration=40, connections=8)
    new = NewConnectionLoad(fleet.url(1), host=DOMAIN, workers=2, max_seconds=120)
    with wrk, new:
        out = fleet.cli("rollback", "--env", "production", "--to", v1.id)
    assert out.returncode == 0, out.stdout + out.stderr
    assert wrk.result is not None
    assert wrk.result.failures == 0, wrk.result.output
    assert new.result.failures == 0, new.result.errors[:5]
    assert "v2" in new.result.sequence[0] and "v1" in new.result.sequence[-1]
    newest = fleet.history().releases[0]
    assert (newest.version, newest.command, newest.outcome) == ("v1", "rollback", "success")
    for host in ("h1", "h2"):  # pruned: v3 failed; v1 and v2 are the last 2 (retain) successes
        listed = fleet.sandbox.docker(
            host, "image", "ls", "--format", "{{.Tag}}", f"{fleet.name}/web"
        )
        assert sorted(listed.stdout.split()) == ["v1", "v2"]


def test_second_of_two_deploys_fails_fast_naming_the_holder(fleet: Fleet) -> None:
    argv = ["stagecraft", "-c", str(fleet.root / "stagecraft.yml"), "deploy", "--env"]
    argv += ["production", "--version", "v1"]
    procs = [
        subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=fleet.env
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=600) for p in procs]
    results = [(p.returncode, out, err) for p, (out, err) in zip(procs, outputs, strict=True)]
    shown = "\n---\n".join(f"exit {code}\n{out}\n{err}" for code, out, err in results)
    assert sorted(code for code, _, _ in results) == [0, 4], shown
    loser = next(r for r in results if r[0] == 4)
    assert lock.local_identity() in loser[2] and "held" in loser[2].lower(), loser[2]
    assert lock.status(fleet.hosts[0], fleet.name, "production") is None


@pytest.mark.parametrize(
    ("sig", "version"),
    [(signal.SIGINT, "v2"), (signal.SIGTERM, "v1"), (signal.SIGHUP, "v2")],
    ids=["SIGINT", "SIGTERM", "SIGHUP"],
)
def test_ctrl_c_mid_rollout_releases_the_lock_and_a_rerun_converges(
    fleet: Fleet, sig: signal.Signals, version: str
) -> None:
    """Ctrl-C, SIGTERM (CI cancelling, `timeout`) and SIGHUP (a closed terminal), under load."""
    loads = [
        NewConnectionLoad(fleet.url(i), host=DOMAIN, workers=1, keep_alive=keep, max_seconds=120)
        for i in (0, 1)
        for keep in (False, True)
    ]
    with contextlib.ExitStack() as stack:
        for load in loads:
            stack.enter_context(load)
        code, shown = fleet.deploy_until(
            version, "[web-1 web] starting", lambda proc: proc.send_signal(sig)
        )
        assert code == 130, shown
        assert ("interrupted" if sig == signal.SIGINT else f"interrupted by {sig.name}") in shown
        assert "Traceback" not in shown
        assert lock.status(fleet.hosts[0], fleet.name, "production") is None
        for index in (0, 1):
            status, body = fleet.get(index)
            assert status == 200 and "fleet web v" in body
        newest = fleet.history().releases[0]
        assert newest.version == version and newest.outcome == "interrupted"

        again = fleet.deploy(version)
        assert again.returncode == 0, again.stdout + again.stderr
    for load in loads:  # the interrupted rollout and the re-run dropped nothing
        assert load.result.requests > 10 and load.result.failures == 0, load.result.errors[:5]
    for index in (0, 1):
        assert f"fleet web {version}" in fleet.get(index)[1]
    assert fleet.history().releases[0].outcome == "success"


def test_a_host_lost_mid_deploy_fails_alone_and_a_rerun_converges(fleet: Fleet) -> None:
    """web-2's sshd and dockerd die while its web service rolls out (SPEC 6: a host lost)."""
    stopped: list[str] = []

    def lose_web_2(_: subprocess.Popen[str]) -> None:
        fleet.sandbox.stop_host("h2")
        stopped.append("h2")

    try:
        code, shown = fleet.deploy_until("v1", "[web-2 web] starting", lose_web_2)
        assert code == 5, shown  # only unreachable hosts failed
        assert "failed on web-2" in shown and "web-1: failed" not in shown, shown
        assert "Traceback" not in shown
        assert lock.status(fleet.hosts[0], fleet.name, "production") is None
        assert "fleet web v1" in fleet.get(0)[1]  # the other web host finished its rollout
        newest = fleet.history().releases[0]  # read from the hosts still reachable
        assert newest.version == "v1" and newest.outcome == "failed"
        assert newest.hosts["web-1"].outcome == "success"
        assert newest.hosts["data-1"].outcome == "success"
        assert newest.unrecorded == {"web-2": "failed"}  # known from the others' records
    finally:  # the later tests need the host back even when an assertion above fails
        for name in stopped:
            fleet.sandbox.start_host(name)

    again = fleet.deploy("v1")
    assert again.returncode == 0, again.stdout + again.stderr
    for index in (0, 1):
        status, body = fleet.get(index)
        assert status == 200 and "fleet web v1" in body
    assert _web_reaches_db(fleet.hosts[1], fleet.name)
    assert fleet.history().releases[0].outcome == "success"


def test_boot_groups_roll_out_one_host_after_another(fleet: Fleet) -> None:
    config = fleet.root / "stagecraft.yml"
    original = config.read_text()
    config.write_text(original.replace("deploy: {", "deploy: {boot: {limit: 1, wait: 1s}, ", 1))
    try:
        out = fleet.deploy("v2")
    finally:
        config.write_text(original)
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stderr.splitlines()

    def first(text: str) -> int:
        return next(i for i, line in enumerate(lines) if text in line)

    assert first("[web-1 web] switched") < first("[web-2 web] starting")
    assert first("[web-2 web] switched") < first("[data-1 worker] starting")
    for index in (0, 1):
        assert "fleet web v2" in fleet.get(index)[1]


def test_a_rotated_secret_replaces_its_services_under_load(fleet: Fleet) -> None:
    """A new value of DATABASE_URL: plan names the secret, deploy replaces its users only.

    Issue 9 item 1: the value is not part of the config, so before, plan said
    `keep` and the containers kept the old value. The release's version stays.
    """
    rotated = "rotated" + uuid.uuid4().hex[:12]
    fleet.env["DATABASE_URL"] = (
        f"postgres://fleet:{CANARY}@db:5432/fleet?application_name={rotated}"
    )
    plan = fleet.cli("plan", "--env", "production", "--version", "v2", "--json")
    assert plan.returncode == 0, plan.stderr
    actions = {
        (host["host"], svc["service"]): (svc["action"], svc["changes"])
        for host in json.loads(plan.stdout)["hosts"]
        for svc in host["services"]
    }
    changed = ("replace", ["secret DATABASE_URL changed"])
    assert actions[("web-1", "web")] == actions[("web-2", "web")] == changed
    assert actions[("data-1", "worker")] == changed
    assert actions[("data-1", "db")] == ("keep", [])
    wrks = [WrkLoad(fleet.url(i), host=DOMAIN, duration=30, connections=8) for i in (0, 1)]
    with contextlib.ExitStack() as stack:
        for wrk in wrks:
            stack.enter_context(wrk)
        time.sleep(1)
        out = fleet.deploy("v2")
    assert out.returncode == 0, out.stdout + out.stderr
    for text in (plan.stdout, plan.stderr, out.stdout, out.stderr):
        assert rotated not in text and CANARY not in text
    for wrk in wrks:
        assert wrk.result is not None and wrk.result.requests > 100
        assert wrk.result.failures == 0, wrk.result.output
    for host, service in ((fleet.hosts[0], "web"), (fleet.hosts[2], "worker")):
        project = f"label=com.docker.compose.project={fleet.name}-production"
        own = f"label=com.docker.compose.service={service}"
        ids = host.docker("ps", "-q", "--filter", project, "--filter", own).stdout.split()
        env = host.docker("exec", ids[0], "env").stdout
        assert rotated in env, service
    again = fleet.cli("plan", "--env", "production", "--version", "v2")
    assert again.returncode == 0 and "4 keep" in again.stdout, again.stdout
