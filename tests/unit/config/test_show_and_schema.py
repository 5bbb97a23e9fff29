"""``config show`` (redacted resolved view) and ``config schema`` (JSON Schema)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from stagecraft.config.loader import load_config
from stagecraft.config.schema import DIALECT, json_schema
from stagecraft.config.show import REDACTED, resolved_view
from stagecraft.errors import UsageError

pytestmark = pytest.mark.usefixtures("fakes")

SECRET_CONFIG = """\
project: shop
network: {provider: tailscale, providers: {tailscale: {auth_key_env: TS_AUTHKEY}}}
environments:
  staging:
    hosts:
      web-1: {address: 203.0.113.10, roles: [web], labels: {api_token: "${LABEL_TOKEN}"}}
    roles: {web: [api]}
    images:
      {transfer: registry, registry: ghcr.io/acme, username: acme, password_secret: GHCR_TOKEN}
    env:
      LOG_LEVEL: info
      STRIPE_KEY: sk_live_literal
      DATABASE_URL: postgres://app:${DB_PASSWORD}@db/shop
      CACHE_URL: redis://cache:hunter2@cache:6379/0
      PUBLIC_URL: https://${HOST}/
      FROM_SECRET: ${GHCR_TOKEN}
    secrets: [GHCR_TOKEN, POSTGRES_PASSWORD]
    secrets_provider: {provider: dotenv, path: .env.staging}
  prod:
    hosts: {web-1: {address: 203.0.113.20, roles: [web]}}
    roles: {web: [api]}
"""
ENVIRON = {
    "LABEL_TOKEN": "label-token-value",
    "DB_PASSWORD": "db-password-value",
    "HOST": "staging.shop.com",
    "GHCR_TOKEN": "ghcr-token-value",
}


def _scalars(node: Any) -> list[Any]:
    if isinstance(node, dict):
        return [s for v in node.values() for s in _scalars(v)]
    if isinstance(node, list):
        return [s for v in node for s in _scalars(v)]
    return [node]


def test_show_redacts_every_secret_value(write_config: Callable[[str], Path]) -> None:
    loaded = load_config(write_config(SECRET_CONFIG), environ=ENVIRON)
    view = resolved_view(loaded, "staging")
    text = json.dumps(view)
    for secret in (*ENVIRON.values(), "sk_live_literal", "hunter2"):
        if secret != "staging.shop.com":
            assert secret not in text
    staging = view["environments"]["staging"]
    assert staging["env"]["STRIPE_KEY"] == REDACTED
    assert staging["env"]["DATABASE_URL"] == REDACTED
    assert staging["env"]["FROM_SECRET"] == REDACTED
    assert staging["env"]["CACHE_URL"] == "redis://cache:***@cache:6379/0"
    assert staging["hosts"]["web-1"]["labels"]["api_token"] == REDACTED
    # Names of secrets are not secrets.
    assert staging["images"]["password_secret"] == "GHCR_TOKEN"
    assert staging["secrets"] == ["GHCR_TOKEN", "POSTGRES_PASSWORD"]
    assert view["network"]["providers"]["tailscale"]["auth_key_env"] == "TS_AUTHKEY"
    # Clear values stay readable.
    assert staging["env"]["LOG_LEVEL"] == "info"
    assert staging["env"]["PUBLIC_URL"] == "https://staging.shop.com/"
    assert staging["secrets_provider"] == {"provider": "dotenv", "path": ".env.staging"}


def test_show_one_environment_with_defaults(write_config: Callable[[str], Path]) -> None:
    loaded = load_config(write_config(SECRET_CONFIG), environ=ENVIRON)
    view = resolved_view(loaded, "prod")
    assert list(view["environments"]) == ["prod"]
    assert view["project"] == {"name": "shop", "registry": None}
    assert view["dev"]["domain"] == "shop.localhost"
    assert view["environments"]["prod"]["deploy"]["retain"] == 5
    assert view["environments"]["prod"]["tls"] == "acme"
    assert set(resolved_view(loaded, None)["environments"]) == {"staging", "prod"}
    with pytest.raises(UsageError, match="unknown environment 'qa'; known: staging, prod"):
        resolved_view(loaded, "qa")


def test_show_output_is_plain_data_that_dumps_as_yaml(reference: Path) -> None:
    view = resolved_view(load_config(reference / "stagecraft.yml", environ={}), "staging")
    assert all(isinstance(s, str | int | float | bool | type(None)) for s in _scalars(view))
    YAML().dump(view, (reference / "out.yml").open("w"))
    assert view["dev"]["routes"] == {"app": "frontend", "api": "backend", "mail": "mailpit:8025"}
    assert view["compose"] == ["docker-compose.yml"]


def test_schema_is_draft_2020_12_with_descriptions() -> None:
    schema = json_schema()
    assert schema["$schema"] == DIALECT
    assert schema["title"] == "stagecraft.yml"
    json.dumps(schema)  # serialisable
    for name, model in schema["$defs"].items():
        if model.get("type") != "object":
            continue
        for key, prop in model.get("properties", {}).items():
            assert prop.get("description"), f"{name}.{key} has no description"
    assert {
        k: v for k, v in schema["properties"]["project"]["anyOf"][0].items() if k == "type"
    } == {"type": "string"}
    providers = schema["$defs"]["ProviderSelection"]["properties"]["providers"]
    assert providers["additionalProperties"]["additionalProperties"] is True


def _resolve(schema: dict[str, Any], node: dict[str, Any]) -> list[dict[str, Any]]:
    """The alternatives a schema node allows (following $ref and anyOf)."""
    if "$ref" in node:
        return _resolve(schema, schema["$defs"][node["$ref"].split("/")[-1]])
    if "anyOf" in node:
        return [alt for option in node["anyOf"] for alt in _resolve(schema, option)]
    return [node]


def _allows(schema: dict[str, Any], node: dict[str, Any], value: Any) -> bool:
    """A small structural check: keys, types and nesting (enough to catch schema drift)."""
    for alt in _resolve(schema, node):
        kind = alt.get("type")
        kinds = kind if isinstance(kind, list) else [kind]
        if isinstance(value, dict) and ("object" in kinds or "properties" in alt):
            if all(_allows_key(schema, alt, k, v) for k, v in value.items()):
                return True
        elif isinstance(value, list) and "array" in kinds:
            if all(_allows(schema, alt.get("items", {}), v) for v in value):
                return True
        elif not isinstance(value, dict | list) and (
            kind is None
            or _scalar_kind(value) in kinds
            or (_scalar_kind(value) == "integer" and "number" in kinds)
        ):
            return True
    return False


def _allows_key(schema: dict[str, Any], node: dict[str, Any], key: str, value: Any) -> bool:
    import re

    if key in node.get("properties", {}):
        return _allows(schema, node["properties"][key], value)
    for pattern, sub in node.get("patternProperties", {}).items():
        if re.search(pattern, key):
            return _allows(schema, sub, value)
    extra = node.get("additionalProperties", True)
    return extra is True or (isinstance(extra, dict) and _allows(schema, extra, value))


def _scalar_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if value is None:
        return "null"
    return "string"


def test_schema_accepts_the_reference_example(reference: Path) -> None:
    data = YAML(typ="safe").load((reference / "stagecraft.yml").read_text())
    schema = json_schema()
    assert _allows(schema, schema, data)
    assert not _allows(schema, schema, {**data, "unknown": 1})
    assert not _allows(schema, schema, {**data, "dev": {"https": "yes"}})
