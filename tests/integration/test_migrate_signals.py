"""`stagecraft migrate` stopped by SIGINT, SIGTERM or SIGHUP mid-migration (local PostgreSQL).

The running migration's query is cancelled and its transaction rolled back, the
ones before it stay applied, the command exits 130, and a re-run applies the rest.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_migrate_engine import query, throwaway_database

from stagecraft.cli import signals as cli_signals
from stagecraft.cli.main import run

pytestmark = pytest.mark.integration

CONFIG = """\
project: shop
databases:
  main:
    service: postgres
    url_env: DATABASE_URL
    migrations: {path: db/migrations}
"""
SLOW = "CREATE TABLE slow (id int);\nSELECT pg_sleep(60);\n"


@pytest.fixture
def dsn() -> Iterator[str]:
    with throwaway_database() as url:
        yield url


@pytest.fixture
def project(tmp_path: Path, dsn: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    (tmp_path / "stagecraft.yml").write_text(CONFIG)
    (tmp_path / "compose.yaml").write_text("services:\n  postgres:\n    image: postgres\n")
    (tmp_path / "db" / "migrations").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", dsn)
    for var in ("STAGECRAFT_ENV", "STAGECRAFT_CONFIG", "STAGECRAFT_DRY_RUN"):
        monkeypatch.delenv(var, raising=False)
    # a SIGHUP would point a terminal's stdout/stderr at /dev/null: not pytest's
    monkeypatch.setattr(cli_signals, "drop_terminal_output", lambda: None)
    # As in a fresh `stagecraft` process: the default handlers, which the CLI takes over
    # (pytest-cov puts its own on SIGTERM, and the CLI leaves a handler it did not expect).
    previous = {
        sig: signal.signal(
            sig, signal.default_int_handler if sig == signal.SIGINT else signal.SIG_DFL
        )
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    }
    yield tmp_path
    for sig, handler in previous.items():
        signal.signal(sig, handler)
    logger = logging.getLogger("stagecraft")  # run() attached a handler to captured stderr
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    logger.propagate = True
    logger.setLevel(logging.NOTSET)


def _running_sleeps(dsn: str) -> list[tuple[object, ...]]:
    return query(
        dsn,
        "SELECT pid FROM pg_stat_activity WHERE query LIKE '%pg_sleep(60)%' "
        "AND pid <> pg_backend_pid()",
    )


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_a_signal_mid_migration_rolls_it_back_and_a_rerun_applies_it(
    sig: signal.Signals, project: Path, dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    migrations = project / "db" / "migrations"
    (migrations / "0001_init.sql").write_text("CREATE TABLE users (id int);\n")
    (migrations / "0002_slow.sql").write_text(SLOW)

    returned = threading.Event()

    def send_when_sleeping() -> None:
        deadline = time.monotonic() + 30
        while not _running_sleeps(dsn) and time.monotonic() < deadline:
            if returned.is_set():
                return  # never signal pytest itself once `migrate` is over
            time.sleep(0.1)
        if not returned.is_set():
            os.kill(os.getpid(), sig)

    sender = threading.Thread(target=send_when_sleeping)
    started = time.monotonic()
    sender.start()
    try:
        code = run(["migrate"])
    finally:
        returned.set()
        sender.join()
    _, err = capsys.readouterr()
    assert code == 130, err
    assert time.monotonic() - started < 30
    assert ("interrupted" if sig == signal.SIGINT else f"interrupted by {sig.name}") in err
    tables = {row[0] for row in query(dsn, "SELECT tablename FROM pg_tables")}
    assert "users" in tables and "slow" not in tables  # 0002 rolled back, 0001 kept
    assert _running_sleeps(dsn) == []  # the query was cancelled, not left running

    (migrations / "0002_slow.sql").write_text("CREATE TABLE slow (id int);\n")
    code = run(["migrate"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "applied 0002_slow.sql" in out and "0001_init.sql" not in out
