"""Proxy providers: the ``proxy`` provider kind (the edge reverse proxy).

One proxy runs per host (and one for ``stagecraft dev`` on the laptop). It
terminates TLS for every public hostname routed to that host and forwards each
request to a service. A proxy provider turns the list of :class:`Route` values
of a host into the proxy's own configuration, with
:meth:`ProxyProvider.render_config`: a pure function, so the config can be
shown by ``--dry-run``, compared in tests, and validated by the real proxy.

Zero-downtime switching is the contract that shapes the output: a route's
upstream is a *name* (``Route.upstream_host``) that the proxy resolves while
serving requests, not an address baked into the config. A deploy switches
traffic to new containers by changing what that name resolves to (for Caddy,
the hosts file the proxy resolves it from; ADR 0005 section 5), so the proxy's
configuration is not reloaded on a deploy: a reload closes idle keep-alive
client connections and races the requests clients send on them (measured: 49
failed requests in 56k with reloads, 32 in 54k moving a Docker network alias,
0 in 75k with the hosts file).

A third-party proxy (say, Traefik) implements ``render_config`` for its own
config format::

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

    # pyproject.toml:
    # [project.entry-points."stagecraft.providers.proxy"]
    # traefik = "stagecraft_traefik:TraefikProxy"
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, cast

from stagecraft.errors import ProviderError
from stagecraft.providers.base import Provider

TlsMode = Literal["acme", "internal", "off"]
"""``acme``: public certificates (Let's Encrypt/ZeroSSL); ``internal``: the proxy's
own local CA (dev, private networks); ``off``: plain HTTP only."""

TLS_MODES: tuple[str, ...] = ("acme", "internal", "off")

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


class ProxyProvider(Provider, ABC):
    """Base class of proxy providers (provider kind ``proxy``)."""

    kind: ClassVar[str] = "proxy"

    @abstractmethod
    def render_config(
        self, routes: Sequence[Route], *, tls: TlsMode, admin: str | None = None
    ) -> dict[str, Any]:
        """The proxy's complete configuration serving ``routes`` (deterministic)."""


def check_tls(tls: str) -> TlsMode:
    """``tls`` if it is a known mode; RouteError otherwise."""
    if tls not in TLS_MODES:
        raise RouteError(f"unknown TLS mode {tls!r}; known: {', '.join(TLS_MODES)}")
    return cast(TlsMode, tls)
