"""Every built-in's Config: the SPEC 3.1 shapes validate, unknown keys and bad types do not."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError
from ruamel.yaml import YAML

from stagecraft.providers import registry

# The reference example of SPEC 3.1, provider parts only, as users write them.
SPEC_EXAMPLE = """
backend:
  provider: generic
  providers:
    generic:
      service: api
      dev:
        command: [node, server.js]
        workdir: api
        port: 4000
        env: {LOG_LEVEL: debug}
        ready: {http: /healthz}
frontend:
  provider: vite
  providers:
    vite: {service: web, workdir: web, port: 5173}
environments:
  staging:
    secrets_provider: {provider: dotenv, path: .env.staging}
proxy: {provider: caddy}
network: {provider: tailscale, providers: {tailscale: {auth_key_env: TS_AUTHKEY}}}
cloud: {provider: digitalocean, providers: {digitalocean: {token_env: DO_TOKEN}}}
ci: {provider: github}
"""


def _spec_blocks() -> list[tuple[str, str, Any]]:
    doc = YAML(typ="safe").load(SPEC_EXAMPLE)
    blocks: list[tuple[str, str, Any]] = []
    for kind in ("backend", "frontend", "proxy", "network", "cloud", "ci"):
        section = doc[kind]
        pid = section["provider"]
        blocks.append((kind, pid, section.get("providers", {}).get(pid, {})))
    secrets = dict(doc["environments"]["staging"]["secrets_provider"])
    blocks.append(("secrets", secrets.pop("provider"), secrets))
    return blocks


@pytest.mark.parametrize(("kind", "pid", "raw"), _spec_blocks(), ids=lambda v: str(v)[:20])
def test_spec_reference_shapes_validate(kind: str, pid: str, raw: Any) -> None:
    provider = registry(kind).create(pid, raw)
    assert provider.id == pid


VALID: dict[tuple[str, str], dict[str, Any]] = {
    ("backend", "generic"): {"service": "api", "dev": {"command": "node server.js"}},
    ("backend", "encore-ts"): {"service": "api"},
    ("frontend", "generic"): {"service": "web", "dev": {"command": ["npm", "run", "dev"]}},
    ("frontend", "vite"): {"service": "web"},
    ("proxy", "caddy"): {},
    ("network", "tailscale"): {},
    ("cloud", "digitalocean"): {},
    ("ci", "github"): {},
    ("secrets", "env"): {},
    ("secrets", "dotenv"): {"path": ".env"},
    ("secrets", "command"): {"command": "pass show {name}"},
}


@pytest.mark.parametrize(("kind", "pid"), sorted(VALID), ids=str)
def test_unknown_keys_are_rejected(kind: str, pid: str) -> None:
    raw = {**VALID[(kind, pid)], "colour": "blue"}
    with pytest.raises(ValidationError) as info:
        registry(kind).create(pid, raw)
    errors = info.value.errors()
    assert [(e["type"], e["loc"]) for e in errors] == [("extra_forbidden", ("colour",))]


BAD: list[tuple[str, str, dict[str, Any], str]] = [
    ("backend", "generic", {"service": "api"}, "dev"),
    ("backend", "generic", {"service": "api", "dev": {"command": []}}, "command"),
    ("backend", "generic", {"service": "api", "dev": {"command": "x", "port": 70000}}, "port"),
    ("backend", "generic", {"service": "api", "dev": {"command": "x", "port": "http"}}, "port"),
    ("backend", "generic", {"service": "api", "dev": {"command": "'x"}}, "cannot split"),
    (
        "backend",
        "generic",
        {"service": "api", "dev": {"command": "x", "workdir": "../up"}},
        "inside",
    ),
    (
        "backend",
        "generic",
        {"service": "api", "dev": {"command": "x", "env": {"A": True}}},
        "quoted",
    ),
    ("backend", "generic", {"service": "api", "dev": {"command": "x", "env": {"1A": "v"}}}, "name"),
    ("backend", "generic", {"service": "api", "dev": {"command": "x", "ready": {}}}, "exactly one"),
    (
        "backend",
        "generic",
        {"service": "api", "dev": {"command": "x", "ready": {"http": "/a", "log": "b"}}},
        "exactly one",
    ),
    (
        "backend",
        "generic",
        {"service": "api", "dev": {"command": "x", "ready": {"log": "("}}},
        "pattern",
    ),
    (
        "backend",
        "generic",
        {"service": "api", "dev": {"command": "x", "port": 1, "ready": {"http": "a"}}},
        "must be a path",
    ),
    (
        "backend",
        "generic",
        {"service": "api", "dev": {"command": "x", "stop_signal": "SIGNOPE"}},
        "signal",
    ),
    (
        "backend",
        "generic",
        {"service": "api", "dev": {"command": "x"}, "build": {"tag": "x"}},
        "tag",
    ),
    (
        "backend",
        "generic",
        {"service": "api", "dev": {"command": "x", "ready": {"http": "/up"}}},
        "set dev.port too",
    ),
    ("backend", "encore-ts", {}, "service"),
    ("backend", "encore-ts", {"service": "api", "secrets": {"types": ["staging"]}}, "types"),
    ("backend", "encore-ts", {"service": "api", "secrets": {"names": ["bad-name"]}}, "names"),
    ("backend", "encore-ts", {"service": "api", "dev": {"watch": "sometimes"}}, "watch"),
    ("backend", "encore-ts", {"service": "api", "dev": {"stop_signal": "bogus"}}, "unknown signal"),
    ("frontend", "vite", {"service": "web", "package_manager": "bun"}, "package_manager"),
    ("frontend", "vite", {"service": "web", "api_url_env": "not ok"}, "api_url_env"),
    ("frontend", "vite", {"service": "web", "port": 0}, "port"),
    ("proxy", "caddy", {"email": "not-an-email"}, "email"),
    ("proxy", "caddy", {"upstream_refresh": 0}, "upstream_refresh"),
    ("network", "tailscale", {"tags": ["server"]}, "look like tag:server"),
    ("network", "tailscale", {"auth_key_env": "ts key"}, "auth_key_env"),
    ("network", "tailscale", {"min_version": "latest"}, "min_version"),
    ("network", "tailscale", {"accept_routes": "maybe"}, "accept_routes"),
    ("cloud", "digitalocean", {"tags": ["has space"]}, "DigitalOcean tags use"),
    ("cloud", "digitalocean", {"vpc_uuid": "nope"}, "vpc_uuid"),
    ("cloud", "digitalocean", {"ssh_keys": "one-key"}, "ssh_keys"),
    ("ci", "github", {"workflow_path": "ci.yml"}, "workflow_path"),
    ("ci", "github", {"branches": {"staging": "-bad"}}, "branches"),
    ("ci", "github", {"test_command": "a\nb"}, "one non-empty line"),
    ("secrets", "env", {"prefix": "a-b"}, "prefix"),
    ("secrets", "dotenv", {}, "path"),
    ("secrets", "command", {"command": "x", "mode": "all"}, "mode"),
]


@pytest.mark.parametrize(("kind", "pid", "raw", "fragment"), BAD, ids=lambda v: str(v)[:40])
def test_bad_values_are_rejected(kind: str, pid: str, raw: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ValidationError) as info:
        registry(kind).create(pid, raw)
    assert fragment in str(info.value)


def test_yaml_numbers_in_env_become_strings() -> None:
    backend = registry("backend").create(
        "generic", {"service": "api", "dev": {"command": "x", "env": {"PORT": 4000, "R": 0.5}}}
    )
    assert backend.config.dev.env == {"PORT": "4000", "R": "0.5"}


def test_signal_names_are_normalised() -> None:
    backend = registry("backend").create(
        "generic", {"service": "api", "dev": {"command": "x", "stop_signal": "int"}}
    )
    assert backend.config.dev.stop_signal == "SIGINT"
