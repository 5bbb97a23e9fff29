"""The ``digitalocean`` cloud: droplets through the DigitalOcean v2 API."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, ClassVar

from pydantic import Field, field_validator

from stagecraft.providers.base import ProviderConfig
from stagecraft.providers.builtin._dev import ENV_NAME
from stagecraft.providers.cloud import (
    ApiRequest,
    CloudError,
    CloudHost,
    CloudProvider,
    Machine,
    environment_tag,
    machine_name,
    machine_tags,
)

DROPLETS = "/v2/droplets"
# DigitalOcean tag names: letters, numbers, colons, dashes and underscores, 255 at most.
DO_TAG = r"^[A-Za-z0-9:_-]{1,255}$"


class DigitalOceanConfig(ProviderConfig):
    """``cloud.providers.digitalocean``."""

    token_env: str = "DO_TOKEN"
    region: str | None = Field(default=None, pattern=r"^[a-z0-9]+$")
    size: str = Field(default="s-1vcpu-1gb", pattern=r"^[a-z0-9-]+$")
    image: str = "ubuntu-24-04-x64"
    ssh_keys: list[int | str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    vpc_uuid: str | None = Field(
        default=None, pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
    )

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: list[str]) -> list[str]:
        bad = [tag for tag in value if not re.fullmatch(DO_TAG, tag)]
        if bad:
            raise ValueError(
                "DigitalOcean tags use letters, digits, ':', '-' and '_' (255 at most), "
                f"not {', '.join(map(repr, bad))}"
            )
        return value

    @field_validator("token_env")
    @classmethod
    def _env_name(cls, value: str) -> str:
        if not ENV_NAME.fullmatch(value):
            raise ValueError(f"{value!r} is not an environment variable name")
        return value


class DigitalOceanCloud(CloudProvider):
    """DigitalOcean droplets, one per host of the environment.

    Config keys (``cloud.providers.digitalocean``):

    - ``token_env``: the environment variable holding the API token (default ``DO_TOKEN``).
    - ``region``: region slug (``fra1``, ``nyc3``); left out of the request when
      unset, and DigitalOcean then picks one.
    - ``size``: size slug (default ``s-1vcpu-1gb``).
    - ``image``: image slug or ID (default ``ubuntu-24-04-x64``).
    - ``ssh_keys``: SSH key IDs or fingerprints already in the account, added to
      root's ``authorized_keys`` (Stagecraft never creates keys).
    - ``tags``: extra tags for every droplet.
    - ``vpc_uuid``: the VPC to place the droplets in (default: the region's default VPC).

    Each droplet is named ``<project>-<env>-<host>`` and tagged ``stagecraft``,
    ``stagecraft-project-<project>``, ``stagecraft-<project>-<env>`` and
    ``stagecraft-role-<role>`` per role, plus ``tags``.

    :meth:`create_requests` gives one ``POST /v2/droplets`` per droplet, with the
    documented body fields ``name``, ``region``, ``size``, ``image``, ``ssh_keys``,
    ``tags``, ``vpc_uuid`` (https://docs.digitalocean.com/reference/api/digitalocean/#tag/Droplets/operation/droplets_create);
    :meth:`list_request` is ``GET /v2/droplets?tag_name=stagecraft-<project>-<env>``
    (the droplets list filtered by tag: exactly the environment's droplets).

    Example ``stagecraft.yml``::

        cloud:
          provider: digitalocean
          providers:
            digitalocean:
              token_env: DO_TOKEN
              region: fra1
              size: s-2vcpu-4gb
              ssh_keys: ["3b:16:bf:e4:8b:00:8b:b8:59:8c:a9:d3:f0:19:45:fa"]

    >>> do = DigitalOceanCloud(DigitalOceanCloud.Config.model_validate({"region": "fra1"}))
    >>> [m] = do.desired_machines("shop", "staging", [CloudHost("web-1", ("web",))])
    >>> do.create_requests([m])[0].body["name"]
    'shop-staging-web-1'
    """

    id: ClassVar[str] = "digitalocean"
    Config: ClassVar[type[ProviderConfig]] = DigitalOceanConfig
    config: DigitalOceanConfig

    @property
    def token_env(self) -> str:
        return self.config.token_env

    def desired_machines(
        self, project: str, environment: str, hosts: Sequence[CloudHost]
    ) -> list[Machine]:
        cfg = self.config
        machines: dict[str, Machine] = {}
        for host in hosts:
            name = machine_name(project, environment, host.name)
            if name in machines:
                raise CloudError(
                    f"hosts {machines[name].host!r} and {host.name!r} of environment "
                    f"{environment} both map to droplet {name}",
                    hint="rename one of the hosts",
                )
            tags = _unique((*machine_tags(project, environment, host.roles), *cfg.tags))
            machines[name] = Machine(name, host.name, cfg.region, cfg.size, cfg.image, tags)
        return [machines[name] for name in sorted(machines)]

    def create_requests(self, machines: Sequence[Machine]) -> list[ApiRequest]:
        return [ApiRequest("POST", DROPLETS, self._body(m)) for m in machines]

    def list_request(self, project: str, environment: str) -> ApiRequest:
        tag = environment_tag(project, environment)
        return ApiRequest("GET", DROPLETS, query={"tag_name": tag, "per_page": "200"})

    def _body(self, machine: Machine) -> dict[str, Any]:
        body: dict[str, Any] = {
            "name": machine.name,
            "size": machine.size,
            "image": machine.image,
            "ssh_keys": list(self.config.ssh_keys),
            "tags": list(machine.tags),
        }
        if machine.region:
            body["region"] = machine.region
        if self.config.vpc_uuid:
            body["vpc_uuid"] = self.config.vpc_uuid
        return dict(sorted(body.items()))


def _unique(items: Sequence[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))
