"""Per-host compose rendering: golden files for the fleet example and the rules behind them."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from model_helpers import FLEET, YamlGolden, example_environ, fleet_release, load_fleet
from syrupy.assertion import SnapshotAssertion

from stagecraft.config.loader import load_project
from stagecraft.deploy.render import (
    RenderError,
    config_hash,
    env_file_text,
    render_host,
    render_hosts,
)

CANARY = "canary-s3cr3t-value-7f1d"


@pytest.mark.parametrize("host", ["web-1", "web-2", "data-1"])
def test_fleet_golden_per_host(host: str, snapshot: SnapshotAssertion) -> None:
    loaded = load_fleet()
    rendered = render_hosts(loaded, "production", fleet_release(loaded))
    assert rendered[host].text() == snapshot(extension_class=YamlGolden)


def test_hosts_get_only_their_roles_services_with_pinned_images() -> None:
    loaded = load_fleet()
    rendered = render_hosts(loaded, "production", fleet_release(loaded))
    assert {h: sorted(r.services) for h, r in rendered.items()} == {
        "web-1": ["web"],
        "web-2": ["web"],
        "data-1": ["db", "worker"],
    }
    data = rendered["data-1"].services
    assert data["worker"].image == "fleet/worker:0123456789ab"
    assert data["db"].image == "postgres:16-alpine"
    assert rendered["web-1"].project_name == "fleet-production"


def test_secret_values_never_reach_the_compose_file() -> None:
    loaded = load_fleet(POSTGRES_PASSWORD=CANARY, DATABASE_URL=f"postgres://fleet:{CANARY}@db/x")
    rendered = render_hosts(loaded, "production", fleet_release(loaded))
    for host in rendered.values():
        assert CANARY not in host.text()
    db = rendered["data-1"].services["db"]
    assert db.secrets == ("POSTGRES_PASSWORD",)
    assert db.env_file == "db.env" and db.definition["env_file"] == ["db.env"]
    assert rendered["web-1"].services["web"].secrets == ("DATABASE_URL",)


def test_cross_host_dependency_uses_extra_hosts_and_private_port() -> None:
    loaded = load_fleet(FLEET_DATA1_ADDRESS="10.9.8.7")
    rendered = render_hosts(loaded, "production", fleet_release(loaded))
    web = rendered["web-1"].services["web"].definition
    assert web["extra_hosts"] == ["db:10.9.8.7"]
    assert "depends_on" not in web
    worker = rendered["data-1"].services["worker"].definition
    assert "extra_hosts" not in worker and "db" in worker["depends_on"]
    db_ports = rendered["data-1"].services["db"].definition["ports"]
    assert db_ports == [
        {
            "host_ip": "10.9.8.7",
            "mode": "host",
            "protocol": "tcp",
            "published": "5432",
            "target": 5432,
        }
    ]
    assert "ports" not in web  # routed through the proxy, never published


def test_cross_host_needs_an_ip_address_or_private_address_label() -> None:
    loaded = load_fleet(FLEET_DATA1_ADDRESS="data.example.com")
    with pytest.raises(RenderError, match="is a host name") as info:
        render_hosts(loaded, "production", fleet_release(loaded))
    assert info.value.hint and "private_address" in info.value.hint


@pytest.mark.parametrize("address", ["203.0.113.12", "8.8.4.4", "2001:db8::12"])
def test_a_cross_host_port_is_never_published_on_a_public_address(address: str) -> None:
    loaded = load_fleet(FLEET_DATA1_ADDRESS=address)
    with pytest.raises(RenderError) as info:
        render_hosts(loaded, "production", fleet_release(loaded))
    message, hint = info.value.message, info.value.hint or ""
    assert "data-1 has no private address" in message and address in message
    assert "service web on web-1 depends on db on data-1" in message
    assert "labels.private_address" in hint and "private network" in hint


def test_a_public_host_with_a_private_address_label_publishes_there_only(tmp_path: Path) -> None:
    text = (
        (FLEET / "stagecraft.yml")
        .read_text()
        .replace(
            'data-1: {address: "${FLEET_DATA1_ADDRESS:-10.0.0.13}", roles: [data, jobs]}',
            "data-1: {address: 203.0.113.12, roles: [data, jobs],"
            " labels: {private_address: 10.1.2.3}}",
        )
    )
    shutil.copytree(FLEET, tmp_path / "fleet")
    (tmp_path / "fleet" / "stagecraft.yml").write_text(text)
    loaded = load_project(tmp_path / "fleet" / "stagecraft.yml", environ=example_environ())
    rendered = render_hosts(loaded, "production", fleet_release(loaded))
    ports = rendered["data-1"].services["db"].definition["ports"]
    assert [p["host_ip"] for p in ports] == ["10.1.2.3"]
    assert rendered["web-1"].services["web"].definition["extra_hosts"] == ["db:10.1.2.3"]
    assert "203.0.113.12" not in rendered["data-1"].text()


def test_config_hash_ignores_version_but_not_config() -> None:
    loaded = load_fleet()
    one = render_hosts(loaded, "production", fleet_release(loaded, "aaaaaaaaaaaa"))
    two = render_hosts(loaded, "production", fleet_release(loaded, "bbbbbbbbbbbb"))
    for host in one:
        for name, service in one[host].services.items():
            assert service.config_hash == two[host].services[name].config_hash
            assert service.definition["labels"]["stagecraft.config-hash"] == service.config_hash
    changed = load_fleet(FLEET_DATA1_ADDRESS="10.0.0.99")
    three = render_hosts(changed, "production", fleet_release(changed))
    assert three["web-1"].services["web"].config_hash != one["web-1"].services["web"].config_hash
    assert config_hash({"a": 1, "image": "x", "labels": {"b": "c"}}) == config_hash({"a": 1})


def test_dev_only_settings_are_removed(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "compose.yaml").write_text(
        "services:\n"
        "  app:\n"
        "    build: .\n"
        "    container_name: app\n"
        "    profiles: [dev]\n"
        "    ports: ['3000:3000']\n"
        "    volumes: ['./src:/app/src', '/var/run/docker.sock:/var/run/docker.sock', 'cache:/c']\n"
        "    restart: always\n"
        "volumes:\n"
        "  cache:\n"
    )
    (tmp_path / "stagecraft.yml").write_text(
        "project: demo\n"
        "environments:\n"
        "  prod:\n"
        "    hosts: {a: {address: 10.1.1.1, roles: [all]}}\n"
        "    roles: {all: [app]}\n"
    )
    loaded = load_project(tmp_path / "stagecraft.yml")
    release = fleet_release(loaded)
    app = render_host(loaded, "prod", release, "a", built={"app"}).services["app"].definition
    for key in ("build", "container_name", "profiles", "ports"):
        assert key not in app
    assert [v["target"] for v in app["volumes"]] == ["/var/run/docker.sock", "/c"]
    assert app["restart"] == "always"
    assert app["image"] == "demo/app:0123456789ab"
    assert app["labels"]["stagecraft.kind"] == "accessory"  # it has a named volume


def test_service_without_image_or_build_is_an_error(tmp_path: Path) -> None:
    loaded = load_fleet()
    release = fleet_release(loaded)
    with pytest.raises(RenderError, match="neither image: nor build:"):
        render_host(loaded, "production", release, "data-1", built=set())


def test_env_file_text_quotes_values() -> None:
    text = env_file_text({"B": "it's", "A": "plain $x", "C": 'a\\b"c\nd'})
    assert text == 'A="plain \\$x"\nB="it\'s"\nC="a\\\\b\\"c\\nd"\n'


def test_fleet_example_exists() -> None:
    assert (FLEET / "docker-compose.yml").is_file()


def test_a_dollar_in_the_environments_env_reaches_the_container_as_written(
    tmp_path: Path,
) -> None:
    """Compose on the host interpolates the file again: a literal ``$`` must be ``$$`` there."""
    import subprocess

    root = tmp_path / "fleet"
    shutil.copytree(FLEET, root)
    config = root / "stagecraft.yml"
    config.write_text(config.read_text().replace("LOG_LEVEL: info", "LOG_LEVEL: 'a$b$$c'"))
    loaded = load_project(config, environ=example_environ())
    value = str(loaded.environment("production").env["LOG_LEVEL"])
    assert "$" in value
    rendered = render_hosts(loaded, "production", fleet_release(loaded))["data-1"]
    written = rendered.services["worker"].definition["environment"]["LOG_LEVEL"]
    assert written == value.replace("$", "$$")
    if shutil.which("docker") is None:
        pytest.skip("docker is not installed: the round trip through Compose is not checked")
    (tmp_path / "docker-compose.yml").write_text(rendered.text())
    (tmp_path / "worker.env").write_text("")
    (tmp_path / "db.env").write_text("")
    out = subprocess.run(
        ["docker", "compose", "-f", str(tmp_path / "docker-compose.yml"), "config", "--format",
         "json"],
        capture_output=True, text=True, check=True, cwd=tmp_path,
    )  # fmt: skip
    import json

    seen = json.loads(out.stdout)["services"]["worker"]["environment"]["LOG_LEVEL"]
    # Compose read the value itself (an unescaped $b would have been interpolated away)
    # and prints it escaped again, as it prints every literal $.
    assert seen == value.replace("$", "$$")


def test_a_secret_bearing_value_gets_composes_escaped_dollar_back() -> None:
    from stagecraft.deploy.compose_env import SecretRef, resolve

    # `docker compose config` wrote the literal text "pa$" as "pa$$"; the env file
    # (and a Swarm secret file) is not interpolated again, so it holds the "$" itself.
    assert resolve(("pa$$", SecretRef("PW"), "@db"), {"PW": "s$$"}) == "pa$s$$@db"
