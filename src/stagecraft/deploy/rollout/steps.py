"""What the rollout does on one host, as values: services in dependency order, one step each.

Pure logic (no host access), so ordering and strategy are unit-tested:

- services are ordered by their same-host ``depends_on`` (rendered definitions keep
  only those), ties broken by kind (accessory, worker, web) then name;
- ``create`` starts the service; ``replace`` of a web or worker service starts new
  containers next to the old ones (``side-by-side``); ``replace`` of an accessory is
  recreated in place (``recreate``, with a warning); ``keep`` does nothing;
  ``remove`` stops and removes the containers of a service no longer placed here.

Example::

    steps = plan_steps(rendered_host, host_plan, services)
    [(s.service, s.strategy) for s in steps]   # [("db", "keep"), ("web", "side-by-side")]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from stagecraft.compose.model import ComposeService
from stagecraft.deploy.plan import HostPlan, ServicePlan
from stagecraft.deploy.render import RenderedHost

Strategy = Literal["start", "side-by-side", "recreate", "keep", "remove"]
KIND_ORDER = {"accessory": 0, "worker": 1, "web": 2}
DEFAULT_GRACE = 10.0
"""Docker's default stop timeout, used when a service sets no ``stop_grace_period``."""
DEFAULT_READY_AFTER = 3.0
"""Seconds a service with neither a Docker nor an HTTP health check must keep running."""


@dataclass(frozen=True)
class HttpCheck:
    """An HTTP health probe of a container: ``GET http://<ip>:<port><path>`` answers 2xx."""

    path: str
    port: int
    interval: float
    timeout: float


@dataclass(frozen=True)
class ServiceSettings:
    """How one service is rolled out: health probe, drain, stop grace, replicas, ready_after."""

    name: str
    kind: str
    http_check: HttpCheck | None
    drain: float
    stop_grace: float
    replicas: int = 1
    ready_after: float = DEFAULT_READY_AFTER


@dataclass(frozen=True)
class Step:
    """One service's step on one host."""

    service: str
    kind: str
    action: str
    strategy: Strategy
    settings: ServiceSettings | None = None
    after: tuple[str, ...] = ()
    """The same-host services this one depends on (``depends_on``): they go first."""


def service_settings(
    service: ComposeService,
    kind: str,
    *,
    route_port: int | None,
    drain: float,
) -> ServiceSettings:
    """The rollout settings of ``service``: x-stagecraft health check and drain, stop grace."""
    ext = service.x_stagecraft
    check = None
    if ext.healthcheck is not None:
        port = ext.healthcheck.port or route_port
        if port is not None:
            check = HttpCheck(
                ext.healthcheck.path, port, ext.healthcheck.interval, ext.healthcheck.timeout
            )
    return ServiceSettings(
        name=service.name,
        kind=kind,
        http_check=check,
        drain=ext.drain if ext.drain is not None else drain,
        stop_grace=service.stop_grace_period or DEFAULT_GRACE,
        replicas=max(1, service.replicas),
        ready_after=ext.ready_after if ext.ready_after is not None else DEFAULT_READY_AFTER,
    )


def strategy_for(plan: ServicePlan) -> Strategy:
    """How a planned action is carried out (see the module docstring)."""
    if plan.action == "create":
        return "start"
    if plan.action == "keep":
        return "keep"
    if plan.action == "remove":
        return "remove"
    return "recreate" if plan.kind == "accessory" else "side-by-side"


def same_host_deps(rendered: RenderedHost) -> dict[str, list[str]]:
    """Each service's ``depends_on`` that run on this host too."""
    return {
        name: sorted(set(dict(svc.definition.get("depends_on") or {})) & set(rendered.services))
        for name, svc in rendered.services.items()
    }


def dependency_order(rendered: RenderedHost) -> list[str]:
    """The host's services, each after the same-host services it depends on."""
    deps = same_host_deps(rendered)

    def rank(name: str) -> tuple[int, str]:
        return (KIND_ORDER.get(rendered.services[name].kind, 1), name)

    ordered: list[str] = []
    visiting: set[str] = set()

    def visit(name: str) -> None:
        if name in ordered or name in visiting:
            return  # a cycle is Compose's to reject; keep going in rank order
        visiting.add(name)
        for dep in sorted(deps[name], key=rank):
            visit(dep)
        visiting.discard(name)
        ordered.append(name)

    for name in sorted(rendered.services, key=rank):
        visit(name)
    return ordered


def plan_steps(
    rendered: RenderedHost,
    host_plan: HostPlan,
    settings: Mapping[str, ServiceSettings],
) -> list[Step]:
    """Every step of one host: placed services in dependency order, then removals."""
    by_name = {s.service: s for s in host_plan.services}
    deps = same_host_deps(rendered)
    steps = []
    for name in dependency_order(rendered):
        plan = by_name.get(name)
        if plan is None:
            continue
        kind = rendered.services[name].kind
        after = tuple(d for d in deps[name] if d in by_name)
        steps.append(Step(name, kind, plan.action, strategy_for(plan), settings.get(name), after))
    for plan in host_plan.services:
        if plan.action == "remove":
            steps.append(Step(plan.service, plan.kind or "worker", "remove", "remove"))
    return steps


def waves(steps: Sequence[Step]) -> list[list[Step]]:
    """``steps`` grouped so that each group can run at once: a step comes one group after
    the latest of the steps it depends on; removals come last.

    >>> s = [Step("db", "accessory", "keep", "keep"), Step("web", "web", "replace",
    ...      "side-by-side", after=("db",)), Step("worker", "worker", "replace", "side-by-side")]
    >>> [[x.service for x in w] for w in waves(s)]
    [['db', 'worker'], ['web']]
    """
    level: dict[str, int] = {}
    for step in steps:  # in dependency order: a step's dependencies already have a level
        if step.strategy != "remove":
            level[step.service] = 1 + max((level.get(d, -1) for d in step.after), default=-1)
    grouped: list[list[Step]] = [[] for _ in range(max(level.values(), default=-1) + 1)]
    for step in steps:
        if step.strategy != "remove":
            grouped[level[step.service]].append(step)
    removals = [s for s in steps if s.strategy == "remove"]
    return [g for g in grouped if g] + ([removals] if removals else [])


def split_stages(steps: Sequence[Step]) -> tuple[list[Step], list[Step]]:
    """``(accessory steps, the rest)``: accessories roll out before ``pre_deploy`` migrations."""
    first = [s for s in steps if s.kind == "accessory" and s.strategy != "remove"]
    rest = [s for s in steps if s not in first]
    return first, rest
