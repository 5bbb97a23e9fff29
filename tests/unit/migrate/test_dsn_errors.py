"""A DSN that libpq cannot parse is a config error naming its source, never a traceback."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from stagecraft.config.loader import load_project
from stagecraft.errors import ExitCode, StagecraftError
from stagecraft.migrate import tunnel
from stagecraft.migrate.connection import Connection, dev_connection
from stagecraft.redact import DsnError, redact

CONFIG = """\
project: shop
databases:
  main:
    url_env: DATABASE_URL
    migrations: {path: migrations}
environments:
  staging:
    hosts: {data-1: {address: 203.0.113.12, roles: [data]}}
    roles: {data: [postgres]}
"""
MALFORMED = [
    "postgresql://app:pw-1@[::1/app",
    "postgresql://app:pw-1@[::1]x/app",
    "postgresql://app:pw-1%zz@db/app",
    "postgresql://app:pw-1@db:54x2/app",
    "postgresql://app:pw@1@db/app",
    "host=db password='pw-1",
]


def loaded(tmp_path: Path) -> Any:
    (tmp_path / "stagecraft.yml").write_text(CONFIG)
    result = load_project(tmp_path / "stagecraft.yml", check_compose=False)
    compose = SimpleNamespace(name="shop", files=(), project_directory=Path("."), services={})
    return type(result)(result.path, result.root, result.config, compose)  # type: ignore[arg-type]


@pytest.mark.parametrize("dsn", MALFORMED)
def test_a_malformed_database_url_is_a_config_error_naming_its_source(
    tmp_path: Path, dsn: str
) -> None:
    with pytest.raises(DsnError) as caught:
        dev_connection(loaded(tmp_path), "main", environ={"DATABASE_URL": dsn})
    error = caught.value
    assert isinstance(error, StagecraftError) and error.exit_code == ExitCode.USAGE
    assert "from $DATABASE_URL" in error.message
    assert "pw-1" not in error.message and "pw@1" not in error.message
    assert error.hint and "%40" in error.hint


def test_the_tunnel_reads_credentials_as_libpq_does(tmp_path: Path) -> None:
    values = {"DATABASE_URL": "postgresql://owner:pa#ss?wd@elsewhere:6543/proddb"}
    credentials = tunnel._credentials(loaded(tmp_path), "postgres", "DATABASE_URL", values)
    assert credentials.environment == {
        "POSTGRES_USER": "owner",
        "POSTGRES_PASSWORD": "pa#ss?wd",
        "POSTGRES_DB": "proddb",
    }
    with pytest.raises(DsnError, match="DATABASE_URL of the environment"):
        tunnel._credentials(
            loaded(tmp_path), "postgres", "DATABASE_URL", {"DATABASE_URL": MALFORMED[0]}
        )


def test_a_connection_shows_no_password_and_remembers_it() -> None:
    conn = Connection("postgresql://app:pa#ss?wd-7@db/shop", "from $DATABASE_URL")
    assert conn.shown == "postgresql://app:***@db/shop (from $DATABASE_URL)"
    assert redact("psql said: password pa#ss?wd-7 rejected") == "psql said: password *** rejected"
