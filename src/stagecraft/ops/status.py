"""What runs where, per host and service: the engine of ``stagecraft status``.

Reads every host's containers through :mod:`stagecraft.deploy.state.containers` (one SSH round
trip per host, in parallel) and condenses them into one row per host and service:
the release and version that serves, its health, uptime and replicas. A host that
cannot be reached gets an error instead of rows; the other hosts are still listed.
Services the environment places on a host but that have no container there are
listed as ``not deployed``.

Example::

    from stagecraft.ops.status import collect_status, render_status
    from stagecraft.deploy.state.layout import environment_hosts

    environment = loaded.environment("production")
    status = collect_status(environment_hosts(environment), environment,
                            project="shop", env="production")
    print(render_status(status))
    if status.unreachable:
        ...  # the CLI exits 5
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from stagecraft.config.models import EnvironmentConfig
from stagecraft.deploy.state.containers import ContainerState, HostState, read_states
from stagecraft.errors import StagecraftError
from stagecraft.runtime.fanout import describe
from stagecraft.runtime.ssh import SSHHost

_FRACTION = re.compile(r"(\.\d{6})\d+")


@dataclass(frozen=True)
class ServiceStatus:
    """One service on one host: the release serving it and how its containers are doing."""

    service: str
    release: str | None
    version: str | None
    health: str
    uptime: float | None
    running: int
    total: int
    older_running: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "release": self.release,
            "version": self.version,
            "health": self.health,
            "uptime_seconds": None if self.uptime is None else round(self.uptime),
            "replicas": {"running": self.running, "total": self.total},
            "older_running": self.older_running,
        }


@dataclass(frozen=True)
class HostStatus:
    """One host: its services, or why it could not be read."""

    host: str
    services: tuple[ServiceStatus, ...] = ()
    error: str | None = None

    @property
    def reachable(self) -> bool:
        return self.error is None

    def to_json(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "reachable": self.reachable,
            "error": self.error,
            "services": [s.to_json() for s in self.services],
        }


@dataclass(frozen=True)
class EnvStatus:
    """Every host of an environment, in config order."""

    project: str
    env: str
    hosts: tuple[HostStatus, ...]

    @property
    def unreachable(self) -> tuple[HostStatus, ...]:
        return tuple(h for h in self.hosts if not h.reachable)

    def to_json(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "env": self.env,
            "hosts": [h.to_json() for h in self.hosts],
            "unreachable": [h.host for h in self.unreachable],
        }


def collect_status(
    hosts: Sequence[SSHHost],
    environment: EnvironmentConfig,
    *,
    project: str,
    env: str,
    now: datetime | None = None,
) -> EnvStatus:
    """Read every host of ``env`` in parallel and summarise it (see the module docstring)."""
    result = read_states(hosts, project=project, env=env, parallel=environment.deploy.parallel)
    swarm = environment.driver == "swarm"
    releases = _stack_releases(hosts, environment, project, env) if swarm else {}
    running = {  # on a swarm: a service's exited tasks are history where it runs elsewhere
        c.service
        for o in result.outcomes
        if o.value is not None
        for c in o.value.containers
        if c.running
    }
    moment = now or datetime.now(UTC)
    found: list[HostStatus] = []
    for outcome in result.outcomes:
        expected = (
            environment.services_on(outcome.name)
            if outcome.name in environment.hosts and not swarm  # Swarm places the tasks
            else []
        )
        if outcome.ok and outcome.value is not None:
            state = with_releases(outcome.value, releases, running) if swarm else outcome.value
            found.append(summarize_host(state, expected, moment))
        else:
            found.append(HostStatus(outcome.name, error=describe(outcome.name, outcome.error)))
    return EnvStatus(project, env, tuple(found))


def with_releases(
    state: HostState,
    releases: Mapping[str, tuple[str | None, str | None]],
    running: Collection[str] = (),
) -> HostState:
    """A swarm node's ``state``: each task with its service's release and version (pure).

    On a swarm the release is a label of the service, not of its containers: a
    label on the containers would restart every task at every deploy. The
    stopped containers of a service that runs somewhere (``running``) are
    Swarm's task history, not a service down on this node: they are left out.
    """
    containers = tuple(
        replace(c, release=releases[c.service][0], version=releases[c.service][1])
        if c.release is None and c.service in releases
        else c
        for c in state.containers
        if c.running or c.service not in running
    )
    return HostState(state.host, containers)


def _stack_releases(
    hosts: Sequence[SSHHost], environment: EnvironmentConfig, project: str, env: str
) -> dict[str, tuple[str | None, str | None]]:
    """Per service, the release and version its Swarm service is labelled with (a manager's)."""
    manager = next((h for h in hosts if h.name == environment.managers[0]), None)
    if manager is None:
        return {}
    script = (
        'ids=$(docker service ls -q --filter "label=stagecraft.project=$1" '
        '--filter "label=stagecraft.env=$2") && [ -n "$ids" ] && '
        "docker service inspect --format '{{json .Spec.Labels}}' $ids"
    )
    try:
        result = manager.run(["sh", "-c", script, "sh", project, env], check=False, timeout=60)
    except StagecraftError:
        return {}  # the manager is unreachable: its own row says so
    found: dict[str, tuple[str | None, str | None]] = {}
    for line in result.stdout.splitlines():
        try:
            labels = json.loads(line) or {}
        except ValueError:
            continue
        if isinstance(labels, dict) and labels.get("stagecraft.service"):
            found[str(labels["stagecraft.service"])] = (
                labels.get("stagecraft.release"),
                labels.get("stagecraft.version"),
            )
    return found


def summarize_host(state: HostState, expected: Sequence[str], now: datetime) -> HostStatus:
    """One row per service found on the host or placed there by its roles (pure)."""
    services = state.services
    names = [*expected, *(name for name in services if name not in expected)]
    return HostStatus(
        state.host, tuple(summarize_service(n, services.get(n, ()), now) for n in names)
    )


def summarize_service(
    service: str, containers: Sequence[ContainerState], now: datetime
) -> ServiceStatus:
    """The serving release of ``service`` and its replicas (pure; newest release first)."""
    if not containers:
        return ServiceStatus(service, None, None, "not deployed", None, 0, 0)
    running = [c for c in containers if c.running]
    current = running[0] if running else containers[0]
    replicas = [c for c in containers if c.release == current.release]
    live = [c for c in replicas if c.running]
    older = sum(1 for c in running if c.release != current.release)
    starts = [t for t in (parse_time(c.started_at) for c in live) if t is not None]
    uptime = (now - min(starts)).total_seconds() if starts else None
    return ServiceStatus(
        service=service,
        release=current.release,
        version=current.version,
        health=_health(replicas),
        uptime=uptime,
        running=len(live),
        total=len(replicas),
        older_running=older,
    )


def _health(replicas: Sequence[ContainerState]) -> str:
    """``unhealthy`` > ``starting`` > ``healthy``; ``running`` without a healthcheck."""
    live = [c for c in replicas if c.running]
    if not live:
        return replicas[0].state if replicas else "not deployed"
    states = {c.health for c in live}
    for worst in ("unhealthy", "starting"):
        if worst in states:
            return worst
    if states == {"healthy"}:
        return "healthy"
    return "restarting" if any(c.state == "restarting" for c in live) else "running"


def parse_time(text: str | None) -> datetime | None:
    """Docker's RFC 3339 timestamp (nanoseconds, ``Z``) as an aware datetime, or None."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(_FRACTION.sub(r"\1", text.replace("Z", "+00:00")))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def format_uptime(seconds: float | None) -> str:
    """``42s``, ``5m``, ``3h12m``, ``2d4h``; ``-`` when unknown."""
    if seconds is None:
        return "-"
    total = max(0, int(seconds))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours}h"
    if hours:
        return f"{hours}h{minutes}m"
    if minutes:
        return f"{minutes}m"
    return f"{secs}s"


HEADER = ("HOST", "SERVICE", "RELEASE", "VERSION", "HEALTH", "UPTIME", "REPLICAS")


def render_status(status: EnvStatus) -> str:
    """A table, one row per host and service; unreachable hosts as one row each (pure)."""
    rows: list[tuple[str, ...]] = [HEADER]
    notes: list[str] = []
    for host in status.hosts:
        if not host.reachable:
            notes.append(f"{host.host}: unreachable: {host.error}")
            rows.append((host.host, "?", "-", "-", "unreachable", "-", "-"))
            continue
        if not host.services:
            rows.append((host.host, "-", "-", "-", "nothing deployed", "-", "-"))
        for svc in host.services:
            replicas = f"{svc.running}/{svc.total}"
            if svc.older_running:
                replicas += f" (+{svc.older_running} older)"
            rows.append(
                (
                    host.host,
                    svc.service,
                    svc.release or "-",
                    svc.version or "-",
                    svc.health,
                    format_uptime(svc.uptime),
                    replicas,
                )
            )
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADER) - 1)]
    lines = [
        "  ".join([*(c.ljust(w) for c, w in zip(row, widths, strict=False)), row[-1]]).rstrip()
        for row in rows
    ]
    return "\n".join([f"{status.project} {status.env}", *lines, *notes]) + "\n"
