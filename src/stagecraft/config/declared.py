"""The names a ``stagecraft.yml`` declares, read from the file alone: for shell completion.

Completion runs on every Tab, often on a half-written config, so this reads
the YAML and nothing else (no validation, no interpolation, no Compose) and
keeps what looks like a name: environments, each one's hosts, and the compose
services its roles run. A file it cannot read gives no names, never an error.

Example::

    from stagecraft.config.declared import declared_names

    names = declared_names(Path("examples/fleet/stagecraft.yml"))
    names.environments                 # ('production',)
    names.hosts("production")          # ['web-1', 'web-2', 'data-1']
    names.services(None)               # ['web', 'worker', 'db']: every environment's
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stagecraft.config.document import parse_document


@dataclass(frozen=True)
class DeclaredNames:
    """Environment, host and service names, in the order the file gives them."""

    hosts_by_env: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    services_by_env: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def environments(self) -> tuple[str, ...]:
        return tuple(self.hosts_by_env)

    def hosts(self, env: str | None) -> list[str]:
        """Hosts of ``env``; of every environment when ``env`` is None or not declared."""
        return _pick(self.hosts_by_env, env)

    def services(self, env: str | None) -> list[str]:
        """Services the roles of ``env`` run; of every environment likewise."""
        return _pick(self.services_by_env, env)


def declared_names(path: Path) -> DeclaredNames:
    """The names ``path`` declares; none when it cannot be read or parsed."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return DeclaredNames()
    doc = parse_document(text, str(path))
    environments = doc.data.get("environments") if isinstance(doc.data, dict) else None
    if not isinstance(environments, dict):
        return DeclaredNames()
    hosts: dict[str, tuple[str, ...]] = {}
    services: dict[str, tuple[str, ...]] = {}
    for env, node in environments.items():
        if not _is_name(env):
            continue
        body = node if isinstance(node, dict) else {}
        hosts[env] = tuple(_names(body.get("hosts")))
        roles = body.get("roles")
        placed = roles.values() if isinstance(roles, dict) else []
        services[env] = tuple(dict.fromkeys(s for group in placed for s in _names(group)))
    return DeclaredNames(hosts, services)


def _names(node: Any) -> list[str]:
    """The keys of a mapping or the items of a list that look like names."""
    items = list(node) if isinstance(node, dict | list) else []
    return [item for item in items if _is_name(item)]


def _is_name(value: Any) -> bool:
    # `${VAR}` and the like only mean something after interpolation: not offered.
    return isinstance(value, str) and bool(value) and not any(c in value for c in "${} \t")


def _pick(by_env: Mapping[str, tuple[str, ...]], env: str | None) -> list[str]:
    if env is not None and env in by_env:
        return list(by_env[env])
    return list(dict.fromkeys(name for names in by_env.values() for name in names))
