"""The dev plan: infra, ports, routes, processes and env, computed without Docker."""

from __future__ import annotations

import textwrap
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

from stagecraft.compose.extension import XStagecraft
from stagecraft.compose.model import ComposeProject, _service
from stagecraft.config.loader import LoadedConfig, load_config
from stagecraft.dev.plan import (
    DevError,
    DevOptions,
    PortNeed,
    Resolved,
    build_plan,
    check_ports,
    database_env,
    public_url,
    redact_value,
)
from stagecraft.errors import UsageError

QUICKSTART = """\
project: shop
backend:
  provider: generic
  providers:
    generic:
      service: api
      dev: {command: [node, server.js], workdir: api, port: 4000, ready: {http: /healthz}}
frontend:
  provider: vite
  providers:
    vite: {service: web, workdir: web, port: 5173}
databases:
  main: {service: postgres, url_env: DATABASE_URL, migrations: {path: migrations}}
dev:
  infra: [postgres]
  routes: {app: frontend, api: backend, mail: "mailpit:8025"}
"""

SERVICES: dict[str, dict[str, Any]] = {
    "postgres": {
        "image": "postgres:16-alpine",
        "environment": {
            "POSTGRES_USER": "app",
            "POSTGRES_PASSWORD": "s3cret",
            "POSTGRES_DB": "shop",
        },
    },
    "mailpit": {"image": "axllent/mailpit", "ports": [{"target": 8025, "published": "8025"}]},
    "api": {"build": {"context": "api"}},
    "web": {"build": {"context": "web"}},
}


def project(
    tmp_path: Path, text: str = QUICKSTART, services: dict[str, Any] | None = None
) -> LoadedConfig:
    path = tmp_path / "stagecraft.yml"
    path.write_text(textwrap.dedent(text))
    loaded = load_config(path)
    raw = services or SERVICES
    compose = ComposeProject(
        name="shop",
        files=(tmp_path / "compose.yaml",),
        services=MappingProxyType({n: _service(n, d, XStagecraft()) for n, d in raw.items()}),
        raw=MappingProxyType({"services": raw}),
        project_directory=tmp_path,
    )
    return replace(loaded, compose=compose)


def test_infra_includes_route_services_and_ports_bound_on_loopback(tmp_path: Path) -> None:
    plan = build_plan(project(tmp_path))
    assert plan.infra == ("postgres", "mailpit")
    assert plan.ports == (
        PortNeed("mailpit", 8025, 8025, "127.0.0.1", "route mail"),
        PortNeed("postgres", 5432, None, "127.0.0.1", "database main"),
    )
    assert plan.needs_override()
    assert plan.override_path == tmp_path / ".stagecraft" / "dev" / "compose.override.yml"


def test_routes_and_urls_follow_the_domain_and_ports(tmp_path: Path) -> None:
    plan = build_plan(project(tmp_path), DevOptions(https_port=8443, http_port=8080))
    assert plan.urls() == {
        "api": "https://api.shop.localhost:8443",
        "app": "https://app.shop.localhost:8443",
        "mail": "https://mail.shop.localhost:8443",
    }
    ports = {r.name: r.port for r in plan.routes}
    assert ports == {"api": 4000, "app": 5173, "mail": None}  # mail: known once it runs
    assert plan.hosts_entries == ()
    frontend = next(p for p in plan.processes if p.name == "frontend")
    assert frontend.env["STAGECRAFT_HMR_CLIENT_PORT"] == "8443"
    assert frontend.env["VITE_API_URL"] == "https://api.shop.localhost:8443"


def test_resolved_addresses_fill_database_url_and_service_routes(tmp_path: Path) -> None:
    loaded = project(tmp_path)
    plan = build_plan(loaded)
    addresses = {("postgres", 5432): ("127.0.0.1", 32771), ("mailpit", 8025): ("127.0.0.1", 8025)}
    resolved = database_env(plan, loaded, Resolved(addresses=addresses))
    assert resolved.env == {"DATABASE_URL": "postgresql://app:s3cret@127.0.0.1:32771/shop"}
    final = build_plan(loaded, resolved=resolved, ca_cert=Path("/ca.pem"))
    backend = next(p for p in final.processes if p.name == "backend")
    assert backend.env["DATABASE_URL"].endswith("@127.0.0.1:32771/shop")
    assert {r.name: r.port for r in final.routes}["mail"] == 8025


def test_plan_json_redacts_secrets(tmp_path: Path) -> None:
    loaded = project(tmp_path)
    addresses = {("postgres", 5432): ("127.0.0.1", 5555)}
    resolved = database_env(build_plan(loaded), loaded, Resolved(addresses=addresses))
    data = build_plan(loaded, resolved=resolved).to_json()
    assert "s3cret" not in repr(data)
    backend = next(p for p in data["processes"] if p["name"] == "backend")
    assert backend["env"]["DATABASE_URL"] == "postgresql://app:***@127.0.0.1:5555/shop"
    assert data["on_stop"] == "stop"


def test_custom_domain_needs_hosts_entries(tmp_path: Path) -> None:
    text = QUICKSTART.replace("dev:\n", "dev:\n  domain: shop.test\n  hosts_file: true\n")
    plan = build_plan(project(tmp_path, text))
    assert plan.hosts_entries == ("api.shop.test", "app.shop.test", "mail.shop.test")
    assert plan.manage_hosts_file


def test_unknown_infra_service_names_the_component(tmp_path: Path) -> None:
    text = QUICKSTART.replace("infra: [postgres]", "infra: [postgres, redis]")
    with pytest.raises(DevError, match=r"^infra: compose service 'redis' not found"):
        build_plan(project(tmp_path, text))


def test_route_to_a_backend_without_port_is_an_error(tmp_path: Path) -> None:
    text = QUICKSTART.replace(", port: 4000, ready: {http: /healthz}", "")
    with pytest.raises(DevError, match=r"^proxy: route api points at the backend, which has no"):
        build_plan(project(tmp_path, text))


def test_http_only_urls(tmp_path: Path) -> None:
    text = QUICKSTART.replace("dev:\n", "dev:\n  https: false\n")
    plan = build_plan(project(tmp_path, text), DevOptions(http_port=8080))
    assert plan.urls()["app"] == "http://app.shop.localhost:8080"


@pytest.mark.parametrize(
    ("https", "port", "expected"),
    [
        (True, 443, "https://a.test"),
        (False, 80, "http://a.test"),
        (True, 8443, "https://a.test:8443"),
    ],
)
def test_public_url(https: bool, port: int, expected: str) -> None:
    assert public_url("a.test", https, port, port if not https else 80) == expected


def test_check_ports() -> None:
    check_ports(DevOptions(https_port=8443, http_port=8080))
    with pytest.raises(UsageError, match="both 8080"):
        check_ports(DevOptions(https_port=8080, http_port=8080))
    with pytest.raises(UsageError, match="out of range"):
        check_ports(DevOptions(https_port=70000))


@pytest.mark.parametrize(
    ("name", "value", "shown"),
    [
        ("DATABASE_URL", "postgresql://u:pw@h:1/d", "postgresql://u:***@h:1/d"),
        ("STRIPE_SECRET", "sk_live", "***"),
        ("PORT", "4000", "4000"),
    ],
)
def test_redact_value(name: str, value: str, shown: str) -> None:
    assert redact_value(name, value) == shown
