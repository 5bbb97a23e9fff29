"""Reach an environment's database through an SSH tunnel to the host that runs it.

``stagecraft migrate --env staging`` finds the host whose roles place the
database's compose ``service`` on it, finds the service's running container
there (``docker ps`` over SSH), and forwards a local port to the container's
address on its Docker network -- so the database port need not be published
on the host. Credentials come from the environment, never from the host:

- ``databases.<name>.url_env`` (e.g. ``DATABASE_URL``), when the environment
  defines it in ``env`` or lists it in ``secrets``: its user, password and
  database name are used, its host and port replaced by the tunnel's;
- otherwise ``POSTGRES_USER``, ``POSTGRES_PASSWORD`` and ``POSTGRES_DB`` from
  the environment's ``env`` / ``secrets``, falling back to the compose
  service's ``environment`` (and the official image's defaults).

A database without a compose ``service`` (a managed one) is reached directly
at the DSN that ``url_env`` holds for the environment, without a tunnel.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from stagecraft.migrate.connection import (
    POSTGRES_PORT,
    Connection,
    database_config,
    postgres_dsn,
    service_environment,
)
from stagecraft.providers.migration import DatabaseUnreachableError, MigrationConfigError
from stagecraft.redact import parse_dsn

if TYPE_CHECKING:
    from stagecraft.config.loader import LoadedConfig
    from stagecraft.config.models import EnvironmentConfig
    from stagecraft.runtime.ssh import SSHHost, SSHOptions

CREDENTIAL_VARS = ("POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB")
ENV_LABEL = "stagecraft.env"
PROJECT_LABEL = "stagecraft.project"
SERVICE_LABEL = "com.docker.compose.service"


@contextmanager
def env_connection(
    loaded: LoadedConfig,
    env_name: str,
    name: str,
    *,
    environ: Mapping[str, str] | None = None,
    ssh_options: SSHOptions | None = None,
) -> Iterator[Connection]:
    """The DSN of database ``name`` in ``env_name``, through a tunnel open while in the block.

    Example::

        with env_connection(loaded, "staging", "main") as conn:
            engine.apply(MigrationTarget(conn.dsn, directory, source=conn.shown))
    """
    db = database_config(loaded, name)
    env = loaded.environment(env_name)
    values = environment_values(loaded, env_name, [db.url_env, *CREDENTIAL_VARS], environ)
    if db.service is None:
        if not values.get(db.url_env):
            raise MigrationConfigError(
                f"database {name} has no compose service and environment {env_name} "
                f"does not define {db.url_env}",
                hint=f"add {db.url_env} to environments.{env_name}.env or .secrets",
            )
        yield Connection(values[db.url_env], f"from {db.url_env} of environment {env_name}")
        return
    host_name, host = _ssh_host(env, env_name, name, db.service, ssh_options)
    try:
        address = container_address(
            host, host_name, db.service, loaded.config.project.name, env_name
        )
        credentials = _credentials(loaded, db.service, db.url_env, values)
        with host.forward(address, credentials.port) as local_port:
            dsn = postgres_dsn(credentials.environment, "127.0.0.1", local_port)
            yield Connection(
                dsn,
                f"service {db.service} on {host_name} through an SSH tunnel, {credentials.source}",
            )
    finally:
        host.close()


def environment_values(
    loaded: LoadedConfig, env_name: str, names: list[str], environ: Mapping[str, str] | None
) -> dict[str, str]:
    """Clear ``env`` values and resolved ``secrets`` of an environment, for ``names`` only."""
    env = loaded.environment(env_name)
    values = {n: env.env[n] for n in names if n in env.env}
    wanted = [n for n in names if n in env.secrets and n not in values]
    if wanted:
        from stagecraft.providers import registry
        from stagecraft.providers.secrets import SecretsContext

        provider_id, options = loaded.config.secrets_provider_for(env_name)
        provider = registry("secrets").create(provider_id, options)
        context = SecretsContext(
            root=loaded.root, environ=dict(os.environ if environ is None else environ)
        )
        for key, secret in provider.resolve(wanted, context).items():
            values[key] = secret.reveal()
    return values


class _Credentials:
    """User, password and database for the tunnel's DSN, and where they came from."""

    def __init__(self, environment: dict[str, str], port: int, source: str) -> None:
        self.environment = environment
        self.port = port
        self.source = source


def _credentials(
    loaded: LoadedConfig, service: str, url_env: str, values: Mapping[str, str]
) -> _Credentials:
    compose = loaded.compose
    defaults = (
        service_environment(compose.services[service])
        if compose is not None and service in compose.services
        else {}
    )
    port = int(defaults.get("PGPORT") or POSTGRES_PORT)
    if values.get(url_env):
        credentials = _from_url(values[url_env], f"{url_env} of the environment")
        return _Credentials(credentials, port, f"credentials from {url_env}")
    merged = {k: defaults[k] for k in CREDENTIAL_VARS if defaults.get(k)}
    ours = {k: values[k] for k in CREDENTIAL_VARS if values.get(k)}
    merged.update(ours)
    source = "credentials from " + (
        ", ".join(sorted(ours)) if ours else f"compose service {service}"
    )
    return _Credentials(merged, port, source)


def _from_url(dsn: str, where: str) -> dict[str, str]:
    options = parse_dsn(dsn, where=where)  # libpq's reading: '#' and '?' may be in a password
    found = {
        "POSTGRES_USER": options.get("user", ""),
        "POSTGRES_PASSWORD": options.get("password", ""),
        "POSTGRES_DB": options.get("dbname", ""),
    }
    return {k: v for k, v in found.items() if v}


def _ssh_host(
    env: EnvironmentConfig,
    env_name: str,
    name: str,
    service: str,
    options: SSHOptions | None,
) -> tuple[str, SSHHost]:
    from stagecraft.deploy.state.layout import host_target, ssh_options
    from stagecraft.runtime.ssh import SSHHost

    hosts = env.hosts_running(service)
    if not hosts:
        raise MigrationConfigError(
            f"database {name}: no host of environment {env_name} runs compose service {service}",
            hint=f"add a role that lists {service} to environments.{env_name}.roles, and give "
            "it to a host",
        )
    host_name = hosts[0]
    target = host_target(env, host_name)
    return host_name, SSHHost(target, ssh_options(env, options))


def container_address(
    host: SSHHost, host_name: str, service: str, project: str, env_name: str
) -> str:
    """The address of ``service``'s running container on its Docker network, over SSH."""
    listing = host.docker(
        "ps",
        "--filter",
        f"label={SERVICE_LABEL}={service}",
        "--filter",
        "status=running",
        "--format",
        "{{json .}}",
    ).stdout
    containers = [json.loads(line) for line in listing.splitlines() if line.strip()]
    chosen = pick_container(containers, project, env_name)
    if chosen is None:
        names = ", ".join(sorted(str(c.get("Names", "?")) for c in containers))
        raise DatabaseUnreachableError(
            f"{host_name}: "
            + (
                f"no running container of compose service {service}"
                if not containers
                else f"several containers of service {service} ({names})"
            ),
            hint="deploy the environment first"
            if not containers
            else f"label the right one {ENV_LABEL}={env_name}",
        )
    inspected = host.docker(
        "inspect", "--format", "{{json .NetworkSettings.Networks}}", str(chosen["ID"])
    ).stdout
    return network_address(json.loads(inspected or "{}"))


def pick_container(containers: list[dict[str, Any]], project: str, env_name: str) -> Any:
    """The one container to use: alone, or the one labelled for this env/project."""
    if len(containers) <= 1:
        return containers[0] if containers else None
    for label, value in ((ENV_LABEL, env_name), (PROJECT_LABEL, project)):
        matching = [
            c for c in containers if f"{label}={value}" in str(c.get("Labels", "")).split(",")
        ]
        if len(matching) == 1:
            return matching[0]
    return None


def network_address(networks: Mapping[str, Any]) -> str:
    """The container's IP on its first network (by name); 127.0.0.1 for host networking."""
    for net in sorted(networks):
        address = (networks[net] or {}).get("IPAddress")
        if address:
            return str(address)
    return "127.0.0.1"
