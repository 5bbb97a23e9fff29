"""The ``digitalocean`` cloud: droplets through the DigitalOcean v2 API.

:class:`DigitalOceanCloud` describes the droplets and their requests (pure);
:meth:`DigitalOceanCloud.open` gives a :class:`DigitalOceanSession` that sends
them with :class:`~.digitalocean_api.DigitalOceanClient`.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

from pydantic import Field, field_validator

from stagecraft import redact
from stagecraft.errors import ProviderError
from stagecraft.providers.base import ProviderConfig
from stagecraft.providers.builtin._dev import ENV_NAME
from stagecraft.providers.builtin.digitalocean_api import (
    API_URL_ENV,
    CONFIG,
    DEFAULT_API_URL,
    DROPLETS,
    KEYS_URL,
    DigitalOceanClient,
    DigitalOceanError,
    api_url,
    missing_token,
)
from stagecraft.providers.cloud import (
    ApiRequest,
    CloudError,
    CloudHost,
    CloudProvider,
    CloudSession,
    Machine,
    Server,
    environment_tag,
    machine_name,
    machine_tags,
)

logger = logging.getLogger(__name__)

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
    ``stagecraft-project-<project>``, ``stagecraft-<project>-<env>`` (the tag
    that selects the environment's droplets), ``stagecraft-role-<role>`` per role
    and ``stagecraft-host-<host>`` (which ``stagecraft.yml`` host it is), plus
    ``tags``. Stagecraft never destroys a droplet without its environment's tag.

    :meth:`create_requests` gives one ``POST /v2/droplets`` per droplet, with the
    documented body fields ``name``, ``region``, ``size``, ``image``, ``ssh_keys``,
    ``tags``, ``vpc_uuid`` (https://docs.digitalocean.com/reference/api/digitalocean/#tag/Droplets/operation/droplets_create);
    :meth:`list_request` is ``GET /v2/droplets?tag_name=stagecraft-<project>-<env>``
    (the droplets list filtered by tag: exactly the environment's droplets).

    :meth:`open` connects with the token from ``token_env`` and returns a
    :class:`DigitalOceanSession`: ``servers`` lists the environment's droplets,
    ``create`` checks ``ssh_keys`` exist in the account and then creates the
    droplets, ``wait_running`` polls until each is ``active`` with a public IPv4,
    ``destroy`` deletes droplets that carry the environment's tag. Rate limits
    (429) and passing failures (5xx, reset connections) are retried. The
    environment variable ``STAGECRAFT_DIGITALOCEAN_API_URL`` replaces
    ``https://api.digitalocean.com``: it is for tests (the stand-in server in
    ``stagecraft.testing.digitalocean_standin``) and API proxies.

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
    >>> m.tags[-1]
    'stagecraft-host-web-1'

    With a session (``infra up`` and ``infra down`` do this)::

        session = do.open(os.environ.get("DO_TOKEN"))
        missing = [m for m in do.desired_machines("shop", "staging", hosts)
                   if m.name not in {s.name for s in session.servers("shop", "staging")}]
        running = session.wait_running(session.create(missing), timeout=600)
        session.destroy(session.servers("shop", "staging"))
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
            own = machine_tags(project, environment, host.roles, host=host.name)
            tags = _unique((*own, *cfg.tags))
            machines[name] = Machine(name, host.name, cfg.region, cfg.size, cfg.image, tags)
        return [machines[name] for name in sorted(machines)]

    def create_requests(self, machines: Sequence[Machine]) -> list[ApiRequest]:
        return [ApiRequest("POST", DROPLETS, self._body(m)) for m in machines]

    def list_request(self, project: str, environment: str) -> ApiRequest:
        tag = environment_tag(project, environment)
        return ApiRequest("GET", DROPLETS, query={"tag_name": tag, "per_page": "200"})

    def open(self, token: str | None) -> DigitalOceanSession:
        """A session on the account of ``token`` (the value of :attr:`token_env`)."""
        if not token:
            raise missing_token(self.token_env)
        redact.remember(token, name=self.token_env)
        client = DigitalOceanClient(token, base_url=api_url(), token_env=self.token_env)
        if client.base_url != DEFAULT_API_URL:
            logger.info("DigitalOcean API at %s (from %s)", client.base_url, API_URL_ENV)
        return DigitalOceanSession(self, client)

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


class DigitalOceanSession(CloudSession):
    """A session on one DigitalOcean account (what :meth:`DigitalOceanCloud.open` returns).

    ``sleep`` and ``clock`` (monotonic seconds) drive :meth:`wait_running`, which
    polls every ``poll`` seconds at first, 1.5 times longer each round, up to
    ``max_poll``.
    """

    def __init__(
        self,
        provider: DigitalOceanCloud,
        client: DigitalOceanClient,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        poll: float = 2.0,
        max_poll: float = 15.0,
    ) -> None:
        self.provider = provider
        self.client = client
        self._sleep = sleep
        self._clock = clock
        self._poll = poll
        self._max_poll = max_poll
        self._environments: set[str] = set()  # the environment tags ``servers`` listed

    def __repr__(self) -> str:
        return f"DigitalOceanSession({self.client!r})"

    def servers(self, project: str, environment: str) -> list[Server]:
        tag = environment_tag(project, environment)
        self._environments.add(tag)
        droplets = self.client.collect(self.provider.list_request(project, environment), "droplets")
        found = [droplet_server(d) for d in droplets]
        return sorted((s for s in found if tag in s.tags), key=lambda s: s.name)

    def create(self, machines: Sequence[Machine]) -> list[Server]:
        if not machines:
            return []
        self._check_ssh_keys()
        created: list[Server] = []
        for machine, request in zip(machines, self.provider.create_requests(machines), strict=True):
            try:
                created.append(droplet_server(self.client.create_droplet(request)))
            except DigitalOceanError as exc:
                raise _creation_failed(exc, machine, created) from exc
            logger.info("created droplet %s (id %s)", machine.name, created[-1].id)
        return created

    def wait_running(self, servers: Sequence[Server], timeout: float) -> list[Server]:
        deadline = self._clock() + timeout
        latest = {s.id: s for s in servers}
        pending = list(latest)
        interval = self._poll
        while True:
            for server_id in pending:
                latest[server_id] = self._refresh(latest[server_id])
            pending = [i for i in pending if not _running(latest[i])]
            remaining = deadline - self._clock()
            if not pending:
                return [latest[s.id] for s in servers]
            if remaining <= 0:
                raise _not_running([latest[i] for i in pending], timeout)
            self._sleep(min(interval, remaining))
            interval = min(interval * 1.5, self._max_poll)

    def destroy(self, servers: Sequence[Server]) -> None:
        self._check_owned(servers)
        for server in servers:
            if self.client.delete_droplet(server.id):
                logger.info("destroyed droplet %s (id %s)", server.name, server.id)
            else:
                logger.info("droplet %s (id %s) was already gone", server.name, server.id)

    def _refresh(self, server: Server) -> Server:
        try:
            return droplet_server(self.client.get_droplet(server.id))
        except DigitalOceanError as exc:
            raise exc.about(f"waiting for droplet {server.name} (id {server.id})") from exc

    def _check_ssh_keys(self) -> None:
        keys = self.provider.config.ssh_keys
        if not keys:
            raise ProviderError(
                f"{CONFIG}.ssh_keys is empty: the droplets would have no SSH key, and "
                "Stagecraft could not log in to set them up",
                hint=f"list the ID or fingerprint of a key in the account (`doctl compute "
                f"ssh-key list`; add one at {KEYS_URL}) in {CONFIG}.ssh_keys",
            )
        self.client.check_ssh_keys(keys)

    def _check_owned(self, servers: Sequence[Server]) -> None:
        """Refuse, before deleting anything, servers without a listed environment's tag.

        Their tags are read again from DigitalOcean: what counts is the droplet as
        it is, not a caller's copy of it.
        """
        foreign = [s for s in servers if not self._environments.intersection(s.tags)]
        if not foreign:
            foreign = [s for s in servers if not self._still_tagged(s)]
        if foreign:
            raise _not_ours(foreign, self._environments)

    def _still_tagged(self, server: Server) -> bool:
        try:
            droplet = self.client.get_droplet(server.id)
        except DigitalOceanError as exc:
            if exc.status == 404:
                return True  # already gone: nothing to destroy, nothing to refuse
            raise
        return bool(self._environments.intersection(droplet.get("tags") or ()))


def droplet_server(droplet: Mapping[str, Any]) -> Server:
    """A droplet of the API as a :class:`Server`: IPv4 addresses from ``networks.v4``."""
    v4 = (droplet.get("networks") or {}).get("v4") or []
    return Server(
        id=str(droplet["id"]),
        name=str(droplet.get("name", "")),
        status=str(droplet.get("status", "")),
        tags=tuple(droplet.get("tags") or ()),
        public_address=_address(v4, "public"),
        private_address=_address(v4, "private"),
    )


def _address(networks: Sequence[Mapping[str, Any]], kind: str) -> str | None:
    return next((n["ip_address"] for n in networks if n.get("type") == kind), None)


def _running(server: Server) -> bool:
    return server.status == "active" and server.public_address is not None


def _creation_failed(
    exc: DigitalOceanError, machine: Machine, created: Sequence[Server]
) -> DigitalOceanError:
    context = f"creating droplet {machine.name}"
    if created:
        context += f" (created before it: {', '.join(s.name for s in created)})"
    return exc.about(context)


def _not_running(servers: Sequence[Server], timeout: float) -> DigitalOceanError:
    states = ", ".join(
        f"{s.name} (status {s.status}{'' if s.public_address else ', no public IPv4'})"
        for s in servers
    )
    return DigitalOceanError(
        f"droplets not running after {timeout:g} s: {states}",
        hint="DigitalOcean is still starting them, or they are stuck: look at them at "
        "https://cloud.digitalocean.com/droplets; running the command again waits for "
        "them rather than creating them twice",
    )


def _not_ours(servers: Sequence[Server], environments: set[str]) -> ProviderError:
    names = ", ".join(f"{s.name or '?'} (id {s.id})" for s in servers)
    tags = " or ".join(sorted(environments)) or "for an environment (none was listed yet)"
    return ProviderError(
        f"refusing to destroy droplet{'s' if len(servers) > 1 else ''} {names}: not tagged {tags}",
        hint="Stagecraft destroys only the droplets it tagged for the environment; "
        "remove any other droplet in the DigitalOcean control panel",
    )
