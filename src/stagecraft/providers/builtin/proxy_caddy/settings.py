"""Pure parts of the Caddy proxy on hosts: its settings, its config, the stored route table.

Everything here is deterministic and golden-tested;
:mod:`stagecraft.providers.builtin.proxy_caddy.host` does the host work.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from stagecraft.errors import StagecraftError
from stagecraft.providers.builtin.proxy_caddy import CaddyProxy
from stagecraft.providers.proxy import Route, TlsMode, check_tls

PROBE_PORT = 2020
PROBE_SERVER = "stagecraft_probe"
PROBE_PATH = "/_stagecraft/upstream"
INFLIGHT_PATH = "/_stagecraft/inflight"
UPSTREAM_HEADER = "X-Stagecraft-Upstream"


class EdgeStateError(StagecraftError):
    """A file of the proxy's state on a host cannot be read."""


@dataclass(frozen=True)
class ProxySettings:
    """How the proxy container runs: image, TLS mode, ACME email, ports, upstream refresh."""

    image: str
    tls_mode: TlsMode
    email: str | None = None
    http_port: int = 80
    https_port: int = 443
    upstream_refresh: float = 1.0

    def fingerprint(self) -> str:
        """A short hash of the settings that need a new container when they change."""
        data = json.dumps([self.image, self.http_port, self.https_port]).encode()
        return hashlib.sha256(data).hexdigest()[:16]

    def to_json(self) -> bytes:
        return (json.dumps(asdict(self), indent=2, sort_keys=True) + "\n").encode()

    @classmethod
    def from_json(cls, data: bytes) -> ProxySettings:
        try:
            raw = json.loads(data)
            return cls(
                image=str(raw["image"]),
                tls_mode=check_tls(str(raw["tls_mode"])),
                email=raw.get("email"),
                http_port=int(raw["http_port"]),
                https_port=int(raw["https_port"]),
                upstream_refresh=float(raw["upstream_refresh"]),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise EdgeStateError(
                f"the proxy settings file is damaged: {exc}",
                hint="run `stagecraft hosts bootstrap` again to rewrite it",
            ) from None


def caddy_for(settings: ProxySettings) -> CaddyProxy:
    """The Caddy provider configured like this proxy."""
    raw: dict[str, Any] = {
        "image": settings.image,
        "http_port": settings.http_port,
        "https_port": settings.https_port,
        "upstream_refresh": settings.upstream_refresh,
    }
    if settings.email:
        raw["email"] = settings.email
    return CaddyProxy(CaddyProxy.Config.model_validate(raw))


def render_proxy_config(
    settings: ProxySettings, routes: Sequence[Route], *, admin: str, slot_dir: str
) -> dict[str, Any]:
    """The Caddy config of a host's proxy: the provider's config plus the probe server.

    Routes dial the addresses in their slot files under ``slot_dir``
    (:mod:`stagecraft.providers.builtin.proxy_caddy.slots`). The probe server (port 2020, no
    TLS, never published) has one route per upstream name,
    ``/_stagecraft/upstream/<name>``, proxying to that name like the public
    route does and answering with the ``X-Stagecraft-Upstream`` header: the
    address Caddy really chose, which is how a switch is observed. Its
    ``/_stagecraft/inflight`` route answers the admin API's read-only
    ``/reverse_proxy/upstreams`` (requests in flight per upstream address),
    which is how a drain knows when the old containers finished their work.

    >>> s = ProxySettings("caddy:2", "off")
    >>> routes = [Route("a.test", "web.p.a.internal", 80)]
    >>> cfg = render_proxy_config(s, routes, admin="x:1", slot_dir="/s")
    >>> cfg["apps"]["http"]["servers"]["stagecraft_probe"]["listen"]
    [':2020']
    """
    caddy = caddy_for(settings)
    config = caddy.render_config(routes, tls=settings.tls_mode, admin=admin, slot_dir=slot_dir)
    if settings.tls_mode == "internal":
        # The proxy container has no trust store to install the local CA's root into
        # (Caddy would log an error at every start); clients trust the root they read
        # from the host (/data/caddy/pki/authorities/local/root.crt).
        config["apps"]["pki"] = {"certificate_authorities": {"local": {"install_trust": False}}}
    first_port: dict[str, int] = {}
    for route in sorted(routes):
        first_port.setdefault(route.upstream_host, route.upstream_port)
    probe_routes = [
        _probe_route(caddy, name, port, slot_dir) for name, port in sorted(first_port.items())
    ]
    probe_routes.append(_inflight_route(admin))
    config["apps"]["http"]["servers"][PROBE_SERVER] = {
        "listen": [f":{PROBE_PORT}"],
        "routes": probe_routes,
        "automatic_https": {"disable": True},
    }
    return config


def _probe_route(caddy: CaddyProxy, name: str, port: int, slot_dir: str) -> dict[str, Any]:
    route = caddy.render_config([Route("probe.invalid", name, port)], tls="off", slot_dir=slot_dir)
    proxy = route["apps"]["http"]["servers"]["stagecraft"]["routes"][0]["handle"][0]
    proxy["headers"] = {
        "response": {"set": {UPSTREAM_HEADER: ["{http.reverse_proxy.upstream.hostport}"]}}
    }
    rewrite = {"handler": "rewrite", "uri": "/"}
    return {
        "match": [{"path": [f"{PROBE_PATH}/{name}"]}],
        "handle": [rewrite, proxy],
        "terminal": True,
    }


def _inflight_route(admin: str) -> dict[str, Any]:
    """GET ``/_stagecraft/inflight``: the admin API's upstream list (read-only, GET only)."""
    proxy = {
        "handler": "reverse_proxy",
        "upstreams": [{"dial": admin}],
        "headers": {"request": {"set": {"Host": [admin], "Origin": [f"http://{admin}"]}}},
    }
    return {
        "match": [{"path": [INFLIGHT_PATH], "method": ["GET"]}],
        "handle": [{"handler": "rewrite", "uri": "/reverse_proxy/upstreams"}, proxy],
        "terminal": True,
    }


def routes_to_json(table: Mapping[str, Sequence[Route]]) -> bytes:
    """The stored route table (``project/env`` -> routes) as JSON bytes (deterministic)."""
    data = {
        app: [
            {
                "host": r.host,
                "path": r.path,
                "upstream_host": r.upstream_host,
                "upstream_port": r.upstream_port,
            }
            for r in sorted(routes)
        ]
        for app, routes in sorted(table.items())
    }
    return (json.dumps(data, indent=2, sort_keys=True) + "\n").encode()


def routes_from_json(data: bytes) -> dict[str, list[Route]]:
    """The route table read back from :func:`routes_to_json` bytes."""
    try:
        raw = json.loads(data)
        return {
            str(app): sorted(
                Route(
                    host=str(r["host"]),
                    upstream_host=str(r["upstream_host"]),
                    upstream_port=int(r["upstream_port"]),
                    path=r.get("path"),
                )
                for r in routes
            )
            for app, routes in raw.items()
        }
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise EdgeStateError(
            f"the proxy route table is damaged: {exc}",
            hint="redeploy each app on this host to rewrite its routes",
        ) from None
