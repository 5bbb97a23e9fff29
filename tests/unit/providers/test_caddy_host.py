"""Unit tests of the Caddy proxy on hosts: names, slot files, config, route table, idempotence."""

from __future__ import annotations

import base64
import contextlib
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from stagecraft.errors import ExitCode, StagecraftError
from stagecraft.providers.builtin.proxy_caddy import host as edge
from stagecraft.providers.builtin.proxy_caddy import slots
from stagecraft.providers.builtin.proxy_caddy.settings import (
    EdgeStateError,
    ProxySettings,
    render_proxy_config,
    routes_from_json,
    routes_to_json,
)
from stagecraft.providers.proxy import ProxyState, Route, RouteError, upstream_name
from stagecraft.testing.fakes import FakeSSHHost
from stagecraft.testing.load import parse_wrk

SETTINGS = ProxySettings("caddy:2", "off", None, 18080, 18443, 1.0)
WEB = Route("shop.test", "web.prod.shop.internal", 8080)
API = Route("shop.test", "api.prod.shop.internal", 4000, "/api")


def test_upstream_name_follows_the_adr() -> None:
    assert upstream_name("shop", "staging", "web") == "web.staging.shop.internal"
    assert upstream_name("Shop", "prod", "my_api") == "my-api.prod.shop.internal"
    with pytest.raises(StagecraftError, match="cannot build an upstream name"):
        upstream_name("shop", "prod", "we b")


def _run_update(
    directory: Path,
    name: str | None,
    addresses: list[str],
    ports: dict[str, list[int]] | None = None,
) -> None:
    script = slots.update_script(str(directory), name, ports=ports)
    data = "".join(f"{a}\n" for a in addresses).encode()
    subprocess.run(["sh", "-c", script], input=data, check=True, timeout=30)


def _slots(directory: Path, name: str, port: int) -> list[str]:
    return [(directory / "slots" / f"{name}_{port}_{i}").read_text() for i in range(slots.SLOTS)]


def test_update_script_writes_every_slot_by_the_python_rule(tmp_path: Path) -> None:
    web, api = "web.prod.shop.internal", "api.prod.shop.internal"
    _run_update(tmp_path, None, [], ports={web: [8080], api: [4000, 4001]})
    assert not list((tmp_path / "slots").iterdir())  # no addresses yet: nothing to dial
    _run_update(tmp_path, web, ["172.18.0.5", "172.18.0.6"])
    _run_update(tmp_path, api, ["172.18.0.7", "fd00::7", "172.18.0.8"])
    assert _slots(tmp_path, web, 8080) == slots.slot_contents(["172.18.0.5", "172.18.0.6"], 8080)
    assert _slots(tmp_path, api, 4001)[:3] == [
        "172.18.0.7:4001",
        "[fd00::7]:4001",
        "172.18.0.8:4001",
    ]
    _run_update(tmp_path, web, ["172.18.0.9"])
    assert set(_slots(tmp_path, web, 8080)) == {"172.18.0.9:8080"}
    _run_update(tmp_path, api, [])  # no addresses: its slots go, the proxy answers 502
    assert sorted({p.name.rsplit("_", 2)[0] for p in (tmp_path / "slots").iterdir()}) == [web]
    assert [p.name for p in tmp_path.rglob(".*")] == []  # no temporary file left


def test_update_script_with_ports_rerenders_every_name(tmp_path: Path) -> None:
    web = "web.prod.shop.internal"
    _run_update(tmp_path, web, ["172.18.0.5"])  # an upstream set before the route exists
    assert not (tmp_path / "slots" / f"{web}_8080_0").exists()
    _run_update(tmp_path, None, [], ports={web: [8080]})
    assert set(_slots(tmp_path, web, 8080)) == {"172.18.0.5:8080"}
    _run_update(tmp_path, None, [], ports={})  # the route is gone
    assert not list((tmp_path / "slots").iterdir())


def test_read_script_lists_each_names_addresses(tmp_path: Path) -> None:
    _run_update(tmp_path, "web.prod.shop.internal", ["172.18.0.5", "172.18.0.6"])
    out = subprocess.run(
        ["sh", "-c", slots.read_script(str(tmp_path))],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert slots.parse_upstreams(out) == {"web.prod.shop.internal": ["172.18.0.5", "172.18.0.6"]}


def test_update_script_rejects_names_that_could_escape() -> None:
    with pytest.raises(ValueError, match="invalid upstream name"):
        slots.update_script("/x", "../etc/passwd")
    with pytest.raises(ValueError, match="invalid upstream name"):
        slots.update_script("/x", None, ports={"a_b": [80]})


def test_proxy_config_adds_a_probe_route_per_upstream_name(snapshot: Any) -> None:
    config = render_proxy_config(SETTINGS, [WEB, API], admin=edge.ADMIN, slot_dir=edge.SLOT_DIR)
    probe = config["apps"]["http"]["servers"]["stagecraft_probe"]
    assert [r["match"][0]["path"][0] for r in probe["routes"]] == [
        "/_stagecraft/upstream/api.prod.shop.internal",
        "/_stagecraft/upstream/web.prod.shop.internal",
        "/_stagecraft/inflight",
    ]
    web = config["apps"]["http"]["servers"]["stagecraft"]["routes"][1]["handle"][0]
    assert web["upstreams"][0] == {
        "dial": "{file./etc/stagecraft/proxy/slots/web.prod.shop.internal_8080_0}"
    }
    assert len(web["upstreams"]) == slots.SLOTS
    assert config == snapshot


def test_settings_and_route_table_round_trip() -> None:
    assert ProxySettings.from_json(SETTINGS.to_json()) == SETTINGS
    table = {"shop/prod": [WEB, API], "blog/prod": [Route("blog.test", "w.prod.blog.internal", 80)]}
    assert routes_from_json(routes_to_json(table)) == {k: sorted(v) for k, v in table.items()}
    with pytest.raises(EdgeStateError, match="damaged"):
        ProxySettings.from_json(b"{}")
    with pytest.raises(EdgeStateError, match="damaged"):
        routes_from_json(b"[1]")


SNAPSHOT = re.compile(r"^sh -c 'd=/var/lib/stagecraft/proxy; for f in")


def _proxy_host(label: str, *, running: bool = True) -> FakeSSHHost:
    host = FakeSSHHost("web-1")
    host.expect(SNAPSHOT, times=None)  # nothing read in one go: the step-by-step path
    host.expect("docker network inspect stagecraft")
    host.expect(re.compile(r"^mkdir -p /var/lib/stagecraft/proxy/data"))
    host.expect(re.compile(r"^sh -c .*flock"))
    state = "true" if running else "false"
    host.expect(
        re.compile(r"^docker inspect --format"),
        stdout=f"abc123 {state} {label} 172.20.0.2\n",
        times=None,
    )
    host.expect(re.compile(r"^docker exec stagecraft-proxy caddy reload"))
    return host


def test_ensure_proxy_leaves_a_running_proxy_with_the_same_settings_alone() -> None:
    host = _proxy_host(SETTINGS.fingerprint())
    state = edge.ensure_proxy(
        host, image="caddy:2", tls_mode="off", http_port=18080, https_port=18443
    )
    assert state == ProxyState("web-1", "abc123", "172.20.0.2", created=False)
    assert not [c for c in host.commands if c.startswith(("docker run", "docker rm"))]
    assert json.loads(host.files[edge.CONFIG_FILE][0])["admin"]["listen"] == edge.ADMIN
    host.assert_all_used()


def test_ensure_proxy_reloads_a_running_proxy_only_when_its_config_changed() -> None:
    host = _proxy_host(SETTINGS.fingerprint())
    host.expect("docker network inspect stagecraft", times=None)
    host.expect(re.compile(r"^mkdir -p /var/lib/stagecraft/proxy/data"), times=None)
    host.expect(re.compile(r"^sh -c .*upstreams.lock"), times=None)
    for _ in range(3):
        edge.ensure_proxy(host, image="caddy:2", tls_mode="off", http_port=18080, https_port=18443)
    assert sum("caddy reload" in c for c in host.commands) == 1  # the first run wrote it


def _snapshot_text(routes: list[Route], *, running: bool = True) -> str:
    table = routes_to_json({"shop/prod": routes})
    config = edge._render(SETTINGS, routes)
    files = {"settings.json": SETTINGS.to_json(), "routes.json": table, "caddy.json": config}
    lines = [f"F {name} {base64.b64encode(data).decode()}" for name, data in files.items()]
    state = "true" if running else "false"
    return "\n".join([*lines, "N yes", f"P abc123 {state} {SETTINGS.fingerprint()} 172.20.0.2"])


def test_an_unchanged_proxy_and_routes_cost_one_round_trip_each() -> None:
    host = FakeSSHHost("web-1")
    host.expect(SNAPSHOT, stdout=_snapshot_text([WEB]), times=2)
    state = edge.ensure_proxy(
        host, image="caddy:2", tls_mode="off", http_port=18080, https_port=18443
    )
    assert state == ProxyState("web-1", "abc123", "172.20.0.2", created=False)
    assert not edge.apply_routes(host, "shop", "prod", [WEB]).changed
    assert len(host.commands) == 2  # no lock, no write, no reload
    host.assert_all_used()


def test_the_proxy_on_a_host_reads_an_unchanged_proxy_and_routes_once() -> None:
    """What a deploy does per host (CaddyHost): ensure, then this app's routes."""
    host = FakeSSHHost("web-1")
    host.expect(SNAPSHOT, stdout=_snapshot_text([WEB]), times=1)
    proxy = edge.CaddyHost(host, SETTINGS)
    assert proxy.ensure() == ProxyState("web-1", "abc123", "172.20.0.2", created=False)
    assert not proxy.apply_routes("shop", "prod", [WEB]).changed
    assert len(host.commands) == 1  # ensure's snapshot served the routes check too
    host.assert_all_used()


def test_a_stopped_proxy_or_new_routes_take_the_full_path() -> None:
    stopped = FakeSSHHost("web-1", strict=False)
    stopped.expect(SNAPSHOT, stdout=_snapshot_text([WEB], running=False))
    with contextlib.suppress(Exception):
        edge.ensure_proxy(
            stopped, image="caddy:2", tls_mode="off", http_port=18080, https_port=18443
        )
    assert len(stopped.commands) > 1
    moved = FakeSSHHost("web-1", strict=False)
    moved.expect(SNAPSHOT, stdout=_snapshot_text([WEB]))
    moved.files[edge.SETTINGS_FILE] = (SETTINGS.to_json(), 0o644)
    with contextlib.suppress(Exception):
        edge.apply_routes(moved, "shop", "prod", [WEB, API])
    assert any("routes.lock" in c for c in moved.commands)


def test_ensure_proxy_replaces_a_proxy_with_other_settings() -> None:
    host = _proxy_host("0ld")
    host.expect("docker image inspect --format '{{.Id}}' caddy:2", stdout="sha256:c4ddy\n")
    host.expect("docker rm -f stagecraft-proxy")
    host.expect(re.compile(r"^docker run -d --name stagecraft-proxy --restart unless-stopped"))
    state = edge.ensure_proxy(
        host, image="caddy:2", tls_mode="off", http_port=18080, https_port=18443
    )
    assert state.created
    run = next(c for c in host.commands if c.startswith("docker run"))
    assert "-p 18080:18080 -p 18443:18443" in run
    assert "-v /var/lib/stagecraft/proxy:/etc/stagecraft/proxy:ro" in run
    assert "/etc/hosts" not in run  # requests go by slot files, not by name resolution
    assert run.endswith("caddy:2 caddy run --config /etc/stagecraft/proxy/caddy.json")


PULL_DENIED = (
    "Error response from daemon: pull access denied for caddy, repository does not exist "
    "or may require 'docker login': denied: requested access to the resource is denied\n"
)


def test_a_proxy_image_the_host_cannot_pull_keeps_the_running_proxy_and_says_why() -> None:
    host = _proxy_host("0ld")
    host.expect("docker image inspect --format '{{.Id}}' caddy:2", returncode=1)
    host.expect("docker pull --quiet caddy:2", stderr=PULL_DENIED, returncode=1)
    with pytest.raises(edge.ProxyImageUnavailable) as caught:
        edge.ensure_proxy(host, image="caddy:2", tls_mode="off", http_port=18080, https_port=18443)
    assert caught.value.message == (
        "web-1: the proxy image 'caddy:2' is not on the host and its Docker daemon cannot pull it: "
        + PULL_DENIED.strip()
    )
    assert caught.value.hint is not None
    assert "set proxy.providers.caddy.image in stagecraft.yml" in caught.value.hint
    assert "`docker save caddy:2 | ssh root@192.0.2.1 docker load`" in caught.value.hint
    assert caught.value.exit_code == ExitCode.FAILED
    assert not [c for c in host.commands if c.startswith(("docker rm", "docker run"))]


def test_ensure_proxy_starts_a_stopped_proxy() -> None:
    host = _proxy_host(SETTINGS.fingerprint(), running=False)
    host.expect("docker start stagecraft-proxy")
    edge.ensure_proxy(host, image="caddy:2", tls_mode="off", http_port=18080, https_port=18443)
    host.assert_all_used()


def _routes_host() -> FakeSSHHost:
    host = FakeSSHHost("web-1")
    host.expect(SNAPSHOT, times=None)
    host.files[edge.SETTINGS_FILE] = (SETTINGS.to_json(), 0o644)
    host.expect(re.compile(r"^sh -c .*mkdir \"\$p\""), times=None)
    host.expect(re.compile(r"^sh -c .*upstreams.lock"), times=None)
    host.expect("rmdir /var/lib/stagecraft/proxy/routes.lock", times=None)
    return host


def test_apply_routes_merges_apps_and_reloads_only_on_change() -> None:
    host = _routes_host()
    host.expect(re.compile(r"caddy reload"), times=2)
    first = edge.apply_routes(host, "shop", "prod", [WEB, API])
    assert first.changed
    blog = Route("blog.test", "web.prod.blog.internal", 80)
    second = edge.apply_routes(host, "blog", "prod", [blog])
    assert second.changed and set(second.routes) == {WEB, API, blog}
    again = edge.apply_routes(host, "shop", "prod", [API, WEB])
    assert not again.changed
    assert sum("caddy reload" in c for c in host.commands) == 2
    table = routes_from_json(host.files[edge.ROUTES_FILE][0])
    assert table == {"blog/prod": [blog], "shop/prod": sorted([WEB, API])}


def test_apply_routes_refuses_a_route_another_app_owns() -> None:
    host = _routes_host()
    host.expect(re.compile(r"caddy reload"))
    edge.apply_routes(host, "shop", "prod", [WEB])
    before = dict(host.files)
    with pytest.raises(RouteError, match=r"two routes for shop\.test"):
        edge.apply_routes(host, "evil", "prod", [Route("shop.test", "x.prod.evil.internal", 80)])
    assert host.files == before


def test_apply_routes_rolls_back_a_config_caddy_rejects() -> None:
    host = _routes_host()
    host.expect(re.compile(r"caddy reload"))
    edge.apply_routes(host, "shop", "prod", [WEB])
    good = host.files[edge.CONFIG_FILE]
    host.expect(re.compile(r"caddy reload"), returncode=1, stderr="Error: loading config")
    with pytest.raises(edge.EdgeError, match="rejected the routes of shop/prod"):
        edge.apply_routes(host, "shop", "prod", [WEB, API])
    assert host.files[edge.CONFIG_FILE] == good
    assert routes_from_json(host.files[edge.ROUTES_FILE][0]) == {"shop/prod": [WEB]}


def test_apply_routes_needs_a_set_up_proxy() -> None:
    with pytest.raises(edge.EdgeError, match="not set up"):
        edge.apply_routes(FakeSSHHost("web-1", strict=False), "shop", "prod", [WEB])


def test_switch_writes_the_addresses_without_touching_the_config() -> None:
    host = FakeSSHHost("web-1")
    host.expect(re.compile(r"^sh -c 'for f in"), stdout="web.prod.shop.internal 172.20.0.5\n")
    host.expect(re.compile(r"^sh -c .*flock"))
    result = edge.switch(host, "web.prod.shop.internal", ["172.20.0.9"], wait=False)
    assert result.addresses == ("172.20.0.9",) and result.previous == ("172.20.0.5",)
    assert host.calls[1].input == b"172.20.0.9\n"
    assert "web.prod.shop.internal" in host.commands[1]
    assert not [c for c in host.commands if "caddy" in c]


def test_switch_refuses_more_addresses_than_slots() -> None:
    many = [f"172.20.0.{i}" for i in range(slots.SLOTS + 1)]
    with pytest.raises(StagecraftError, match="at most 12 per host"):
        edge.switch(FakeSSHHost(), "web.prod.shop.internal", many, wait=False)


@pytest.mark.parametrize("addresses", [[], ["web-2"], ["1.2.3.4; rm -rf /"]])
def test_switch_rejects_bad_addresses(addresses: list[str]) -> None:
    with pytest.raises(StagecraftError, match="invalid addresses"):
        edge.switch(FakeSSHHost(), "web.prod.shop.internal", addresses, wait=False)


def test_parse_wrk_counts_socket_errors_and_non_2xx() -> None:
    output = (
        "  38282 requests in 12.00s, 5.1MB read\n"
        "  Socket errors: connect 0, read 96, write 1, timeout 2\n"
        "  Non-2xx or 3xx responses: 3\n"
        "body-first=v1\nbody-last=v2\n"
    )
    result = parse_wrk(output)
    assert (result.requests, result.socket_errors, result.non_2xx) == (38282, 99, 3)
    assert result.failures == 102
    assert result.first_bodies == ("v1",) and result.last_bodies == ("v2",)
    assert parse_wrk("  10 requests in 1.00s\n").failures == 0


def test_ip_of_hostport() -> None:
    assert edge._ip("172.20.0.9:8080") == "172.20.0.9"
    assert edge._ip("[fd00::9]:80") == "fd00::9"
