"""Form (or find) a Docker Swarm over an environment's hosts, idempotently.

The first building block of the Swarm deploy driver (issue 14, ADR 0017): the
managers are the hosts marked so (the first host when none is), the others
join as workers, every node carries one ``stagecraft.role.<role>=true`` label
per role of its host (the placement constraints of the stack file), and an
attachable overlay network joins the environment's services across nodes.

Each step reads before it writes, so a second run changes nothing and says so.
Join tokens travel on stdin to a remote ``read``; they are never on a command
line this side builds, in a log event, or in a result.

Example::

    found = form_swarm(hosts, advertise={"h1": "10.0.0.1", "h2": "10.0.0.2"},
                       managers=["h1"], roles={"h1": ["web"], "h2": ["worker"]},
                       network="stagecraft_shop_prod")
    print(found.leader, found.changes)   # h1 ['h1: swarm initialised', 'h2: joined as worker', ...]
"""

from __future__ import annotations

import json
import logging
import shlex
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

from stagecraft import log
from stagecraft.errors import ExitCode, HostError
from stagecraft.runtime.fanout import fan_out
from stagecraft.runtime.ssh import SSHHost

logger = logging.getLogger(__name__)

ROLE_LABEL = "stagecraft.role."
EDGE_LABEL = "stagecraft.edge"
"""The label of the nodes that run the edge proxy (the hosts serving routes)."""
SWARM_PORT = 2377


class SwarmError(HostError):
    """A host cannot be part of the environment's swarm as it stands."""

    exit_code = ExitCode.FAILED


@dataclass(frozen=True)
class NodeState:
    """What ``docker info`` says about one host's swarm membership."""

    host: str
    state: str  # inactive, pending, active, error, locked
    node_id: str
    cluster_id: str
    manager: bool

    @property
    def active(self) -> bool:
        return self.state == "active"


@dataclass(frozen=True)
class SwarmResult:
    """The swarm after :func:`form_swarm`: its leader, its nodes by host, what changed."""

    leader: str
    cluster_id: str
    nodes: Mapping[str, str]  # host -> node id
    changes: tuple[str, ...] = field(default_factory=tuple)


def node_state(host: SSHHost) -> NodeState:
    """``host``'s swarm membership (one round trip)."""
    result = host.docker("info", "--format", "{{json .Swarm}}")
    try:
        raw = json.loads(result.stdout or "{}")
    except ValueError:
        raise SwarmError(host.name, f"cannot read `docker info`: {result.stdout[:200]!r}") from None
    cluster = raw.get("Cluster") or {}
    return NodeState(
        host.name,
        str(raw.get("LocalNodeState") or "inactive"),
        str(raw.get("NodeID") or ""),
        str(cluster.get("ID") or ""),
        bool(raw.get("ControlAvailable")),
    )


def form_swarm(
    hosts: Sequence[SSHHost],
    *,
    advertise: Mapping[str, str],
    managers: Sequence[str],
    roles: Mapping[str, Sequence[str]],
    network: str,
    edge: Collection[str] = (),
    parallel: int = 4,
) -> SwarmResult:
    """Make ``hosts`` one swarm (see the module docstring); raises :class:`SwarmError`.

    ``advertise`` is the address each host is reached on by the others (its
    private address where it has one); ``managers`` names the manager hosts in
    order (the first leads when the swarm is new); ``edge`` names the hosts that
    run the edge proxy (labelled :data:`EDGE_LABEL`).
    """
    by_name = {h.name: h for h in hosts}
    if not managers or any(m not in by_name for m in managers):
        raise SwarmError(
            ",".join(managers) or "-", "the swarm needs at least one manager among its hosts"
        )
    states = _read_states(hosts, parallel)
    changes: list[str] = []
    leader, cluster = _leader(states, managers)
    # Workers do not see the cluster id: the leader's node list says who is in.
    members = _members(by_name[leader]) if cluster else set()

    def ours(state: NodeState) -> bool:
        return state.active and (state.cluster_id == cluster or state.node_id in members)

    for state in states.values():  # every refusal before the first change
        if state.state != "inactive" and not ours(state):
            raise SwarmError(
                state.host,
                f"the host is in another swarm (state {state.state}, cluster "
                f"{state.cluster_id[:12] or '?'})",
                hint="run `docker swarm leave --force` on it if that swarm is not needed, "
                "then bootstrap again",
            )
    lead = by_name[leader]
    if not cluster:
        address = shlex.quote(advertise[leader])
        lead.run(
            f"docker swarm init --advertise-addr {address} "
            f"--listen-addr {address}:{SWARM_PORT} >/dev/null",
            timeout=120,
        )
        changes.append(f"{leader}: swarm initialised")
        cluster = node_state(lead).cluster_id
    manager_addr = f"{advertise[leader]}:{SWARM_PORT}"
    tokens: dict[bool, str] = {}

    def join(host: SSHHost) -> None:
        state = states[host.name]
        as_manager = host.name in managers
        if ours(state):
            return
        if as_manager not in tokens:
            kind = "manager" if as_manager else "worker"
            tokens[as_manager] = lead.docker("swarm", "join-token", "-q", kind).stdout.strip()
        script = (
            'read -r token; exec docker swarm join --token "$token" '
            f"--advertise-addr {shlex.quote(advertise[host.name])} "
            f"--listen-addr {shlex.quote(advertise[host.name])}:{SWARM_PORT} "
            f"{shlex.quote(manager_addr)} >/dev/null"
        )
        host.run(["sh", "-c", script], input=tokens[as_manager] + "\n", timeout=120)
        changes.append(f"{host.name}: joined as {'manager' if as_manager else 'worker'}")

    for host in hosts:  # one at a time: joins talk to the leader's raft
        if host.name != leader:
            join(host)
    nodes = {h.name: node_state(h).node_id for h in hosts}
    changes += _label(lead, nodes, roles, edge)
    changes += _ensure_network(lead, network)
    for line in changes:
        log.event(logger, logging.INFO, line, host=line.split(":", 1)[0], phase="swarm")
    return SwarmResult(leader, cluster, nodes, tuple(changes))


def _read_states(hosts: Sequence[SSHHost], parallel: int) -> dict[str, NodeState]:
    result = fan_out(list(hosts), node_state, name=lambda h: h.name, parallel=parallel)
    failed = result.failed
    if failed:
        first = failed[0]
        raise SwarmError(first.name, f"cannot read its swarm state: {first.error}")
    return {o.name: o.value for o in result.outcomes if o.value is not None}


def _leader(states: Mapping[str, NodeState], managers: Sequence[str]) -> tuple[str, str]:
    """The manager to drive the swarm from, and its cluster id ("" when there is no swarm yet)."""
    ours = {states[m].cluster_id for m in managers if states[m].active and states[m].manager}
    if len(ours) > 1:
        raise SwarmError(
            ",".join(managers),
            "the manager hosts are in different swarms",
            hint="make every manager leave all but one swarm (`docker swarm leave --force`)",
        )
    if ours:
        cluster = ours.pop()
        return next(m for m in managers if states[m].cluster_id == cluster), cluster
    other = next((s for s in states.values() if s.active and s.manager), None)
    if other is not None:
        raise SwarmError(
            other.host,
            "the host manages a swarm but is not one of the environment's managers",
            hint="mark it `manager: true`, or make it leave that swarm",
        )
    return managers[0], ""


def _members(lead: SSHHost) -> set[str]:
    """The node ids of the swarm ``lead`` manages."""
    return set(lead.docker("node", "ls", "--format", "{{.ID}}").stdout.split())


def join_state(
    hosts: Sequence[SSHHost], managers: Sequence[str], *, parallel: int = 4
) -> SwarmResult:
    """The swarm every host of ``hosts`` is in (no changes); SwarmError naming the fix if not.

    For a deploy: forming or joining the swarm is ``hosts bootstrap``'s work.
    """
    states = _read_states(hosts, parallel)
    leader, cluster = _leader(states, managers)
    env_hint = "run `stagecraft hosts bootstrap` for this environment"
    if not cluster:
        raise SwarmError(leader, "the environment's swarm is not formed yet", hint=env_hint)
    members = _members(next(h for h in hosts if h.name == leader))
    outside = [
        s.host
        for s in states.values()
        if not (s.active and (s.cluster_id == cluster or s.node_id in members))
    ]
    if outside:
        raise SwarmError(
            ",".join(outside), "the host is not in the environment's swarm", hint=env_hint
        )
    return SwarmResult(leader, cluster, {name: state.node_id for name, state in states.items()})


def label_nodes(
    lead: SSHHost,
    nodes: Mapping[str, str],
    roles: Mapping[str, Sequence[str]],
    edge: Collection[str] = (),
) -> list[str]:
    """Give each node (host -> node id) exactly its roles' labels and the edge label."""
    return _label(lead, nodes, roles, edge)


def _label(
    lead: SSHHost,
    nodes: Mapping[str, str],
    roles: Mapping[str, Sequence[str]],
    edge: Collection[str],
) -> list[str]:
    """Give each node exactly its host's role labels (and edge label); the changes made."""
    changes = []
    ids = list(nodes.values())
    raw = lead.docker("node", "inspect", "--format", "{{.ID}} {{json .Spec.Labels}}", *ids)
    labels: dict[str, set[str]] = {}
    for line in raw.stdout.splitlines():
        node_id, _, found = line.partition(" ")
        labels[node_id] = {
            k
            for k in (json.loads(found or "null") or {})
            if k.startswith(ROLE_LABEL) or k == EDGE_LABEL
        }
    for host, node_id in nodes.items():
        current = labels.get(node_id, set())
        wanted = {ROLE_LABEL + role for role in roles.get(host, ())}
        if host in edge:
            wanted.add(EDGE_LABEL)
        args: list[str] = []
        for label in sorted(wanted - current):
            args += ["--label-add", f"{label}=true"]
        for label in sorted(current - wanted):
            args += ["--label-rm", label]
        if args:
            lead.docker("node", "update", *args, node_id)
            edge_note = ", edge proxy" if host in edge else ""
            changes.append(
                f"{host}: roles {', '.join(sorted(roles.get(host, ()))) or 'none'}{edge_note}"
            )
    return changes


def _ensure_network(lead: SSHHost, network: str) -> list[str]:
    """The environment's attachable overlay network; the change made, if any."""
    found = lead.docker("network", "inspect", "--format", "{{.Driver}}", network, check=False)
    if found.returncode == 0:
        if found.stdout.strip() != "overlay":
            raise SwarmError(
                lead.name,
                f"network {network} exists with driver {found.stdout.strip()}, not overlay",
                hint=f"remove it (`docker network rm {network}`) and bootstrap again",
            )
        return []
    lead.docker("network", "create", "--driver", "overlay", "--attachable", network)
    return [f"{lead.name}: overlay network {network} created"]
