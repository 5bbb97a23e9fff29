"""Migrations against PostgreSQL in containers: a dev compose service, and a sandbox host
reached through an SSH tunnel (the database port is not published there)."""

from __future__ import annotations

import logging
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stagecraft.cli.main import run
from stagecraft.config.loader import load_project
from stagecraft.migrate.hooks import apply_dev, run_phase

pytestmark = pytest.mark.integration

PASSWORD = "tunnel-pw-9f3"

MIGRATION = "CREATE TABLE accounts (id serial PRIMARY KEY, name text);\n"


def docker(*args: str, docker_host: str | None = None, check: bool = True) -> str:
    env = {**os.environ, "DOCKER_BUILDKIT": "0"}
    if docker_host:
        env["DOCKER_HOST"] = docker_host
    result = subprocess.run(
        ["docker", *args], env=env, capture_output=True, text=True, timeout=600, check=False
    )
    if check and result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout


@pytest.fixture(scope="module")
def postgres_image() -> str:
    from stagecraft.testing.images import ensure_postgres_image

    return ensure_postgres_image()


def wait_until(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.3)


@pytest.fixture(autouse=True)
def _detach_cli_log_handler() -> Iterator[None]:
    """run() installs a handler on captured stderr; drop it so later tests do not write to it."""
    yield
    logger = logging.getLogger("stagecraft")
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    logger.propagate = True
    logger.setLevel(logging.NOTSET)


def write_project(root: Path, project: str, extra: str = "") -> None:
    (root / "stagecraft.yml").write_text(
        f"project: {project}\n"
        "databases:\n"
        "  main:\n"
        "    service: postgres\n"
        "    url_env: SCMIG_DATABASE_URL\n"
        "    migrations: {path: migrations}\n" + extra
    )
    (root / "compose.yaml").write_text(
        "services:\n"
        "  postgres:\n"
        "    image: ${POSTGRES_IMAGE:-postgres:16-alpine}\n"
        "    environment: {POSTGRES_USER: app, POSTGRES_PASSWORD: devpw, POSTGRES_DB: shop}\n"
        '    ports: ["127.0.0.1::5432"]\n'
    )
    (root / "migrations").mkdir(exist_ok=True)
    (root / "migrations" / "0001_accounts.sql").write_text(MIGRATION)


def test_dev_database_from_the_compose_service(
    tmp_path: Path,
    postgres_image: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """No DATABASE_URL: the DSN comes from the running service's (ephemeral) published port."""
    project = f"scmig-{uuid.uuid4().hex[:8]}"
    write_project(tmp_path, project)
    monkeypatch.setenv("POSTGRES_IMAGE", postgres_image)
    monkeypatch.delenv("SCMIG_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    compose = ["compose", "-p", project, "-f", str(tmp_path / "compose.yaml")]
    try:
        docker(*compose, "up", "-d", "--pull", "never")
        loaded = load_project(tmp_path / "stagecraft.yml")
        results = apply_dev(loaded, wait=60)
        assert [r.name for r in results] == ["0001_accounts.sql"]
        assert run(["migrate", "--status"]) == 0
        out = capsys.readouterr().out
        assert "postgresql://app:***@127.0.0.1:" in out
        assert "/shop (from compose service postgres)" in out
        assert "0001_accounts.sql  applied" in out
        assert "devpw" not in out
    finally:
        docker(*compose, "down", "-v", "--timeout", "5", check=False)


@pytest.fixture
def remote_postgres(sandbox3: Any, postgres_image: str) -> Iterator[tuple[Any, str]]:
    """PostgreSQL running on the first sandbox host, its port not published."""
    from stagecraft.testing.images import copy_image

    host = sandbox3.hosts[0]
    copy_image(postgres_image, from_host=None, to_host=host.docker_host)
    name = f"scmig-pg-{uuid.uuid4().hex[:8]}"
    sandbox3.docker(
        host.name, "run", "-d", "--name", name,
        "-e", "POSTGRES_USER=app", "-e", f"POSTGRES_PASSWORD={PASSWORD}", "-e", "POSTGRES_DB=shop",
        "--label", "com.docker.compose.service=postgres", "--label", "stagecraft.env=sandbox",
        postgres_image,
    )  # fmt: skip
    try:

        def ready() -> bool:
            probe = sandbox3.docker(
                host.name, "exec", name, "/usr/lib/postgresql/15/bin/pg_isready", "-q",
                "-h", "127.0.0.1", "-U", "app", "-d", "shop", check=False,
            )  # fmt: skip
            return bool(probe.ok)

        wait_until(ready, 60, "PostgreSQL in the sandbox container")
        assert sandbox3.docker(host.name, "port", name).stdout.strip() == ""
        yield host, name
    finally:
        sandbox3.docker(host.name, "rm", "-f", "-v", name, check=False)


@pytest.mark.sandbox
def test_env_database_through_an_ssh_tunnel(
    tmp_path: Path,
    sandbox3: Any,
    remote_postgres: tuple[Any, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from stagecraft.runtime.ssh import SSHOptions

    host, container = remote_postgres
    others = [h for h in sandbox3.hosts if h.name != host.name]
    write_project(
        tmp_path,
        "shop",
        "environments:\n"
        "  sandbox:\n"
        "    hosts:\n"
        f"      {others[0].name}: {{address: {others[0].address}, roles: [web]}}\n"
        f"      {host.name}: {{address: {host.address}, roles: [data]}}\n"
        "    roles: {web: [], data: [postgres]}\n"
        "    env: {POSTGRES_USER: app, POSTGRES_DB: shop}\n"
        "    secrets: [POSTGRES_PASSWORD]\n"
        "    secrets_provider: {provider: dotenv, path: .env.sandbox}\n",
    )
    (tmp_path / ".env.sandbox").write_text(f"POSTGRES_PASSWORD={PASSWORD}\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("STAGECRAFT_SSH_CONFIG", str(sandbox3.ssh_config))
    monkeypatch.delenv("SCMIG_DATABASE_URL", raising=False)

    assert run(["migrate", "--env", "sandbox", "--plan"]) == 0
    out, err = capsys.readouterr()
    assert "pending 0001_accounts.sql" in out
    assert f"service postgres on {host.name} through an SSH tunnel" in out
    assert run(["migrate", "--env", "sandbox"]) == 0
    out, err = capsys.readouterr()
    assert "applied 0001_accounts.sql" in out
    assert PASSWORD not in out + err

    (tmp_path / "migrations" / "0002_more.sql").write_text("ALTER TABLE accounts ADD note text;\n")
    loaded = load_project(tmp_path / "stagecraft.yml", env="sandbox")
    options = SSHOptions(config_file=sandbox3.ssh_config)
    results = run_phase(loaded, "sandbox", "pre_deploy", ssh_options=options)
    assert [r.name for r in results] == ["0002_more.sql"]
    assert run_phase(loaded, "sandbox", "post_deploy", ssh_options=options) == []

    rows = sandbox3.docker(
        host.name, "exec", container, "/usr/lib/postgresql/15/bin/psql",
        "-U", "app", "-d", "shop", "-Atc",
        "SELECT string_agg(name, ',' ORDER BY version) FROM stagecraft_migrations",
    )  # fmt: skip
    assert rows.stdout.strip() == "0001_accounts.sql,0002_more.sql"
