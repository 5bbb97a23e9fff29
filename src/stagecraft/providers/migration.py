"""Migration engines: the ``migration`` provider kind.

A migration engine brings one database up to date from a directory of
migrations. It gets a :class:`MigrationTarget` (a DSN, a directory, the name
of its tracking table) and never reads ``stagecraft.yml``: resolving where the
database is (an env var, the dev compose service, an SSH tunnel) is the job
of :mod:`stagecraft.migrate`.

Every engine answers two questions:

- :meth:`MigrationEngine.report` -- read-only: which migrations are applied,
  pending, changed since they were applied, or missing on disk. It reads the
  database, so ``--plan`` never guesses.
- :meth:`MigrationEngine.apply` -- apply what is pending, in order, each one
  atomically, and return one :class:`MigrationResult` per applied migration.

The checks shared by all engines (a changed applied file, a pending file
older than the newest applied one) live here in :meth:`MigrationReport.check`.

A third-party engine is a subclass registered under the entry-point group
``stagecraft.providers.migration``::

    class SqitchEngine(MigrationEngine):
        id = "sqitch"

        def report(self, target: MigrationTarget) -> MigrationReport: ...

        def apply(self, target, *, allow_out_of_order=False, on_applied=None): ...

and in its ``pyproject.toml``::

    [project.entry-points."stagecraft.providers.migration"]
    sqitch = "stagecraft_sqitch:SqitchEngine"

Using an engine directly (this is what ``stagecraft migrate`` does)::

    from stagecraft.providers import registry
    from stagecraft.providers.migration import MigrationTarget

    engine = registry("migration").create("raw", {})
    target = MigrationTarget(dsn="postgresql://app:pw@127.0.0.1/shop",
                             directory=Path("migrations"), database="main")
    print(engine.report(target).pending)
    for result in engine.apply(target):
        print(result.name, f"{result.duration * 1000:.0f} ms")
"""

from __future__ import annotations

import os
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar

from stagecraft.errors import ExitCode, StagecraftError
from stagecraft.providers.base import Provider
from stagecraft.redact import Redactor, dsn_secrets, redact, redact_dsn

DEFAULT_TABLE = "stagecraft_migrations"
TABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}(\.[A-Za-z_][A-Za-z0-9_]{0,62})?$")


class MigrationError(StagecraftError):
    """Root of the migration errors."""


class MigrationFileError(MigrationError):
    """A migration file or directory is unusable (bad name, duplicate version, unreadable)."""

    exit_code = ExitCode.USAGE


class MigrationConfigError(MigrationError):
    """The migration settings in ``stagecraft.yml`` are unusable (unknown database, ...)."""

    exit_code = ExitCode.USAGE


class ChecksumMismatchError(MigrationError):
    """An applied migration's file changed on disk since it was applied."""

    exit_code = ExitCode.USAGE

    def __init__(self, database: str, changed: Sequence[MigrationInfo]) -> None:
        self.changed = tuple(changed)
        self.details = [
            f"{m.path or m.name} was changed after it was applied to database {database} "
            f"(checksum {_short(m.applied_checksum)} applied, {_short(m.checksum)} on disk)"
            for m in self.changed
        ]
        more = f" (and {len(self.details) - 1} more)" if len(self.details) > 1 else ""
        super().__init__(
            self.details[0] + more,
            hint="never edit an applied migration: restore the file (e.g. `git checkout` it) "
            "and put the change in a new migration",
        )

    def lines(self) -> list[str]:
        return list(self.details)


class OutOfOrderError(MigrationError):
    """A pending migration is older than the newest applied one (a gap in versions)."""

    exit_code = ExitCode.USAGE

    def __init__(self, database: str, pending: Sequence[MigrationInfo], newest: int) -> None:
        self.pending = tuple(pending)
        self.details = [
            f"{m.path or m.name} (version {m.version}) is pending, but version {newest} is "
            f"already applied to database {database}"
            for m in self.pending
        ]
        more = f" (and {len(self.details) - 1} more)" if len(self.details) > 1 else ""
        super().__init__(
            self.details[0] + more,
            hint=f"renumber the file above {newest}, or pass --allow-out-of-order "
            "if it is safe to apply it late",
        )

    def lines(self) -> list[str]:
        return list(self.details)


class MigrationFailedError(MigrationError):
    """A migration's SQL failed: names the file, the line and the database's message."""

    exit_code = ExitCode.FAILED

    def __init__(
        self,
        *,
        database: str,
        path: str,
        line: int,
        db_message: str,
        detail: str | None = None,
        applied: Sequence[MigrationResult] = (),
        transactional: bool = True,
    ) -> None:
        self.database = database
        self.path = path
        self.line = line
        self.db_message = db_message
        self.detail = detail
        self.applied = tuple(applied)
        self.transactional = transactional
        where = f"{path}:{line}" if line else path
        done = len(self.applied)
        kept = (
            f"{done} earlier migration{'s' if done != 1 else ''} of this run "
            f"{'stay' if done != 1 else 'stays'} applied; "
            if done
            else ""
        )
        if transactional:
            hint = f"{kept}this file was rolled back: fix it and run `stagecraft migrate` again"
        else:
            hint = (
                f"{kept}this file runs without a transaction, so its statements before "
                f"line {line} stay applied: make them safe to re-run, then run "
                "`stagecraft migrate` again"
            )
        super().__init__(f"{where}: database {database}: {db_message}", hint=hint)

    def lines(self) -> list[str]:
        return [self.message] + ([f"detail: {self.detail}"] if self.detail else [])


class DatabaseUnreachableError(MigrationError):
    """The database could not be reached or refused the login."""

    exit_code = ExitCode.UNREACHABLE


class MigrationLockError(MigrationError):
    """Another run held the database's migration lock for longer than the lock timeout."""

    exit_code = ExitCode.LOCK_HELD


class MigrationState(StrEnum):
    """Where one migration stands against one database."""

    APPLIED = "applied"
    PENDING = "pending"
    CHANGED = "changed"
    MISSING = "missing"


@dataclass(frozen=True)
class MigrationTarget:
    """One database to migrate: where it is, where its migrations are, how to track them.

    ``dsn`` holds a password and is kept out of ``repr``; ``source`` is what
    may be shown (e.g. ``postgresql://app@127.0.0.1:5433/shop (from DATABASE_URL)``).
    """

    dsn: str = field(repr=False)
    directory: Path
    database: str = "main"
    table: str = DEFAULT_TABLE
    source: str = ""

    def __post_init__(self) -> None:
        if not TABLE_NAME.fullmatch(self.table):
            raise MigrationFileError(
                f"database {self.database}: invalid tracking table name {self.table!r}",
                hint="use letters, digits and underscores, optionally schema-qualified "
                "(e.g. stagecraft_migrations or ops.migrations)",
            )

    @property
    def shown(self) -> str:
        """What to print about the connection: the source, or the redacted DSN."""
        return self.source or redact_dsn(self.dsn)


@dataclass(frozen=True)
class MigrationFile:
    """One migration on disk."""

    version: int
    name: str
    path: Path
    checksum: str


@dataclass(frozen=True)
class AppliedMigration:
    """One row of the tracking table."""

    version: int
    name: str
    checksum: str
    applied_at: datetime
    execution_ms: int


@dataclass(frozen=True)
class MigrationInfo:
    """A migration's state: on disk, in the database, or both."""

    version: int
    name: str
    state: MigrationState
    path: str | None = None
    checksum: str | None = None
    applied_checksum: str | None = None
    applied_at: datetime | None = None
    execution_ms: int | None = None
    out_of_order: bool = False

    def to_json(self) -> dict[str, Any]:
        """Plain data for ``--json``."""
        return {
            "version": self.version,
            "name": self.name,
            "state": self.state.value,
            "out_of_order": self.out_of_order,
            "checksum": self.checksum,
            "applied_checksum": self.applied_checksum,
            "applied_at": self.applied_at.isoformat() if self.applied_at else None,
            "execution_ms": self.execution_ms,
        }


@dataclass(frozen=True)
class MigrationReport:
    """Every migration of one database with its state, in version order."""

    database: str
    migrations: tuple[MigrationInfo, ...]

    def of_state(self, state: MigrationState) -> tuple[MigrationInfo, ...]:
        """The migrations in ``state``."""
        return tuple(m for m in self.migrations if m.state is state)

    @property
    def pending(self) -> tuple[MigrationInfo, ...]:
        return self.of_state(MigrationState.PENDING)

    @property
    def applied(self) -> tuple[MigrationInfo, ...]:
        return self.of_state(MigrationState.APPLIED)

    @property
    def changed(self) -> tuple[MigrationInfo, ...]:
        return self.of_state(MigrationState.CHANGED)

    @property
    def missing(self) -> tuple[MigrationInfo, ...]:
        return self.of_state(MigrationState.MISSING)

    @property
    def out_of_order(self) -> tuple[MigrationInfo, ...]:
        return tuple(m for m in self.pending if m.out_of_order)

    @property
    def newest_applied(self) -> int | None:
        versions = [m.version for m in self.migrations if m.applied_at is not None]
        return max(versions) if versions else None

    def check(self, *, allow_out_of_order: bool = False) -> None:
        """Raise if applying would be unsafe: a changed applied file, or an out-of-order one."""
        if self.changed:
            raise ChecksumMismatchError(self.database, self.changed)
        newest = self.newest_applied
        if self.out_of_order and not allow_out_of_order and newest is not None:
            raise OutOfOrderError(self.database, self.out_of_order, newest)

    def to_json(self) -> dict[str, Any]:
        """Plain data for ``--json``."""
        return {
            "database": self.database,
            "migrations": [m.to_json() for m in self.migrations],
            "pending": [m.name for m in self.pending],
        }


@dataclass(frozen=True)
class MigrationResult:
    """One migration that was applied by this run."""

    database: str
    version: int
    name: str
    duration: float
    transactional: bool = True

    def to_json(self) -> dict[str, Any]:
        """Plain data for ``--json``."""
        return {
            "database": self.database,
            "version": self.version,
            "name": self.name,
            "duration_ms": round(self.duration * 1000, 1),
            "transactional": self.transactional,
        }


OnApplied = Callable[[MigrationResult], None]
"""Called after each migration is applied and recorded (for progress output)."""


class MigrationEngine(Provider, ABC):
    """Base class of migration engines (provider kind ``migration``)."""

    kind: ClassVar[str] = "migration"

    @abstractmethod
    def report(self, target: MigrationTarget) -> MigrationReport:
        """Read-only: every migration with its state against the target database."""

    @abstractmethod
    def apply(
        self,
        target: MigrationTarget,
        *,
        allow_out_of_order: bool = False,
        on_applied: OnApplied | None = None,
    ) -> list[MigrationResult]:
        """Apply the pending migrations in order; stop at the first failure."""

    def plan(self, target: MigrationTarget, *, allow_out_of_order: bool = False) -> MigrationReport:
        """The report, after checking it is safe to apply (raises like :meth:`apply` would)."""
        report = self.report(target)
        report.check(allow_out_of_order=allow_out_of_order)
        return report


def build_report(
    database: str,
    files: Iterable[MigrationFile],
    applied: Iterable[AppliedMigration],
    *,
    base: Path | None = None,
) -> MigrationReport:
    """Join the files on disk with the tracking rows into a :class:`MigrationReport`."""
    rows = {row.version: row for row in applied}
    newest = max(rows, default=None)
    infos: list[MigrationInfo] = []
    for f in files:
        row = rows.pop(f.version, None)
        path = display_path(f.path, base)
        if row is None:
            late = newest is not None and f.version < newest
            infos.append(
                MigrationInfo(
                    f.version, f.name, MigrationState.PENDING, path, f.checksum, out_of_order=late
                )
            )
            continue
        state = MigrationState.APPLIED if row.checksum == f.checksum else MigrationState.CHANGED
        infos.append(
            MigrationInfo(
                f.version,
                f.name,
                state,
                path,
                f.checksum,
                row.checksum,
                row.applied_at,
                row.execution_ms,
            )
        )
    for row in rows.values():
        infos.append(
            MigrationInfo(
                row.version,
                row.name,
                MigrationState.MISSING,
                None,
                None,
                row.checksum,
                row.applied_at,
                row.execution_ms,
            )
        )
    infos.sort(key=lambda m: (m.version, m.name))
    return MigrationReport(database, tuple(infos))


def display_path(path: Path, base: Path | None = None) -> str:
    """``path`` relative to ``base`` (default: the current directory) when under it."""
    anchor = base or Path(os.getcwd())
    try:
        return str(path.resolve().relative_to(anchor.resolve()))
    except ValueError:
        return str(path)


def scrub(text: str, dsn: str) -> str:
    """``text`` (a database's message) with every password of ``dsn`` replaced by ``***``."""
    return redact(text, Redactor(dsn_secrets(dsn), min_length=1))


def _short(checksum: str | None) -> str:
    return (checksum or "?")[:12]
