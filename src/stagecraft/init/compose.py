"""What ``init`` needs from the compose file: its path and a light view of its services.

The services come from ``docker compose config`` (interpolation, ``extends``,
``include`` and profiles resolved by Compose itself). Only when Docker or its
Compose plugin is missing does ``init`` read the ``services:`` keys of the file
directly, and it says so in the detection notes.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from stagecraft.compose.model import (
    ComposeError,
    load_compose,
)
from stagecraft.config.interpolate import InterpolationError, interpolate
from stagecraft.errors import CommandTimeout, PrerequisiteMissing

"""Compose's own discovery order."""

COMPOSE_TIMEOUT = 60.0

SOURCE_DOCKER = "docker compose config"
SOURCE_YAML = "YAML read"

# Image repository name fragments -> the kind of dev infrastructure they are.
INFRA_IMAGES: tuple[tuple[str, str], ...] = (
    ("postgres", "database"),
    ("postgis", "database"),
    ("timescaledb", "database"),
    ("mysql", "database"),
    ("mariadb", "database"),
    ("mongo", "database"),
    ("clickhouse", "database"),
    ("cockroach", "database"),
    ("redis", "cache"),
    ("valkey", "cache"),
    ("keydb", "cache"),
    ("dragonfly", "cache"),
    ("memcached", "cache"),
    ("mailpit", "mail"),
    ("mailhog", "mail"),
    ("mailcatcher", "mail"),
    ("smtp4dev", "mail"),
    ("rabbitmq", "queue"),
    ("nats", "queue"),
    ("kafka", "queue"),
    ("redpanda", "queue"),
    ("minio", "storage"),
    ("localstack", "storage"),
    ("azurite", "storage"),
    ("elasticsearch", "search"),
    ("opensearch", "search"),
    ("meilisearch", "search"),
    ("typesense", "search"),
)


@dataclass(frozen=True)
class ServiceInfo:
    """One compose service, reduced to what detection looks at."""

    name: str
    image: str | None = None
    build_context: str | None = None
    """Directory the service is built from, relative to the project root (posix), or None."""
    ports: tuple[int, ...] = ()
    """Container ports (``ports:`` targets, then ``expose:``)."""
    env_port: int | None = None
    """The ``PORT`` environment variable, when it is a number."""

    @property
    def infra_kind(self) -> str | None:
        """``database``, ``cache``, ``mail``, ... when the image looks like infrastructure."""
        return infra_kind(self.image)

    @property
    def port(self) -> int | None:
        """The port the service listens on, as far as the compose file tells."""
        if self.env_port is not None:
            return self.env_port
        return self.ports[0] if self.ports else None


@dataclass(frozen=True)
class ComposeView:
    """The compose file and its services, as ``init`` sees them."""

    file: str
    """Path of the compose file relative to the project root."""
    services: tuple[ServiceInfo, ...]
    source: str
    """``SOURCE_DOCKER`` or ``SOURCE_YAML``."""

    def service(self, name: str) -> ServiceInfo | None:
        """The service called ``name``, or None."""
        return next((s for s in self.services if s.name == name), None)


def infra_kind(image: str | None) -> str | None:
    """Classify an image reference by its repository name (``bitnami/redis:7`` -> cache)."""
    if not image:
        return None
    repository = image.split("@", 1)[0]
    last = repository.rsplit("/", 1)[-1].split(":", 1)[0].lower()
    for fragment, kind in INFRA_IMAGES:
        if fragment in last:
            return kind
    return None


def read_compose(root: Path, compose_file: Path) -> ComposeView:
    """Read the services of ``compose_file`` through Compose, or from the YAML without Docker.

    Raises :class:`~stagecraft.compose.model.ComposeError` when Compose rejects the file.
    """
    relative = relative_path(compose_file, root)
    try:
        project = load_compose([compose_file], project_directory=root, timeout=COMPOSE_TIMEOUT)
    except (PrerequisiteMissing, CommandTimeout):
        return ComposeView(relative, _services_from_yaml(root, compose_file), SOURCE_YAML)
    infos = tuple(
        _service_info(name, service.raw, root) for name, service in sorted(project.services.items())
    )
    return ComposeView(relative, infos, SOURCE_DOCKER)


def _service_info(name: str, raw: Mapping[str, Any], root: Path) -> ServiceInfo:
    image = raw.get("image")
    return ServiceInfo(
        name=name,
        image=str(image) if image else None,
        build_context=_build_context(raw.get("build"), root),
        ports=_ports(raw.get("ports"), raw.get("expose")),
        env_port=_env_port(raw.get("environment")),
    )


def _build_context(build: Any, root: Path) -> str | None:
    """The build context relative to ``root``: ``build: ./api`` or ``build: {context: api}``."""
    if build is None:
        return None
    context = build.get("context", ".") if isinstance(build, Mapping) else build
    if not isinstance(context, str) or "://" in context or context.startswith("git@"):
        return None
    path = Path(context)
    if not path.is_absolute():
        path = root / path
    return relative_path(path, root)


def _ports(ports: Any, expose: Any) -> tuple[int, ...]:
    found: list[int] = []
    for entry in ports or []:
        target = entry.get("target") if isinstance(entry, Mapping) else _short_port(entry)
        _append_port(found, target)
    for entry in expose or []:
        _append_port(found, str(entry).split("/", 1)[0].split("-", 1)[0])
    return tuple(found)


def _short_port(entry: Any) -> str:
    """The container port of a short-syntax mapping (``"127.0.0.1:8080:80/tcp"`` -> ``80``)."""
    text = str(entry).split("/", 1)[0]
    return text.rsplit(":", 1)[-1].split("-", 1)[0]


def _append_port(found: list[int], value: Any) -> None:
    try:
        port = int(value)
    except (TypeError, ValueError):
        return
    if 0 < port < 65536 and port not in found:
        found.append(port)


def _env_port(environment: Any) -> int | None:
    value: Any = None
    if isinstance(environment, Mapping):
        value = environment.get("PORT")
    elif isinstance(environment, list):
        for item in environment:
            key, _, rest = str(item).partition("=")
            if key == "PORT":
                value = rest
    try:
        port = int(str(value))
    except ValueError:
        return None
    return port if 0 < port < 65536 else None


def _services_from_yaml(root: Path, compose_file: Path) -> tuple[ServiceInfo, ...]:
    """Services read straight from the file (no ``extends``/``include``): Docker is missing."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        data = YAML(typ="safe", pure=True).load(compose_file.read_text(encoding="utf-8"))
    except (OSError, YAMLError) as exc:
        raise ComposeError(
            f"{compose_file.name}: cannot read it as YAML: {str(exc).splitlines()[0]}",
            hint="fix the compose file, then run `stagecraft init` again",
        ) from None
    services = data.get("services") if isinstance(data, Mapping) else None
    if not isinstance(services, Mapping):
        return ()
    infos: list[ServiceInfo] = []
    for name in sorted(services, key=str):
        raw = services[name]
        if not isinstance(raw, Mapping):
            raw = {}
        resolved = dict(raw)
        resolved["image"] = _interpolate(raw["image"]) if raw.get("image") else None
        infos.append(_service_info(str(name), resolved, root))
    return tuple(infos)


def _interpolate(value: Any, environ: Mapping[str, str] | None = None) -> str:
    """Resolve ``${VAR}`` references as Compose would, unset ones empty (best effort).

    The config's own grammar (:func:`stagecraft.config.interpolate.interpolate`);
    a malformed reference leaves the value as written.
    """
    try:
        return interpolate(str(value), os.environ if environ is None else environ, lenient=True)
    except InterpolationError:
        return str(value)


def relative_path(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` as a posix string (``.`` for the root itself)."""
    try:
        rel = os.path.relpath(path.resolve(), root.resolve())
    except ValueError:
        return path.as_posix()
    return PurePosixPath(Path(rel).as_posix()).as_posix()
