"""``stagecraft hosts bootstrap``: make every host of an environment ready for deploys.

Per host, in parallel: check that Docker and Compose answer over SSH, create the
environment's state directory (ADR 0005 section 2), and start (or keep) the edge
proxy with the environment's TLS mode and the proxy provider's settings. Nothing of
Stagecraft is installed on the host. Idempotent: a second run changes nothing.

Joining a private network through the network provider (tailscale) is not done yet:
when one is configured, the result says so for every host instead of pretending.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from stagecraft import log
from stagecraft.config.loader import LoadedConfig
from stagecraft.deploy import edge
from stagecraft.deploy.state_layout import app_dir, environment_hosts
from stagecraft.errors import HostError
from stagecraft.providers.proxy import TlsMode
from stagecraft.runtime.fanout import GroupResult, fan_out
from stagecraft.runtime.ssh import SSHHost, SSHOptions

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProxyOptions:
    """How the edge proxy runs on every host of an environment."""

    image: str = "caddy:2"
    tls_mode: TlsMode = "acme"
    email: str | None = None
    http_port: int = 80
    https_port: int = 443
    upstream_refresh: float = 1.0

    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments for :func:`stagecraft.deploy.edge.ensure_proxy`."""
        return {
            "image": self.image,
            "tls_mode": self.tls_mode,
            "email": self.email,
            "http_port": self.http_port,
            "https_port": self.https_port,
            "upstream_refresh": self.upstream_refresh,
        }


def proxy_options(loaded: LoadedConfig, env: str) -> ProxyOptions:
    """The proxy settings for ``env``: the caddy provider's block plus the env's ``tls``."""
    environment = loaded.environment(env)
    selection = loaded.config.proxy
    block = selection.block() if selection is not None else {}
    provider_id = selection.provider if selection is not None else "caddy"
    if provider_id != "caddy":
        raise HostError(
            "proxy",
            f"proxy provider {provider_id!r} cannot be run on hosts by this version",
            hint="use `proxy: {provider: caddy}`",
        )
    from stagecraft.providers.builtin.proxy_caddy import CaddyConfig

    caddy = CaddyConfig.model_validate(block)
    return ProxyOptions(
        image=caddy.image,
        tls_mode=environment.tls,
        email=caddy.email,
        http_port=caddy.http_port,
        https_port=caddy.https_port,
        upstream_refresh=caddy.upstream_refresh,
    )


@dataclass(frozen=True)
class HostReady:
    """What bootstrap found and did on one host."""

    host: str
    docker_version: str
    compose_version: str | None
    proxy_created: bool
    notes: tuple[str, ...] = field(default_factory=tuple)


def bootstrap_host(
    host: SSHHost, project: str, env: str, proxy: ProxyOptions, notes: tuple[str, ...] = ()
) -> HostReady:
    """Check Docker, create the state directory, ensure the proxy on one host."""
    probe = host.probe()
    if probe.docker_version is None:
        raise HostError(
            host.name,
            "Docker is not installed or its daemon is not running",
            hint="install Docker on the host (Debian: `apt-get install docker.io`), start it, "
            "and make sure the SSH user may run `docker`",
        )
    host.run(["mkdir", "-p", f"{app_dir(project, env)}/releases"])
    state = edge.ensure_proxy(host, **proxy.kwargs())
    log.event(
        logger,
        logging.INFO,
        f"ready: docker {probe.docker_version}, proxy {'started' if state.created else 'running'}",
        host=host.name,
        phase="bootstrap",
    )
    return HostReady(host.name, probe.docker_version, probe.compose_version, state.created, notes)


def bootstrap(
    loaded: LoadedConfig, env: str, *, options: SSHOptions | None = None
) -> GroupResult[HostReady]:
    """Bootstrap every host of ``env`` in parallel; one result per host."""
    environment = loaded.environment(env)
    project = loaded.config.project.name
    proxy = proxy_options(loaded, env)
    notes: tuple[str, ...] = ()
    network = loaded.config.network_for(env)
    if network is not None:
        notes = (
            f"network provider {network.provider!r}: joining hosts is not implemented yet; "
            "hosts are reached at their configured addresses",
        )
    hosts = environment_hosts(environment, options)
    shipping = ship_proxy_image(hosts, proxy.image, parallel=environment.deploy.parallel)

    def run(host: SSHHost) -> HostReady:
        try:
            if host.name in shipping:
                raise shipping[host.name]
            return bootstrap_host(host, project, env, proxy, notes)
        finally:
            host.close()

    return fan_out(hosts, run, name=lambda h: h.name, parallel=environment.deploy.parallel)


def ship_proxy_image(
    hosts: Sequence[SSHHost], image: str, *, parallel: int
) -> dict[str, BaseException]:
    """Send the proxy image to hosts that lack it when the local daemon has it; their errors.

    A fleet that cannot pull ``caddy:2`` (no registry access) still gets its proxy;
    without a local copy each host pulls it as before.
    """
    from stagecraft.deploy import ship
    from stagecraft.deploy.build import image_exists

    if not hosts or not image_exists(image):
        return {}
    result = ship.ship_over_ssh_many([(h, [image]) for h in hosts], parallel=parallel)
    return {o.name: o.error for o in result.outcomes if o.error is not None}
