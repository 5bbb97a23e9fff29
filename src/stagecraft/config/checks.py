"""Cross-checks of a validated config: roles, routes, secrets, and compose service names."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from stagecraft.compose.model import ComposeProject
from stagecraft.config.document import Document, Path_
from stagecraft.config.models import EnvironmentConfig, StagecraftConfig
from stagecraft.suggest import suggestion

NAME_CUTOFF = 0.75
"""How close a misspelt service or role name must be to suggest the real one."""


def check_addresses(doc: Document, data: dict[str, Any]) -> None:
    """A host needs an ``address:`` unless a cloud provider creates it (``infra up``).

    Checked on the raw data, so it is reported with every other issue of the file.
    """
    environments = data.get("environments")
    if not isinstance(environments, dict):
        return
    for name, env in environments.items():
        if not isinstance(env, dict) or env.get("cloud") or data.get("cloud"):
            continue
        hosts = env.get("hosts")
        for host_name, host in (hosts or {}).items() if isinstance(hosts, dict) else ():
            if isinstance(host, dict) and "address" not in host:
                doc.issue(
                    ("environments", name, "hosts", host_name, "address"),
                    "required key missing",
                    "set the host's IP address or DNS name, or declare a `cloud:` provider "
                    "so that `stagecraft infra up` creates the host and records its address",
                )


def check_semantics(doc: Document, cfg: StagecraftConfig) -> None:
    """Report references between sections that do not resolve (no compose file needed)."""
    for route_name, route in cfg.dev.route_targets().items():
        if route.kind in ("backend", "frontend") and getattr(cfg, route.kind) is None:
            doc.issue(
                ("dev", "routes", route_name),
                f"route target '{route.kind}' needs a `{route.kind}:` section",
                f"configure {route.kind}, or route to a compose service as service:port",
            )
    for name, env in cfg.environments.items():
        _check_environment(doc, cfg, name, env)


def _check_environment(
    doc: Document, cfg: StagecraftConfig, name: str, env: EnvironmentConfig
) -> None:
    base: Path_ = ("environments", name)
    for host_name, host in env.hosts.items():
        for index, role in enumerate(host.roles):
            if role not in env.roles:
                where = f"environments.{name}.roles"
                near = suggestion(role, env.roles, NAME_CUTOFF)
                doc.issue(
                    (*base, "hosts", host_name, "roles", index),
                    f"role '{role}' is not defined in {where}{near}",
                    None if near else f"add `{role}: [services...]` under {where}",
                )
    placed = {service for services in env.roles.values() for service in services}
    for route_name, route in env.routes.items():
        if route.service not in placed:
            doc.issue(
                (*base, "routes", route_name, "service"),
                f"service '{route.service}' is routed but no role of environment '{name}' runs it",
                f"add it to a role in environments.{name}.roles",
            )
    seen_hosts: dict[tuple[str, str], str] = {}
    for route_name, route in env.routes.items():
        key = (route.host, route.path or "/")
        if key in seen_hosts:
            doc.issue(
                (*base, "routes", route_name, "host"),
                f"host '{route.host}{route.path or ''}' is already used by route "
                f"'{seen_hosts[key]}'",
            )
        seen_hosts.setdefault(key, route_name)
    seen: set[str] = set()
    for index, secret in enumerate(env.secrets):
        if secret in seen:
            doc.issue((*base, "secrets", index), f"secret '{secret}' is listed twice")
            continue
        seen.add(secret)
        if secret in env.env:
            doc.issue(
                (*base, "secrets", index),
                f"'{secret}' is both a clear env var and a secret",
                f"remove it from environments.{name}.env",
            )
    images = env.images
    if images.password_secret and images.password_secret not in env.secrets:
        doc.issue(
            (*base, "images", "password_secret"),
            f"secret '{images.password_secret}' is not declared in environments.{name}.secrets",
            f"add it to environments.{name}.secrets",
        )
    if images.transfer == "registry" and not (images.registry or cfg.project.registry):
        doc.issue(
            (*base, "images", "transfer"),
            "transfer: registry needs a registry",
            "set images.registry, or project.registry",
        )


def service_references(cfg: StagecraftConfig) -> Iterator[tuple[Path_, str]]:
    """Every compose service name the config mentions, with the key path that names it."""
    for section in ("backend", "frontend"):
        selection = getattr(cfg, section)
        if selection is not None:
            service = selection.block().get("service")
            if isinstance(service, str):
                yield (section, "providers", selection.provider, "service"), service
    for name, database in cfg.databases.items():
        if database.service:
            yield ("databases", name, "service"), database.service
    for index, service in enumerate(cfg.dev.infra):
        yield ("dev", "infra", index), service
    for route_name, dev_route in cfg.dev.route_targets().items():
        if dev_route.service:
            yield ("dev", "routes", route_name), dev_route.service
    for env_name, env in cfg.environments.items():
        for role, services in env.roles.items():
            for index, service in enumerate(services):
                yield ("environments", env_name, "roles", role, index), service
        for route_name, route in env.routes.items():
            yield ("environments", env_name, "routes", route_name, "service"), route.service


def check_compose_services(doc: Document, cfg: StagecraftConfig, compose: ComposeProject) -> None:
    """Report every service named in the config that the compose file does not define."""
    known = sorted(compose.services)
    file = compose.display_name
    for path, service in service_references(cfg):
        if service in compose.services:
            continue
        near = suggestion(service, known, NAME_CUTOFF)
        hint = None if near else f"services in {file}: {', '.join(known) or 'none'}"
        doc.issue(path, f"service '{service}' is not defined in {file}{near}", hint)
