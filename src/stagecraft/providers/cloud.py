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


def machine_tags(project: str, environment: str, roles: Iterable[str]) -> tuple[str, ...]:
    """The tags every machine carries: ``stagecraft``, its project, environment and roles.

    The third tag, ``stagecraft-<project>-<env>``, selects exactly one environment.

    >>> machine_tags("shop", "staging", ["web"])
    ('stagecraft', 'stagecraft-project-shop', 'stagecraft-shop-staging', 'stagecraft-role-web')
    """
    tags = [
        "stagecraft",
        f"stagecraft-project-{_tag(project)}",
        environment_tag(project, environment),
    ]
    tags += [f"stagecraft-role-{_tag(role)}" for role in sorted(set(roles))]
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

    @abstractmethod
    def create_requests(self, machines: Sequence[Machine]) -> list[ApiRequest]:
        """The API requests that create ``machines``."""

    @abstractmethod
    def list_request(self, project: str, environment: str) -> ApiRequest:
        """The API request that lists the environment's existing machines."""
