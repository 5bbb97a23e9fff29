"""The built-in ``raw`` migration engine: plain SQL files against PostgreSQL."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import Field

from stagecraft import log
from stagecraft.errors import REINSTALL_HINT, PrerequisiteMissing
from stagecraft.providers.base import ProviderConfig
from stagecraft.providers.builtin.migration_raw.files import SqlMigration, checksum, discover
from stagecraft.providers.builtin.migration_raw.sql import Statement, split_sql
from stagecraft.providers.migration import (
    AppliedMigration,
    DatabaseUnreachableError,
    MigrationEngine,
    MigrationError,
    MigrationFailedError,
    MigrationFileError,
    MigrationLockError,
    MigrationReport,
    MigrationResult,
    MigrationTarget,
    OnApplied,
    build_report,
    display_path,
    scrub,
)

if TYPE_CHECKING:
    import psycopg
    from psycopg import sql

__all__ = [
    "RawMigrationEngine",
    "SqlMigration",
    "Statement",
    "checksum",
    "discover",
    "lock_key",
    "split_sql",
]

logger = logging.getLogger(__name__)

TRANSACTION_CONTROL = {"begin", "start", "commit", "end", "abort", "rollback"}


class RawMigrationEngine(MigrationEngine):
    """PostgreSQL migrations from plain SQL files, applied in version order.

    Files are named ``<version>_<title>.sql`` (``0001_init.sql``,
    ``20240101_orders.sql``); the numeric prefix orders them. Each file runs in
    its own transaction, and is recorded in the tracking table (``version``,
    ``name``, ``checksum``, ``applied_at``, ``execution_ms``) in that same
    transaction. A line ``-- stagecraft:no-transaction`` makes a file run
    statement by statement outside a transaction (for ``CREATE INDEX
    CONCURRENTLY``). A PostgreSQL advisory lock serialises concurrent runs.

    In ``stagecraft.yml``::

        databases:
          main:
            service: postgres
            url_env: DATABASE_URL
            migrations: {engine: raw, path: migrations, table: stagecraft_migrations}

    From Python::

        engine = registry("migration").create("raw", {"lock_timeout": 60})
        engine.apply(MigrationTarget(dsn, Path("migrations"), database="main"))
    """

    id = "raw"

    class Config(ProviderConfig):
        """Connection and lock tuning (all optional)."""

        connect_timeout: float = Field(default=10.0, gt=0, description="seconds")
        lock_timeout: float = Field(
            default=300.0, gt=0, description="seconds to wait for another run's lock"
        )

    config: Config

    def discover(self, directory: Path, database: str = "main") -> list[SqlMigration]:
        """The migration files in ``directory``, in version order."""
        return discover(directory, database)

    def report(self, target: MigrationTarget) -> MigrationReport:
        files = discover(target.directory, target.database)
        with self._connect(target) as conn:
            table = _existing_table(conn, target.table)
            applied = _read_applied(conn, table, target) if table is not None else []
        return build_report(target.database, files, applied)

    def apply(
        self,
        target: MigrationTarget,
        *,
        allow_out_of_order: bool = False,
        on_applied: OnApplied | None = None,
    ) -> list[MigrationResult]:
        files = discover(target.directory, target.database)
        by_version = {f.version: f for f in files}
        results: list[MigrationResult] = []
        with self._connect(target) as conn, self._locked(conn, target):
            table = _ensure_table(conn, target)
            report = build_report(target.database, files, _read_applied(conn, table, target))
            report.check(allow_out_of_order=allow_out_of_order)
            for info in report.pending:
                migration = by_version[info.version]
                result = _apply_one(conn, table, migration, target, results)
                results.append(result)
                log.event(
                    logger,
                    logging.DEBUG,
                    f"applied {migration.name} in {result.duration * 1000:.0f} ms",
                    phase="migrate",
                    database=target.database,
                )
                if on_applied is not None:
                    on_applied(result)
        return results

    @contextmanager
    def _connect(self, target: MigrationTarget) -> Iterator[psycopg.Connection[Any]]:
        """An autocommit connection; connection failures become DatabaseUnreachableError."""
        psycopg = _psycopg()
        try:
            conn = psycopg.connect(
                target.dsn,
                autocommit=True,
                connect_timeout=max(1, round(self.config.connect_timeout)),
                application_name="stagecraft migrate",
                prepare_threshold=None,
            )
        except psycopg.Error as exc:
            first = scrub(str(exc), target.dsn).strip().splitlines()[0]
            raise DatabaseUnreachableError(
                f"database {target.database}: cannot connect to {target.shown}: {first}",
                hint="check that the database is running and reachable, and the "
                "credentials its source provides",
            ) from None
        try:
            yield conn
        finally:
            conn.close()

    @contextmanager
    def _locked(self, conn: psycopg.Connection[Any], target: MigrationTarget) -> Iterator[None]:
        """Hold the session advisory lock that serialises runs on this database."""
        import psycopg

        key = lock_key(target.table)
        timeout = f"{int(self.config.lock_timeout * 1000)}ms"
        conn.execute("SELECT set_config('lock_timeout', %s, false)", (timeout,))
        try:
            conn.execute("SELECT pg_advisory_lock(%s)", (key,))
        except psycopg.errors.LockNotAvailable:
            holder = _lock_holder(conn, key)
            raise MigrationLockError(
                f"database {target.database}: another migration run{holder} held the lock "
                f"for more than {self.config.lock_timeout:g}s",
                hint="wait for it to finish and run again, or end that session "
                "(SELECT pg_terminate_backend(<pid>)) if it is stuck",
            ) from None
        finally:
            conn.execute("RESET lock_timeout")
        try:
            yield
        finally:
            # Closing the session releases the lock too; an unlock failure must not hide
            # the error (or Ctrl-C) that got us here.
            if not conn.closed and not conn.broken:
                with suppress(psycopg.Error):
                    conn.execute("SELECT pg_advisory_unlock(%s)", (key,))


def _psycopg() -> Any:
    """The psycopg module (imported late: ``stagecraft --help`` must not pay for it)."""
    try:
        import psycopg
    except ImportError:
        raise PrerequisiteMissing(
            "the raw migration engine needs psycopg, which is not installed",
            hint=f"{REINSTALL_HINT} (psycopg[binary] is one of them)",
        ) from None
    return psycopg


def lock_key(table: str) -> int:
    """The advisory-lock key of a tracking table (a signed 64-bit integer)."""
    digest = hashlib.sha256(f"stagecraft-migrations:{table}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _table_ident(name: str) -> sql.Identifier:
    from psycopg import sql

    return sql.Identifier(*name.split("."))


def _existing_table(conn: psycopg.Connection[Any], name: str) -> sql.Identifier | None:
    """The tracking table, schema-qualified, or None when it does not exist yet."""
    from psycopg import sql

    quoted = _table_ident(name).as_string(conn)
    row = conn.execute(
        "SELECT n.nspname, c.relname FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = to_regclass(%s)",
        (quoted,),
    ).fetchone()
    return sql.Identifier(row[0], row[1]) if row else None


def _ensure_table(conn: psycopg.Connection[Any], target: MigrationTarget) -> sql.Identifier:
    """Create the tracking table if needed; return it schema-qualified."""
    import psycopg
    from psycopg import sql

    create = sql.SQL(
        "CREATE TABLE IF NOT EXISTS {} ("
        " version bigint PRIMARY KEY,"
        " name text NOT NULL,"
        " checksum text NOT NULL,"
        " applied_at timestamptz NOT NULL DEFAULT now(),"
        " execution_ms integer NOT NULL)"
    ).format(_table_ident(target.table))
    try:
        conn.execute(create)
    except psycopg.Error as exc:
        raise MigrationError(
            f"database {target.database}: cannot create tracking table {target.table}: "
            f"{_primary(exc, target.dsn)}",
            hint="grant the migration user CREATE on the schema, or create the table once "
            "as an owner",
        ) from None
    table = _existing_table(conn, target.table)
    assert table is not None
    return table


def _read_applied(
    conn: psycopg.Connection[Any], table: sql.Identifier, target: MigrationTarget
) -> list[AppliedMigration]:
    import psycopg
    from psycopg import sql

    query = sql.SQL(
        "SELECT version, name, checksum, applied_at, execution_ms FROM {} ORDER BY version"
    ).format(table)
    try:
        rows = conn.execute(query).fetchall()
    except psycopg.Error as exc:
        raise MigrationError(
            f"database {target.database}: tracking table {target.table} is not a Stagecraft "
            f"migrations table: {_primary(exc, target.dsn)}",
            hint=f"set databases.{target.database}.migrations.table to another name",
        ) from None
    return [AppliedMigration(int(r[0]), r[1], r[2], r[3], int(r[4])) for r in rows]


def _apply_one(
    conn: psycopg.Connection[Any],
    table: sql.Identifier,
    migration: SqlMigration,
    target: MigrationTarget,
    done: Sequence[MigrationResult],
) -> MigrationResult:
    """Run one file (in a transaction unless marked) and record it; raise MigrationFailedError."""
    import psycopg
    from psycopg import sql

    statements = split_sql(migration.text)
    if migration.transactional:
        _refuse_transaction_control(migration, statements)
    record = sql.SQL(
        "INSERT INTO {} (version, name, checksum, execution_ms) VALUES (%s, %s, %s, %s)"
    ).format(table)
    started = time.monotonic()
    current = Statement("", 0)

    def run_and_record() -> None:
        nonlocal current
        for current in statements:
            conn.execute(current.sql.encode())
        current = Statement("", 0)
        elapsed = int((time.monotonic() - started) * 1000)
        conn.execute(record, (migration.version, migration.name, migration.checksum, elapsed))

    try:
        if migration.transactional:
            with conn.transaction():
                run_and_record()
        else:
            run_and_record()
    except psycopg.Error as exc:
        raise MigrationFailedError(
            database=target.database,
            path=display_path(migration.path),
            line=_error_line(current, exc),
            db_message=_primary(exc, target.dsn),
            detail=_detail(exc, target.dsn),
            applied=done,
            transactional=migration.transactional,
        ) from None
    finally:
        _reset_session(conn)
    duration = time.monotonic() - started
    return MigrationResult(
        target.database, migration.version, migration.name, duration, migration.transactional
    )


def _reset_session(conn: psycopg.Connection[Any]) -> None:
    """Undo session settings (SET search_path, ...) so they do not leak into the next file."""
    import psycopg

    if conn.closed or conn.broken:
        return
    try:
        conn.execute("RESET ALL")
    except psycopg.Error:
        logger.debug("RESET ALL failed after a migration", exc_info=True)


def _refuse_transaction_control(migration: SqlMigration, statements: Sequence[Statement]) -> None:
    for statement in statements:
        words = statement.sql.split(None, 2)
        first = words[0].lower().rstrip(";") if words else ""
        second = words[1].lower() if len(words) > 1 else ""
        if first in TRANSACTION_CONTROL and not (first == "rollback" and second == "to"):
            raise MigrationFileError(
                f"{display_path(migration.path)}:{statement.line}: "
                f"{first.upper()} is not allowed: each migration file already runs in "
                "its own transaction",
                hint="remove the statement, or add the line `-- stagecraft:no-transaction` "
                "to manage transactions yourself",
            )


def _error_line(statement: Statement, exc: Exception) -> int:
    """The file line of an error: the statement's line plus the error position within it."""
    diag = getattr(exc, "diag", None)
    position = getattr(diag, "statement_position", None)
    if statement.line == 0:
        return 0
    if position:
        try:
            offset = int(position) - 1
        except ValueError:
            offset = 0
        return statement.line + statement.sql[:offset].count("\n")
    return statement.line


def _primary(exc: Exception, dsn: str) -> str:
    diag = getattr(exc, "diag", None)
    text = getattr(diag, "message_primary", None) or str(exc).strip().splitlines()[0]
    return scrub(str(text), dsn)


def _detail(exc: Exception, dsn: str) -> str | None:
    diag = getattr(exc, "diag", None)
    detail = getattr(diag, "message_detail", None)
    return scrub(str(detail), dsn) if detail else None


def _lock_holder(conn: psycopg.Connection[Any], key: int) -> str:
    """`` (pid 123, app, from 10.0.0.5)`` for the session holding the lock, or ``""``."""
    row = conn.execute(
        "SELECT a.pid, a.application_name, host(a.client_addr) FROM pg_locks l "
        "JOIN pg_stat_activity a ON a.pid = l.pid "
        "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 "
        "AND l.classid::bigint = %s AND l.objid::bigint = %s "
        "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        ((key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF),
    ).fetchone()
    if row is None:
        return ""
    parts = [f"pid {row[0]}"] + [str(v) for v in row[1:] if v]
    return " (" + ", ".join(parts) + ")"
