"""``driver: swarm`` end to end: the fleet example as a stack on a 3-node Docker Swarm.

Three sandbox hosts (each its own dockerd in its own network namespace; the
kernel has no IPVS, so the stack uses DNS round robin and host-mode ports,
testbed.md). The tests share one environment and run in order: ``hosts
bootstrap`` forms the swarm; v1 creates the stack (web on both web nodes behind
the Caddy edge service, worker and PostgreSQL on the data node, every image
shipped over SSH, none pulled); v2 under keep-alive and new-connection load; a
v3 whose health check fails, which Swarm rolls back; a rotated secret that
updates only the services using it; ``rollback`` to v1; ``status``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
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
class Swarm:
    """The environment shared by the tests of this module."""

    root: Path
    name: str
    sandbox: Sandbox
    env: dict[str, str]
    hosts: list[SSHHost]

    @property
    def stack(self) -> str:
        return f"{self.name}-production"

    def cli(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        argv = ["stagecraft", "-c", str(self.root / "stagecraft.yml"), *args]
        return subprocess.run(argv, capture_output=True, text=True, env=self.env, timeout=timeout)

    def deploy(self, version: str, *extra: str) -> subprocess.CompletedProcess[str]:
        return self.cli("deploy", "--env", "production", "--version", version, *extra)

    def deploy_until(self, version: str, line: str, act: Callable[[], None]) -> tuple[int, str]:
        """Deploy ``version``; when stderr shows ``line``, ``act``. Exit code and output."""
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
                    act()
                    break
            out, rest = proc.communicate(timeout=400)
        finally:
            if proc.poll() is None:
                proc.kill()
        return proc.returncode, "".join(seen) + rest + out

    def url(self, index: int, path: str = "/") -> str:
        return f"http://{self.sandbox.hosts[index].address}{path}"

    def get(self, index: int, path: str = "/") -> tuple[int, str]:
        request = urllib.request.Request(self.url(index, path), headers={"Host": DOMAIN})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def manager(self, *args: str) -> str:
        return self.hosts[0].docker(*args).stdout

    def history(self) -> ledger.History:
        return ledger.history(self.hosts, self.name, "production")


def _config(root: Path, sandbox: Sandbox, name: str, caddy: str) -> None:
    a, b, c = sandbox.hosts[:3]
    (root / "stagecraft.yml").write_text(
        f"project: {name}\n"
        "compose: docker-compose.yml\n"
        f"proxy: {{provider: caddy, providers: {{caddy: {{image: {caddy}}}}}}}\n"
        "environments:\n"
        "  production:\n"
        "    driver: swarm\n"
        "    hosts:\n"
        f"      web-1: {{address: {a.address}, roles: [web], manager: true}}\n"
        f"      web-2: {{address: {b.address}, roles: [web]}}\n"
        f"      data-1: {{address: {c.address}, roles: [data]}}\n"
        "    roles: {web: [web], data: [db, worker]}\n"
        f"    routes: {{web: {{host: {DOMAIN}, service: web, port: 8080}}}}\n"
        "    tls: 'off'\n"
        "    env: {POSTGRES_IMAGE: '${POSTGRES_IMAGE}'}\n"
        "    secrets: [POSTGRES_PASSWORD, DATABASE_URL]\n"
        "    secrets_provider: {provider: env}\n"
        "    deploy: {health_timeout: 30s, retain: 3}\n"
    )


@pytest.fixture(scope="module")
def swarm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Swarm]:
    from stagecraft.localhosts.sandbox import ssh_options_for
    from stagecraft.testing.pytest_plugin import _require_sandbox, start_sandbox

    _require_sandbox()
    busybox = images.ensure_busybox_image()
    postgres = images.ensure_postgres_image()
    caddy = images.ensure_caddy_image()
    sandbox = start_sandbox(3, tmp_path_factory.mktemp("swarm"), "sw")
    name = f"sw{uuid.uuid4().hex[:8]}"
    root = tmp_path_factory.mktemp("fleet") / "fleet"
    hosts: list[SSHHost] = []
    try:
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
        yield Swarm(root, name, sandbox, env, hosts)
    finally:
        for host in reversed(hosts):  # workers first: the manager leaves last
            host.docker("swarm", "leave", "--force", check=False)
            host.close()
        sandbox.stop()
        images.remove_local_images(f"{name}/*")


def _no_secret(*texts: str) -> None:
    for text in texts:
        assert CANARY not in text


def _images_by_service(swarm: Swarm) -> dict[str, str]:
    listed = swarm.manager(
        "service", "ls", "--filter", f"label=com.docker.stack.namespace={swarm.stack}",
        "--format", "{{.Name}} {{.Image}}",
    )  # fmt: skip
    return dict(line.split(" ", 1) for line in listed.splitlines())


def test_bootstrap_forms_the_swarm_and_a_second_run_changes_nothing(swarm: Swarm) -> None:
    first = swarm.cli("hosts", "bootstrap", "--env", "production")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "web-1: swarm initialised" in first.stdout
    assert "web-2: joined as worker" in first.stdout and "data-1: joined as worker" in first.stdout
    assert "web-1: roles web, edge proxy" in first.stdout
    assert "(docker " in first.stdout and "swarm node" in first.stdout
    nodes = swarm.manager("node", "ls", "--format", "{{.Status}} {{.ManagerStatus}}")
    assert sorted(nodes.split("\n")[:3]) == ["Ready ", "Ready ", "Ready Leader"]
    again = swarm.cli("hosts", "bootstrap", "--env", "production")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "initialised" not in again.stdout and "joined" not in again.stdout
    assert "roles" not in again.stdout


def test_deploy_v1_creates_the_stack_with_images_by_id(swarm: Swarm) -> None:
    out = swarm.deploy("v1", "--json")
    assert out.returncode == 0, out.stdout + out.stderr
    _no_secret(out.stdout, out.stderr)
    result = json.loads(out.stdout)
    leader = next(h for h in result["hosts"] if h["host"] == "web-1")
    actions = {s["service"]: (s["action"], s["outcome"]) for s in leader["services"]}
    assert actions == {
        "db": ("create", "success"),
        "stagecraft-edge": ("create", "success"),
        "web": ("create", "success"),
        "worker": ("create", "success"),
    }
    by_service = _images_by_service(swarm)
    assert all(image.startswith("sha256:") for image in by_service.values()), by_service
    for index in (0, 1):
        status, body = swarm.get(index)
        assert status == 200 and "fleet web v1" in body, body
        # PostgreSQL has no health check here: it may still be starting; the overlay
        # DNS name `db` reaches it from the web nodes.
        deadline = time.monotonic() + 60
        while (found := swarm.get(index, "/cgi-bin/db"))[0] != 200 and time.monotonic() < deadline:
            time.sleep(1)
        assert found[0] == 200 and "db reachable" in found[1], found[1] + swarm.manager(
            "service", "ps", "--no-trunc", f"{swarm.stack}_db"
        )
    release = swarm.history().releases[0]
    assert (release.version, release.outcome) == ("v1", "success")
    release_dir = f"/var/lib/stagecraft/apps/{swarm.name}/production/releases/{release.id}"
    stack_file = swarm.hosts[0].read_file(f"{release_dir}/stack.yml") or b""
    assert b"version: '3.8'" in stack_file or b'version: "3.8"' in stack_file
    _no_secret(stack_file.decode(), json.dumps(release.to_dict()))
    # The secret reaches the database as a file (Docker's _FILE convention), not in clear.
    inspected = swarm.manager("service", "inspect", f"{swarm.stack}_db")
    _no_secret(inspected)
    assert "POSTGRES_PASSWORD_FILE=/run/secrets/POSTGRES_PASSWORD" in inspected
    assert lock.status(swarm.hosts[0], swarm.name, "production") is None


def test_deploy_v2_under_load_drops_nothing(swarm: Swarm) -> None:
    wrks = [WrkLoad(swarm.url(i), host=DOMAIN, duration=40, connections=8) for i in (0, 1)]
    news = [
        NewConnectionLoad(swarm.url(i), host=DOMAIN, workers=2, max_seconds=120) for i in (0, 1)
    ]
    with contextlib.ExitStack() as stack:
        for wrk in wrks:
            stack.enter_context(wrk)
        for new in news:
            stack.enter_context(new)
        time.sleep(2)  # let the clients see v1 first
        out = swarm.deploy("v2")
        time.sleep(2)  # and v2 after
        for wrk in wrks:
            wrk.stop()  # its report covers the deploy: no need to run out its duration
    assert out.returncode == 0, out.stdout + out.stderr
    for wrk in wrks:
        assert wrk.result is not None
        assert wrk.result.failures == 0, wrk.result.output
    for new in news:
        assert new.result.failures == 0, new.result.errors[:5]
        assert "v1" in new.result.sequence[0] and "v2" in new.result.sequence[-1]
    assert "db: keep" in out.stdout and "web: update success" in out.stdout, out.stdout


def test_failing_health_check_is_rolled_back_by_swarm(swarm: Swarm) -> None:
    script = swarm.root / "web" / "www" / "cgi-bin" / "index.cgi"
    original = script.read_text()
    broken = (
        'case "$REQUEST_URI" in /healthz*) printf "Status: 500 Broken\\r\\n\\r\\n"; exit 0;; esac\n'
    )
    script.write_text(original.replace("\n", "\n" + broken, 1))
    new = NewConnectionLoad(swarm.url(0), host=DOMAIN, workers=2, max_seconds=240)
    try:
        with new:
            out = swarm.deploy("v3")
    finally:
        script.write_text(original)
    assert out.returncode == 3, out.stdout + out.stderr
    assert "rolled the update back" in out.stderr + out.stdout
    _no_secret(out.stdout, out.stderr)
    assert new.result.failures == 0, new.result.errors[:5]
    assert all("v2" in body for body in new.result.bodies)
    newest = swarm.history().releases[0]
    assert newest.version == "v3" and newest.outcome == "failed"
    assert "fleet web v2" in swarm.get(1)[1]
    assert lock.status(swarm.hosts[0], swarm.name, "production") is None


def test_a_rotated_secret_updates_only_the_services_using_it(swarm: Swarm) -> None:
    before = _images_by_service(swarm)
    swarm.env["DATABASE_URL"] = f"postgres://fleet:{CANARY}-rotated@db:5432/fleet"
    out = swarm.deploy("v2", "--json")
    assert out.returncode == 0, out.stdout + out.stderr
    _no_secret(out.stdout, out.stderr)
    actions = {
        s["service"]: s["action"] for h in json.loads(out.stdout)["hosts"] for s in h["services"]
    }
    assert actions["web"] == actions["worker"] == "update", actions
    assert actions["db"] == actions["stagecraft-edge"] == "keep", actions
    web = f"{swarm.stack}_web"  # v2 before (v3 was rolled back) and after: only the secret moved
    assert _images_by_service(swarm)[web] == before[web]
    names = swarm.manager("secret", "ls", "--format", "{{.Name}}").split()
    web_secrets = [n for n in names if "_web_DATABASE_URL_" in n]
    assert len(web_secrets) == 1, names  # the old version was removed after the deploy


def test_rollback_to_v1(swarm: Swarm) -> None:
    v1 = next(r for r in swarm.history().releases if r.version == "v1")
    wrk = WrkLoad(swarm.url(0), host=DOMAIN, duration=60, connections=8)
    new = NewConnectionLoad(swarm.url(1), host=DOMAIN, workers=2, max_seconds=120)
    with wrk, new:
        out = swarm.cli("rollback", "--env", "production", "--to", v1.id)
        time.sleep(1)
        wrk.stop()
    assert out.returncode == 0, out.stdout + out.stderr
    assert wrk.result is not None and wrk.result.requests > 0
    assert wrk.result.failures == 0, wrk.result.output
    assert new.result.failures == 0, new.result.errors[:5]
    assert "v1" in new.result.sequence[-1]
    newest = swarm.history().releases[0]
    assert (newest.version, newest.command, newest.outcome) == ("v1", "rollback", "success")
    for index in (0, 1):
        assert "fleet web v1" in swarm.get(index)[1]
    for host in ("h1", "h2"):  # the prune after the rollback kept what retain keeps
        listed = swarm.sandbox.docker(
            host, "image", "ls", "--format", "{{.Tag}}", f"{swarm.name}/web"
        )
        assert {"v1", "v2"} <= set(listed.stdout.split())


def test_status_lists_the_tasks_per_node(swarm: Swarm) -> None:
    out = swarm.cli("status", "--env", "production", "--json")
    assert out.returncode == 0, out.stdout + out.stderr
    found = {
        h["host"]: {s["service"]: s for s in h["services"]} for h in json.loads(out.stdout)["hosts"]
    }
    webs = [found[host]["web"] for host in ("web-1", "web-2") if "web" in found[host]]
    assert webs, found  # Swarm places the 2 replicas on the web nodes, maybe both on one
    assert {(w["version"], w["health"]) for w in webs} == {("v1", "healthy")}
    assert sum(w["replicas"]["running"] for w in webs) == 2
    assert set(found["data-1"]) == {"db", "worker"}
    assert "web" not in found["data-1"]


def test_plan_releases_and_logs_read_the_swarm(swarm: Swarm) -> None:
    plan = swarm.cli("plan", "--env", "production", "--version", "v1")
    assert plan.returncode == 0, plan.stdout + plan.stderr
    assert f"swarm stack {swarm.stack}, leader web-1" in plan.stdout
    assert "0 create, 0 update, 4 keep, 0 remove" in plan.stdout, plan.stdout
    dry = swarm.cli("deploy", "--env", "production", "--version", "v1", "--dry-run")
    assert dry.returncode == 0 and dry.stdout == plan.stdout, dry.stdout + dry.stderr
    releases = swarm.cli("releases", "--env", "production")
    assert releases.returncode == 0, releases.stdout + releases.stderr
    assert "v1" in releases.stdout and "v3" in releases.stdout and "rollback" in releases.stdout
    logs = swarm.cli("logs", "worker", "--env", "production", "--tail", "3")
    assert logs.returncode == 0, logs.stdout + logs.stderr
    assert "data-1/worker" in logs.stdout and "worker v1 tick" in logs.stdout, logs.stdout
    _no_secret(plan.stdout, releases.stdout, logs.stdout)


def test_a_node_lost_mid_deploy_is_reported_and_a_rerun_converges(swarm: Swarm) -> None:
    """web-2's sshd and dockerd die as the stack is deployed (issue 14 item 5).

    Swarm starts the lost node's tasks on web-1, but the rolling update waits
    for the task it had sent to web-2: the deploy ends, at the latest after its
    timeout, saying which node is down and which service did not converge;
    web-1 keeps serving throughout. With the node back, a rerun converges.
    """
    lost: list[str] = []

    def lose_web_2() -> None:
        swarm.sandbox.stop_host("h2")
        lost.append("h2")

    try:
        code, shown = swarm.deploy_until("v4", "docker stack deploy", lose_web_2)
        assert code in (0, 1, 3), shown
        assert "Traceback" not in shown
        assert "[web-2] node down" in shown, shown
        if code:
            assert "web: " in shown and ("not converged" in shown or "rolled" in shown), shown
        assert lock.status(swarm.hosts[0], swarm.name, "production") is None
        status, body = swarm.get(0)  # web-1's edge serves throughout
        assert status == 200 and "fleet web v" in body, body
        assert swarm.history().releases[0].version == "v4"
    finally:  # the node comes back (its swarm state survives) for the rerun and later tests
        for name in lost:
            swarm.sandbox.start_host(name)
    again = swarm.deploy("v4")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "node down" not in again.stderr
    for index in (0, 1):
        status, body = swarm.get(index)
        assert status == 200 and "fleet web v4" in body, body
    assert swarm.history().releases[0].outcome == "success"


def test_remove_takes_the_stack_and_its_secrets_off_the_swarm(swarm: Swarm) -> None:
    out = swarm.cli("remove", "--env", "production", "--yes")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "stack services (on every node): db, stagecraft-edge, web, worker" in out.stdout
    assert swarm.manager("service", "ls", "-q").split() == []
    assert swarm.manager("secret", "ls", "-q").split() == []
    for host in swarm.hosts:
        running = host.docker("ps", "-aq", "--filter", f"label=stagecraft.project={swarm.name}")
        assert running.stdout.split() == []
    assert swarm.history().releases[0].command == "remove"
