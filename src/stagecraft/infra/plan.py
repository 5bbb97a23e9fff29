"""What ``infra up`` would create and keep, and what ``infra down`` would destroy.

Servers are matched to the hosts of ``stagecraft.yml`` by name
(``<project>-<env>-<host>``) among those the cloud lists for the environment's
tag: a host whose server exists is kept as it is (never recreated, even if its
size or image in the config changed: the plan says so), a host without one is
created. A server carrying the environment's tag that no host names any more
is left alone by ``up`` and destroyed by ``down``.

Example::

    plan = plan_up("shop", "staging", provider, hosts, session.servers("shop", "staging"))
    print(render(plan))
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from stagecraft.providers.cloud import CloudHost, CloudProvider, Machine, Server


@dataclass(frozen=True)
class Kept:
    """A host whose server exists."""

    machine: Machine
    server: Server


@dataclass(frozen=True)
class InfraPlan:
    """The difference between the config's hosts and the cloud's servers of one environment."""

    project: str
    env: str
    provider: str
    create: tuple[Machine, ...]
    keep: tuple[Kept, ...]
    extra: tuple[Server, ...]  # tagged for the environment, named by no host

    @property
    def servers(self) -> tuple[Server, ...]:
        """Every server of the environment the cloud has (what ``down`` destroys)."""
        return tuple(k.server for k in self.keep) + self.extra

    def to_json(self) -> dict[str, Any]:
        return {
            "env": self.env,
            "provider": self.provider,
            "create": [_machine_json(m) for m in self.create],
            "keep": [{**_server_json(k.server), "host": k.machine.host} for k in self.keep],
            "extra": [_server_json(s) for s in self.extra],
        }

    def down_json(self) -> dict[str, Any]:
        """What ``infra down`` destroys: the kept servers (with their host), then the extra."""
        found = self.to_json()
        return {
            "env": self.env,
            "provider": self.provider,
            "destroy": found["keep"] + found["extra"],
        }


def plan_up(
    project: str,
    env: str,
    provider: CloudProvider,
    hosts: Sequence[CloudHost],
    existing: Sequence[Server],
) -> InfraPlan:
    """Match ``hosts`` (from ``stagecraft.yml``) with ``existing`` (from the cloud)."""
    wanted = provider.desired_machines(project, env, hosts)
    by_name = {server.name: server for server in existing}
    create = tuple(m for m in wanted if m.name not in by_name)
    keep = tuple(Kept(m, by_name[m.name]) for m in wanted if m.name in by_name)
    named = {m.name for m in wanted}
    extra = tuple(s for s in existing if s.name not in named)
    return InfraPlan(project, env, provider.id, create, keep, extra)


def render_up(plan: InfraPlan) -> str:
    """What ``infra up`` will do, one line per host."""
    head = (
        f"infra up {plan.env} ({plan.provider}): {len(plan.create)} to create, "
        f"{len(plan.keep)} kept"
    )
    lines = [head]
    for machine in plan.create:
        where = " ".join(x for x in (machine.region, machine.size, machine.image) if x)
        lines.append(f"  create  {machine.host}: {machine.name} ({where})")
    for kept in plan.keep:
        lines.append(
            f"  keep    {kept.machine.host}: {kept.server.name} "
            f"({kept.server.public_address or 'no address yet'}, {kept.server.status})"
        )
    for server in plan.extra:
        lines.append(
            f"  extra   {server.name} ({server.public_address or 'no address'}): tagged for "
            f"{plan.env} but no host of stagecraft.yml names it; left alone (`infra down` "
            "destroys it)"
        )
    return "\n".join(lines)


def render_down(plan: InfraPlan) -> str:
    """What ``infra down`` will destroy, one line per server."""
    servers = plan.servers
    if not servers:
        return f"infra down {plan.env} ({plan.provider}): nothing to destroy"
    lines = [f"infra down {plan.env} ({plan.provider}): {len(servers)} to destroy"]
    for server in servers:
        host = server.host or "no host"
        lines.append(
            f"  destroy {server.name} ({host}, {server.public_address or 'no address'}, "
            f"id {server.id})"
        )
    return "\n".join(lines)


def _machine_json(machine: Machine) -> dict[str, Any]:
    return {
        "host": machine.host,
        "name": machine.name,
        "region": machine.region,
        "size": machine.size,
        "image": machine.image,
        "tags": list(machine.tags),
    }


def _server_json(server: Server) -> dict[str, Any]:
    return {
        "id": server.id,
        "name": server.name,
        "status": server.status,
        "address": server.public_address,
        "private_address": server.private_address,
        "tags": list(server.tags),
    }
