"""``stagecraft doctor --env E``: the environment's private mesh, host to host (ADR 0012).

When the environment has a network provider, one check per host says whether:

- its mesh client runs and is joined (Tailscale's ``BackendState`` ``Running``);
- the address recorded in ``.stagecraft/network/<env>.yml`` (what cross-host
  wiring uses) is its live mesh address (stale: re-run bootstrap);
- every other host of the environment is its peer, online;
- a mesh ping to each of them is answered (``tailscale ping``).

Each failure names both hosts and the fix. Example::

    for check in check_mesh(loaded, "production"):
        print(check.name, check.status, check.detail, check.fix)
"""

from __future__ import annotations

from collections.abc import Mapping

from stagecraft.config.loader import LoadedConfig
from stagecraft.config.network_state import read_network_state
from stagecraft.deploy.mesh import network_provider, read_status, run_command
from stagecraft.deploy.state.layout import environment_hosts
from stagecraft.doctor.checks import Check, Status
from stagecraft.errors import StagecraftError
from stagecraft.providers.network import MeshStatus, NetworkProvider
from stagecraft.runtime.fanout import fan_out
from stagecraft.runtime.ssh import SSHHost

PING_TIMEOUT = 30.0


def check_mesh(loaded: LoadedConfig, env: str, parallel: int = 8) -> list[Check]:
    """One ``mesh`` check per host of ``env``; none when it has no network provider."""
    try:
        provider = network_provider(loaded, env)
    except StagecraftError as exc:
        return [Check("mesh", env, Status.FAIL, exc.message, exc.hint)]
    if provider is None:
        return []
    environment = loaded.environment(env)
    state = read_network_state(loaded.root, env)
    recorded = (
        {host: record.address for host, record in state.hosts.items()}
        if state is not None and state.provider == provider.id
        else {}
    )
    hosts = environment_hosts(environment)
    try:
        statuses = fan_out(
            hosts, lambda h: read_status(h, provider), name=lambda h: h.name, parallel=parallel
        )
        live = {o.name: o.value for o in statuses.outcomes if o.value is not None}
        examined = fan_out(
            hosts,
            lambda h: _examine(
                h, provider, env=env, live=live, recorded=recorded, names=[o.name for o in hosts]
            ),
            name=lambda h: h.name,
            parallel=parallel,
        )
    finally:
        for host in hosts:
            host.close()
    checks = []
    for looked, outcome in zip(statuses.outcomes, examined.outcomes, strict=True):
        error = looked.error or outcome.error
        if error is None and outcome.value is not None:
            checks.append(outcome.value)
        elif isinstance(error, StagecraftError):
            checks.append(Check("mesh", outcome.name, Status.FAIL, error.message, error.hint))
        else:
            checks.append(Check("mesh", outcome.name, Status.FAIL, str(error)))
    return checks


def _examine(
    host: SSHHost,
    provider: NetworkProvider,
    *,
    env: str,
    live: Mapping[str, MeshStatus],
    recorded: Mapping[str, str],
    names: list[str],
) -> Check:
    """The mesh check of ``host``: joined, recorded address current, peers online and pinged."""
    status = live.get(host.name)
    if status is None:  # reading it failed: that failure is reported instead
        return Check("mesh", host.name, Status.FAIL, "no status")
    bootstrap = f"run `stagecraft hosts bootstrap --env {env}`"
    me = provider.mesh_name(host.name).split(".")[0]
    if not status.running or status.self is None:
        return Check(
            "mesh",
            host.name,
            Status.FAIL,
            f"{host.name} is not on the {provider.id} mesh (state {status.state})",
            f"{bootstrap} (it joins {host.name}); if {host.name} was taken down on purpose, "
            f"`{provider.id} up` there",
        )
    problems: list[str] = []
    fixes: list[str] = []
    address = status.self.ipv4
    written = recorded.get(host.name)
    where = f".stagecraft/network/{env}.yml"
    if written is None:
        problems.append(f"{host.name} ({me}) is not recorded in {where}")
        fixes.append(bootstrap)
    elif written != address:
        problems.append(
            f"{host.name}'s address in {where} is stale: {written} recorded, "
            f"{provider.id} says {address}"
        )
        fixes.append(f"{bootstrap} to record it, then `stagecraft deploy --env {env}`")
    reached = []
    for other in names:
        if other == host.name:
            continue
        name = provider.mesh_name(other).split(".")[0]
        peer = status.peer(name)
        if peer is None or peer.ipv4 is None:
            problems.append(f"{other} ({name}) is not a peer of {host.name}")
            fixes.append(f"{bootstrap} (it joins {other}); check that ACLs let them see each other")
            continue
        if not peer.online:
            problems.append(f"{other} ({name}) is offline as seen from {host.name}")
            fixes.append(f"check `{provider.id} status` on {other}, then {bootstrap}")
            continue
        ping = provider.ping_command(peer.ipv4)
        result = run_command(host, ping, timeout=PING_TIMEOUT)
        if not result.ok:
            lines = [line.strip() for line in result.output.splitlines() if line.strip()]
            why = lines[-1] if lines else f"exit {result.returncode}"
            problems.append(
                f"{host.name} cannot reach {other} ({name}, {peer.ipv4}) over the mesh: {why}"
            )
            fixes.append(
                f"check the {provider.id} ACLs and the firewalls of {host.name} and {other} "
                f"(interface {provider.interface})"
            )
            continue
        reached.append(other)
    if problems:
        return Check(
            "mesh", host.name, Status.FAIL, "; ".join(problems), "; ".join(dict.fromkeys(fixes))
        )
    peers = f"reaches {', '.join(reached)}" if reached else "no other host"
    return Check("mesh", host.name, Status.OK, f"{me} {address}, {peers}")
