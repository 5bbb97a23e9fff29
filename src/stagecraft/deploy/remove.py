"""Taking an app off its hosts (``stagecraft remove``) and the retain policy on demand (``prune``).

``remove`` is planned first (:func:`plan_removal`: per host, the app's
containers, its routes on the shared proxy, its release files and, with
``images``, the images no other environment on the host retains), shown and
confirmed, then carried out per host in parallel (:func:`remove`): routes
first (the proxy keeps serving every other app), then containers, files and
images, and a ``remove`` record in the host's ledger. Removing some services
keeps the others running and their routes served.

Example::

    proxy = edge_for(loaded, "staging")
    plan = plan_removal(hosts, "shop", "staging", proxy, services=(), images=True)
    print(render_removal(plan))
    result = remove(hosts, plan, release, proxy)  # GroupResult, one outcome per host
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from stagecraft.deploy.edge import Edge
from stagecraft.deploy.release import Release
from stagecraft.deploy.render import project_name
from stagecraft.deploy.rollout.record import retained_elsewhere
from stagecraft.deploy.state import ledger, lock
from stagecraft.deploy.state.containers import read_host_state
from stagecraft.deploy.state.layout import app_dir
from stagecraft.errors import HostError
from stagecraft.providers.proxy import HostProxy, Route, upstream_name
from stagecraft.runtime.fanout import GroupResult, describe, fan_out
from stagecraft.runtime.ssh import SSHHost


@dataclass(frozen=True)
class HostRemoval:
    """What removing the app (or some services) takes off one host."""

    host: str
    containers: tuple[str, ...]
    services: tuple[str, ...]
    routes: tuple[str, ...]
    release_files: bool
    images: tuple[str, ...]
    error: str | None = None
    stack_services: tuple[str, ...] = ()  # driver: swarm, on the leader: what Swarm removes

    @property
    def empty(self) -> bool:
        return not (
            self.containers
            or self.routes
            or self.release_files
            or self.images
            or self.stack_services
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "containers": list(self.containers),
            "services": list(self.services),
            "routes": list(self.routes),
            "release_files": self.release_files,
            "images": list(self.images),
            "stack_services": list(self.stack_services),
            "error": self.error,
        }


@dataclass(frozen=True)
class RemovalPlan:
    """The whole removal: which services (empty: all of the app) and every host's part."""

    project: str
    env: str
    services: tuple[str, ...]
    hosts: tuple[HostRemoval, ...]

    @property
    def unreachable(self) -> dict[str, str]:
        return {h.host: h.error for h in self.hosts if h.error is not None}

    def to_json(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "env": self.env,
            "services": list(self.services) or "all",
            "hosts": [h.to_json() for h in self.hosts],
        }


def plan_removal(
    hosts: Sequence[SSHHost],
    project: str,
    env: str,
    proxy: Edge,
    *,
    services: Sequence[str] = (),
    images: bool = False,
    parallel: int = 4,
    swarm_leader: str | None = None,
) -> RemovalPlan:
    """Read every host and list what :func:`remove` would take off it (changes nothing).

    With ``swarm_leader`` (``driver: swarm``) the app is a stack: its services
    go through that manager (Swarm stops their tasks everywhere, the edge
    service included), and no host has containers or proxy routes of its own.
    """
    chosen = tuple(sorted(set(services)))
    history = ledger.history(hosts, project, env, parallel=parallel) if images else None

    def one(host: SSHHost) -> HostRemoval:
        if swarm_leader is not None:
            containers: tuple[str, ...] = ()
            routes: tuple[str, ...] = ()
            stack = _stack_services(host, project, env) if host.name == swarm_leader else []
            taken = tuple(s for s in stack if _taken(s, chosen))
            removed = sorted(taken)
        else:
            state = read_host_state(host, project, env)
            going = [c for c in state.containers if _taken(c.service, chosen)]
            containers = tuple(c.name for c in going)
            removed = sorted({c.service for c in going})
            routes = tuple(
                f"{r.host}{r.path or ''}" for r in _routes(proxy.on(host), project, env, chosen)[0]
            )
            taken = ()
        files = not chosen and host.run(["test", "-d", _releases(project, env)], check=False).ok
        dropped: tuple[str, ...] = ()
        if history is not None:
            ours = {
                svc.image
                for r in history.releases
                for record in r.hosts.values()
                for name, svc in record.services.items()
                if _taken(name, chosen)
            }
            listed = host.docker("image", "ls", "--format", "{{.Repository}}:{{.Tag}}").stdout
            dropped = tuple(
                sorted((ours & set(listed.split())) - retained_elsewhere(host, project, env))
            )
        return HostRemoval(
            host.name, containers, tuple(removed), routes, files, dropped, None, taken
        )

    result = fan_out(list(hosts), one, name=lambda h: h.name, parallel=parallel)
    found = []
    for outcome in result.outcomes:
        if outcome.value is not None:
            found.append(outcome.value)
        else:
            error = describe(outcome.name, outcome.error)
            found.append(HostRemoval(outcome.name, (), (), (), False, (), error))
    return RemovalPlan(project, env, chosen, tuple(found))


def render_removal(plan: RemovalPlan) -> str:
    """The plan as the lines the confirmation shows."""
    what = ", ".join(plan.services) if plan.services else "the whole app"
    lines = [f"remove {what} of {plan.project} {plan.env}:"]
    for host in plan.hosts:
        if host.error is not None:
            lines.append(f"  {host.host}: unreachable: {host.error}")
            continue
        if host.empty:
            lines.append(f"  {host.host}: nothing to remove")
            continue
        lines.append(f"  {host.host}:")
        if host.stack_services:
            lines.append(f"    stack services (on every node): {', '.join(host.stack_services)}")
        if host.containers:
            lines.append(f"    containers: {', '.join(host.containers)}")
        if host.routes:
            lines.append(f"    routes: {', '.join(host.routes)} (the proxy keeps the other apps')")
        if host.release_files:
            lines.append(f"    release files: {_releases(plan.project, plan.env)}")
        if host.images:
            lines.append(f"    images: {', '.join(host.images)}")
    return "\n".join(lines)


def remove(
    hosts: Sequence[SSHHost],
    plan: RemovalPlan,
    release: Release,
    proxy: Edge,
    *,
    parallel: int = 4,
) -> GroupResult[HostRemoval]:
    """Carry ``plan`` out on every host it reached; each host writes a ``remove`` record.

    A stack's services are removed first, through the leader, and every node
    waits until their tasks are gone before its files and images go.
    """
    by_name = {h.host: h for h in plan.hosts if h.error is None}
    started = datetime.now(UTC).isoformat(timespec="seconds")
    leaders = [h for h in hosts if by_name.get(h.name) and by_name[h.name].stack_services]
    still: dict[str, BaseException] = {}
    if leaders:
        _remove_stack(leaders[0], plan, by_name[leaders[0].name].stack_services)
        waited = fan_out(
            [h for h in hosts if h.name in by_name],
            lambda h: _wait_tasks_gone(h, plan),
            name=lambda h: h.name,
            parallel=parallel,
        )
        still = {o.name: o.error for o in waited.outcomes if o.error is not None}

    def one(host: SSHHost) -> HostRemoval:
        part = by_name[host.name]
        if host.name in still:
            raise still[host.name]  # its files and images stay for a second run
        if part.routes:
            on_host = proxy.on(host)
            kept = _routes(on_host, plan.project, plan.env, plan.services)[1]
            on_host.apply_routes(plan.project, plan.env, kept)
        if part.containers:
            host.docker("rm", "-f", *part.containers)
        if part.release_files:
            host.run(["rm", "-rf", _releases(plan.project, plan.env)])
        if part.images:
            host.docker("image", "rm", *part.images, check=False)
        record = ledger.LedgerRecord(
            release=release.id,
            version=release.version.value,
            env=plan.env,
            host=host.name,
            started_at=started,
            finished_at=datetime.now(UTC).isoformat(timespec="seconds"),
            by=lock.local_identity(),
            command="remove",
            outcome="success",
            services={
                name: ledger.ServiceRecord("", None, None, "removed") for name in part.services
            },
            peers={name: "success" for name in by_name},
        )
        ledger.append(host, plan.project, record, secrets=[])
        return part

    targets = [h for h in hosts if h.name in by_name]
    return fan_out(targets, one, name=lambda h: h.name, parallel=parallel)


def _stack_services(leader: SSHHost, project: str, env: str) -> list[str]:
    """The services of the environment's stack, by compose service name (the edge included)."""
    stack = project_name(project, env)
    listed = leader.docker(
        "service", "ls", "--filter", f"label=com.docker.stack.namespace={stack}",
        "--format", "{{.Name}}",
    )  # fmt: skip
    prefix = f"{stack}_"
    return sorted(name.removeprefix(prefix) for name in listed.stdout.split())


def _remove_stack(leader: SSHHost, plan: RemovalPlan, services: Sequence[str]) -> None:
    """``docker stack rm`` (the whole app: its secrets and configs too), else its services."""
    stack = project_name(plan.project, plan.env)
    if not plan.services:
        leader.docker("stack", "rm", stack)
        script = (
            'for s in $(docker secret ls -q --filter "label=stagecraft.stack=$1"); do '
            "docker secret rm $s >/dev/null 2>&1 || true; done"
        )
        leader.run(["sh", "-c", script, "sh", stack], check=False)
        return
    leader.docker("service", "rm", *(f"{stack}_{name}" for name in services))


def _wait_tasks_gone(host: SSHHost, plan: RemovalPlan, timeout: float = 60) -> None:
    """Until the node runs no container of the removed stack services (Swarm stops them)."""
    stack = project_name(plan.project, plan.env)
    names = "|".join(f"{stack}_{s}" for s in plan.services) if plan.services else f"{stack}_"
    script = (
        f"for i in $(seq {int(timeout * 2)}); do "
        f'docker ps -a --filter "label=com.docker.stack.namespace={stack}" '
        "--format '{{.Label \"com.docker.swarm.service.name\"}}' "
        f"| grep -Eq '^({names})' || exit 0; sleep 0.5; done; exit 1"
    )
    if host.run(["sh", "-c", script], check=False, timeout=timeout + 30).returncode != 0:
        raise HostError(
            host.name,
            f"the stack's tasks were still there after {timeout:.0f}s",
            hint="run `stagecraft remove` again once Swarm has stopped them",
        )


def _taken(service: str, chosen: Sequence[str]) -> bool:
    """Whether ``service`` goes: one of ``chosen``, or any when none is (the whole app)."""
    return not chosen or service in chosen


def _routes(
    proxy: HostProxy, project: str, env: str, chosen: Sequence[str]
) -> tuple[list[Route], list[Route]]:
    """The app's routes on a host's proxy: (those that go, those that stay)."""
    upstreams = {upstream_name(project, env, s) for s in chosen}
    going: list[Route] = []
    staying: list[Route] = []
    for route in proxy.routes().get(f"{project}/{env}", []):
        (going if not chosen or route.upstream_host in upstreams else staying).append(route)
    return going, staying


def _releases(project: str, env: str) -> str:
    return f"{app_dir(project, env)}/releases"
