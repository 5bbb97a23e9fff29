"""Validate provider selections and their opaque blocks with the providers' own models.

The core never interprets a provider's block: it finds the provider class in
the registry of its kind and lets ``cls.Config`` validate it, reporting the
provider's errors at the lines of the block in ``stagecraft.yml``.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from stagecraft.config.document import Document, Path_
from stagecraft.config.issues import report_validation_error
from stagecraft.errors import ProviderError
from stagecraft.providers.base import Provider, registry
from stagecraft.suggest import suggestion

SELECTIONS: dict[str, str] = {
    "backend": "backend",
    "frontend": "frontend",
    "proxy": "proxy",
    "network": "network",
    "cloud": "cloud",
    "ci": "ci",
    "secrets": "secrets",
}
"""Top-level section -> provider kind, for sections shaped ``{provider, providers}``."""


def check_provider_blocks(doc: Document, data: dict[str, Any]) -> None:
    """Report unknown provider ids and invalid provider blocks anywhere in ``data``."""
    for section, kind in SELECTIONS.items():
        _check_selection(doc, data.get(section), kind, (section,))
    environments = data.get("environments")
    if isinstance(environments, dict):
        for name, env in environments.items():
            if not isinstance(env, dict):
                continue
            for section in ("network", "cloud"):
                where: Path_ = ("environments", name, section)
                _check_selection(doc, env.get(section), section, where)
            _check_secrets_ref(doc, env.get("secrets_provider"), ("environments", name))
    databases = data.get("databases")
    if isinstance(databases, dict):
        for name, database in databases.items():
            migrations = database.get("migrations") if isinstance(database, dict) else None
            if isinstance(migrations, dict):
                engine = migrations.get("engine", "raw")
                path: Path_ = ("databases", name, "migrations")
                if "engine" in migrations:
                    path = (*path, "engine")
                if isinstance(engine, str):
                    find_provider(doc, "migration", engine, path)


def find_provider(doc: Document, kind: str, provider_id: str, path: Path_) -> type[Provider] | None:
    """The provider class, or None after reporting an unknown id at ``path``."""
    try:
        return registry(kind).get(provider_id)
    except ProviderError as exc:
        known = _known_ids(kind)
        doc.issue(path, exc.message + suggestion(provider_id, known), exc.hint)
        return None


def validate_block(doc: Document, cls: type[Provider], block: Any, path: Path_) -> None:
    """Validate ``block`` with ``cls.Config``; its errors are reported under ``path``."""
    data = {} if block is None else block
    try:
        cls.Config.model_validate(data)
    except ValidationError as exc:
        report_validation_error(doc, exc, root=cls.Config, data=data, base=path)
    except Exception as exc:  # a provider's own validator must not crash config loading
        doc.issue(path, f"{cls.kind} provider '{cls.id}' failed to check its settings: {exc}")


def _check_selection(doc: Document, section: Any, kind: str, path: Path_) -> None:
    if not isinstance(section, dict):
        return
    selected = section.get("provider")
    providers = section.get("providers")
    blocks = providers if isinstance(providers, dict) else {}
    for provider_id, block in blocks.items():
        cls = find_provider(doc, kind, provider_id, (*path, "providers", provider_id))
        if cls is not None:
            validate_block(doc, cls, block, (*path, "providers", provider_id))
    if isinstance(selected, str):
        cls = find_provider(doc, kind, selected, (*path, "provider"))
        if cls is not None and selected not in blocks:
            validate_block(doc, cls, {}, (*path, "providers", selected))


def _check_secrets_ref(doc: Document, ref: Any, env_path: Path_) -> None:
    if not isinstance(ref, dict) or not isinstance(ref.get("provider"), str):
        return
    path = (*env_path, "secrets_provider")
    cls = find_provider(doc, "secrets", ref["provider"], (*path, "provider"))
    if cls is not None:
        validate_block(doc, cls, {k: v for k, v in ref.items() if k != "provider"}, path)


def _known_ids(kind: str) -> list[str]:
    try:
        return registry(kind).ids()
    except ProviderError:
        return []
