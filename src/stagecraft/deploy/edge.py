"""The edge proxy as the deploy core sees it: the configured provider, one per environment.

The core never knows which proxy runs on the hosts. It resolves the provider
selected under ``proxy:`` in ``stagecraft.yml`` (``caddy`` when none is) through
the provider registry, and drives each host's proxy through the provider's
:class:`~stagecraft.providers.proxy.HostProxy`: ``ensure`` it runs, set the
app's routes, ``switch`` a routed service to its new containers, ``drain`` the
old ones. What is specific to a proxy (its container, config files, how a
switch is made and observed) is the provider's: for the built-in one, see
:mod:`stagecraft.providers.builtin.proxy_caddy.host`.

Example::

    edge = edge_for(loaded, "prod")
    proxy = edge.on(host)
    proxy.ensure()
    name = upstream_name("shop", "prod", "web")
    proxy.apply_routes("shop", "prod", [Route("shop.com", name, 80)])
"""

from __future__ import annotations

from dataclasses import dataclass

from stagecraft.config.loader import LoadedConfig
from stagecraft.providers.base import registry
from stagecraft.providers.proxy import HostProxy, ProxyProvider, TlsMode, upstream_name
from stagecraft.runtime.ssh import SSHHost

DEFAULT_PROVIDER = "caddy"


@dataclass(frozen=True)
class Edge:
    """An environment's proxy: its provider and the environment's TLS mode."""

    provider: ProxyProvider
    tls: TlsMode

    def on(self, host: SSHHost) -> HostProxy:
        """The proxy on ``host``."""
        return self.provider.on_host(host, tls=self.tls)

    @property
    def images(self) -> tuple[str, ...]:
        """The images the proxy runs (shipped to hosts that lack them)."""
        return self.provider.images()

    @property
    def public_ports(self) -> tuple[int, ...]:
        """The ports the proxy listens on (the host firewall opens them)."""
        return self.provider.public_ports()


def edge_for(loaded: LoadedConfig, env: str) -> Edge:
    """``env``'s proxy: the provider selected under ``proxy:`` (default caddy), its TLS mode."""
    selection = loaded.config.proxy
    provider_id = selection.provider if selection is not None else DEFAULT_PROVIDER
    block = selection.block() if selection is not None else {}
    provider: ProxyProvider = registry("proxy").create(provider_id, block)
    return Edge(provider, loaded.environment(env).tls)


__all__ = ["DEFAULT_PROVIDER", "Edge", "edge_for", "upstream_name"]
