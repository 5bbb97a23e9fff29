"""The compose model against the real ``docker compose config`` (no daemon needed)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from stagecraft.compose.model import ComposeError, discover_compose_file, load_compose
from stagecraft.config.loader import load_project
from stagecraft.errors import ConfigError, ExitCode, PrerequisiteMissing

pytestmark = pytest.mark.integration

REFERENCE = Path(__file__).parents[1] / "unit" / "config" / "reference"


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def test_interpolation_from_environ_and_dotenv(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            ".env": "TAG=from-dotenv\n",
            "compose.yaml": (
                "services:\n"
                "  api:\n"
                "    image: ${REGISTRY:-local}/api:${TAG}\n"
                "    environment: {GREETING: '${GREETING:-hi}', LITERAL: '$$HOME'}\n"
                "    ports: ['127.0.0.1:${API_PORT:-4000}:4000']\n"
            ),
        },
    )
    project = load_compose(
        [tmp_path / "compose.yaml"], project_name="shop", environ={"REGISTRY": "ghcr.io/acme"}
    )
    assert project.name == "shop"
    api = project.services["api"]
    assert api.image == "ghcr.io/acme/api:from-dotenv"
    # Compose keeps `$$` escaped in its normalised output (it stays a valid compose file).
    assert api.environment == {"GREETING": "hi", "LITERAL": "$$HOME"}
    assert [(p.host_ip, p.published, p.target) for p in api.ports] == [("127.0.0.1", "4000", 4000)]


def test_extends_include_and_profiles(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "compose.yaml": (
                "name: shop\n"
                "include: [infra/compose.infra.yaml]\n"
                "services:\n"
                "  api:\n"
                "    extends: {file: base.yaml, service: node}\n"
                "    command: [node, server.js]\n"
                "    depends_on: {postgres: {condition: service_healthy}}\n"
                "  mailpit:\n"
                "    image: axllent/mailpit\n"
                "    profiles: [tools]\n"
            ),
            "base.yaml": (
                "services:\n"
                "  node:\n"
                "    image: node:20\n"
                "    labels: {team: web}\n"
                "    stop_grace_period: 1m30s\n"
                "    x-stagecraft: {kind: web, drain: 5s}\n"
            ),
            "infra/compose.infra.yaml": (
                "services:\n"
                "  postgres:\n"
                "    image: postgres:16\n"
                "    volumes: [pgdata:/var/lib/postgresql/data]\n"
                "    healthcheck: {test: [CMD, pg_isready], interval: 2s, retries: 5}\n"
                "volumes:\n"
                "  pgdata: {}\n"
            ),
        },
    )
    project = load_compose([tmp_path / "compose.yaml"], environ={})
    assert project.name == "shop"
    assert sorted(project.services) == ["api", "mailpit", "postgres"]
    api = project.services["api"]
    assert (api.image, api.labels["team"], api.stop_grace_period) == ("node:20", "web", 90.0)
    assert api.x_stagecraft.kind == "web" and api.x_stagecraft.drain == 5.0
    assert api.depends_on["postgres"].condition == "service_healthy"
    assert project.services["mailpit"].profiles == ("tools",)
    postgres = project.services["postgres"]
    assert postgres.healthcheck is not None
    assert postgres.healthcheck.test == ("CMD", "pg_isready")
    assert postgres.healthcheck.interval == 2.0 and postgres.healthcheck.retries == 5
    assert postgres.kind(routed=False) == "accessory"
    assert project.services["mailpit"].kind(routed=True) == "web"
    assert project.services["mailpit"].kind(routed=False) == "worker"
    # Only the named profile when asked: profiled services disappear.
    plain = load_compose([tmp_path / "compose.yaml"], environ={}, profiles=())
    assert "mailpit" not in plain.services


def test_x_stagecraft_is_parsed_and_validated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    compose = (
        "services:\n"
        "  api:\n"
        "    image: api\n"
        "    x-stagecraft:\n"
        "      kind: web\n"
        "      healthcheck: {path: /healthz, port: 4000, interval: 1s, timeout: 500ms}\n"
        "      drain: 1m\n"
        "  worker:\n"
        "    image: api\n"
        "    deploy: {replicas: 3}\n"
    )
    _write(tmp_path, {"compose.yaml": compose})
    project = load_compose([tmp_path / "compose.yaml"], environ={})
    api = project.services["api"].x_stagecraft
    assert api.healthcheck is not None
    assert (api.kind, api.healthcheck.path, api.healthcheck.port) == ("web", "/healthz", 4000)
    assert (api.healthcheck.interval, api.healthcheck.timeout, api.drain) == (1.0, 0.5, 60.0)
    assert project.services["worker"].x_stagecraft.kind is None
    assert project.services["worker"].replicas == 3

    bad = compose.replace("kind: web", "kind: webb").replace("drain: 1m", "drain: soon")
    _write(tmp_path, {"compose.yaml": bad})
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as caught:
        load_compose([tmp_path / "compose.yaml"], environ={})
    assert caught.value.lines() == [
        "compose.yaml:5: services.api.x-stagecraft.kind: expected one of 'web', 'worker', "
        "'accessory', got 'webb' (did you mean 'web'?)",
        "compose.yaml:7: services.api.x-stagecraft.drain: invalid duration 'soon'; "
        "use e.g. 10s, 1m30s, 500ms or a number of seconds",
    ]


def test_compose_syntax_error_shows_composes_message_and_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(tmp_path, {"compose.yaml": "services:\n  api:\n    image: x\n   ports: [1]\n"})
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ComposeError) as caught:
        load_compose([tmp_path / "compose.yaml"], environ={})
    assert caught.value.exit_code == ExitCode.USAGE
    assert caught.value.message.startswith("compose.yaml: ")
    assert "did not find expected key" in caught.value.message  # Compose's own words
    assert caught.value.hint == "run `docker compose -f compose.yaml config` to see the full error"


def test_compose_semantic_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write(tmp_path, {"compose.yaml": "services:\n  api:\n    image: x\n    depends_on: [db]\n"})
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ComposeError, match=r'^compose.yaml: .*depends on undefined service "db"'):
        load_compose([tmp_path / "compose.yaml"], environ={})


CONFIG = """\
project: shop
dev:
  infra: [postgres, redis]
  routes: {mail: mailpit:8025}
databases:
  main: {service: postgress, url_env: DATABASE_URL}
environments:
  staging:
    hosts:
      web-1: {address: 203.0.113.10, roles: [web, jobs]}
    roles:
      web: [api, frontend]
      jobs: [worker]
    routes:
      api: {host: api.shop.com, service: api, port: 4000}
"""
COMPOSE = """\
services:
  api: {image: api}
  worker: {image: api}
  postgres: {image: postgres:16}
"""


def test_services_missing_from_compose_point_at_stagecraft_yml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(tmp_path, {"stagecraft.yml": CONFIG, "docker-compose.yml": COMPOSE})
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as caught:
        load_project(environ={})
    known = "is not defined in docker-compose.yml (services in docker-compose.yml: api, postgres, "
    known += "worker)"
    assert caught.value.lines() == [
        f"stagecraft.yml:3: dev.infra[1]: service 'redis' {known}",
        f"stagecraft.yml:4: dev.routes.mail: service 'mailpit' {known}",
        "stagecraft.yml:6: databases.main.service: service 'postgress' is not defined in "
        "docker-compose.yml (did you mean 'postgres'?)",
        f"stagecraft.yml:12: environments.staging.roles.web[1]: service 'frontend' {known}",
    ]
    # Without the compose check the same file is valid.
    assert load_project(environ={}, check_compose=False).compose is None


def test_missing_services_are_reported_with_other_issues(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = CONFIG.replace("roles: [web, jobs]", "roles: [web, job]")
    _write(tmp_path, {"stagecraft.yml": text, "docker-compose.yml": COMPOSE})
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as caught:
        load_project(environ={})
    paths = [issue.path for issue in caught.value.issues]
    assert paths == [
        "dev.infra[1]",
        "dev.routes.mail",
        "databases.main.service",
        "environments.staging.hosts.web-1.roles[1]",
        "environments.staging.roles.web[1]",
    ]


def test_reference_example_loads_with_its_compose_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copytree(REFERENCE, tmp_path / "shop")
    nested = tmp_path / "shop" / "api" / "src"
    nested.mkdir(parents=True)
    monkeypatch.chdir(nested)
    loaded = load_project(env="staging", environ={"POSTGRES_IMAGE": "local/postgres:15"})
    assert loaded.compose is not None
    assert loaded.compose.name == "shop"
    assert loaded.compose.files == (tmp_path / "shop" / "docker-compose.yml",)
    services = loaded.compose.services
    assert sorted(services) == ["api", "mailpit", "postgres", "web", "worker"]
    assert services["postgres"].image == "local/postgres:15"
    assert services["api"].x_stagecraft.healthcheck is not None
    assert services["api"].x_stagecraft.healthcheck.path == "/healthz"
    assert services["api"].build is not None
    assert services["api"].build.context == str(tmp_path / "shop" / "api")
    assert services["worker"].kind(routed=False) == "worker"


def test_compose_file_named_in_config_must_exist(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(tmp_path, {"stagecraft.yml": "project: shop\ncompose: deploy/compose.yml\n"})
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as caught:
        load_project(environ={})
    assert caught.value.lines() == [
        "stagecraft.yml:2: compose: compose file deploy/compose.yml not found"
    ]


def test_no_compose_file_at_all(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write(tmp_path, {"stagecraft.yml": "project: shop\n"})
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ComposeError, match=r"no compose file in .*looked for compose\.yaml"):
        load_project(environ={})


def test_compose_discovery_order(tmp_path: Path) -> None:
    assert discover_compose_file(tmp_path) is None
    _write(tmp_path, {"docker-compose.yml": COMPOSE})
    assert discover_compose_file(tmp_path) == tmp_path / "docker-compose.yml"
    _write(tmp_path, {"compose.yaml": COMPOSE})
    assert discover_compose_file(tmp_path) == tmp_path / "compose.yaml"


def test_missing_docker_binary(tmp_path: Path) -> None:
    _write(tmp_path, {"compose.yaml": COMPOSE})
    empty = tmp_path / "bin"
    empty.mkdir()
    with pytest.raises(PrerequisiteMissing) as caught:
        load_compose([tmp_path / "compose.yaml"], environ={"PATH": str(empty)})
    assert "docker" in caught.value.message
    assert caught.value.hint is not None and "install Docker" in caught.value.hint


SYSTEM_PLUGIN_DIRS = [
    "/usr/local/lib/docker/cli-plugins",
    "/usr/local/libexec/docker/cli-plugins",
    "/usr/lib/docker/cli-plugins",
    "/usr/libexec/docker/cli-plugins",
]


@pytest.mark.skipif(
    any(os.path.exists(f"{d}/docker-compose") for d in SYSTEM_PLUGIN_DIRS),
    reason="the compose plugin is installed system-wide; it cannot be hidden per user",
)
def test_missing_compose_plugin(tmp_path: Path) -> None:
    _write(tmp_path, {"compose.yaml": COMPOSE})
    config_dir = tmp_path / "docker-config"
    config_dir.mkdir()
    environ = {"PATH": os.environ["PATH"], "DOCKER_CONFIG": str(config_dir)}
    with pytest.raises(PrerequisiteMissing, match="Compose v2") as caught:
        load_compose([tmp_path / "compose.yaml"], environ=environ)
    assert caught.value.hint is not None and "compose" in caught.value.hint.lower()


def test_no_docker_daemon_needed(tmp_path: Path) -> None:
    _write(tmp_path, {"compose.yaml": COMPOSE})
    environ = {"PATH": os.environ["PATH"], "DOCKER_HOST": f"unix://{tmp_path}/no-daemon.sock"}
    project = load_compose([tmp_path / "compose.yaml"], environ=environ)
    assert sorted(project.services) == ["api", "postgres", "worker"]
