"""The typed model of ``stagecraft.yml`` (pydantic v2, frozen, unknown keys forbidden).

The shape is the contract of SPEC section 3.1. Provider blocks
(``providers.<id>``, the keys of ``secrets_provider``) are opaque here: the
loader validates them with the selected provider's own ``Config`` model.

Example::

    from stagecraft.config.models import StagecraftConfig

    cfg = StagecraftConfig.model_validate({"project": "shop"})
    assert cfg.project.name == "shop" and cfg.dev_domain == "shop.localhost"
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    model_validator,
)

from stagecraft.config.durations import Duration
from stagecraft.config.names import (
    Domain,
    EnvName,
    EnvValue,
    HostName,
    ProjectName,
    ProviderId,
    RoleName,
    RouteName,
    ServiceName,
    TableName,
    VarName,
)

Strategy = Literal["pre_deploy", "post_deploy", "manual"]
TlsMode = Literal["acme", "internal", "off"]
Transfer = Literal["ssh", "registry"]
Driver = Literal["ssh", "swarm"]
Port = Annotated[int, Field(ge=1, le=65535)]

_ROUTE_TARGET = re.compile(r"^(?P<service>[A-Za-z0-9][A-Za-z0-9_.-]*):(?P<port>\d{1,5})$")
_REGISTRY = re.compile(r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:\d+)?(/[a-z0-9]+([._-][a-z0-9]+)*)*$")
_PERCENT = re.compile(r"^(\d{1,3})%$")


class Model(BaseModel):
    """Base of every config model: frozen, unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True)


def _none_to_empty(value: object) -> object:
    return {} if value is None else value


def _paths(value: object) -> object:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list | tuple):
        return tuple(value)
    shown = "a mapping" if isinstance(value, dict) else repr(value)
    raise ValueError(f"expected a path or a list of paths, got {shown}")


def _registry(value: str) -> str:
    if not _REGISTRY.fullmatch(value):
        raise ValueError(
            f"invalid registry {value!r}: expected a host and optional path like ghcr.io/acme "
            "(no scheme, no trailing '/', lowercase)"
        )
    return value


RegistryRef = Annotated[str, AfterValidator(_registry)]
ProviderBlock = Annotated[dict[str, Any], BeforeValidator(_none_to_empty)]
ComposeFiles = Annotated[
    tuple[Annotated[str, Field(min_length=1)], ...],
    BeforeValidator(_paths),
    Field(min_length=1),
    WithJsonSchema({"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}),
]


class ProjectConfig(Model):
    """The project: its name and optional image registry prefix."""

    name: ProjectName = Field(
        description="Project name; also the Compose project name (lowercase, digits, '-', '_')."
    )
    registry: RegistryRef | None = Field(
        default=None,
        description="Image registry prefix, e.g. ghcr.io/acme; images become <registry>/<service>.",
    )


class ProviderSelection(Model):
    """``{provider: <id>, providers: {<id>: {...}}}``: which provider, and their settings."""

    provider: ProviderId = Field(description="Id of the selected provider.")
    providers: dict[str, ProviderBlock] = Field(
        default_factory=dict,
        description="Settings per provider id; each block is validated by that provider.",
    )

    def block(self) -> dict[str, Any]:
        """The selected provider's settings (``{}`` when none are given)."""
        return dict(self.providers.get(self.provider, {}))


class MigrationsConfig(Model):
    """How a database's schema migrations run."""

    engine: ProviderId = Field(default="raw", description="Migration engine provider id.")
    path: str = Field(description="Directory of migration files, relative to the project root.")
    strategy: Strategy = Field(
        default="pre_deploy",
        description="When deploy runs them: pre_deploy, post_deploy, or manual (never).",
    )
    table: TableName = Field(
        default="stagecraft_migrations", description="Table that records applied migrations."
    )


class DatabaseConfig(Model):
    """A database: where it runs and how its migrations are applied."""

    service: ServiceName | None = Field(
        default=None, description="Compose service that runs it (none for an external database)."
    )
    url_env: VarName = Field(
        description="Env var holding the connection URL (set for dev servers, read on deploy)."
    )
    migrations: MigrationsConfig | None = Field(default=None, description="Schema migrations.")


@dataclass(frozen=True)
class DevRoute:
    """One parsed dev route: ``<name>.<domain>`` goes to the backend, frontend or service:port."""

    name: str
    kind: Literal["backend", "frontend", "service"]
    service: str | None = None
    port: int | None = None

    def __str__(self) -> str:
        return f"{self.service}:{self.port}" if self.kind == "service" else self.kind


def parse_route_target(name: str, target: str) -> DevRoute:
    """Parse ``backend``, ``frontend`` or ``service:port``; ValueError if malformed."""
    if target == "backend":
        return DevRoute(name, "backend")
    if target == "frontend":
        return DevRoute(name, "frontend")
    match = _ROUTE_TARGET.fullmatch(target)
    if match is None or not 1 <= int(match["port"]) <= 65535:
        raise ValueError(f"expected 'backend', 'frontend' or 'service:port', got {target!r}")
    return DevRoute(name, "service", match["service"], int(match["port"]))


def _check_route_target(value: str) -> str:
    parse_route_target("", value)
    return value


RouteTarget = Annotated[
    str,
    AfterValidator(_check_route_target),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^(backend|frontend|[A-Za-z0-9][A-Za-z0-9_.-]*:\d{1,5})$",
            "examples": ["backend", "frontend", "mailpit:8025"],
        }
    ),
]


class DevConfig(Model):
    """The local development environment run by ``stagecraft dev``."""

    domain: Domain | None = Field(
        default=None, description="Base domain of dev routes (default <project>.localhost)."
    )
    https: bool = Field(default=True, description="Serve dev routes over HTTPS (local CA).")
    infra: list[ServiceName] = Field(
        default_factory=list, description="Compose services that `dev` starts as infrastructure."
    )
    routes: dict[RouteName, RouteTarget] = Field(
        default_factory=dict,
        description="<name>.<domain> -> 'backend', 'frontend' or '<compose service>:<port>'.",
    )
    hosts_file: bool = Field(
        default=False, description="Manage /etc/hosts lines for domains outside *.localhost."
    )

    def route_targets(self) -> dict[str, DevRoute]:
        """The routes, parsed."""
        return {name: parse_route_target(name, target) for name, target in self.routes.items()}


class HostConfig(Model):
    """One server of an environment."""

    address: str | None = Field(
        default=None,
        min_length=1,
        description=(
            "IP address or DNS name (or ~/.ssh/config alias). Left out for a host that"
            " `stagecraft infra up` creates: it records the address in .stagecraft/infra/."
        ),
    )
    user: str = Field(default="root", min_length=1, description="SSH user.")
    port: Port = Field(default=22, description="SSH port.")
    roles: list[RoleName] = Field(min_length=1, description="Roles this host plays.")
    labels: dict[str, EnvValue] = Field(default_factory=dict, description="Free-form labels.")
    manager: bool = Field(
        default=False,
        description="driver: swarm only: a Swarm manager (default: the first host alone).",
    )


DockerSource = Literal["distro", "docker", "none"]


class BootstrapConfig(Model):
    """What ``stagecraft hosts bootstrap`` may install and change on a Debian/Ubuntu host."""

    docker: DockerSource = Field(
        default="distro",
        description=(
            "Where Docker and Compose v2 come from when missing: distro (the distribution's"
            " packages), docker (Docker's apt repository), none (never install; fail instead)."
        ),
    )
    user: str | None = Field(
        default=None,
        pattern=r"^[a-z_][a-z0-9_-]{0,31}$",
        description=(
            "A non-root deploy user to create, in the docker group, with the connecting"
            " user's SSH keys (then connect as it: hosts.<name>.user)."
        ),
    )
    firewall: bool = Field(
        default=False,
        description=(
            "Turn on ufw: incoming traffic only to SSH, the proxy's HTTP/HTTPS ports and the"
            " mesh interface."
        ),
    )


class SSHConfig(Model):
    """How Stagecraft's ssh reaches an environment's hosts (ssh's own config still applies)."""

    known_hosts: str | None = Field(
        default=None,
        description=(
            "known_hosts file for these hosts, relative to stagecraft.yml (default: ssh's own;"
            " .stagecraft/infra/<env>.known_hosts for hosts `infra up` created)."
        ),
    )
    identity: str | None = Field(
        default=None, description="Private key file to log in with (default: ssh's own)."
    )


class ImagesConfig(Model):
    """How release images reach the hosts."""

    transfer: Transfer = Field(
        default="ssh", description="ssh: stream missing images over SSH; registry: push and pull."
    )
    registry: RegistryRef | None = Field(
        default=None, description="Registry (default project.registry) for transfer: registry."
    )
    username: str | None = Field(default=None, description="Registry user name.")
    password_secret: VarName | None = Field(
        default=None, description="Name of the secret holding the registry password or token."
    )
    push_registry: RegistryRef | None = Field(
        default=None,
        description=(
            "Address the local Docker daemon pushes to when it differs from the one hosts pull"
            " from (an SSH tunnel, localhost:5000 of a registry on this machine)."
        ),
    )

    @model_validator(mode="after")
    def _check_transfer(self) -> ImagesConfig:
        if self.transfer == "ssh":
            keys = ("registry", "username", "password_secret", "push_registry")
            extra = [k for k in keys if getattr(self, k)]
            if extra:
                verb = "is" if len(extra) == 1 else "are"
                raise ValueError(f"{', '.join(extra)} {verb} only used with transfer: registry")
        return self


def _url_path(value: str) -> str:
    if not value.startswith("/"):
        raise ValueError(f"expected a path starting with '/', got {value!r}")
    return value


UrlPath = Annotated[str, AfterValidator(_url_path)]


class RouteConfig(Model):
    """A public route through each host's proxy."""

    host: Domain = Field(description="Public host name, e.g. api.example.com.")
    service: ServiceName = Field(description="Compose service that serves it.")
    port: Port = Field(description="Container port of the service.")
    path: UrlPath | None = Field(default=None, description="Path prefix (default: every path).")


def _boot_limit(value: object) -> object:
    if isinstance(value, bool):
        raise ValueError("expected a number of hosts or a percentage like '25%'")
    if isinstance(value, int):
        if value < 1:
            raise ValueError(f"expected at least 1 host, got {value}")
        return value
    if isinstance(value, str):
        match = _PERCENT.match(value.strip())
        if match and 1 <= int(match[1]) <= 100:
            return value.strip()
        if value.strip().isdigit() and int(value) >= 1:
            return int(value)
    raise ValueError(f"expected a number of hosts or a percentage like '25%', got {value!r}")


class BootConfig(Model):
    """Boot groups: roll out to ``limit`` hosts at a time, waiting ``wait`` between groups."""

    limit: Annotated[
        int | str | None,
        BeforeValidator(_boot_limit),
        WithJsonSchema(
            {
                "anyOf": [
                    {"type": "integer", "minimum": 1},
                    {"type": "string", "pattern": r"^\d{1,3}%$"},
                    {"type": "null"},
                ]
            }
        ),
    ] = Field(default=None, description="Hosts per group: a number or a percentage like '25%'.")
    wait: Duration = Field(default=0.0, description="Pause between groups.")

    def group_size(self, hosts: int) -> int:
        """Hosts per boot group for ``hosts`` hosts in total (all of them without a limit)."""
        if self.limit is None:
            return max(hosts, 1)
        if isinstance(self.limit, str):
            percent = int(self.limit.rstrip("%"))
            return max(1, math.floor(hosts * percent / 100))
        return self.limit


class DeployConfig(Model):
    """Deploy tuning."""

    parallel: int = Field(default=4, ge=1, description="Hosts worked on at the same time.")
    boot: BootConfig = Field(default_factory=BootConfig, description="Boot groups.")
    health_timeout: Duration = Field(
        default=60.0, description="How long a new container may take to become healthy."
    )
    drain: Duration = Field(
        default=30.0,
        description="Longest wait after the switch before the old containers stop: they stop "
        "as soon as the proxy has no request in flight to them (0 stops them at once).",
    )
    retain: int = Field(default=5, ge=1, description="Releases (images, containers) to keep.")


class SecretsProviderRef(BaseModel):
    """``{provider: <id>, ...}``: the provider's own keys sit next to ``provider``."""

    model_config = ConfigDict(extra="allow", frozen=True)

    provider: ProviderId = Field(description="Secrets provider id (env, dotenv, command, ...).")

    @property
    def options(self) -> dict[str, Any]:
        """The provider's own keys (everything except ``provider``)."""
        return dict(self.model_extra or {})


class EnvironmentConfig(Model):
    """A deploy target: hosts, what runs where, routes, env, secrets, tuning."""

    hosts: dict[HostName, HostConfig] = Field(min_length=1, description="Servers by name.")
    driver: Driver = Field(
        default="ssh",
        description=(
            "ssh: Stagecraft rolls out over SSH, host by host; swarm: the hosts form a Docker"
            " Swarm that runs the app as a stack (docs/swarm.md)."
        ),
    )
    roles: dict[RoleName, list[ServiceName]] = Field(
        default_factory=dict, description="Role -> the compose services it runs."
    )
    images: ImagesConfig = Field(default_factory=ImagesConfig, description="Image transfer.")
    routes: dict[RouteName, RouteConfig] = Field(
        default_factory=dict, description="Public routes through each host's proxy."
    )
    tls: TlsMode = Field(default="acme", description="acme (Let's Encrypt), internal CA, or off.")
    env: dict[VarName, EnvValue] = Field(
        default_factory=dict, description="Clear environment variables for every service."
    )
    secrets: list[VarName] = Field(
        default_factory=list, description="Names of secret env vars; values come from the provider."
    )
    secrets_provider: SecretsProviderRef | None = Field(
        default=None,
        description="Where secret values come from, e.g. {provider: dotenv, path: .env}.",
    )
    network: ProviderSelection | None = Field(
        default=None, description="Network provider for this environment (overrides top level)."
    )
    cloud: ProviderSelection | None = Field(
        default=None,
        description="Cloud provider creating this environment's hosts (overrides top level).",
    )
    ssh: SSHConfig = Field(default_factory=SSHConfig, description="SSH settings for the hosts.")
    bootstrap: BootstrapConfig = Field(
        default_factory=BootstrapConfig,
        description="What `hosts bootstrap` installs: Docker source, deploy user, firewall.",
    )
    deploy: DeployConfig = Field(
        default_factory=DeployConfig,
        description="Deploy tuning: parallelism, boot groups, timeouts, releases kept.",
    )

    @model_validator(mode="after")
    def _check_driver(self) -> EnvironmentConfig:
        if self.driver == "ssh":
            managers = [name for name, host in self.hosts.items() if host.manager]
            if managers:
                raise ValueError(
                    f"hosts {', '.join(managers)}: manager is only used with driver: swarm"
                )
        elif self.images.transfer != "ssh":
            raise ValueError("driver: swarm ships images over SSH only (images.transfer: ssh)")
        return self

    @property
    def primary_host(self) -> str:
        """The first host: it holds the deploy lock."""
        return next(iter(self.hosts))

    @property
    def managers(self) -> list[str]:
        """driver: swarm: the hosts marked ``manager: true``, else the first host."""
        return [name for name, host in self.hosts.items() if host.manager] or [self.primary_host]

    def services_on(self, host: str) -> list[str]:
        """Compose services placed on ``host`` by its roles, in role order, without repeats."""
        found: dict[str, None] = {}
        for role in self.hosts[host].roles:
            found.update(dict.fromkeys(self.roles.get(role, [])))
        return list(found)

    def hosts_running(self, service: str) -> list[str]:
        """Hosts whose roles place ``service`` on them."""
        return [name for name in self.hosts if service in self.services_on(name)]


def _project_from_str(value: object) -> object:
    return {"name": value} if isinstance(value, str) else value


class StagecraftConfig(Model):
    """The whole ``stagecraft.yml``."""

    project: Annotated[ProjectConfig, BeforeValidator(_project_from_str)] = Field(
        description="Project name, or {name, registry}."
    )
    compose: ComposeFiles | None = Field(
        default=None,
        description="Compose file(s), relative to stagecraft.yml (default: compose.yaml, ...).",
    )
    backend: ProviderSelection | None = Field(default=None, description="Backend provider.")
    frontend: ProviderSelection | None = Field(default=None, description="Frontend provider.")
    databases: dict[ServiceName, DatabaseConfig] = Field(
        default_factory=dict, description="Databases by name."
    )
    dev: DevConfig = Field(default_factory=DevConfig, description="Local development.")
    environments: dict[EnvName, EnvironmentConfig] = Field(
        default_factory=dict, description="Deploy environments by name."
    )
    proxy: ProviderSelection | None = Field(default=None, description="Edge proxy (caddy).")
    network: ProviderSelection | None = Field(default=None, description="Private network.")
    cloud: ProviderSelection | None = Field(default=None, description="Cloud host provisioning.")
    ci: ProviderSelection | None = Field(default=None, description="CI workflow generator.")
    secrets: ProviderSelection | None = Field(
        default=None, description="Default secrets provider of every environment."
    )

    @model_validator(mode="before")
    @classmethod
    def _drop_extensions(cls, data: object) -> object:
        # Top-level `x-*` keys hold YAML anchors for reuse, as in Compose files.
        if isinstance(data, dict):
            return {
                k: v for k, v in data.items() if not (isinstance(k, str) and k.startswith("x-"))
            }
        return data

    @property
    def dev_domain(self) -> str:
        """``dev.domain``, or ``<project>.localhost``."""
        return self.dev.domain or f"{self.project.name}.localhost"

    def dev_routes(self) -> dict[str, DevRoute]:
        """``dev.routes``; by default ``app`` -> frontend and ``api`` -> backend when configured."""
        if self.dev.routes:
            return self.dev.route_targets()
        routes: dict[str, DevRoute] = {}
        if self.frontend is not None:
            routes["app"] = DevRoute("app", "frontend")
        if self.backend is not None:
            routes["api"] = DevRoute("api", "backend")
        return routes

    def secrets_provider_for(self, env: str) -> tuple[str, dict[str, Any]]:
        """``(provider id, its options)`` for ``env``: its own, the top-level one, or ``env``."""
        ref = self.environments[env].secrets_provider
        if ref is not None:
            return ref.provider, ref.options
        if self.secrets is not None:
            return self.secrets.provider, self.secrets.block()
        return "env", {}

    def cloud_for(self, env: str) -> ProviderSelection | None:
        """The cloud provider selection of ``env`` (its own, else the top-level one)."""
        return self.environments[env].cloud or self.cloud

    def network_for(self, env: str) -> ProviderSelection | None:
        """The network provider selection of ``env`` (its own, else the top-level one)."""
        return self.environments[env].network or self.network
