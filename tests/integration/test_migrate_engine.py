"""The raw engine against the real PostgreSQL on this machine (started by scripts/setup.sh)."""

from __future__ import annotations

import subprocess
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from stagecraft.errors import ExitCode
from stagecraft.providers import registry
from stagecraft.providers.builtin.migration_raw import RawMigrationEngine, lock_key
from stagecraft.providers.migration import (
    ChecksumMismatchError,
    DatabaseUnreachableError,
    MigrationFailedError,
    MigrationFileError,
    MigrationLockError,
    MigrationResult,
    MigrationState,
    MigrationTarget,
    OutOfOrderError,
)

pytestmark = pytest.mark.integration

ROLE = "stagecraft_test"
PASSWORD = "stagecraft-test-pw"
ADMIN_DSN = f"postgresql://{ROLE}:{PASSWORD}@127.0.0.1:5432/postgres"


def ensure_test_role() -> None:
    """A login role with CREATEDB that tests use over TCP (peer auth blocks root)."""
    sql = (
        f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{ROLE}') THEN "
        f"CREATE ROLE {ROLE} LOGIN CREATEDB PASSWORD '{PASSWORD}'; END IF; END $$"
    )
    result = subprocess.run(
        ["runuser", "-u", "postgres", "--", "psql", "-v", "ON_ERROR_STOP=1", "-qc", sql],
        capture_output=True,
        text=True,
        timeout=30,
        cwd="/",
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"PostgreSQL is not usable (run scripts/setup.sh): {result.stderr.strip()}")


@contextmanager
def throwaway_database() -> Iterator[str]:
    """The DSN of a new, empty database; dropped on exit. Shared by the migrate tests."""
    import psycopg

    ensure_test_role()
    name = f"sc_mig_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"'.encode())
    try:
        yield f"postgresql://{ROLE}:{PASSWORD}@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())


@pytest.fixture
def dsn() -> Iterator[str]:
    with throwaway_database() as url:
        yield url


def query(dsn: str, sql: str) -> list[tuple[Any, ...]]:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute(sql.encode()).fetchall()


def execute(dsn: str, sql: str) -> None:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.encode())


def engine(**config: Any) -> RawMigrationEngine:
    made = registry("migration").create("raw", config)
    assert isinstance(made, RawMigrationEngine)
    return made


def target(dsn: str, directory: Path, **kw: Any) -> MigrationTarget:
    return MigrationTarget(dsn=dsn, directory=directory, database="main", **kw)


def write(directory: Path, name: str, text: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_text(text)


def test_apply_rerun_add_plan_apply(dsn: str, tmp_path: Path) -> None:
    migrations = tmp_path / "migrations"
    write(migrations, "0001_init.sql", "CREATE TABLE users (id serial PRIMARY KEY, email text);\n")
    write(migrations, "0002_seed.sql", "INSERT INTO users (email) VALUES ('a@example.com');\n")
    raw = engine()
    fresh = raw.report(target(dsn, migrations))
    assert [m.state for m in fresh.migrations] == [MigrationState.PENDING] * 2
    assert query(dsn, "SELECT to_regclass('stagecraft_migrations')") == [(None,)], (
        "report must not create the tracking table"
    )

    seen: list[MigrationResult] = []
    results = raw.apply(target(dsn, migrations), on_applied=seen.append)
    assert [r.name for r in results] == ["0001_init.sql", "0002_seed.sql"] == [s.name for s in seen]
    assert all(r.duration > 0 for r in results)
    assert raw.apply(target(dsn, migrations)) == []

    write(migrations, "0003_orders.sql", "CREATE TABLE orders (id int);\n")
    plan = raw.plan(target(dsn, migrations))
    assert [m.name for m in plan.pending] == ["0003_orders.sql"]
    assert [r.name for r in raw.apply(target(dsn, migrations))] == ["0003_orders.sql"]
    recorded = query(
        dsn, "SELECT version, name, length(checksum), execution_ms >= 0 FROM stagecraft_migrations"
    )
    assert recorded == [
        (1, "0001_init.sql", 64, True),
        (2, "0002_seed.sql", 64, True),
        (3, "0003_orders.sql", 64, True),
    ]
    assert query(dsn, "SELECT count(*) FROM users") == [(1,)]


def test_failing_migration_rolls_back_and_keeps_earlier_ones(dsn: str, tmp_path: Path) -> None:
    migrations = tmp_path / "migrations"
    write(migrations, "0001_a.sql", "CREATE TABLE a (id int);\n")
    write(
        migrations,
        "0002_b.sql",
        "-- creates b, then fails\nCREATE TABLE b (id int);\n\n"
        "INSERT INTO b\n  SELECT id FROM nope;\n",
    )
    write(migrations, "0003_c.sql", "CREATE TABLE c (id int);\n")
    with pytest.raises(MigrationFailedError) as info:
        engine().apply(target(dsn, migrations))
    error = info.value
    assert error.exit_code is ExitCode.FAILED
    assert error.path.endswith("0002_b.sql")
    assert error.line == 5
    assert 'relation "nope" does not exist' in error.message
    assert error.message.startswith(f"{error.path}:5: database main:")
    assert [r.name for r in error.applied] == ["0001_a.sql"]
    assert query(dsn, "SELECT name FROM stagecraft_migrations") == [("0001_a.sql",)]
    assert query(
        dsn, "SELECT to_regclass('a') IS NOT NULL, to_regclass('b'), to_regclass('c')"
    ) == [(True, None, None)]


def test_syntax_error_line_inside_a_multi_line_statement(dsn: str, tmp_path: Path) -> None:
    migrations = tmp_path / "m"
    write(migrations, "1_x.sql", "SELECT 1;\nCREATE TABLE t (\n  id int,\n  name txet oops\n);\n")
    with pytest.raises(MigrationFailedError) as info:
        engine().apply(target(dsn, migrations))
    assert info.value.line == 4
    assert "syntax error" in info.value.db_message


def test_edited_applied_file_is_a_checksum_error(dsn: str, tmp_path: Path) -> None:
    migrations = tmp_path / "m"
    write(migrations, "0001_a.sql", "CREATE TABLE a (id int);\n")
    raw = engine()
    raw.apply(target(dsn, migrations))
    write(migrations, "0001_a.sql", "CREATE TABLE a (id bigint);\n")
    write(migrations, "0002_b.sql", "CREATE TABLE b (id int);\n")
    report = raw.report(target(dsn, migrations))
    assert [m.state for m in report.migrations] == [MigrationState.CHANGED, MigrationState.PENDING]
    with pytest.raises(ChecksumMismatchError) as info:
        raw.apply(target(dsn, migrations))
    assert "0001_a.sql was changed after it was applied" in info.value.message
    assert info.value.exit_code is ExitCode.USAGE
    assert query(dsn, "SELECT to_regclass('b')") == [(None,)], "nothing runs after the check fails"


def test_no_transaction_marker_allows_create_index_concurrently(dsn: str, tmp_path: Path) -> None:
    migrations = tmp_path / "m"
    write(migrations, "0001_t.sql", "CREATE TABLE t (a int, b int);\n")
    write(migrations, "0002_idx.sql", "CREATE INDEX CONCURRENTLY t_a ON t (a);\n")
    raw = engine()
    with pytest.raises(MigrationFailedError, match="cannot run inside a transaction block"):
        raw.apply(target(dsn, migrations))
    write(
        migrations,
        "0002_idx.sql",
        "-- stagecraft:no-transaction\nCREATE INDEX CONCURRENTLY t_a ON t (a);\n"
        "CREATE INDEX CONCURRENTLY t_b ON t (b);\n",
    )
    results = raw.apply(target(dsn, migrations))
    assert [(r.name, r.transactional) for r in results] == [("0002_idx.sql", False)]
    indexes = query(dsn, "SELECT indexname FROM pg_indexes WHERE tablename = 't' ORDER BY 1")
    assert indexes == [("t_a",), ("t_b",)]


def test_transaction_control_in_a_transactional_file_is_refused(dsn: str, tmp_path: Path) -> None:
    migrations = tmp_path / "m"
    write(migrations, "0001_a.sql", "CREATE TABLE a (id int);\nCOMMIT;\n")
    with pytest.raises(MigrationFileError, match=r"0001_a\.sql:2: COMMIT is not allowed"):
        engine().apply(target(dsn, migrations))
    assert query(dsn, "SELECT to_regclass('a')") == [(None,)]


def test_out_of_order_file_needs_the_flag(dsn: str, tmp_path: Path) -> None:
    migrations = tmp_path / "m"
    write(migrations, "0001_a.sql", "CREATE TABLE a (id int);\n")
    write(migrations, "0003_c.sql", "CREATE TABLE c (id int);\n")
    raw = engine()
    raw.apply(target(dsn, migrations))
    write(migrations, "0002_b.sql", "CREATE TABLE b (id int);\n")
    with pytest.raises(OutOfOrderError, match=r"0002_b\.sql \(version 2\) is pending"):
        raw.apply(target(dsn, migrations))
    assert [r.name for r in raw.apply(target(dsn, migrations), allow_out_of_order=True)] == [
        "0002_b.sql"
    ]


def test_concurrent_runs_apply_each_migration_once(dsn: str, tmp_path: Path) -> None:
    migrations = tmp_path / "m"
    write(migrations, "0001_a.sql", "CREATE TABLE log (n int);\nSELECT pg_sleep(0.3);\n")
    write(migrations, "0002_b.sql", "INSERT INTO log VALUES (2);\n")
    write(migrations, "0003_c.sql", "INSERT INTO log VALUES (3);\n")
    barrier = threading.Barrier(3)
    outcomes: list[list[MigrationResult] | BaseException] = []

    def run() -> None:
        barrier.wait()
        try:
            outcomes.append(engine().apply(target(dsn, migrations)))
        except BaseException as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert all(isinstance(o, list) for o in outcomes), outcomes
    applied = sorted(r.name for o in outcomes if isinstance(o, list) for r in o)
    assert applied == ["0001_a.sql", "0002_b.sql", "0003_c.sql"]
    assert query(dsn, "SELECT n FROM log ORDER BY n") == [(2,), (3,)]


def test_lock_held_too_long_is_reported_with_the_holder(dsn: str, tmp_path: Path) -> None:
    import psycopg

    migrations = tmp_path / "m"
    write(migrations, "0001_a.sql", "CREATE TABLE a (id int);\n")
    with psycopg.connect(dsn, autocommit=True, application_name="other-run") as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (lock_key("stagecraft_migrations"),))
        with pytest.raises(MigrationLockError) as info:
            engine(lock_timeout=0.3).apply(target(dsn, migrations))
    assert info.value.exit_code is ExitCode.LOCK_HELD
    assert "other-run" in info.value.message and "pid " in info.value.message
    assert [r.name for r in engine().apply(target(dsn, migrations))] == ["0001_a.sql"]


def test_session_settings_do_not_leak_between_files(dsn: str, tmp_path: Path) -> None:
    migrations = tmp_path / "m"
    write(migrations, "0001_s.sql", "CREATE SCHEMA side;\nSET search_path = side;\n")
    write(migrations, "0002_t.sql", "CREATE TABLE t (id int);\n")
    engine().apply(target(dsn, migrations))
    assert query(dsn, "SELECT schemaname FROM pg_tables WHERE tablename = 't'") == [("public",)]
    assert len(query(dsn, "SELECT * FROM public.stagecraft_migrations")) == 2


def test_custom_schema_qualified_tracking_table(dsn: str, tmp_path: Path) -> None:
    migrations = tmp_path / "m"
    write(migrations, "0000_schema.sql", "SELECT 1;\n")
    execute(dsn, "CREATE SCHEMA ops")
    engine().apply(target(dsn, migrations, table="ops.History"))
    assert query(dsn, 'SELECT name FROM ops."History"') == [("0000_schema.sql",)]
    report = engine().report(target(dsn, migrations, table="ops.History"))
    assert [m.state for m in report.migrations] == [MigrationState.APPLIED]


def test_a_foreign_table_with_the_tracking_name_is_reported(dsn: str, tmp_path: Path) -> None:
    migrations = tmp_path / "m"
    write(migrations, "0001_a.sql", "SELECT 1;\n")
    execute(dsn, "CREATE TABLE stagecraft_migrations (id varchar(255) PRIMARY KEY)")
    with pytest.raises(Exception, match="is not a Stagecraft migrations table") as info:
        engine().report(target(dsn, migrations))
    assert info.value.hint and "migrations.table" in info.value.hint  # type: ignore[attr-defined]


def test_unreachable_database_hides_the_password(tmp_path: Path) -> None:
    migrations = tmp_path / "m"
    write(migrations, "0001_a.sql", "SELECT 1;\n")
    bad = "postgresql://app:hunter2-secret@127.0.0.1:1/shop"
    with pytest.raises(DatabaseUnreachableError) as info:
        engine(connect_timeout=2).apply(target(bad, migrations))
    assert info.value.exit_code is ExitCode.UNREACHABLE
    assert "hunter2" not in str(info.value) and "hunter2" not in (info.value.hint or "")
    assert "postgresql://app:***@127.0.0.1:1/shop" in info.value.message


def test_wrong_password_is_unreachable_and_hidden(dsn: str, tmp_path: Path) -> None:
    migrations = tmp_path / "m"
    write(migrations, "0001_a.sql", "SELECT 1;\n")
    wrong = dsn.replace(PASSWORD, "not-the-password")
    with pytest.raises(DatabaseUnreachableError, match="password authentication failed") as info:
        engine().report(target(wrong, migrations))
    assert "not-the-password" not in str(info.value)
