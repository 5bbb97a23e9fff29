"""Detection: what ``stagecraft init`` finds in sample layouts and edge cases.

Compose files are read by the real ``docker compose config`` (no daemon needed).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from stagecraft.compose.model import ComposeError
from stagecraft.errors import ExitCode
from stagecraft.init import (
    BackendGuess,
    DatabaseGuess,
    FrontendGuess,
    NoComposeFileError,
    detect,
    infra_kind,
    is_valid_project_name,
    normalise_project_name,
)
from stagecraft.init.compose import SOURCE_DOCKER, SOURCE_YAML, ServiceInfo, _interpolate

LAYOUTS = Path(__file__).resolve().parents[2] / "fixtures" / "layouts"
MakeProject = Callable[..., Path]

VITE_PACKAGE = json.dumps({"scripts": {"dev": "vite"}, "devDependencies": {"vite": "^7.0.0"}})


def test_node_vite_postgres_layout() -> None:
    detection = detect(LAYOUTS / "node-vite-postgres")

    assert detection.project == "node-vite-postgres"
    assert detection.compose.file == "compose.yaml"
    assert detection.compose.source == SOURCE_DOCKER
    assert detection.compose.services == (
        ServiceInfo("api", None, "api", (4000,), 4000),
        ServiceInfo("mailpit", "axllent/mailpit:v1.21", None, (8025, 1025)),
        ServiceInfo("postgres", "postgres:16-alpine", None, (5432,)),
        ServiceInfo("web", None, "web", (80,)),
    )
    assert detection.frontend == FrontendGuess(workdir="web", port=5173, service="web")
    assert detection.backend == BackendGuess(
        provider="generic",
        workdir="api",
        service="api",
        command=("npm", "run", "dev"),
        port=4000,
        reason="compose service api has a build",
    )
    assert detection.database == DatabaseGuess(migrations="migrations", service="postgres")
    assert detection.infra == ("mailpit", "postgres")
    assert detection.notes == ()


def test_encore_layout() -> None:
    detection = detect(LAYOUTS / "encore-app")

    assert detection.project == "encore-app"
    assert detection.backend == BackendGuess(
        provider="encore-ts",
        workdir=".",
        service="api",
        command=None,
        port=4000,
        reason="encore.app",
    )
    assert detection.frontend is None
    assert detection.database is None
    assert detection.infra == ("postgres",)


def test_plain_compose_layout() -> None:
    detection = detect(LAYOUTS / "plain-compose")

    assert detection.compose.file == "compose.yml"
    assert detection.backend == BackendGuess(
        provider="generic",
        workdir=".",
        service="app",
        command=None,
        port=8000,
        reason="compose service app has a build",
    )
    assert detection.frontend is None
    assert detection.database is None
    assert detection.infra == ("redis",)


def test_routes_follow_the_detected_choices() -> None:
    full = detect(LAYOUTS / "node-vite-postgres").defaults()
    assert [(r.name, r.target) for r in full.routes] == [
        ("app", "frontend"),
        ("api", "backend"),
        ("mail", "mailpit:8025"),
    ]
    declined = detect(LAYOUTS / "node-vite-postgres").choose(frontend=False, infra=("postgres",))
    assert [(r.name, r.target) for r in declined.routes] == [("api", "backend")]
    assert declined.infra == ("postgres",)
    # A generic backend without a dev command gets no route: `dev` could not start it.
    assert detect(LAYOUTS / "plain-compose").defaults().routes == ()


def test_no_compose_file_is_a_usage_error(make_project: MakeProject) -> None:
    root = make_project({"package.json": VITE_PACKAGE})
    with pytest.raises(NoComposeFileError) as info:
        detect(root)
    assert info.value.exit_code == ExitCode.USAGE
    assert "no compose file in" in info.value.message
    assert "compose.yaml" in info.value.message
    assert info.value.hint


def test_compose_file_names_follow_composes_order(make_project: MakeProject) -> None:
    root = make_project(
        {
            "docker-compose.yml": "services: {old: {image: busybox}}\n",
            "compose.yml": "services: {new: {image: busybox}}\n",
        }
    )
    detection = detect(root)
    assert detection.compose.file == "compose.yml"
    assert [s.name for s in detection.compose.services] == ["new"]


def test_compose_error_names_the_file(make_project: MakeProject) -> None:
    root = make_project({"compose.yaml": "services:\n  api:\n    image: [not, a, string]\n"})
    with pytest.raises(ComposeError) as info:
        detect(root)
    assert info.value.exit_code == ExitCode.USAGE
    assert info.value.message.startswith(f"{root / 'compose.yaml'}: ")
    assert info.value.message.endswith("services.api.image must be a string")
    assert "image" in info.value.message


def test_profiled_services_are_visible(make_project: MakeProject) -> None:
    root = make_project(
        {
            "compose.yaml": (
                "services:\n"
                "  api: {build: ., profiles: [app]}\n"
                "  cache: {image: 'valkey/valkey:8', profiles: [infra]}\n"
            ),
        }
    )
    detection = detect(root)
    assert [s.name for s in detection.compose.services] == ["api", "cache"]
    assert detection.infra == ("cache",)


def test_yaml_fallback_when_docker_is_missing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    empty = tmp_path / "empty-path"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.setenv("POSTGRES_IMAGE", "registry.local/postgres:15")
    detection = detect(LAYOUTS / "node-vite-postgres")

    assert detection.compose.source == SOURCE_YAML
    assert detection.notes[0].startswith("docker compose is not available: read the services")
    postgres = detection.compose.service("postgres")
    assert postgres == ServiceInfo("postgres", "registry.local/postgres:15", None, (5432,))
    assert detection.frontend == FrontendGuess(workdir="web", port=5173, service="web")
    assert detection.backend is not None and detection.backend.command == ("npm", "run", "dev")
    assert detection.infra == ("mailpit", "postgres")


def test_yaml_fallback_when_the_compose_plugin_is_missing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Docker without its CLI plugins directory: `docker compose` is an unknown command.
    config = tmp_path / "docker-config"
    config.mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(config))
    detection = detect(LAYOUTS / "plain-compose")

    assert detection.compose.source == SOURCE_YAML
    monkeypatch.delenv("DOCKER_CONFIG")
    via_docker = detect(LAYOUTS / "plain-compose")
    assert via_docker.compose.source == SOURCE_DOCKER
    assert detection.defaults() == via_docker.defaults()


def test_yaml_fallback_reads_long_and_short_syntax(
    monkeypatch: pytest.MonkeyPatch, make_project: MakeProject, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    root = make_project(
        {
            "compose.yaml": (
                "services:\n"
                "  api:\n"
                "    build: {context: backend}\n"
                "    environment: [PORT=9000, DEBUG=1]\n"
                "    ports: [{target: 9000, published: 9000}]\n"
                "  db:\n"
                "    image: ${PG:-postgis/postgis:16-3.4}\n"
                "    expose: ['5432']\n"
            ),
            "backend/package.json": json.dumps({"scripts": {"start": "node index.js"}}),
            "db/migrations/0001.sql": "select 1;\n",
        }
    )
    detection = detect(root)
    assert detection.compose.services == (
        ServiceInfo("api", None, "backend", (9000,), 9000),
        ServiceInfo("db", "postgis/postgis:16-3.4", None, (5432,)),
    )
    assert detection.backend is not None
    assert detection.backend.command == ("npm", "run", "start")
    assert detection.database == DatabaseGuess(migrations="db/migrations", service="db")


def test_unreadable_yaml_without_docker(
    monkeypatch: pytest.MonkeyPatch, make_project: MakeProject, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    root = make_project({"compose.yaml": "services: [\n"})
    with pytest.raises(ComposeError, match=r"^compose.yaml: cannot read it as YAML"):
        detect(root)


def test_vite_at_the_root_with_pnpm_and_a_custom_port(make_project: MakeProject) -> None:
    package = {"scripts": {"dev": "vite --port 3000 --host"}, "dependencies": {"vite": "7"}}
    root = make_project(
        {
            "compose.yaml": "services:\n  site: {build: .}\n",
            "package.json": json.dumps(package),
            "pnpm-lock.yaml": "lockfileVersion: '9.0'\n",
        }
    )
    detection = detect(root)
    assert detection.frontend == FrontendGuess(
        workdir=".", port=3000, service="site", package_manager="pnpm"
    )
    # The only built service serves the frontend, so there is no backend to guess.
    assert detection.backend is None


def test_several_vite_apps_prefer_the_one_compose_builds(make_project: MakeProject) -> None:
    root = make_project(
        {
            "compose.yaml": "services:\n  admin-ui: {build: ./admin}\n",
            "admin/package.json": VITE_PACKAGE,
            "web/package.json": VITE_PACKAGE,
            "node_modules/vite/package.json": VITE_PACKAGE,
        }
    )
    detection = detect(root)
    assert detection.frontend == FrontendGuess(workdir="admin", port=5173, service="admin-ui")
    assert detection.notes == ("vite is also used in web/ (not configured; edit frontend)",)


def test_vite_without_a_compose_service_prefers_conventional_names(
    make_project: MakeProject,
) -> None:
    root = make_project(
        {
            "compose.yaml": "services:\n  db: {image: 'mysql:8'}\n",
            "docs/package.json": VITE_PACKAGE,
            "frontend/package.json": VITE_PACKAGE,
        }
    )
    detection = detect(root)
    assert detection.frontend == FrontendGuess(workdir="frontend", port=5173, service=None)


def test_backend_prefers_conventional_names_and_skips_infra(make_project: MakeProject) -> None:
    root = make_project(
        {
            "compose.yaml": (
                "services:\n"
                "  worker: {build: ./worker}\n"
                "  server: {build: ./server, ports: ['3000:3000']}\n"
                "  cache: {build: ./cache, image: 'redis:7'}\n"
            ),
            "server/package.json": json.dumps({"scripts": {"dev": "tsx watch src"}}),
            "server/yarn.lock": "",
        }
    )
    detection = detect(root)
    assert detection.backend == BackendGuess(
        provider="generic",
        workdir="server",
        service="server",
        command=("yarn", "run", "dev"),
        port=3000,
        reason="compose service server has a build",
    )
    assert detection.notes == ("also built by compose: worker (deployed as compose services only)",)
    assert detection.infra == ("cache",)


def test_broken_package_json_becomes_a_note(make_project: MakeProject) -> None:
    root = make_project(
        {"compose.yaml": "services:\n  api: {build: .}\n", "package.json": "{not json"}
    )
    detection = detect(root)
    assert detection.notes[0].startswith("skipped package.json: not valid JSON")
    assert detection.backend is not None and detection.backend.command is None


def test_migrations_without_sql_files_are_ignored(make_project: MakeProject) -> None:
    root = make_project(
        {
            "compose.yaml": "services:\n  pg: {image: 'postgres:16'}\n",
            "migrations/README.md": "empty\n",
            "sql/migrations/0001_init.sql": "create table t (id int);\n",
        }
    )
    assert detect(root).database == DatabaseGuess(migrations="sql/migrations", service="pg")


def test_migrations_inside_the_backend_directory(make_project: MakeProject) -> None:
    root = make_project(
        {
            "compose.yaml": "services:\n  api: {build: ./api}\n",
            "api/migrations/0001_init.sql": "create table t (id int);\n",
        }
    )
    # No postgres-looking service: the database is still configured through its URL.
    assert detect(root).database == DatabaseGuess(migrations="api/migrations", service=None)


def test_encore_app_one_level_down(make_project: MakeProject) -> None:
    root = make_project(
        {
            "compose.yaml": "services:\n  backend: {build: ./backend}\n  web: {build: ./web}\n",
            "backend/encore.app": '{"id": ""}\n',
            "web/package.json": VITE_PACKAGE,
        }
    )
    detection = detect(root)
    assert detection.backend == BackendGuess(
        provider="encore-ts",
        workdir="backend",
        service="backend",
        command=None,
        port=4000,
        reason="encore.app",
    )
    assert detection.frontend == FrontendGuess(workdir="web", port=5173, service="web")


def test_detection_is_json_serialisable() -> None:
    data = detect(LAYOUTS / "node-vite-postgres").to_dict()
    assert json.loads(json.dumps(data))["backend"]["command"] == ["npm", "run", "dev"]
    assert data["compose"]["services"] == ["api", "mailpit", "postgres", "web"]


@pytest.mark.parametrize(
    ("directory", "expected"),
    [
        ("shop", "shop"),
        ("My Shop", "my-shop"),
        ("My_Shop.v2", "my_shop-v2"),
        ("--weird--name--", "weird-name"),
        ("_private", "private"),
        ("Ünïcode", "n-code"),
        ("...", "app"),
        ("2048", "2048"),
    ],
)
def test_project_names_are_normalised(directory: str, expected: str) -> None:
    name = normalise_project_name(directory)
    assert name == expected
    assert is_valid_project_name(name)


@pytest.mark.parametrize("name", ["", "Shop", "-shop", "_shop", "my shop", "shop.v2"])
def test_invalid_project_names(name: str) -> None:
    assert not is_valid_project_name(name)


@pytest.mark.parametrize(
    ("image", "kind"),
    [
        ("postgres:16-alpine", "database"),
        ("docker.io/library/postgres@sha256:abc", "database"),
        ("bitnami/postgresql:16", "database"),
        ("mariadb:11", "database"),
        ("valkey/valkey:8", "cache"),
        ("redis", "cache"),
        ("axllent/mailpit:v1.21", "mail"),
        ("mailhog/mailhog", "mail"),
        ("rabbitmq:3-management", "queue"),
        ("minio/minio:latest", "storage"),
        ("registry.example.com:5000/team/redis:7", "cache"),
        ("node:20-alpine", None),
        ("ghcr.io/acme/postgres-exporter-ui-but-app", "database"),
        ("ghcr.io/acme/api:1.0", None),
        (None, None),
    ],
)
def test_infra_kind_by_image(image: str | None, kind: str | None) -> None:
    assert infra_kind(image) == kind


@pytest.mark.parametrize(
    ("value", "env", "expected"),
    [
        ("${IMG:-postgres:16}", {}, "postgres:16"),
        ("${IMG:-postgres:16}", {"IMG": ""}, "postgres:16"),
        ("${IMG-postgres:16}", {"IMG": ""}, ""),
        ("${IMG-postgres:16}", {}, "postgres:16"),
        ("${IMG:-postgres:16}", {"IMG": "local/pg"}, "local/pg"),
        ("${REG}/api:${TAG:?tag}", {"REG": "ghcr.io", "TAG": "1"}, "ghcr.io/api:1"),
        ("$${literal}", {}, "${literal}"),
        ("${MISSING}/api", {}, "/api"),  # unset: empty, as Compose (with a warning)
        ("api:${TAG:?tag}", {}, "api:"),
        ("${IMG:-${REG:-ghcr.io}/api}", {}, "ghcr.io/api"),  # the config's nested defaults
        ("${broken", {}, "${broken"),  # malformed: left as written
    ],
)
def test_fallback_interpolation(value: str, env: dict[str, str], expected: str) -> None:
    assert _interpolate(value, env) == expected
