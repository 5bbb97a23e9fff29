"""Resolving a database's DSN: dev sources, tunnel credentials, container choice."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any, ClassVar

import pytest

from stagecraft.config.loader import load_project
from stagecraft.errors import ExitCode
from stagecraft.migrate import tunnel
from stagecraft.migrate.connection import (
    dev_connection,
    postgres_dsn,
    published_address,
    service_environment,
)
from stagecraft.migrate.runner import setups
from stagecraft.providers.migration import DatabaseUnreachableError, MigrationConfigError
from stagecraft.runtime.process import Completed

CONFIG = """\
project: shop
databases:
  main:
    service: postgres
    url_env: DATABASE_URL
    migrations: {path: migrations, table: ops.history}
  external:
    url_env: EXTERNAL_URL
environments:
  staging:
    hosts:
      web-1: {address: 203.0.113.10, roles: [web]}
      data-1: {address: 203.0.113.12, user: deploy, port: 2222, roles: [data]}
    roles: {web: [], data: [postgres]}
    env: {POSTGRES_USER: shop}
    secrets: [POSTGRES_PASSWORD, EXTERNAL_URL]
    secrets_provider: {provider: dotenv, path: .env.staging}
"""


def loaded_with(tmp_path: Path, service_raw: dict[str, Any]) -> Any:
    (tmp_path / "stagecraft.yml").write_text(CONFIG)
    (tmp_path / ".env.staging").write_text(
        "POSTGRES_PASSWORD='s3cr#t pw'\nEXTERNAL_URL=postgresql://ext:x@db.example.com/ext\n"
    )
    loaded = load_project(tmp_path / "stagecraft.yml", check_compose=False)
    compose = SimpleNamespace(
        name="shop",
        files=(),
        project_directory=Path("."),
        services={"postgres": SimpleNamespace(raw=service_raw)},
    )
    return type(loaded)(loaded.path, loaded.root, loaded.config, compose)  # type: ignore[arg-type]


PG_SERVICE = {
    "environment": {"POSTGRES_USER": "app", "POSTGRES_PASSWORD": "devpw", "POSTGRES_DB": "shop"},
    "ports": [{"target": 5432, "published": "5433", "host_ip": "0.0.0.0"}],
}


def test_postgres_dsn_defaults_and_quoting() -> None:
    assert postgres_dsn({}, "127.0.0.1", 5432) == "postgresql://postgres@127.0.0.1:5432/postgres"
    assert (
        postgres_dsn({"POSTGRES_USER": "a b", "POSTGRES_PASSWORD": "p@ss/w:rd"}, "h", 1)
        == "postgresql://a%20b:p%40ss%2Fw%3Ard@h:1/a%20b"
    )
    with pytest.raises(MigrationConfigError, match="POSTGRES_PASSWORD_FILE"):
        postgres_dsn({"POSTGRES_PASSWORD_FILE": "/run/secrets/pw"}, "h", 1)


def test_published_address_only_for_fixed_ports() -> None:
    assert published_address({"raw": None}, 5432) is None
    assert published_address(SimpleNamespace(raw=PG_SERVICE), 5432) == ("127.0.0.1", 5433)
    fixed_ip = {"ports": [{"target": 5432, "published": "6000", "host_ip": "10.1.2.3"}]}
    assert published_address(fixed_ip, 5432) == ("10.1.2.3", 6000)
    assert published_address({"ports": [{"target": 5432}]}, 5432) is None
    assert published_address({"ports": [{"target": 80, "published": "8080"}]}, 5432) is None


def test_service_environment_drops_unset_values() -> None:
    assert service_environment({"environment": {"A": "1", "B": None}}) == {"A": "1"}
    assert service_environment({"environment": ["A=1", "B"]}) == {"A": "1"}


def test_dev_connection_prefers_url_env(tmp_path: Path) -> None:
    loaded = loaded_with(tmp_path, PG_SERVICE)
    conn = dev_connection(loaded, "main", environ={"DATABASE_URL": "postgresql://u:pw@h/db"})
    assert conn.dsn == "postgresql://u:pw@h/db"
    assert conn.shown == "postgresql://u:***@h/db (from $DATABASE_URL)"
    assert "pw" not in repr(conn)


def test_dev_connection_derives_from_the_compose_service(tmp_path: Path) -> None:
    loaded = loaded_with(tmp_path, PG_SERVICE)
    conn = dev_connection(loaded, "main", environ={})
    assert conn.dsn == "postgresql://app:devpw@127.0.0.1:5433/shop"
    assert conn.shown == "postgresql://app:***@127.0.0.1:5433/shop (from compose service postgres)"


def test_dev_connection_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    loaded = loaded_with(tmp_path, {"environment": {}})
    monkeypatch.setattr("stagecraft.migrate.connection._running_address", lambda *a: None)
    with pytest.raises(DatabaseUnreachableError, match="publishes no port for 5432") as info:
        dev_connection(loaded, "main", environ={})
    assert info.value.exit_code is ExitCode.UNREACHABLE
    with pytest.raises(DatabaseUnreachableError, match="has no compose service") as info:
        dev_connection(loaded, "external", environ={})
    assert info.value.hint and "export EXTERNAL_URL=" in info.value.hint
    with pytest.raises(MigrationConfigError, match=r"no database 'nope'.*known: external, main"):
        dev_connection(loaded, "nope", environ={})


def test_setups_resolve_paths_and_need_migrations(tmp_path: Path) -> None:
    loaded = loaded_with(tmp_path, PG_SERVICE)
    [main] = setups(loaded)
    assert (main.database, main.engine, main.table, main.strategy) == (
        "main",
        "raw",
        "ops.history",
        "pre_deploy",
    )
    assert main.directory == (tmp_path / "migrations").resolve()
    with pytest.raises(MigrationConfigError, match="database external has no migrations"):
        setups(loaded, "external")


def test_environment_values_resolve_only_declared_secrets(tmp_path: Path) -> None:
    loaded = loaded_with(tmp_path, PG_SERVICE)
    values = tunnel.environment_values(
        loaded, "staging", ["POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"], environ={}
    )
    assert values == {"POSTGRES_USER": "shop", "POSTGRES_PASSWORD": "s3cr#t pw"}


def test_pick_container_and_network_address() -> None:
    one = {"ID": "a", "Labels": "com.docker.compose.service=postgres"}
    two = {"ID": "b", "Labels": "com.docker.compose.service=postgres,stagecraft.env=staging"}
    three = {"ID": "c", "Labels": "stagecraft.env=prod"}
    assert tunnel.pick_container([], "shop", "staging") is None
    assert tunnel.pick_container([one], "shop", "staging") is one
    assert tunnel.pick_container([one, two, three], "shop", "staging") is two
    assert tunnel.pick_container([one, one], "shop", "staging") is None
    assert tunnel.network_address({"z": {"IPAddress": "10.0.0.9"}, "a": {"IPAddress": ""}}) == (
        "10.0.0.9"
    )
    assert tunnel.network_address({"host": {"IPAddress": ""}}) == "127.0.0.1"


class FakeHost:
    """Records docker calls and forwards; answers like a host running one postgres container."""

    instances: ClassVar[list[FakeHost]] = []

    def __init__(self, target: Any, options: Any = None) -> None:
        self.target = target
        self.calls: list[tuple[str, ...]] = []
        self.forwards: list[tuple[str, int]] = []
        self.closed = False
        FakeHost.instances.append(self)

    def docker(self, *args: str, **_: Any) -> Completed:
        self.calls.append(args)
        if args[0] == "ps":
            out = '{"ID": "abc", "Names": "shop-postgres-1", "Labels": ""}\n'
        else:
            out = '{"shop_default": {"IPAddress": "172.20.0.5"}}'
        return Completed(("docker", *args), 0, out, "", 0.01)

    @contextmanager
    def forward(self, remote_host: str, remote_port: int, local_port: int = 0) -> Iterator[int]:
        self.forwards.append((remote_host, remote_port))
        yield 40123

    def close(self) -> None:
        self.closed = True


def test_env_connection_tunnels_to_the_container(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loaded = loaded_with(tmp_path, PG_SERVICE)
    monkeypatch.setattr("stagecraft.runtime.ssh.SSHHost", FakeHost)
    FakeHost.instances.clear()
    with tunnel.env_connection(loaded, "staging", "main", environ={}) as conn:
        host = FakeHost.instances[0]
        assert (host.target.name, host.target.address, host.target.user, host.target.port) == (
            "data-1",
            "203.0.113.12",
            "deploy",
            2222,
        )
        assert host.forwards == [("172.20.0.5", 5432)]
        assert conn.dsn == "postgresql://shop:s3cr%23t%20pw@127.0.0.1:40123/shop"
        assert "s3cr" not in conn.shown
        assert conn.source == (
            "service postgres on data-1 through an SSH tunnel, "
            "credentials from POSTGRES_PASSWORD, POSTGRES_USER"
        )
    assert host.closed
    assert host.calls[0][:3] == ("ps", "--filter", "label=com.docker.compose.service=postgres")
    assert host.calls[1][-1] == "abc"


def test_env_connection_without_a_service_uses_the_env_url(tmp_path: Path) -> None:
    loaded = loaded_with(tmp_path, PG_SERVICE)
    with tunnel.env_connection(loaded, "staging", "external", environ={}) as conn:
        assert conn.dsn == "postgresql://ext:x@db.example.com/ext"
        assert conn.source == "from EXTERNAL_URL of environment staging"


def test_env_connection_url_env_credentials_win(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "stagecraft.yml").write_text(CONFIG)
    loaded = loaded_with(tmp_path, PG_SERVICE)
    values = {"DATABASE_URL": "postgresql://owner:pw%21@elsewhere:6543/proddb"}
    credentials = tunnel._credentials(loaded, "postgres", "DATABASE_URL", values)
    assert credentials.environment == {
        "POSTGRES_USER": "owner",
        "POSTGRES_PASSWORD": "pw!",
        "POSTGRES_DB": "proddb",
    }
    assert credentials.source == "credentials from DATABASE_URL"
    fallback = tunnel._credentials(loaded, "postgres", "DATABASE_URL", {})
    assert fallback.environment == PG_SERVICE["environment"]
    assert fallback.source == "credentials from compose service postgres"


def test_no_host_runs_the_service(tmp_path: Path) -> None:
    loaded = loaded_with(tmp_path, PG_SERVICE)
    env = loaded.config.environments["staging"]
    with pytest.raises(MigrationConfigError, match="no host of environment staging runs"):
        tunnel._ssh_host(env, "staging", "main", "redis", None)
