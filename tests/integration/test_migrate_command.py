"""`stagecraft migrate` in-process against the local PostgreSQL, and the dev hook."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from syrupy.assertion import SnapshotAssertion
from test_migrate_engine import query, throwaway_database

from stagecraft.cli.main import run
from stagecraft.config.loader import load_project
from stagecraft.migrate.hooks import apply_dev, databases_for_phase, run_phase
from stagecraft.providers.migration import MigrationFailedError

pytestmark = pytest.mark.integration

COMPOSE = """\
services:
  postgres:
    image: ${POSTGRES_IMAGE:-postgres:16-alpine}
    environment: {POSTGRES_USER: app, POSTGRES_PASSWORD: devpw, POSTGRES_DB: shop}
"""

CONFIG = """\
project: shop
databases:
  main:
    service: postgres
    url_env: DATABASE_URL
    migrations: {path: db/migrations}
"""


@pytest.fixture
def dsn() -> Iterator[str]:
    with throwaway_database() as url:
        yield url


@pytest.fixture
def project(tmp_path: Path, dsn: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "stagecraft.yml").write_text(CONFIG)
    (tmp_path / "compose.yaml").write_text(COMPOSE)
    (tmp_path / "db" / "migrations").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", dsn)
    for var in ("STAGECRAFT_ENV", "STAGECRAFT_CONFIG", "STAGECRAFT_DRY_RUN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    return tmp_path


@pytest.fixture(autouse=True)
def _detach_cli_log_handler() -> Iterator[None]:
    """run() installs a handler on captured stderr; drop it so later tests do not write to it."""
    yield
    logger = logging.getLogger("stagecraft")
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    logger.propagate = True
    logger.setLevel(logging.NOTSET)


def add(project: Path, name: str, text: str) -> None:
    (project / "db" / "migrations" / name).write_text(text)


def migrate(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = run(["migrate", *args])
    out, err = capsys.readouterr()
    return code, out, err


def normalise(text: str, dsn_: str) -> str:
    """Stable text for snapshots: no database name, no timestamps, no durations."""
    name = dsn_.rsplit("/", 1)[1]
    text = text.replace(name, "<db>")
    text = re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", "<time>", text)
    return re.sub(r"\(\d+ ms", "(<n> ms", re.sub(r"in \d+ ms", "in <n> ms", text))


def test_apply_rerun_plan_status(
    project: Path,
    dsn: str,
    capsys: pytest.CaptureFixture[str],
    snapshot: SnapshotAssertion,
) -> None:
    add(project, "0001_init.sql", "CREATE TABLE users (id serial PRIMARY KEY, email text);\n")
    add(project, "0002_seed.sql", "INSERT INTO users (email) VALUES ('a@example.com');\n")
    code, out, err = migrate(capsys)
    assert code == 0, err
    assert normalise(out, dsn) == snapshot(name="first apply")
    assert "devpw" not in out + err and "stagecraft-test-pw" not in out + err

    code, out, _ = migrate(capsys)
    assert code == 0
    assert out.splitlines()[-1] == "database main: up to date, nothing to apply"

    add(project, "0003_orders.sql", "CREATE TABLE orders (id int);\n")
    code, out, _ = migrate(capsys, "--plan")
    assert code == 0
    assert [line for line in out.splitlines() if "pending" in line] == [
        "  pending 0003_orders.sql",
        "database main: 1 pending migration",
    ]
    code, out, _ = migrate(capsys, "--plan", "--json")
    assert json.loads(out)["databases"][0]["pending"] == ["0003_orders.sql"]

    code, out, _ = migrate(capsys)
    assert code == 0 and "  applied 0003_orders.sql (" in out
    add(project, "0004_later.sql", "SELECT 1;\n")
    add(project, "0001_init.sql", "CREATE TABLE users (id bigserial PRIMARY KEY, email text);\n")
    code, out, _ = migrate(capsys, "--status")
    assert code == 0
    assert normalise(out, dsn) == snapshot(name="status")
    code, out, _ = migrate(capsys, "--status", "--json")
    states = [(m["name"], m["state"]) for m in json.loads(out)["databases"][0]["migrations"]]
    assert states == [
        ("0001_init.sql", "changed"),
        ("0002_seed.sql", "applied"),
        ("0003_orders.sql", "applied"),
        ("0004_later.sql", "pending"),
    ]


def test_failing_file_in_the_middle(
    project: Path,
    dsn: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    add(project, "0001_a.sql", "CREATE TABLE a (id int);\n")
    add(project, "0002_b.sql", "CREATE TABLE b (id int);\n\nINSERT INTO b VALUES ('x');\n")
    add(project, "0003_c.sql", "CREATE TABLE c (id int);\n")
    code, out, err = migrate(capsys)
    assert code == 1
    assert "  applied 0001_a.sql" in out
    assert err.startswith(
        "error: db/migrations/0002_b.sql:3: database main: invalid input syntax for type integer"
    )
    assert "hint: 1 earlier migration of this run stays applied" in err
    assert query(dsn, "SELECT name FROM stagecraft_migrations") == [("0001_a.sql",)]
    assert query(dsn, "SELECT to_regclass('b'), to_regclass('c')") == [(None, None)]


def test_checksum_and_gap_errors_are_usage_errors(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    add(project, "0001_a.sql", "SELECT 1;\n")
    add(project, "0003_c.sql", "SELECT 3;\n")
    assert migrate(capsys)[0] == 0
    add(project, "0002_b.sql", "SELECT 2;\n")
    code, _, err = migrate(capsys, "--plan")
    assert code == 2
    assert "error: db/migrations/0002_b.sql (version 2) is pending, but version 3" in err
    code, out, _ = migrate(capsys, "--allow-out-of-order")
    assert code == 0 and "applied 0002_b.sql" in out
    add(project, "0001_a.sql", "SELECT 10;\n")
    code, _, err = migrate(capsys)
    assert code == 2
    assert "error: db/migrations/0001_a.sql was changed after it was applied" in err


def test_usage_errors(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = migrate(capsys, "--plan", "--status")
    assert code == 2 and "cannot be combined" in err
    code, _, err = migrate(capsys, "--database", "nope")
    assert code == 2 and "no database 'nope' in databases (known: main)" in err


def test_dry_run_is_the_plan(project: Path, dsn: str, capsys: pytest.CaptureFixture[str]) -> None:
    add(project, "0001_a.sql", "CREATE TABLE a (id int);\n")
    code, out, _ = migrate(capsys, "--dry-run")
    assert code == 0 and "pending 0001_a.sql" in out
    assert query(dsn, "SELECT to_regclass('a')") == [(None,)]


def test_unreachable_database_exit_code(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    add(project, "0001_a.sql", "SELECT 1;\n")
    monkeypatch.setenv("DATABASE_URL", "postgresql://app:hunter2@127.0.0.1:1/shop")
    code, out, err = migrate(capsys, "--status")
    assert code == 5
    assert "hunter2" not in out + err
    assert "postgresql://app:***@127.0.0.1:1/shop (from $DATABASE_URL)" in err


def test_apply_dev_skips_manual_databases(
    tmp_path: Path,
    dsn: str,
) -> None:
    (tmp_path / "stagecraft.yml").write_text(
        "project: shop\n"
        "databases:\n"
        "  main: {url_env: MAIN_URL, migrations: {path: main}}\n"
        "  audit: {url_env: AUDIT_URL, migrations: {path: audit, strategy: manual, table: a_m}}\n"
        "  late:\n"
        "    url_env: LATE_URL\n"
        "    migrations: {path: late, strategy: post_deploy, table: l_m}\n"
    )
    for name in ("main", "audit", "late"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "0001_init.sql").write_text(f"CREATE TABLE {name}_t (id int);\n")
    loaded = load_project(tmp_path / "stagecraft.yml", check_compose=False)
    assert [s.database for s in databases_for_phase(loaded, "pre_deploy")] == ["main"]
    assert [s.database for s in databases_for_phase(loaded, "post_deploy")] == ["late"]
    environ = {"MAIN_URL": dsn, "AUDIT_URL": dsn, "LATE_URL": dsn}
    seen: list[str] = []
    results = apply_dev(loaded, environ=environ, on_applied=lambda r: seen.append(r.database))
    assert [(r.database, r.name) for r in results] == [
        ("main", "0001_init.sql"),
        ("late", "0001_init.sql"),
    ]
    assert seen == ["main", "late"]
    assert query(dsn, "SELECT to_regclass('audit_t')") == [(None,)]
    assert apply_dev(loaded, environ=environ) == []


def test_apply_dev_waits_for_the_database_then_fails_clearly(tmp_path: Path) -> None:
    (tmp_path / "stagecraft.yml").write_text(
        "project: shop\ndatabases:\n  main: {url_env: MAIN_URL, migrations: {path: m}}\n"
    )
    (tmp_path / "m").mkdir()
    loaded = load_project(tmp_path / "stagecraft.yml", check_compose=False)
    with pytest.raises(Exception, match="cannot connect") as info:
        apply_dev(loaded, environ={"MAIN_URL": "postgresql://a:b@127.0.0.1:1/x"}, wait=1.0)
    assert not isinstance(info.value, MigrationFailedError)


def test_run_phase_applies_only_that_phase(tmp_path: Path, dsn: str) -> None:
    """An external database (no compose service) is reached at the environment's URL."""
    (tmp_path / "stagecraft.yml").write_text(
        "project: shop\n"
        "databases:\n"
        "  main: {url_env: MAIN_URL, migrations: {path: main}}\n"
        "  late: {url_env: MAIN_URL, migrations: {path: late, strategy: post_deploy, table: l}}\n"
        "environments:\n"
        "  staging:\n"
        "    hosts: {web-1: {address: 203.0.113.10, roles: [web]}}\n"
        "    roles: {web: []}\n"
        f"    env: {{MAIN_URL: '{dsn}'}}\n"
    )
    for name in ("main", "late"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "0001_init.sql").write_text(f"CREATE TABLE {name}_t (id int);\n")
    loaded = load_project(tmp_path / "stagecraft.yml", check_compose=False)
    pre = run_phase(loaded, "staging", "pre_deploy", environ={})
    assert [(r.database, r.name) for r in pre] == [("main", "0001_init.sql")]
    assert query(dsn, "SELECT to_regclass('late_t')") == [(None,)]
    post = run_phase(loaded, "staging", "post_deploy", environ={})
    assert [(r.database, r.name) for r in post] == [("late", "0001_init.sql")]
    assert run_phase(loaded, "staging", "pre_deploy", environ={}) == []
    with pytest.raises(ValueError, match="unknown migration phase"):
        run_phase(loaded, "staging", "manual", environ={})  # type: ignore[arg-type]


DOC = Path(__file__).resolve().parents[2] / "docs" / "migrate.md"


def doc_blocks(kind: str) -> list[str]:
    return re.findall(rf"```{kind}\n(.*?)```", DOC.read_text(), re.S)


def comparable(text: str) -> str:
    text = re.sub(
        r"^database main: \S+ \(from \$DATABASE_URL\)", "database main: <dsn>", text, flags=re.M
    )
    text = re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", "<time>", text)
    return re.sub(r"\d+ ms", "<n> ms", text)


def test_docs_walkthrough(
    tmp_path: Path, dsn: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """docs/migrate.md: its stagecraft.yml and SQL files work, its outputs are what we print."""
    [config] = [b for b in doc_blocks("yaml") if b.startswith("# stagecraft.yml")]
    (tmp_path / "stagecraft.yml").write_text(config)
    (tmp_path / "compose.yaml").write_text(COMPOSE)
    (tmp_path / "migrations").mkdir()
    for block in doc_blocks("sql"):
        first = block.splitlines()[0]
        assert first.startswith("-- migrations/"), first
        (tmp_path / first[3:]).write_text(block)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", dsn)
    commands = doc_blocks("console")[0]
    argvs = [line[2:].split()[1:] for line in commands.splitlines() if line.startswith("$ ")]
    assert argvs == [["migrate", "--plan"], ["migrate"], ["migrate", "--status"]]
    outputs = []
    for argv in argvs:
        code = run(argv)
        out, err = capsys.readouterr()
        assert code == 0, err
        outputs.append(out)
    assert "pending 0003_orders_user_index.sql" in outputs[0]
    applied_doc, status_doc = doc_blocks("text")
    assert comparable(outputs[1]) == comparable(applied_doc)
    assert comparable(outputs[2]) == comparable(status_doc)
