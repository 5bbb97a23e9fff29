"""The deploy plan: desired (rendered per host) vs actual (container labels), as a value.

Per host and service one action:

- ``create``: placed on the host, no running container;
- ``replace``: running, but the image, the config hash and/or the digest of a
  secret it uses differ (``changes`` says which: ``image``, ``config``,
  ``secret NAME changed`` — named, never shown);
- ``keep``: running with the same image and config hash;
- ``remove``: running, but no longer placed on the host.

A host whose state cannot be read gets ``error`` and no actions; the others
are planned. Pending migrations per database are listed, or ``unknown`` with
the reason. ``render_text`` gives one table per host, ``to_json`` the same as
data; both are deterministic and never contain secret values (the plan holds
none).

Example::

    from stagecraft.deploy.plan import make_plan, render_text
    from stagecraft.deploy.render import render_hosts
    from stagecraft.deploy.state.containers import read_states

    desired = render_hosts(loaded, "production", release)
    actual = read_states(ssh_hosts, project="fleet", env="production")
    plan = make_plan(release, desired, actual)
    print(render_text(plan))
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from stagecraft.deploy import secret_digest
from stagecraft.deploy.release import Release
from stagecraft.deploy.render import RenderedHost, RenderedService
from stagecraft.deploy.state.containers import ContainerState, HostState
from stagecraft.runtime.fanout import GroupResult, describe

Action = Literal["create", "replace", "keep", "remove"]
ACTIONS: tuple[Action, ...] = ("create", "replace", "keep", "remove")


@dataclass(frozen=True)
class ServicePlan:
    """What happens to one service on one host."""

    service: str
    action: Action
    kind: str | None
    changes: tuple[str, ...] = ()
    current_image: str | None = None
    desired_image: str | None = None
    current_release: str | None = None
    current_hash: str | None = None
    desired_hash: str | None = None
    containers: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "action": self.action,
            "kind": self.kind,
            "changes": list(self.changes),
            "current": {
                "image": self.current_image,
                "release": self.current_release,
                "config_hash": self.current_hash,
                "containers": self.containers,
            },
            "desired": {"image": self.desired_image, "config_hash": self.desired_hash},
        }


@dataclass(frozen=True)
class HostPlan:
    """The actions on one host, or the error that kept its state from being read."""

    host: str
    address: str
    services: tuple[ServicePlan, ...] = ()
    error: str | None = None

    @property
    def changed(self) -> tuple[ServicePlan, ...]:
        """Every action other than ``keep``."""
        return tuple(s for s in self.services if s.action != "keep")

    def to_json(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "address": self.address,
            "reachable": self.error is None,
            "error": self.error,
            "services": [s.to_json() for s in self.services],
        }


@dataclass(frozen=True)
class MigrationPlan:
    """Pending migrations of one database: names, or ``None`` when unknown (``reason``)."""

    database: str
    pending: tuple[str, ...] | None
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        status = "unknown" if self.pending is None else "pending" if self.pending else "up-to-date"
        return {
            "database": self.database,
            "status": status,
            "pending": None if self.pending is None else list(self.pending),
            "reason": self.reason,
        }


@dataclass(frozen=True)
class DeployPlan:
    """The whole plan: the release, one :class:`HostPlan` per host, migrations."""

    project: str
    env: str
    version: str
    hosts: tuple[HostPlan, ...]
    migrations: tuple[MigrationPlan, ...] = field(default_factory=tuple)

    @property
    def unreachable(self) -> tuple[HostPlan, ...]:
        return tuple(h for h in self.hosts if h.error is not None)

    @property
    def changes(self) -> int:
        """How many (host, service) actions are not ``keep``."""
        return sum(len(h.changed) for h in self.hosts)

    def counts(self) -> dict[str, int]:
        """Actions by kind over all hosts."""
        counts: dict[str, int] = dict.fromkeys(ACTIONS, 0)
        for host in self.hosts:
            for service in host.services:
                counts[service.action] += 1
        return counts

    def to_json(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "env": self.env,
            "version": self.version,
            "summary": self.counts(),
            "hosts": [h.to_json() for h in self.hosts],
            "migrations": [m.to_json() for m in self.migrations],
            "unreachable": {h.host: h.error for h in self.unreachable},
        }


def make_plan(
    release: Release,
    desired: Mapping[str, RenderedHost],
    actual: GroupResult[HostState] | Mapping[str, HostState | BaseException],
    migrations: Sequence[MigrationPlan] = (),
) -> DeployPlan:
    """Compare ``desired`` with ``actual`` host by host (in ``desired`` order)."""
    states = _by_host(actual)
    hosts = []
    for name, rendered in desired.items():
        state = states.get(name)
        if state is None or isinstance(state, BaseException):
            reason = describe(name, state) if state is not None else "state not read"
            hosts.append(HostPlan(name, rendered.address, error=reason))
            continue
        hosts.append(HostPlan(name, rendered.address, plan_host(rendered, state)))
    return DeployPlan(
        project=release.project,
        env=release.env or "",
        version=release.version.value,
        hosts=tuple(hosts),
        migrations=tuple(sorted(migrations, key=lambda m: m.database)),
    )


def plan_host(desired: RenderedHost, actual: HostState) -> tuple[ServicePlan, ...]:
    """The actions of one host, by service name."""
    plans: dict[str, ServicePlan] = {}
    for name, service in desired.services.items():
        running = actual.running(name)
        if not running:
            plans[name] = ServicePlan(
                name,
                "create",
                service.kind,
                desired_image=service.image,
                desired_hash=service.config_hash,
            )
            continue
        plans[name] = _compare(name, service, running)
    for name in actual.services:
        running = actual.running(name)
        if name not in plans and running:
            plans[name] = _removal(name, running)
    return tuple(plans[name] for name in sorted(plans))


def _compare(
    name: str, desired: RenderedService, running: tuple[ContainerState, ...]
) -> ServicePlan:
    """``keep`` when every running container matches, else ``replace`` saying what differs."""
    changes = []
    if any(c.image != desired.image for c in running):
        changes.append("image")
    if any(c.config_hash != desired.config_hash for c in running):
        changes.append("config")
    rotated: list[str] = []
    if desired.secret_digests or not desired.secrets:  # unknown when values were not resolved
        rotated = sorted(
            {
                n
                for c in running
                for n in secret_digest.changed(desired.secret_digests, c.secret_digests)
            }
        )
    changes += [f"secret {n} changed" for n in rotated]
    newest = running[0]
    return ServicePlan(
        name,
        "replace" if changes else "keep",
        desired.kind,
        changes=tuple(changes),
        current_image=newest.image,
        desired_image=desired.image,
        current_release=newest.release,
        current_hash=newest.config_hash,
        desired_hash=desired.config_hash,
        containers=len(running),
    )


def _removal(name: str, running: tuple[ContainerState, ...]) -> ServicePlan:
    newest = running[0]
    return ServicePlan(
        name,
        "remove",
        newest.kind,
        current_image=newest.image,
        current_release=newest.release,
        current_hash=newest.config_hash,
        containers=len(running),
    )


def _by_host(
    actual: GroupResult[HostState] | Mapping[str, HostState | BaseException],
) -> dict[str, HostState | BaseException]:
    if isinstance(actual, GroupResult):
        found: dict[str, HostState | BaseException] = {}
        for outcome in actual.outcomes:
            if outcome.error is not None:
                found[outcome.name] = outcome.error
            elif outcome.value is not None:
                found[outcome.name] = outcome.value
        return found
    return dict(actual)


def render_text(plan: DeployPlan) -> str:
    """The plan as text: a header, one table per host, migrations, a summary line."""
    lines = [f"plan for {plan.project} {plan.env}: version {plan.version}", ""]
    for host in plan.hosts:
        lines += _host_lines(host)
        lines.append("")
    if plan.migrations:
        lines.append("migrations")
        for migration in plan.migrations:
            lines.append(f"  {migration.database}: {_migration_text(migration)}")
        lines.append("")
    counts = plan.counts()
    summary = ", ".join(f"{counts[a]} {a}" for a in ACTIONS)
    unreachable = len(plan.unreachable)
    if unreachable:
        summary += f"; {unreachable} host{'s' if unreachable != 1 else ''} unreachable"
    lines.append(summary)
    return "\n".join(lines) + "\n"


def _host_lines(host: HostPlan) -> list[str]:
    """One host's table."""
    title = f"host {host.host} ({host.address})"
    if host.error is not None:
        return [title, f"  unreachable: {host.error}"]
    if not host.services:
        return [title, "  nothing placed or running"]
    rows = [("SERVICE", "ACTION", "KIND", "CURRENT", "DESIRED", "CHANGES")]
    for service in host.services:
        rows.append(
            (
                service.service,
                service.action,
                service.kind or "-",
                _short(service.current_image),
                _short(service.desired_image),
                ", ".join(service.changes) or "-",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    table = [
        "  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    return [title, *table]


def _short(image: str | None) -> str:
    """An image reference without its registry path, or ``-``."""
    if not image:
        return "-"
    return image.rsplit("/", 1)[-1]


def _migration_text(migration: MigrationPlan) -> str:
    if migration.pending is None:
        return f"unknown ({migration.reason})" if migration.reason else "unknown"
    if not migration.pending:
        return "up to date"
    return f"{len(migration.pending)} pending: " + ", ".join(migration.pending)
