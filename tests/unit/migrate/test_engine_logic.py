"""The engine's pure parts: file discovery, the report, its checks, DSN redaction."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from stagecraft.errors import ExitCode
from stagecraft.providers.builtin.migration_raw import checksum, discover, lock_key
from stagecraft.providers.migration import (
    AppliedMigration,
    ChecksumMismatchError,
    MigrationFailedError,
    MigrationFile,
    MigrationFileError,
    MigrationResult,
    MigrationState,
    MigrationTarget,
    OutOfOrderError,
    build_report,
    scrub,
)
from stagecraft.redact import dsn_password, redact_dsn

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def write(directory: Path, name: str, text: str = "SELECT 1;\n") -> Path:
    path = directory / name
    path.write_text(text)
    return path


def test_discover_orders_by_numeric_version_and_skips_other_files(tmp_path: Path) -> None:
    write(tmp_path, "10_later.sql")
    write(tmp_path, "2_second.SQL")
    write(tmp_path, "0001_first.sql", "-- stagecraft:no-transaction\nCREATE INDEX x ON t (a);\n")
    write(tmp_path, "README.md", "not a migration")
    write(tmp_path, ".#0003_editor_lock.sql")
    (tmp_path / "0004_dir.sql").mkdir()
    found = discover(tmp_path)
    assert [(m.version, m.name) for m in found] == [
        (1, "0001_first.sql"),
        (2, "2_second.SQL"),
        (10, "10_later.sql"),
    ]
    assert [m.transactional for m in found] == [False, True, True]


def test_discover_rejects_a_file_without_a_version(tmp_path: Path) -> None:
    write(tmp_path, "init.sql")
    with pytest.raises(MigrationFileError, match=r"init\.sql: migration file name must start"):
        discover(tmp_path)


def test_discover_rejects_duplicate_versions(tmp_path: Path) -> None:
    write(tmp_path, "0001_a.sql")
    write(tmp_path, "1_b.sql")
    with pytest.raises(MigrationFileError, match="have the same version 1") as info:
        discover(tmp_path)
    assert info.value.exit_code is ExitCode.USAGE


def test_discover_missing_directory_names_the_config_key(tmp_path: Path) -> None:
    with pytest.raises(MigrationFileError) as info:
        discover(tmp_path / "nope", "analytics")
    assert "does not exist" in info.value.message
    assert info.value.hint and "databases.analytics.migrations.path" in info.value.hint


def test_discover_rejects_non_utf8(tmp_path: Path) -> None:
    (tmp_path / "0001_bad.sql").write_bytes(b"SELECT '\xff';")
    with pytest.raises(MigrationFileError, match="not valid UTF-8"):
        discover(tmp_path)


def test_checksum_ignores_crlf_line_ends() -> None:
    assert checksum(b"SELECT 1;\r\nSELECT 2;\r\n") == checksum(b"SELECT 1;\nSELECT 2;\n")
    assert checksum(b"SELECT 1;") != checksum(b"SELECT 2;")


def test_lock_key_is_a_stable_signed_64_bit_integer_per_table() -> None:
    key = lock_key("stagecraft_migrations")
    assert key == lock_key("stagecraft_migrations")
    assert key != lock_key("other_table")
    assert -(2**63) <= key < 2**63


def files(*versions: int) -> list[MigrationFile]:
    return [
        MigrationFile(v, f"{v:04d}_m.sql", Path(f"/m/{v:04d}_m.sql"), f"sum{v}") for v in versions
    ]


def rows(*versions: int, sums: dict[int, str] | None = None) -> list[AppliedMigration]:
    sums = sums or {}
    return [AppliedMigration(v, f"{v:04d}_m.sql", sums.get(v, f"sum{v}"), T0, 5) for v in versions]


def test_report_states_and_order() -> None:
    report = build_report("main", files(1, 2, 3, 4), rows(1, 2, 7, sums={2: "old"}))
    assert [(m.version, m.state) for m in report.migrations] == [
        (1, MigrationState.APPLIED),
        (2, MigrationState.CHANGED),
        (3, MigrationState.PENDING),
        (4, MigrationState.PENDING),
        (7, MigrationState.MISSING),
    ]
    assert [m.version for m in report.out_of_order] == [3, 4]
    assert report.newest_applied == 7
    assert report.to_json()["pending"] == ["0003_m.sql", "0004_m.sql"]


def test_check_names_every_changed_file() -> None:
    report = build_report("main", files(1, 2, 3), rows(1, 2, sums={1: "a" * 64, 2: "b" * 64}))
    with pytest.raises(ChecksumMismatchError) as info:
        report.check()
    error = info.value
    assert error.exit_code is ExitCode.USAGE
    assert error.message.startswith(
        "/m/0001_m.sql was changed after it was applied to database main"
    )
    assert error.message.endswith("(and 1 more)")
    assert [line.split(" ")[0] for line in error.lines()] == ["/m/0001_m.sql", "/m/0002_m.sql"]
    assert error.hint and "new migration" in error.hint


def test_check_refuses_out_of_order_unless_allowed() -> None:
    report = build_report("main", files(1, 2, 3), rows(1, 3))
    with pytest.raises(OutOfOrderError) as info:
        report.check()
    assert info.value.message == (
        "/m/0002_m.sql (version 2) is pending, but version 3 is already applied to database main"
    )
    assert info.value.hint and "--allow-out-of-order" in info.value.hint
    report.check(allow_out_of_order=True)


def test_check_passes_when_only_newer_files_are_pending() -> None:
    build_report("main", files(1, 2, 3), rows(1)).check()


def test_migration_failed_message_and_hints() -> None:
    done = [MigrationResult("main", 1, "0001_a.sql", 0.01)]
    error = MigrationFailedError(
        database="main",
        path="migrations/0002_b.sql",
        line=4,
        db_message='relation "nope" does not exist',
        detail="some detail",
        applied=done,
    )
    assert error.exit_code is ExitCode.FAILED
    assert error.message == 'migrations/0002_b.sql:4: database main: relation "nope" does not exist'
    assert error.lines() == [error.message, "detail: some detail"]
    assert error.hint and "1 earlier migration of this run stays applied" in error.hint
    assert "rolled back" in error.hint
    loose = MigrationFailedError(
        database="main", path="m.sql", line=3, db_message="x", transactional=False
    )
    assert loose.hint and "before line 3 stay applied" in loose.hint


@pytest.mark.parametrize(
    ("dsn", "shown", "password"),
    [
        ("postgresql://app:s3cret@db:5432/shop", "postgresql://app:***@db:5432/shop", "s3cret"),
        (
            "postgres://app:p%40ss@db/shop?sslmode=off",
            "postgres://app:***@db/shop?sslmode=off",
            "p@ss",
        ),
        (
            "postgresql://app@db/shop?password=qq&sslmode=off",
            "postgresql://app@db/shop?password=***&sslmode=off",
            "qq",
        ),
        (
            "host=db user=app password='a b' dbname=shop",
            "host=db user=app password=*** dbname=shop",
            "a b",
        ),
        ("host=db user=app dbname=shop", "host=db user=app dbname=shop", None),
    ],
)
def test_redact_dsn(dsn: str, shown: str, password: str | None) -> None:
    assert redact_dsn(dsn) == shown
    assert dsn_password(dsn) == password
    if password:
        assert password not in scrub(f"failed for {password}!", dsn)


def test_target_repr_hides_the_dsn_and_validates_the_table() -> None:
    target = MigrationTarget("postgresql://app:s3cret@db/shop", Path("m"))
    assert "s3cret" not in repr(target)
    assert target.shown == "postgresql://app:***@db/shop"
    MigrationTarget("x", Path("m"), table="ops.migrations")
    with pytest.raises(MigrationFileError, match="invalid tracking table name"):
        MigrationTarget("x", Path("m"), table="drop table; --")


def test_missing_psycopg_is_a_prerequisite_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    from stagecraft.errors import PrerequisiteMissing
    from stagecraft.providers import registry

    monkeypatch.setitem(sys.modules, "psycopg", None)
    engine = registry("migration").create("raw", {})
    with pytest.raises(PrerequisiteMissing, match="needs psycopg") as info:
        engine.report(MigrationTarget("postgresql://a@h/db", tmp_path))
    assert info.value.exit_code is ExitCode.PREREQUISITE_MISSING
