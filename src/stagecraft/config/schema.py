"""The JSON Schema (draft 2020-12) of ``stagecraft.yml``, for editors and ``config schema``.

Point the YAML language server at it from the top of ``stagecraft.yml``::

    # yaml-language-server: $schema=./stagecraft.schema.json

and write it with ``stagecraft config schema > stagecraft.schema.json``.
"""

from __future__ import annotations

from typing import Any

DIALECT = "https://json-schema.org/draft/2020-12/schema"

_PROVIDER_BLOCK = {
    "type": ["object", "null"],
    "additionalProperties": True,
    "description": "Provider settings, validated by that provider (see `stagecraft doctor`).",
}


def json_schema() -> dict[str, Any]:
    """The whole file's schema: every section, with provider blocks as open objects."""
    from stagecraft.config.models import StagecraftConfig

    schema = StagecraftConfig.model_json_schema(mode="validation")
    defs: dict[str, Any] = schema.get("$defs", {})
    schema = {
        "$schema": DIALECT,
        **schema,
        "title": "stagecraft.yml",
        "description": "Stagecraft configuration: how to run this Compose project locally "
        "(`stagecraft dev`) and deploy it to servers (`stagecraft deploy`).",
    }
    properties = schema["properties"]
    project = properties["project"]
    properties["project"] = {
        "description": project.get("description", ""),
        "anyOf": [
            {"type": "string", "pattern": defs["ProjectConfig"]["properties"]["name"]["pattern"]},
            {"$ref": "#/$defs/ProjectConfig"},
        ],
    }
    # Top-level `x-*` keys hold YAML anchors, as in Compose files.
    schema["patternProperties"] = {"^x-": {}}
    selection = defs["ProviderSelection"]["properties"]["providers"]
    selection["additionalProperties"] = _PROVIDER_BLOCK
    secrets = defs["SecretsProviderRef"]
    secrets["additionalProperties"] = True
    secrets["description"] = (
        "{provider: <id>, ...}: the secrets provider and its own keys, e.g. "
        "{provider: dotenv, path: .env.staging}."
    )
    return schema
