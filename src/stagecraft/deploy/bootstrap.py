"""``stagecraft hosts bootstrap``: make every host of an environment ready for deploys.

Per host, in parallel: install Docker and Compose v2 when missing, create the deploy
user and turn on the firewall when asked (:mod:`stagecraft.deploy.host_setup`, ADR
0013), check that Docker and Compose answer over SSH, create the
environment's state directory (ADR 0005 section 2), start (or keep) the edge
proxy with the environment's TLS mode and the proxy provider's settings, and,
when the environment has a network provider, join the host to the mesh
(:mod:`stagecraft.deploy.mesh`; the auth key comes from the secrets provider and
travels on stdin). The hosts' mesh names and addresses are then written to
``.stagecraft/network/<env>.yml`` (ADR 0012), where cross-host wiring reads them.
Nothing of Stagecraft is installed on the host. Idempotent: a second run changes
nothing (and runs no ``tailscale up``).

Example::

    result = bootstrap(loaded, "staging")
    for outcome in result.outcomes:
        print(outcome.name, outcome.value.mesh.describe() if outcome.value.mesh else "")
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from stagecraft import log
from stagecraft.config.loader import LoadedConfig
from stagecraft.config.models import BootstrapConfig
from stagecraft.config.network_state import (
    MeshRecord,
    NetworkState,
    read_network_state,
    write_network_state,
)
from stagecraft.deploy import host_setup
from stagecraft.deploy.edge import Edge, edge_for
from stagecraft.deploy.mesh import AuthKey, MeshJoin, join_host, network_provider
from stagecraft.deploy.state.layout import app_dir, environment_hosts
from stagecraft.errors import HostError
from stagecraft.providers.network import NetworkProvider
from stagecraft.providers.secrets import SecretsError, SecretValue
from stagecraft.runtime.fanout import GroupResult, fan_out
from stagecraft.runtime.ssh import SSHHost, SSHOptions

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class HostReady:
    """What bootstrap found and did on one host."""

    host: str
    docker_version: str
    compose_version: str | None
    proxy_created: bool | None  # None: no proxy per host (driver: swarm runs it as a service)
    notes: tuple[str, ...] = field(default_factory=tuple)
    mesh: MeshJoin | None = None
    changes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def proxy_state(self) -> str:
        """``proxy started``, ``proxy already running`` or ``swarm node``."""
        return _proxy_state(self.proxy_created)


@dataclass(frozen=True)
class Mesh:
    """The environment's network provider and its auth key (resolved when first needed)."""

    provider: NetworkProvider
    auth_key: AuthKey

    def join(self, host: SSHHost) -> MeshJoin:
        """Join ``host`` (or find it joined); see :func:`stagecraft.deploy.mesh.join_host`."""
        return join_host(host, self.provider, self.auth_key)


def bootstrap_host(
    host: SSHHost,
    project: str,
    env: str,
    proxy: Edge,
    notes: tuple[str, ...] = (),
    *,
    mesh: Mesh | None = None,
    setup: BootstrapConfig | None = None,
    prepared: host_setup.SetupReport | None = None,
    per_host_proxy: bool = True,
) -> HostReady:
    """Set up Docker (with ``setup``), create the state directory, ensure the proxy, join the
    mesh on one host.

    ``setup`` (the environment's ``bootstrap:``) lets :mod:`~stagecraft.deploy.host_setup`
    install Docker, create the deploy user and turn on the firewall first (unless
    ``prepared`` says it already ran); without it a host without Docker fails with
    the fix. ``per_host_proxy`` False (``driver: swarm``) leaves the proxy to the stack.
    """
    if setup is not None and prepared is None:
        prepared = prepare(host, env, setup, proxy, mesh)
    changes = list(prepared.changes) if prepared is not None else []
    notes += prepared.notes if prepared is not None else ()
    probe = host.probe()
    if probe.docker_version is None:
        raise HostError(
            host.name,
            "Docker is not installed or its daemon is not running",
            hint="install Docker on the host (Debian: `apt-get install docker.io`), start it, "
            "and make sure the SSH user may run `docker`",
        )
    host.run(["mkdir", "-p", f"{app_dir(project, env)}/releases"])
    created = proxy.on(host).ensure().created if per_host_proxy else None
    joined = mesh.join(host) if mesh is not None else None
    handed = host_setup.hand_over_state(host, setup) if setup is not None else None
    changes += [handed] if handed else []
    on_mesh = f", {joined.describe()}" if joined is not None else ""
    log.event(
        logger,
        logging.INFO,
        f"ready: docker {probe.docker_version}, {_proxy_state(created)}{on_mesh}",
        host=host.name,
        phase="bootstrap",
    )
    return HostReady(
        host.name,
        probe.docker_version,
        probe.compose_version,
        created,
        notes,
        joined,
        tuple(changes),
    )


def prepare(
    host: SSHHost, env: str, setup: BootstrapConfig, proxy: Edge, mesh: Mesh | None
) -> host_setup.SetupReport:
    """Install Docker, the deploy user and the firewall on ``host`` as ``setup`` asks."""
    return host_setup.prepare_host(
        host,
        setup,
        env=env,
        open_ports=(host.target.port or 22, *proxy.public_ports),
        interfaces=(mesh.provider.interface,) if mesh is not None else (),
    )


def bootstrap(
    loaded: LoadedConfig,
    env: str,
    *,
    options: SSHOptions | None = None,
    environ: Mapping[str, str] | None = None,
) -> GroupResult[HostReady]:
    """Bootstrap every host of ``env`` in parallel; one result per host.

    With a network provider, the mesh addresses of the hosts that joined are
    recorded in ``.stagecraft/network/<env>.yml`` (hosts that failed keep their
    previous record, if any). ``environ`` is where the env secrets provider
    reads (default: this process's environment).
    """
    environment = loaded.environment(env)
    project = loaded.config.project.name
    proxy = edge_for(loaded, env)
    mesh = mesh_of(loaded, env, environ)
    hosts = environment_hosts(environment, options)
    parallel = environment.deploy.parallel
    # Docker first (a bare host has none to receive the proxy image), then the image.
    setups = fan_out(
        hosts,
        lambda h: prepare(h, env, environment.bootstrap, proxy, mesh),
        name=lambda h: h.name,
        parallel=parallel,
    )
    failed: dict[str, BaseException] = {
        o.name: o.error for o in setups.outcomes if o.error is not None
    }
    ready = [h for h in hosts if h.name not in failed]
    swarm = environment.driver == "swarm"
    if not swarm:  # on a swarm the deploy ships the proxy's image to the edge nodes
        failed.update(ship_proxy_images(ready, proxy.images, parallel=parallel))
    prepared = {o.name: o.value for o in setups.outcomes if o.value is not None}

    def run(host: SSHHost) -> HostReady:
        try:
            if host.name in failed:
                raise failed[host.name]
            return bootstrap_host(
                host,
                project,
                env,
                proxy,
                mesh=mesh,
                setup=environment.bootstrap,
                prepared=prepared[host.name],
                per_host_proxy=not swarm,
            )
        finally:
            if not swarm:
                host.close()

    result = fan_out(hosts, run, name=lambda h: h.name, parallel=parallel)
    if mesh is not None:
        record_mesh(loaded, env, mesh.provider, result)
    if swarm:
        try:
            result = form_environment_swarm(loaded, env, hosts, result)
        finally:
            for host in hosts:
                host.close()
    return result


def form_environment_swarm(
    loaded: LoadedConfig, env: str, hosts: Sequence[SSHHost], ready: GroupResult[HostReady]
) -> GroupResult[HostReady]:
    """``driver: swarm``: form the swarm over the hosts that are ready; its changes per host.

    A host that failed its own bootstrap stays out (and failed); a swarm refusal
    fails the host it names and changes nothing.
    """
    from stagecraft.deploy.swarm.cluster import SwarmError, form_swarm
    from stagecraft.deploy.swarm.driver import advertise_addresses, edge_hosts
    from stagecraft.deploy.swarm.stack import network_name

    environment = loaded.environment(env)
    ok = {o.name for o in ready.succeeded}
    members = [h for h in hosts if h.name in ok]
    if not members:
        return ready
    changes: dict[str, list[str]] = {}
    error: SwarmError | None = None
    try:
        formed = form_swarm(
            members,
            advertise=advertise_addresses(loaded, env),
            managers=[m for m in environment.managers if m in ok],
            roles={name: environment.hosts[name].roles for name in ok},
            network=network_name(loaded.config.project.name, env),
            edge=edge_hosts(environment),
            parallel=environment.deploy.parallel,
        )
        for line in formed.changes:
            host, _, what = line.partition(": ")
            changes.setdefault(host, []).append(what)
    except SwarmError as exc:
        error = exc
    outcomes = []
    for outcome in ready.outcomes:
        value = outcome.value
        if error is not None and outcome.name in {*error.host.split(","), "-"}:
            outcomes.append(replace(outcome, value=None, error=error))
        elif value is not None and outcome.name in changes:
            more = value.changes + tuple(changes[outcome.name])
            outcomes.append(replace(outcome, value=replace(value, changes=more)))
        else:
            outcomes.append(outcome)
    if error is not None and not any(o.error is error for o in outcomes):
        outcomes = [replace(o, value=None, error=error) if o.ok else o for o in outcomes]
    return GroupResult(tuple(outcomes))


def _proxy_state(created: bool | None) -> str:
    if created is None:
        return "swarm node"
    return "proxy started" if created else "proxy already running"


def mesh_of(loaded: LoadedConfig, env: str, environ: Mapping[str, str] | None) -> Mesh | None:
    """The network provider of ``env`` with a lazily resolved auth key, or None."""
    provider = network_provider(loaded, env)
    if provider is None:
        return None
    name = provider.auth_key_env

    def resolve() -> SecretValue:
        from stagecraft.deploy.pipeline import resolve_secrets

        try:
            return resolve_secrets(loaded, env, environ, [name])[name]
        except SecretsError as exc:
            raise SecretsError(
                f"no {provider.id} auth key: {exc.message} "
                f"(network.providers.{provider.id}.auth_key_env)",
                hint=exc.hint,
                missing=exc.missing,
            ) from None

    return Mesh(provider, AuthKey(resolve))


def record_mesh(
    loaded: LoadedConfig, env: str, provider: NetworkProvider, result: GroupResult[HostReady]
) -> None:
    """Write the joined hosts' mesh names and addresses to ``.stagecraft/network/<env>.yml``."""
    environment = loaded.environment(env)
    previous = read_network_state(loaded.root, env)
    hosts: dict[str, MeshRecord] = {}
    if previous is not None and previous.provider == provider.id:
        hosts = {n: r for n, r in previous.hosts.items() if n in environment.hosts}
    fresh = {
        o.name: MeshRecord(o.value.mesh.name, o.value.mesh.address)
        for o in result.succeeded
        if o.value is not None and o.value.mesh is not None
    }
    if not fresh and previous is None:
        return
    state = NetworkState(env, provider.id, {**hosts, **fresh})
    if previous is None or previous.to_json() != state.to_json():
        write_network_state(loaded.root, state)


def ship_proxy_images(
    hosts: Sequence[SSHHost], images: Sequence[str], *, parallel: int
) -> dict[str, BaseException]:
    """Send the proxy's images to hosts that lack them when the local daemon has them.

    Returns the errors by host.

    A fleet that cannot pull ``caddy:2`` (no registry access) still gets its proxy;
    without a local copy each host pulls it as before.
    """
    from stagecraft.deploy import ship
    from stagecraft.deploy.build import images_present

    present = images_present(images)  # one local call
    local = [image for image in images if present.get(image)]
    if not hosts or not local:
        return {}
    result = ship.ship_over_ssh_many([(h, local) for h in hosts], parallel=parallel)
    return {o.name: o.error for o in result.outcomes if o.error is not None}
