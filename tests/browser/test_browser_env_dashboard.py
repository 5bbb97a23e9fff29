"""The environment dashboard in headless Chromium, on 2 sandbox hosts after two deploys.

One environment serves the module (the fleet example's web service on two
hosts, with a declared secret): the page lists every host and service with the
release that runs there, its list of releases is the one `releases --json`
gives, and a rollback started from the page (after its confirmation naming the
release) leaves the hosts as `stagecraft rollback --to` of the same release does.
The secret's value is in no page.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tests.browser.chromium import chromium_paths, start_browser, wait_for

from stagecraft.localhosts.sandbox import Sandbox
from stagecraft.testing import images

FLEET_WEB = Path(__file__).resolve().parents[2] / "examples" / "fleet" / "web"
CANARY = "canary-" + uuid.uuid4().hex
pytestmark = [pytest.mark.e2e, pytest.mark.sandbox, pytest.mark.timeout(600)]

COMPOSE = """\
services:
  web:
    build:
      context: ./web
      args:
        BUSYBOX_IMAGE: ${BUSYBOX_IMAGE:-busybox:1.36}
    init: true
    environment:
      APP_TOKEN:
    ports: ["8080:8080"]
    x-stagecraft:
      kind: web
      healthcheck: {path: /healthz/, port: 8080, interval: 1s, timeout: 3s}
      drain: 1s
"""


@dataclass
class Env:
    root: Path
    name: str
    sandbox: Sandbox
    environ: dict[str, str]

    def cli(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        argv = ["stagecraft", "-c", str(self.root / "stagecraft.yml"), *args]
        return subprocess.run(
            argv, capture_output=True, text=True, env=self.environ, timeout=timeout
        )

    def json(self, *args: str) -> Any:
        out = self.cli(*args, "--env", "production", "--json")
        assert out.returncode == 0, out.stderr
        assert CANARY not in out.stdout + out.stderr
        return json.loads(out.stdout)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    from stagecraft.testing.pytest_plugin import _require_sandbox, start_sandbox

    if chromium_paths() is None:
        pytest.skip("chromium and chromedriver are not installed (scripts/setup.sh installs them)")
    _require_sandbox()
    busybox = images.ensure_busybox_image()
    sandbox = start_sandbox(2, tmp_path_factory.mktemp("dash"), "db")
    name = f"db{uuid.uuid4().hex[:8]}"
    root = tmp_path_factory.mktemp("dashboard") / "app"
    try:
        caddy = images.ensure_caddy_image()
        for host in sandbox.hosts:
            images.copy_image(caddy, None, host.docker_host)
        root.mkdir()
        shutil.copytree(FLEET_WEB, root / "web")
        (root / "docker-compose.yml").write_text(COMPOSE)
        a, b = sandbox.hosts[:2]
        (root / "stagecraft.yml").write_text(
            f"project: {name}\n"
            "compose: docker-compose.yml\n"
            f"proxy: {{provider: caddy, providers: {{caddy: {{image: {caddy}}}}}}}\n"
            "environments:\n"
            "  production:\n"
            "    hosts:\n"
            f"      web-1: {{address: {a.address}, roles: [web]}}\n"
            f"      web-2: {{address: {b.address}, roles: [web]}}\n"
            "    roles: {web: [web]}\n"
            "    routes: {web: {host: dash.test, service: web, port: 8080}}\n"
            "    tls: 'off'\n"
            "    secrets: [APP_TOKEN]\n"
            "    secrets_provider: {provider: env}\n"
            "    deploy: {health_timeout: 15s, drain: 1s, retain: 3}\n"
        )
        environ = {
            **os.environ,
            "BUSYBOX_IMAGE": busybox,
            "APP_TOKEN": CANARY,
            "STAGECRAFT_SSH_CONFIG": str(sandbox.ssh_config),
            "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
            "NO_COLOR": "1",
        }
        made = Env(root, name, sandbox, environ)
        for version in ("v1", "v2"):
            out = made.cli("deploy", "--env", "production", "--version", version)
            assert out.returncode == 0, out.stdout + out.stderr
        yield made
    finally:
        sandbox.stop()
        listed = subprocess.run(
            ["docker", "images", "--format", "{{.Repository}}:{{.Tag}}", f"{name}/*"],
            capture_output=True,
            text=True,
        ).stdout.split()
        if listed:
            subprocess.run(["docker", "rmi", "-f", *listed], capture_output=True)


@dataclass
class Dashboard:
    proc: subprocess.Popen[str]
    url: str


@pytest.fixture(scope="module")
def dashboard(env: Env) -> Iterator[Dashboard]:
    argv = ["stagecraft", "-c", str(env.root / "stagecraft.yml"), "dashboard"]
    argv += ["--env", "production", "--refresh", "1"]
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env.environ
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:") and "/?token=" in url, url
        yield Dashboard(proc, url)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="module")
def page(dashboard: Dashboard, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    driver = start_browser(tmp_path_factory.mktemp("chromium"))
    try:
        driver.get(dashboard.url)
        yield driver
    finally:
        driver.quit()


def status_rows(driver: Any) -> dict[tuple[str, str], tuple[str, str]]:
    """(host, service) -> (release, version) as the page's status table shows them."""
    found = {}
    for row in driver.find_elements("css selector", "#status tbody tr[data-service]"):
        key = (row.get_attribute("data-host"), row.get_attribute("data-service"))
        found[key] = (row.get_attribute("data-release"), row.get_attribute("data-version"))
    return found


def release_rows(driver: Any) -> list[dict[str, Any]]:
    found = []
    for row in driver.find_elements("css selector", "#releases tbody tr[data-release]"):
        hosts = {
            li.get_attribute("data-host"): li.get_attribute("data-outcome")
            for li in row.find_elements("css selector", "li[data-host]")
        }
        found.append(
            {
                "id": row.get_attribute("data-release"),
                "version": row.get_attribute("data-version"),
                "command": row.get_attribute("data-command"),
                "outcome": row.get_attribute("data-outcome"),
                "hosts": hosts,
            }
        )
    return found


def cli_releases(env: Env) -> list[dict[str, Any]]:
    listed = env.json("releases")["releases"]
    return [
        {
            "id": r["id"],
            "version": r["version"],
            "command": r["command"],
            "outcome": r["outcome"],
            "hosts": {h: rec["outcome"] for h, rec in r["hosts"].items()},
        }
        for r in listed
    ]


def cli_state(env: Env) -> dict[tuple[str, str], tuple[str, str, int]]:
    """(host, service) -> (version, health, running replicas) from `status --json`."""
    found = {}
    for host in env.json("status")["hosts"]:
        for svc in host["services"]:
            found[(host["host"], svc["service"])] = (
                svc["version"],
                svc["health"],
                svc["replicas"]["running"],
            )
    return found


def test_no_request_without_the_token(dashboard: Dashboard) -> None:
    import urllib.error
    import urllib.request

    bare = dashboard.url.split("?")[0]
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(bare + "api/snapshot", timeout=10)
    assert refused.value.code == 403
    with urllib.request.urlopen(dashboard.url, timeout=30) as response:
        assert response.status == 200


def test_every_host_and_service_shows_the_release_it_runs(
    page: Any, env: Env, screenshot: Callable[[Any, str], Path]
) -> None:
    newest = env.json("releases")["releases"][0]
    assert newest["version"] == "v2"
    expected = {("web-1", "web"): (newest["id"], "v2"), ("web-2", "web"): (newest["id"], "v2")}
    wait_for(lambda: status_rows(page) == expected, 30, "the status table")
    images_shown = page.find_elements("css selector", "#status tbody tr[data-service] td.mono")
    assert any(f"{env.name}/web:v2" in cell.text for cell in images_shown)
    assert page.find_element("id", "lock").get_attribute("data-held") == "false"
    assert CANARY not in page.page_source
    screenshot(page, "env-dashboard")


def test_the_release_list_matches_releases_json(page: Any, env: Env) -> None:
    expected = cli_releases(env)
    assert [r["version"] for r in expected] == ["v2", "v1"]
    wait_for(lambda: release_rows(page) == expected, 30, "the release list")


def test_a_rollback_from_the_page_leaves_the_hosts_as_the_cli_rollback_does(
    page: Any, env: Env, screenshot: Callable[[Any, str], Path]
) -> None:
    v1 = next(r for r in cli_releases(env) if r["version"] == "v1")
    button = wait_for(
        lambda: page.find_element("css selector", f'button.rollback[data-release="{v1["id"]}"]'),
        30,
        "the rollback button",
    )
    button.click()
    dialog = page.find_element("id", "confirm-rollback")
    wait_for(dialog.is_displayed, 5, "the confirmation")
    assert v1["id"] in dialog.text and "v1" in dialog.text  # it names the target release
    screenshot(page, "env-dashboard-confirm")
    page.find_element("id", "confirm-yes").click()

    def finished() -> str | None:
        action = page.find_element("css selector", "#action .action")
        outcome = action.get_attribute("data-outcome")
        return None if outcome == "running" else f"{outcome}: {action.text}"

    outcome = wait_for(finished, 240, "the rollback to finish", poll=0.5)
    screenshot(page, "env-dashboard-rollback-done")
    assert outcome.startswith("succeeded"), outcome
    after_page = cli_state(env)
    assert {version for version, _, _ in after_page.values()} == {"v1"}, after_page
    assert all(running == 1 for _, _, running in after_page.values()), after_page
    newest = cli_releases(env)[0]
    assert (newest["version"], newest["command"], newest["outcome"]) == (
        "v1",
        "rollback",
        "success",
    )
    wait_for(
        lambda: set(status_rows(page).values()) == {(newest["id"], "v1")}, 30, "the page to refresh"
    )
    screenshot(page, "env-dashboard-rolled-back")

    # The CLI: back to v2, then to v1 again, as the page did.
    v2 = next(r for r in cli_releases(env) if r["version"] == "v2" and r["command"] == "deploy")
    for target in (v2["id"], v1["id"]):
        out = env.cli("rollback", "--env", "production", "--to", target)
        assert out.returncode == 0, out.stdout + out.stderr
    assert cli_state(env) == after_page
    by_cli = cli_releases(env)[0]
    assert {k: v for k, v in by_cli.items() if k != "id"} == {
        k: v for k, v in newest.items() if k != "id"
    }
    assert CANARY not in page.page_source
