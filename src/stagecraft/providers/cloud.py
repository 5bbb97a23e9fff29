"""Cloud providers: the ``cloud`` provider kind (creating the servers an environment runs on).

``stagecraft infra up`` provisions the hosts of an environment through a
cloud provider, then bootstraps them. The provider's part is pure: from the
environment's hosts (:class:`CloudHost`: name and roles from
``stagecraft.yml``) it computes the :class:`Machine` values it wants to
exist (:meth:`CloudProvider.desired_machines`), and the HTTP requests of its
API that create them (:meth:`CloudProvider.create_requests`) or list what
exists (:meth:`CloudProvider.list_request`). An HTTP client executes those
:class:`ApiRequest` values, with the token read from the environment variable
the provider names (:attr:`CloudProvider.token_env`); the requests never
carry the token.

Machine names are ``<project>-<env>-<host>``, so several projects and
environments share one cloud account without clashing, and every machine
carries tags naming its project, environment and roles.

A third-party cloud implements the same methods::

    class HetznerCloud(CloudProvider):
        \"\"\"Hetzner Cloud servers.\"\"\"

        id = "hetzner"

        class Config(ProviderConfig):
            token_env: str = "HCLOUD_TOKEN"
            server_type: str = "cx22"
            location: str = "fsn1"

        @property
        def token_env(self):
            return self.config.token_env

        def desired_machines(self, project, environment, hosts):
            return [Machine(machine_name(project, environment, h.name), h.name,
                            self.config.location, self.config.server_type, "ubuntu-24.04",
                            machine_tags(project, environment, h.roles)) for h in hosts]

        def create_requests(self, machines):
            return [ApiRequest("POST", "/v1/servers", {"name": m.name, ...}) for m in machines]

        def list_request(self, project, environment):
            return ApiRequest("GET", "/v1/servers", query={"label_selector": ...})

    # pyproject.toml:
    # [project.entry-points."stagecraft.providers.cloud"]
    # hetzner = "stagecraft_hetzner:HetznerCloud"
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from stagecraft.errors import ProviderError
from stagecraft.providers.base import Provider

_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_TAG_UNSAFE = re.compile(r"[^a-z0-9_-]+")


class CloudError(ProviderError):
    """A machine cannot be described to the cloud (bad name, conflicting hosts)."""


@dataclass(frozen=True)
class CloudHost:
    """A host of an environment, as ``stagecraft.yml`` declares it."""

    name: str
    roles: tuple[str, ...] = ()


@dataclass(frozen=True)
class Machine:
    """A server the provider wants to exist."""

    name: str
    host: str
    region: str | None
    size: str
    image: str
    tags: tuple[str, ...]


@dataclass(frozen=True)
class ApiRequest:
    """One HTTP request to the cloud's API (the token is added by the client)."""

    method: str
    path: str
    body: Mapping[str, Any] | None = None
    query: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Server:
    """A machine that exists at the cloud (what :meth:`CloudSession.servers` reports)."""

    id: str
    name: str
    status: str  # the cloud's own word: ``new``, ``active``, ``off`` ...
    tags: tuple[str, ...]
    public_address: str | None = None
    private_address: str | None = None

    @property
    def host(self) -> str | None:
        """The ``stagecraft.yml`` host this server is, from its tags (None when untagged)."""
        prefix = "stagecraft-host-"
        return next((t.removeprefix(prefix) for t in self.tags if t.startswith(prefix)), None)


class CloudSession(ABC):
    """A connection to one cloud account, opened by :meth:`CloudProvider.open`.

    ``infra up`` lists the environment's servers, creates the missing ones and
    waits until each has an address; ``infra down`` destroys what ``servers``
    lists. Every method raises :class:`~stagecraft.errors.ProviderError` with a
    message fit for the user (never the token) when the cloud refuses.
    """

    @abstractmethod
    def servers(self, project: str, environment: str) -> list[Server]:
        """The servers tagged for exactly this environment, sorted by name."""

    @abstractmethod
    def create(self, machines: Sequence[Machine]) -> list[Server]:
        """Ask for ``machines``; return them as created (maybe without addresses yet)."""

    @abstractmethod
    def wait_running(self, servers: Sequence[Server], timeout: float) -> list[Server]:
        """Wait until every server runs and has a public address; return them refreshed."""

    @abstractmethod
    def destroy(self, servers: Sequence[Server]) -> None:
        """Destroy ``servers`` (only ever servers that :meth:`servers` listed)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release what the session holds (connections, sandboxes)."""

    def known_host_keys(self, server: Server) -> list[str]:
        """``server``'s SSH host keys as known_hosts lines, when the cloud knows them.

        Empty (the default) when it does not: ``infra up`` then scans the key once
        when the server first answers (trust on first use, ADR 0011).
        """
        return []

    def login_identity(self) -> str | None:
        """A private key file that logs in to the servers, when the cloud made one."""
        return None


def machine_name(project: str, environment: str, host: str) -> str:
    """``<project>-<env>-<host>``, checked to be a valid hostname label.

    >>> machine_name("shop", "staging", "web-1")
    'shop-staging-web-1'
    """
    name = f"{project}-{environment}-{host}".lower()
    if not _LABEL.fullmatch(name):
        raise CloudError(
            f"machine name {name!r} (project-environment-host) is not a valid hostname",
            hint="use lowercase letters, digits and '-' in project, environment and host "
            "names, 63 characters at most in total",
        )
    return name


def machine_tags(
    project: str, environment: str, roles: Iterable[str], *, host: str | None = None
) -> tuple[str, ...]:
    """The tags every machine carries: ``stagecraft``, its project, environment and roles.

    The third tag, ``stagecraft-<project>-<env>``, selects exactly one environment.

    >>> machine_tags("shop", "staging", ["web"])
    ('stagecraft', 'stagecraft-project-shop', 'stagecraft-shop-staging', 'stagecraft-role-web')
    >>> machine_tags("shop", "staging", ["web"], host="web-1")[-1]
    'stagecraft-host-web-1'
    """
    tags = [
        "stagecraft",
        f"stagecraft-project-{_tag(project)}",
        environment_tag(project, environment),
    ]
    tags += [f"stagecraft-role-{_tag(role)}" for role in sorted(set(roles))]
    if host is not None:
        tags.append(f"stagecraft-host-{_tag(host)}")
    return tuple(tags)


def environment_tag(project: str, environment: str) -> str:
    """The tag that selects the machines of one environment of one project."""
    return f"stagecraft-{_tag(project)}-{_tag(environment)}"


def _tag(text: str) -> str:
    return _TAG_UNSAFE.sub("-", text.lower()).strip("-") or "x"


class CloudProvider(Provider, ABC):
    """Base class of cloud providers (provider kind ``cloud``)."""

    kind: ClassVar[str] = "cloud"

    @property
    @abstractmethod
    def token_env(self) -> str:
        """The environment variable holding the API token."""

    @abstractmethod
    def desired_machines(
        self, project: str, environment: str, hosts: Sequence[CloudHost]
    ) -> list[Machine]:
        """The machines the environment's hosts need, sorted by name."""

    def create_requests(self, machines: Sequence[Machine]) -> list[ApiRequest]:
        """The API requests that create ``machines`` (for a cloud with an HTTP API)."""
        raise CloudError(f"cloud provider {self.id!r} has no HTTP API")

    def list_request(self, project: str, environment: str) -> ApiRequest:
        """The API request that lists the environment's machines (for an HTTP API)."""
        raise CloudError(f"cloud provider {self.id!r} has no HTTP API")

    @abstractmethod
    def open(self, token: str | None) -> CloudSession:
        """A session on the account ``token`` opens (None when :attr:`token_env` is empty)."""
