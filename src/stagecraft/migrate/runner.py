"""From ``stagecraft.yml`` to engine calls: which databases, which engine, which target.

The ``migrate`` command, the deploy phases and ``stagecraft dev`` all go
through :func:`open_target`, which yields a :class:`MigrationTarget` whose
DSN comes from the local sources (no ``env``) or an SSH tunnel (``env``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from stagecraft.migrate.connection import database_config, dev_connection
from stagecraft.providers.migration import (
    MigrationConfigError,
    MigrationEngine,
    MigrationTarget,
)

if TYPE_CHECKING:
    from stagecraft.config.loader import LoadedConfig
    from stagecraft.runtime.ssh import SSHOptions


@dataclass(frozen=True)
class MigrationSetup:
    """One database's migration settings, resolved against the project root."""

    database: str
    engine: str
    directory: Path
    table: str
    strategy: str


def setups(loaded: LoadedConfig, only: str | None = None) -> list[MigrationSetup]:
    """The databases that have ``migrations`` (all, or just ``only``), in config order."""
    names = [only] if only is not None else list(loaded.config.databases)
    found: list[MigrationSetup] = []
    for name in names:
        db = database_config(loaded, name)
        if db.migrations is None:
            if only is not None:
                raise MigrationConfigError(
                    f"{loaded.path}: database {name} has no migrations configured",
                    hint=f"add databases.{name}.migrations: {{path: migrations}}",
                )
            continue
        m = db.migrations
        found.append(
            MigrationSetup(name, m.engine, (loaded.root / m.path).resolve(), m.table, m.strategy)
        )
    return found


def engine_for(setup: MigrationSetup) -> MigrationEngine:
    """The engine provider named by the setup (unknown ids list the known ones)."""
    from stagecraft.providers import registry

    engine = registry("migration").create(setup.engine, {})
    if not isinstance(engine, MigrationEngine):
        raise MigrationConfigError(f"migration provider {setup.engine!r} is not a MigrationEngine")
    return engine


@contextmanager
def open_target(
    loaded: LoadedConfig,
    setup: MigrationSetup,
    *,
    env: str | None = None,
    environ: Mapping[str, str] | None = None,
    ssh_options: SSHOptions | None = None,
) -> Iterator[MigrationTarget]:
    """The engine's target for ``setup``: locally, or in ``env`` through an SSH tunnel."""
    if env is None:
        connection = dev_connection(loaded, setup.database, environ=environ)
        yield _target(setup, connection.dsn, connection.shown)
        return
    from stagecraft.migrate.tunnel import env_connection

    with env_connection(
        loaded, env, setup.database, environ=environ, ssh_options=ssh_options
    ) as connection:
        yield _target(setup, connection.dsn, connection.shown)


def _target(setup: MigrationSetup, dsn: str, shown: str) -> MigrationTarget:
    return MigrationTarget(
        dsn=dsn, directory=setup.directory, database=setup.database, table=setup.table, source=shown
    )
