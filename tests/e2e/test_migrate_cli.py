"""The installed `stagecraft migrate` command, as separate processes against local PostgreSQL."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROLE = "stagecraft_test"
PASSWORD = "stagecraft-test-pw"
ADMIN_DSN = f"postgresql://{ROLE}:{PASSWORD}@127.0.0.1:5432/postgres"


def stagecraft_exe() -> str:
    beside = Path(sys.executable).with_name("stagecraft")
    exe = str(beside) if beside.exists() else shutil.which("stagecraft")
    assert exe, "the stagecraft command is not installed"
    return exe


@pytest.fixture
def database() -> Iterator[str]:
    """A throw-away database owned by the test role (created if needed), dropped afterwards."""
    import psycopg

    sql = (
        f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{ROLE}') THEN "
        f"CREATE ROLE {ROLE} LOGIN CREATEDB PASSWORD '{PASSWORD}'; END IF; END $$"
    )
    made = subprocess.run(
        ["runuser", "-u", "postgres", "--", "psql", "-v", "ON_ERROR_STOP=1", "-qc", sql],
        capture_output=True,
        check=False,
        text=True,
        timeout=30,
        cwd="/",
    )
    if made.returncode != 0:
        pytest.fail(f"PostgreSQL is not usable (run scripts/setup.sh): {made.stderr.strip()}")
    name = f"sc_mig_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql://{ROLE}:{PASSWORD}@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "stagecraft.yml").write_text(
        "project: shop\n"
        "databases:\n"
        "  main:\n"
        "    service: postgres\n"
        "    url_env: DATABASE_URL\n"
        "    migrations: {path: migrations}\n"
    )
    (tmp_path / "compose.yaml").write_text(
        "services:\n  postgres:\n    image: ${POSTGRES_IMAGE:-postgres:16-alpine}\n"
    )
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    (migrations / "0001_log.sql").write_text(
        "CREATE TABLE log (step int);\nSELECT pg_sleep(0.5);\nINSERT INTO log VALUES (1);\n"
    )
    for step in range(2, 6):
        (migrations / f"000{step}_step.sql").write_text(f"INSERT INTO log VALUES ({step});\n")
    return tmp_path


def env_for(database: str) -> dict[str, str]:
    env = {**os.environ, "NO_COLOR": "1", "DATABASE_URL": database}
    for var in ("STAGECRAFT_ENV", "STAGECRAFT_CONFIG", "STAGECRAFT_DRY_RUN"):
        env.pop(var, None)
    return env


def test_two_processes_started_together_apply_each_migration_once(
    project: Path, database: str
) -> None:
    import psycopg

    argv = [stagecraft_exe(), "migrate"]
    procs = [
        subprocess.Popen(
            argv,
            cwd=project,
            env=env_for(database),
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(2)
    ]
    outputs = [proc.communicate(timeout=120) for proc in procs]
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, out + err
    applied = [
        line.split()[1]
        for out, _ in outputs
        for line in out.splitlines()
        if line.startswith("  applied ")
    ]
    assert sorted(applied) == [
        "0001_log.sql",
        "0002_step.sql",
        "0003_step.sql",
        "0004_step.sql",
        "0005_step.sql",
    ]
    with psycopg.connect(database) as conn:
        steps = conn.execute("SELECT step FROM log ORDER BY step").fetchall()
        recorded = conn.execute("SELECT count(*) FROM stagecraft_migrations").fetchone()
    assert steps == [(1,), (2,), (3,), (4,), (5,)]
    assert recorded == (5,)


def test_failure_exit_code_and_message_from_the_real_command(project: Path, database: str) -> None:
    (project / "migrations" / "0006_bad.sql").write_text("SELECT 1;\nSELEC 2;\n")
    result = subprocess.run(
        [stagecraft_exe(), "migrate"],
        cwd=project,
        env=env_for(database),
        capture_output=True,
        check=False,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert 'error: migrations/0006_bad.sql:2: database main: syntax error at or near "SELEC"' in (
        result.stderr
    )
    assert PASSWORD not in result.stdout + result.stderr
    status = subprocess.run(
        [stagecraft_exe(), "migrate", "--status"],
        cwd=project,
        env=env_for(database),
        capture_output=True,
        check=False,
        text=True,
        timeout=120,
    )
    assert status.returncode == 0
    assert "database main: 5 applied, 1 pending" in status.stdout
