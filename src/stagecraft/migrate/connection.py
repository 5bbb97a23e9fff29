"""Where a database is: its DSN for local development, and how it was found.

For ``stagecraft migrate`` without ``--env`` (and ``stagecraft dev``) the DSN
comes from, in order:

1. the variable named by ``databases.<name>.url_env`` (e.g. ``DATABASE_URL``)
   in the process environment;
2. the database's compose ``service``: its published port on the host
   (a fixed ``ports:`` mapping, else what ``docker compose port`` reports for
   the running container) and the ``POSTGRES_USER`` / ``POSTGRES_PASSWORD`` /
   ``POSTGRES_DB`` of the service's ``environment`` (the official image's
   variables and defaults).

The result says which source was used, without the password. A DSN that
libpq cannot parse is a :class:`~stagecraft.redact.DsnError` naming its source
(a usage error, exit 2), before anything connects; its passwords are
remembered by :mod:`stagecraft.redact`, so no log line shows them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from stagecraft.errors import CommandFailed, CommandTimeout, PrerequisiteMissing
from stagecraft.providers.migration import DatabaseUnreachableError, MigrationConfigError
from stagecraft.redact import check_dsn, redact_dsn, remember_dsn
from stagecraft.suggest import suggestion

if TYPE_CHECKING:
    from stagecraft.config.loader import LoadedConfig
    from stagecraft.config.models import DatabaseConfig

POSTGRES_PORT = 5432


@dataclass(frozen=True)
class Connection:
    """A resolved DSN (kept out of ``repr``) and a printable description of its source."""

    dsn: str = field(repr=False)
    source: str

    def __post_init__(self) -> None:
        check_dsn(self.dsn, where=f"the database URL {self.source}")
        remember_dsn(self.dsn)

    @property
    def shown(self) -> str:
        """``postgresql://app:***@127.0.0.1:5433/shop (from DATABASE_URL)``."""
        return f"{redact_dsn(self.dsn)} ({self.source})"


def database_config(loaded: LoadedConfig, name: str) -> DatabaseConfig:
    """``databases.<name>``; a clear error listing the known names when it is missing."""
    databases = loaded.config.databases
    if name not in databases:
        known = ", ".join(sorted(databases)) or "none configured"
        raise MigrationConfigError(
            f"{loaded.path}: no database {name!r} in databases (known: {known})"
            + suggestion(name, databases, n=3),
            hint="pass --database with one of the known names",
        )
    return databases[name]


def dev_connection(
    loaded: LoadedConfig, name: str, *, environ: Mapping[str, str] | None = None
) -> Connection:
    """The DSN of database ``name`` for local development (see the module docstring)."""
    env = os.environ if environ is None else environ
    db = database_config(loaded, name)
    if env.get(db.url_env):
        return Connection(env[db.url_env], f"from ${db.url_env}")
    if db.service is None:
        raise DatabaseUnreachableError(
            f"database {name}: ${db.url_env} is not set and the database has no compose service",
            hint=f"export {db.url_env}=postgresql://USER:PASSWORD@HOST:PORT/DB, or set "
            f"databases.{name}.service to the compose service that runs it",
        )
    service = _compose_service(loaded, name, db.service)
    environment = service_environment(service)
    port = int(environment.get("PGPORT") or POSTGRES_PORT)
    address = published_address(service, port) or _running_address(loaded, db.service, port)
    if address is None:
        raise DatabaseUnreachableError(
            f"database {name}: ${db.url_env} is not set and compose service {db.service} "
            f"publishes no port for {port} (or is not running)",
            hint=f"start it (`stagecraft dev`, or `docker compose up -d {db.service}`) with "
            f"a published port, or export {db.url_env}",
        )
    dsn = postgres_dsn(environment, *address)
    return Connection(dsn, f"from compose service {db.service}")


def postgres_dsn(environment: Mapping[str, str], host: str, port: int) -> str:
    """A DSN from the official postgres image's variables (user ``postgres`` by default)."""
    if environment.get("POSTGRES_PASSWORD_FILE") and not environment.get("POSTGRES_PASSWORD"):
        raise MigrationConfigError(
            "POSTGRES_PASSWORD_FILE is not supported to derive a DSN",
            hint="set the database's url_env variable to its DSN instead",
        )
    user = environment.get("POSTGRES_USER") or "postgres"
    database = environment.get("POSTGRES_DB") or user
    password = environment.get("POSTGRES_PASSWORD") or ""
    auth = quote(user, safe="") + (":" + quote(password, safe="") if password else "")
    return f"postgresql://{auth}@{host}:{port}/{quote(database, safe='')}"


def service_environment(service: Any) -> dict[str, str]:
    """A compose service's ``environment`` as a plain mapping (unset values dropped)."""
    raw = _raw(service)
    environment = raw.get("environment") or {}
    if isinstance(environment, list):  # not normalised by compose; be lenient
        pairs = (item.split("=", 1) for item in environment if "=" in item)
        return {k: v for k, v in pairs}
    return {str(k): str(v) for k, v in environment.items() if v is not None}


def published_address(service: Any, target: int) -> tuple[str, int] | None:
    """``(host, port)`` of a fixed ``ports:`` mapping of ``target``, if the file has one."""
    for port in _raw(service).get("ports") or []:
        if not isinstance(port, Mapping) or int(port.get("target", 0)) != target:
            continue
        published = str(port.get("published") or "")
        if published.isdigit():
            return _reachable_host(str(port.get("host_ip") or "")), int(published)
    return None


def _running_address(loaded: LoadedConfig, service: str, target: int) -> tuple[str, int] | None:
    """What ``docker compose port`` says for the running container (ephemeral ports too)."""
    from stagecraft.runtime.process import run

    compose = loaded.compose
    if compose is None:
        return None
    directory = compose.project_directory if compose.project_directory != Path(".") else loaded.root
    argv = ["docker", "compose", "--project-directory", str(directory), "-p", compose.name]
    for file in compose.files:
        argv += ["-f", str(file)]
    try:
        result = run([*argv, "port", service, str(target)], timeout=30, check=False)
    except (PrerequisiteMissing, CommandTimeout, CommandFailed):
        return None
    line = result.stdout.strip().splitlines()[0] if result.ok and result.stdout.strip() else ""
    host, _, port = line.rpartition(":")
    if not port.isdigit() or port == "0":
        return None
    return _reachable_host(host.strip("[]")), int(port)


def _reachable_host(host_ip: str) -> str:
    if host_ip in ("", "0.0.0.0", "::"):
        return "127.0.0.1"
    return host_ip


def _compose_service(loaded: LoadedConfig, name: str, service: str) -> Any:
    compose = loaded.compose
    if compose is None or service not in compose.services:
        raise MigrationConfigError(
            f"database {name}: compose service {service!r} not found",
            hint=f"fix databases.{name}.service in {loaded.path}",
        )
    return compose.services[service]


def _raw(service: Any) -> Mapping[str, Any]:
    raw = getattr(service, "raw", service)
    return raw if isinstance(raw, Mapping) else {}
