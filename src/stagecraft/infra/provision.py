"""Create and destroy an environment's servers through its cloud provider (ADR 0011).

``infra up``: plan (:mod:`stagecraft.infra.plan`), create what is missing,
wait until every server runs, write their addresses to
``.stagecraft/infra/<env>.yml`` at once (so an interrupted run loses nothing
it learned), record each new server's host key, and wait until ssh logs in
with strict host key checking. Then ``hosts bootstrap`` (the CLI runs it).

``infra down``: destroy every server the cloud lists under the environment's
tag (nothing else: :meth:`CloudSession.destroy` refuses an untagged server),
then forget their keys and the state file.

Example::

    provider, session = open_cloud(loaded, "staging")
    plan = plan_environment(loaded, "staging", provider, session)
    report = apply_up(loaded, "staging", plan, session, timeout=300, say=print)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from stagecraft import log
from stagecraft.config.infra_state import (
    HostRecord,
    InfraState,
    known_hosts_path,
    read_state,
    state_path,
    write_state,
)
from stagecraft.config.loader import LoadedConfig
from stagecraft.deploy.state.layout import ssh_options
from stagecraft.errors import HostError, UsageError
from stagecraft.infra import host_keys
from stagecraft.infra.plan import InfraPlan, plan_up
from stagecraft.providers.cloud import CloudHost, CloudProvider, CloudSession, Server
from stagecraft.runtime.fanout import GroupResult, fan_out
from stagecraft.runtime.ssh import SSHHost, SSHTarget

logger = logging.getLogger(__name__)

Say = Callable[[str, str], None]
"""``say(host, text)``: one line of progress about a host."""


@dataclass
class Provisioned:
    """One host after ``infra up``: its server, and whether its key was scanned now."""

    host: str
    server: Server
    created: bool
    fingerprints: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        return {
            "host": self.host,
            "server": self.server.name,
            "id": self.server.id,
            "address": self.server.public_address,
            "private_address": self.server.private_address,
            "created": self.created,
            "host_key_recorded": self.fingerprints,
        }


def open_cloud(
    loaded: LoadedConfig, env: str, environ: Mapping[str, str] | None = None
) -> tuple[CloudProvider, CloudSession]:
    """The environment's cloud provider and a session on its account (token from secrets)."""
    from stagecraft.providers import registry

    loaded.environment(env, provisioned=False)
    selection = loaded.config.cloud_for(env)
    if selection is None:
        raise UsageError(
            f"environment {env} has no cloud provider",
            hint=f"add `cloud: {{provider: digitalocean}}` (or `local`) under "
            f"environments.{env} or at the top of stagecraft.yml; see docs/infra.md",
        )
    provider = registry("cloud").create(selection.provider, selection.block())
    assert isinstance(provider, CloudProvider)
    return provider, provider.open(_token(loaded, env, provider, environ))


def _token(
    loaded: LoadedConfig, env: str, provider: CloudProvider, environ: Mapping[str, str] | None
) -> str | None:
    """The API token, read through the environment's secrets provider (never printed)."""
    from stagecraft.deploy.pipeline import resolve_secrets

    name = provider.token_env
    if not name:
        return None
    return resolve_secrets(loaded, env, environ, [name])[name].reveal()


def plan_environment(
    loaded: LoadedConfig, env: str, provider: CloudProvider, session: CloudSession
) -> InfraPlan:
    """What ``up`` would create and keep (and ``down`` destroy) for ``env``."""
    environment = loaded.environment(env, provisioned=False)
    project = loaded.config.project.name
    hosts = [CloudHost(name, tuple(h.roles)) for name, h in environment.hosts.items()]
    return plan_up(project, env, provider, hosts, session.servers(project, env))


def apply_up(
    loaded: LoadedConfig,
    env: str,
    plan: InfraPlan,
    session: CloudSession,
    *,
    timeout: float,
    say: Say,
) -> GroupResult[Provisioned]:
    """Create what ``plan`` lacks, record addresses and host keys; one outcome per host."""
    deadline = time.monotonic() + timeout
    created = session.create(plan.create) if plan.create else []
    for server in created:
        say(_host_of(plan, server), f"created {server.name} (id {server.id})")
    running = session.wait_running([*created, *(k.server for k in plan.keep)], timeout)
    fresh = {server.name for server in created}
    provisioned = [
        Provisioned(_host_of(plan, server), server, server.name in fresh) for server in running
    ]
    made_identity = session.login_identity()
    _write_state(loaded, env, plan, provisioned, made_identity)
    environment = loaded.environment(env, provisioned=False)
    known_hosts = _known_hosts(loaded, env)
    identity = environment.ssh.identity or made_identity

    def ready(item: Provisioned) -> Provisioned:
        port = environment.hosts[item.host].port
        address = item.server.public_address
        assert address is not None  # wait_running returns servers with an address
        exact = session.known_host_keys(item.server)
        if exact:  # the cloud made the key: recorded as it is, never scanned
            host_keys.record(known_hosts, address, port, exact)
            item.fingerprints = host_keys.fingerprints(exact)
        elif not host_keys.recorded(known_hosts, address, port):
            left = max(deadline - time.monotonic(), 10.0)
            lines = host_keys.scan(address, port, timeout=left)
            host_keys.record(known_hosts, address, port, lines)
            item.fingerprints = host_keys.fingerprints(lines)
        if item.fingerprints:
            say(item.host, f"host key recorded: {', '.join(item.fingerprints)}")
        _wait_for_login(_ssh_host(loaded, env, item.host, address, identity), deadline)
        say(item.host, f"{item.server.name} answers over SSH at {address}")
        return item

    return fan_out(provisioned, ready, name=lambda p: p.host, parallel=8)


def _known_hosts(loaded: LoadedConfig, env: str) -> Path:
    """Where the environment's host keys are: its ``ssh.known_hosts``, else the infra one."""
    configured = loaded.environment(env, provisioned=False).ssh.known_hosts
    return Path(configured) if configured else known_hosts_path(loaded.root, env)


def _ssh_host(
    loaded: LoadedConfig, env: str, name: str, address: str, identity: str | None
) -> SSHHost:
    """How ssh reaches host ``name`` at ``address``, checking keys in :func:`_known_hosts`."""
    environment = loaded.environment(env, provisioned=False)
    host = environment.hosts[name]
    options = replace(ssh_options(environment), known_hosts=_known_hosts(loaded, env))
    if identity:
        options = replace(options, identity=Path(identity))
    return SSHHost(SSHTarget(name, address, host.user, host.port), options)


def _wait_for_login(host: SSHHost, deadline: float) -> None:
    """Log in (strict host keys) until it works: a new server installs its keys as it boots."""
    delay = 1.0
    try:
        while True:
            try:
                host.run(["true"], timeout=30)
                return
            except HostError as exc:
                if time.monotonic() + delay > deadline:
                    raise HostError(
                        host.name,
                        f"does not accept the SSH login yet: {exc.message}",
                        hint="check that the cloud provider's ssh_keys hold your public key "
                        "(or that the host's user is right), then run `stagecraft infra up` again",
                    ) from None
                time.sleep(delay)  # poll: cloud-init writes authorized_keys while booting
                delay = min(delay * 1.5, 10.0)
    finally:
        host.close()


def _host_of(plan: InfraPlan, server: Server) -> str:
    for machine in plan.create:
        if machine.name == server.name:
            return machine.host
    for kept in plan.keep:
        if kept.server.name == server.name:
            return kept.machine.host
    return server.host or server.name


def _write_state(
    loaded: LoadedConfig,
    env: str,
    plan: InfraPlan,
    provisioned: list[Provisioned],
    identity: str | None,
) -> None:
    records = {
        item.host: HostRecord(
            item.server.id,
            item.server.name,
            item.server.public_address or "",
            item.server.private_address,
        )
        for item in provisioned
    }
    path = write_state(loaded.root, InfraState(env, plan.provider, records, identity))
    log.event(logger, logging.INFO, f"wrote {path}", phase="infra")


def apply_down(
    loaded: LoadedConfig, env: str, plan: InfraPlan, session: CloudSession, *, say: Say
) -> None:
    """Destroy every server of ``plan``; forget their keys and the environment's state."""
    servers = list(plan.servers)
    if servers:
        session.destroy(servers)
    for server in servers:
        say(server.host or server.name, f"destroyed {server.name} (id {server.id})")
    environment = loaded.environment(env, provisioned=False)
    state = read_state(loaded.root, env)
    # The servers' addresses, and those recorded (a server the cloud lost is still there).
    recorded = [(r.address, name) for name, r in (state.hosts if state else {}).items()]
    listed = [(s.public_address, s.host) for s in servers if s.public_address]
    known_hosts = _known_hosts(loaded, env)
    for address, host in {*recorded, *listed}:
        port = environment.hosts[host].port if host in environment.hosts else 22
        host_keys.forget(known_hosts, address, port)
    state_path(loaded.root, env).unlink(missing_ok=True)
