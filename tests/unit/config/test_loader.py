"""Loading stagecraft.yml: discovery, the reference example, interpolation, the public API."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from stagecraft.config.loader import LoadedConfig, load_config, load_project
from stagecraft.config.locate import find_config
from stagecraft.config.models import DevRoute
from stagecraft.errors import ConfigError, ConfigNotFound, UsageError

pytestmark = pytest.mark.usefixtures("fakes")


def test_reference_example_loads_with_every_section(reference: Path) -> None:
    loaded = load_config(reference / "stagecraft.yml", environ={})
    cfg = loaded.config
    assert loaded.root == reference
    assert cfg.project.name == "shop" and cfg.project.registry is None
    assert cfg.compose == ("docker-compose.yml",)
    assert cfg.backend is not None and cfg.backend.provider == "generic"
    assert cfg.backend.block()["dev"]["ready"] == {"http": "/healthz"}
    assert cfg.frontend is not None and cfg.frontend.block() == {
        "service": "web",
        "workdir": "web",
        "port": 5173,
    }
    main = cfg.databases["main"]
    assert main.migrations is not None
    assert (main.service, main.url_env, main.migrations.engine) == (
        "postgres",
        "DATABASE_URL",
        "raw",
    )
    assert main.migrations.table == "stagecraft_migrations"
    assert cfg.dev_domain == "shop.localhost" and cfg.dev.hosts_file is False
    assert cfg.dev_routes()["mail"] == DevRoute("mail", "service", "mailpit", 8025)
    assert cfg.dev_routes()["api"] == DevRoute("api", "backend")
    staging = loaded.environment("staging")
    assert list(staging.hosts) == ["web-1", "web-2", "data-1"]
    assert staging.primary_host == "web-1"
    assert staging.hosts["data-1"].port == 2222 and staging.hosts["web-1"].port == 22
    assert staging.services_on("data-1") == ["postgres", "worker"]
    assert staging.hosts_running("api") == ["web-1", "web-2"]
    assert staging.deploy.boot.wait == 10.0 and staging.deploy.health_timeout == 60.0
    assert staging.deploy.drain == 30.0 and staging.deploy.retain == 5
    assert staging.deploy.boot.group_size(3) == 1
    assert cfg.secrets_provider_for("staging") == ("dotenv", {"path": ".env.staging"})
    assert cfg.network_for("staging") is cfg.network
    assert cfg.network is not None and cfg.network.block() == {"auth_key_env": "TS_AUTHKEY"}
    assert cfg.proxy is not None and cfg.proxy.block() == {}


def test_line_of_points_at_keys_and_items(reference: Path) -> None:
    loaded = load_config(reference / "stagecraft.yml", environ={})
    text = (reference / "stagecraft.yml").read_text().splitlines()
    line = loaded.line_of("environments", "staging", "hosts", "data-1", "roles", 1)
    assert text[line - 1].lstrip().startswith("data-1:")
    assert (
        "secrets_provider"
        in text[loaded.line_of("environments", "staging", "secrets_provider") - 1]
    )
    # A path below a scalar falls back to the deepest node that exists.
    assert loaded.line_of("project", "name") == 1
    assert loaded.line_of("nothing", "here") == 0


def test_project_as_object_and_defaults(write_config: Callable[[str], Path]) -> None:
    cfg = load_config(write_config("project: {name: shop, registry: ghcr.io/acme}\n")).config
    assert cfg.project.registry == "ghcr.io/acme"
    assert cfg.environments == {} and cfg.databases == {}
    assert cfg.dev.https is True and cfg.dev.infra == []
    assert cfg.dev_routes() == {}


def test_default_dev_routes_follow_configured_sections(write_config: Callable[[str], Path]) -> None:
    path = write_config("project: shop\nbackend: {provider: generic}\nfrontend: {provider: vite}\n")
    routes = load_config(path).config.dev_routes()
    assert routes == {"app": DevRoute("app", "frontend"), "api": DevRoute("api", "backend")}


def test_top_level_extension_keys_hold_anchors(write_config: Callable[[str], Path]) -> None:
    path = write_config(
        "x-host: &host {user: deploy, roles: [web]}\n"
        "project: shop\n"
        "environments:\n"
        "  staging:\n"
        "    hosts:\n"
        "      web-1: {<<: *host, address: 203.0.113.10}\n"
        "    roles: {web: [api]}\n"
    )
    host = load_config(path).environment("staging").hosts["web-1"]
    assert (host.user, host.roles, host.address) == ("deploy", ["web"], "203.0.113.10")


def test_interpolation_uses_given_environment(write_config: Callable[[str], Path]) -> None:
    path = write_config(
        "project: ${PROJECT:-shop}\n"
        "environments:\n"
        "  staging:\n"
        "    hosts:\n"
        "      web-1: {address: '${WEB1}', port: '${SSH_PORT-22}', roles: [web]}\n"
        "    roles: {web: [api]}\n"
        "    env: {PRICE: '$$5', EMPTY: '${UNSET_OK:-}', NESTED: '${A:-${B:-deep}}'}\n"
    )
    loaded = load_config(path, environ={"WEB1": "10.0.0.5", "SSH_PORT": "2200"})
    staging = loaded.environment("staging")
    assert loaded.config.project.name == "shop"
    assert staging.hosts["web-1"].address == "10.0.0.5"
    assert staging.hosts["web-1"].port == 2200
    assert staging.env == {"PRICE": "$5", "EMPTY": "", "NESTED": "deep"}
    assert loaded.sources[("environments", "staging", "hosts", "web-1", "address")] == ("WEB1",)


def test_interpolation_defaults_to_process_environment(
    write_config: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SC_TEST_PROJECT", "from-env")
    assert (
        load_config(write_config("project: ${SC_TEST_PROJECT}\n")).config.project.name == "from-env"
    )


def test_env_values_are_strings(write_config: Callable[[str], Path]) -> None:
    path = write_config(
        "project: shop\nenvironments:\n  qa:\n    hosts: {h: {address: x, roles: [r]}}\n"
        "    roles: {r: [api]}\n    env: {PORT: 4000, DEBUG: true, RATIO: 0.5}\n"
    )
    assert load_config(path).environment("qa").env == {
        "PORT": "4000",
        "DEBUG": "true",
        "RATIO": "0.5",
    }


def test_find_config_walks_up_to_the_nearest(tmp_path: Path) -> None:
    (tmp_path / "stagecraft.yml").write_text("project: outer\n")
    nested = tmp_path / "a" / "b"
    nested.mkdir(parents=True)
    assert find_config(cwd=nested) == tmp_path / "stagecraft.yml"
    (tmp_path / "a" / "stagecraft.yaml").write_text("project: inner\n")
    assert find_config(cwd=nested) == tmp_path / "a" / "stagecraft.yaml"


def test_find_config_explicit_file_or_directory(tmp_path: Path) -> None:
    (tmp_path / "custom.yml").write_text("project: shop\n")
    assert find_config(Path("custom.yml"), cwd=tmp_path) == tmp_path / "custom.yml"
    (tmp_path / "proj").mkdir()
    (tmp_path / "proj" / "stagecraft.yml").write_text("project: shop\n")
    assert find_config(tmp_path / "proj") == tmp_path / "proj" / "stagecraft.yml"


def test_missing_config_suggests_init(tmp_path: Path) -> None:
    with pytest.raises(ConfigNotFound) as caught:
        find_config(Path("nope.yml"), cwd=tmp_path)
    assert "nope.yml" in caught.value.message
    assert caught.value.hint is not None and "stagecraft init" in caught.value.hint
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ConfigNotFound, match=r"no stagecraft\.yml in .* or any parent directory"):
        find_config(cwd=empty)


def test_load_project_checks_environment(tmp_path: Path) -> None:
    (tmp_path / "stagecraft.yml").write_text(
        "project: shop\nenvironments:\n"
        "  staging: {hosts: {h: {address: x, roles: [r]}}, roles: {r: [api]}}\n"
        "  prod: {hosts: {h: {address: y, roles: [r]}}, roles: {r: [api]}}\n"
    )
    loaded = load_project(cwd=tmp_path, env="prod", check_compose=False)
    assert isinstance(loaded, LoadedConfig) and loaded.compose is None
    with pytest.raises(UsageError, match=r"^unknown environment 'qa'; known: staging, prod$"):
        load_project(cwd=tmp_path, env="qa", check_compose=False)


def test_unknown_environment_without_environments_section(tmp_path: Path) -> None:
    (tmp_path / "stagecraft.yml").write_text("project: shop\n")
    with pytest.raises(UsageError, match="unknown environment 'staging'; known: none"):
        load_project(cwd=tmp_path, env="staging", check_compose=False)


def test_config_errors_come_before_unknown_environment(tmp_path: Path) -> None:
    (tmp_path / "stagecraft.yml").write_text("project: shop\ndev: {htps: true}\n")
    with pytest.raises(ConfigError, match="unknown key 'htps'"):
        load_project(cwd=tmp_path, env="staging", check_compose=False)


def test_error_file_name_is_relative_to_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "stagecraft.yml").write_text("project: Bad\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as caught:
        load_project(Path("sub/stagecraft.yml"), check_compose=False)
    assert caught.value.lines()[0].startswith("sub/stagecraft.yml:1: project: invalid project name")


def test_unreadable_bytes_are_an_issue(tmp_path: Path) -> None:
    path = tmp_path / "stagecraft.yml"
    path.write_bytes(b"project: \xff\xfe\n")
    with pytest.raises(ConfigError, match="cannot read the file"):
        load_config(path)
