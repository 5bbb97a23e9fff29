"""Proxy providers: the ``proxy`` provider kind (the edge reverse proxy).

One proxy runs per host (and one for ``stagecraft dev`` on the laptop). It
terminates TLS for every public hostname routed to that host and forwards each
request to a service. A proxy provider does two things:

- :meth:`ProxyProvider.render_config` turns a list of :class:`Route` values
  into the proxy's own configuration: a pure function, so the config can be
  shown by ``--dry-run``, compared in tests, and validated by the real proxy.
- :meth:`ProxyProvider.on_host` gives the host-side mechanics a deploy drives,
  a :class:`HostProxy`: start the proxy container (``ensure``), set one app's
  routes among the other apps' (``apply_routes``), point a route's upstream
  name at new containers (``switch``) and wait until the old ones have no
  request in flight (``drain``). The deploy core only ever talks to this
  interface; it resolves the provider configured under ``proxy:`` in
  ``stagecraft.yml`` through the registry, so a third-party proxy serves a
  deploy exactly as the built-in Caddy one does.

Zero-downtime switching is the contract that shapes both: a route's upstream is
a *name* (``Route.upstream_host``, see :func:`upstream_name`) whose addresses a
switch replaces while the proxy keeps serving, without reloading its
configuration (a reload closes idle keep-alive client connections and races the
requests clients send on them; ADR 0005, ADR 0015). Routed containers and the
proxy share the Docker network :data:`EDGE_NETWORK`; switch addresses are the
containers' addresses on it.

A third-party proxy (say, Traefik) implements both::

    class TraefikProxy(ProxyProvider):
        \"\"\"Traefik with the file provider.\"\"\"

        id = "traefik"

        class Config(ProviderConfig):
            image: str = "traefik:v3"

        def render_config(self, routes, *, tls, admin=None):
            routers = {f"r{i}": {"rule": f"Host(`{r.host}`)", "service": f"s{i}"}
                       for i, r in enumerate(sort_routes(routes))}
            ...
            return {"http": {"routers": routers, "services": services}}

        def on_host(self, host, *, tls):
            return TraefikHost(self, host, tls)   # a HostProxy over the SSH gateway

        def images(self):
            return (self.config.image,)

    # pyproject.toml:
    # [project.entry-points."stagecraft.providers.proxy"]
    # traefik = "stagecraft_traefik:TraefikProxy"
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal, cast

from stagecraft.errors import ProviderError, StagecraftError
from stagecraft.providers.base import Provider

if TYPE_CHECKING:
    from stagecraft.runtime.ssh import SSHHost

TlsMode = Literal["acme", "internal", "off"]
"""``acme``: public certificates (Let's Encrypt/ZeroSSL); ``internal``: the proxy's
own local CA (dev, private networks); ``off``: plain HTTP only."""

TLS_MODES: tuple[str, ...] = ("acme", "internal", "off")

EDGE_NETWORK = "stagecraft"
"""The Docker network on each host that the proxy and every routed container join."""

_HOSTNAME = re.compile(
    r"^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$"
)


class RouteError(ProviderError):
    """A route is malformed, or two routes claim the same host and path."""


@dataclass(frozen=True, order=True)
class Route:
    """Requests for ``host`` (optionally under ``path``) go to ``upstream_host:upstream_port``.

    ``upstream_host`` is a DNS name (or an IP) resolved by the proxy at request
    time; ``path`` is a prefix such as ``/api`` (matching ``/api`` and ``/api/...``).
    """

    host: str
    upstream_host: str
    upstream_port: int
    path: str | None = None

    def __post_init__(self) -> None:
        if not _HOSTNAME.fullmatch(self.host) or len(self.host) > 253:
            raise RouteError(
                f"route host {self.host!r} is not a valid hostname",
                hint="use lowercase letters, digits, '-' and '.', e.g. api.staging.shop.com",
            )
        if not self.upstream_host or any(c.isspace() for c in self.upstream_host):
            raise RouteError(f"route {self.host}: invalid upstream host {self.upstream_host!r}")
        if not 0 < self.upstream_port < 65536:
            raise RouteError(f"route {self.host}: upstream port {self.upstream_port} out of range")
        if self.path is not None:
            if not self.path.startswith("/") or any(c in self.path for c in "*? \t"):
                raise RouteError(
                    f"route {self.host}: path {self.path!r} must be a prefix like /api",
                )
            trimmed = self.path.rstrip("/")
            object.__setattr__(self, "path", trimmed or None)

    @property
    def key(self) -> tuple[str, str]:
        """What must be unique among a proxy's routes: host and path."""
        return (self.host, self.path or "")


def sort_routes(routes: Iterable[Route]) -> list[Route]:
    """Routes in matching order, checked for conflicts: by host, longest path first.

    >>> [r.path for r in sort_routes([Route("a.test", "web", 80),
    ...                               Route("a.test", "api", 4000, "/api")])]
    ['/api', None]
    """
    seen: dict[tuple[str, str], Route] = {}
    for route in routes:
        other = seen.get(route.key)
        if other is not None and other != route:
            where = route.host + (route.path or "")
            raise RouteError(
                f"two routes for {where}: {other.upstream_host}:{other.upstream_port} and "
                f"{route.upstream_host}:{route.upstream_port}",
                hint="give each route its own host or path",
            )
        seen[route.key] = route
    return sorted(
        seen.values(),
        key=lambda r: (r.host, r.path is None, -len(r.path or ""), r.path or ""),
    )


def upstream_name(project: str, env: str, service: str) -> str:
    """The stable name a route of ``service`` in ``project``/``env`` has as its upstream.

    >>> upstream_name("shop", "staging", "web")
    'web.staging.shop.internal'
    """
    name = f"{service}.{env}.{project}.internal".lower().replace("_", "-")
    if not valid_upstream_name(name):
        raise StagecraftError(
            f"cannot build an upstream name from project {project!r}, env {env!r}, "
            f"service {service!r}",
            hint="use letters, digits and '-' in project, environment and service names",
        )
    return name


def valid_upstream_name(name: str) -> bool:
    """Whether ``name`` is a DNS-style upstream name (lowercase labels, no wildcard)."""
    return len(name) <= 253 and _UPSTREAM_NAME.fullmatch(name) is not None


_UPSTREAM_NAME = re.compile(
    r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$"
)


@dataclass(frozen=True)
class ProxyState:
    """The proxy container on one host: ``address`` is its IP on :data:`EDGE_NETWORK`."""

    host: str
    container_id: str
    address: str
    created: bool


@dataclass(frozen=True)
class RoutesResult:
    """What :meth:`HostProxy.apply_routes` did: ``changed`` False means nothing was loaded."""

    host: str
    changed: bool
    routes: tuple[Route, ...]


@dataclass(frozen=True)
class SwitchResult:
    """What :meth:`HostProxy.switch` did: ``seconds`` from the change until it was routed."""

    host: str
    name: str
    addresses: tuple[str, ...]
    previous: tuple[str, ...]
    seconds: float


@dataclass(frozen=True)
class SwarmProxy:
    """The edge proxy as a Swarm service on the edge nodes (``driver: swarm``, ADR 0017).

    The stack runs ``image`` with ``command``; ``config`` (the proxy's whole
    configuration, deterministic) is mounted as a Swarm config at
    ``config_target``; ``ports`` are published in host mode on each edge node;
    ``volumes`` maps a named volume to where the proxy keeps its state
    (certificates).
    """

    image: str
    command: tuple[str, ...]
    config: str
    config_target: str
    ports: tuple[int, ...]
    volumes: dict[str, str]


class HostProxy(ABC):
    """The proxy on one host, as a deploy drives it; built by :meth:`ProxyProvider.on_host`.

    Every method is idempotent and safe while other apps' deploys use the same
    proxy. Failures raise :class:`~stagecraft.errors.HostError` subclasses that
    name the host.
    """

    host: SSHHost

    @abstractmethod
    def ensure(self) -> ProxyState:
        """Make the proxy run with this provider's settings (start, replace or keep it)."""

    @abstractmethod
    def apply_routes(self, project: str, env: str, routes: Sequence[Route]) -> RoutesResult:
        """Set the routes of ``project``/``env``, keeping every other app's.

        An empty ``routes`` removes the app's routes. A conflict with another
        app's route raises :class:`RouteError` and changes nothing.
        """

    @abstractmethod
    def routes(self) -> dict[str, list[Route]]:
        """The routes of every app on the host, by ``project/env``."""

    @abstractmethod
    def switch(self, name: str, addresses: Sequence[str], *, timeout: float = 30.0) -> SwitchResult:
        """Send ``name``'s requests to ``addresses``; return once the proxy routes there.

        Requests already on their way to the previous addresses must finish
        there (the proxy's configuration is not reloaded).
        """

    @abstractmethod
    def drain(self, addresses: Sequence[str], *, timeout: float) -> float:
        """Wait until no request is in flight to ``addresses``, at most ``timeout`` s.

        Returns the seconds waited.
        """


class ProxyProvider(Provider, ABC):
    """Base class of proxy providers (provider kind ``proxy``)."""

    kind: ClassVar[str] = "proxy"

    @abstractmethod
    def render_config(
        self, routes: Sequence[Route], *, tls: TlsMode, admin: str | None = None
    ) -> dict[str, Any]:
        """The proxy's complete configuration serving ``routes`` (deterministic)."""

    @abstractmethod
    def on_host(self, host: SSHHost, *, tls: TlsMode) -> HostProxy:
        """The proxy on ``host``, serving the environment's routes with ``tls``."""

    def swarm_service(self, routes: Sequence[Route], *, tls: TlsMode) -> SwarmProxy:
        """The proxy as a Swarm service routing ``routes`` by service name (``driver: swarm``).

        A provider that cannot run on Swarm keeps this default: a clear error.
        """
        raise RouteError(
            f"proxy {self.id} cannot run on a Swarm (environments with driver: swarm)",
            hint="use proxy: caddy for this environment, or driver: ssh",
        )

    def images(self) -> tuple[str, ...]:
        """Images the proxy runs on hosts (shipped like the app's to hosts that lack them)."""
        return ()

    def public_ports(self) -> tuple[int, ...]:
        """Ports the proxy listens on publicly (the host firewall opens them)."""
        return (80, 443)


def check_tls(tls: str) -> TlsMode:
    """``tls`` if it is a known mode; RouteError otherwise."""
    if tls not in TLS_MODES:
        raise RouteError(f"unknown TLS mode {tls!r}; known: {', '.join(TLS_MODES)}")
    return cast(TlsMode, tls)
