"""``plan`` (and ``deploy --dry-run``) of an environment with ``driver: swarm``.

The stack is rendered exactly as a deploy would render it (the images pinned to
the local image IDs, each secret named by the environment's keyed digest of its
value) and compared with the services the leader reports, by their config
hash: ``create``, ``update`` (with why: image, secret NAME, config), ``keep``,
or ``remove`` (a service of the stack that the compose file no longer has;
``--prune`` removes it). Nothing changes; no secret value is shown.

Example::

    plan = plan_stack(loaded, "production", explicit_version="v2")
    print(render_stack_plan(plan))
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from stagecraft.config.loader import LoadedConfig
from stagecraft.deploy.compose_env import EnvironmentCompose, environment_compose
from stagecraft.deploy.release import new_release, resolve_version
from stagecraft.deploy.secret_digest import read_key, throwaway_key
from stagecraft.deploy.ship.layers import inspect_present
from stagecraft.deploy.state.layout import environment_hosts
from stagecraft.deploy.swarm import cluster
from stagecraft.deploy.swarm.driver import ServiceState, has_ipvs, read_stack
from stagecraft.deploy.swarm.stack import EDGE_SERVICE, Stack, render_stack, stack_name
from stagecraft.errors import ExitCode, StagecraftError
from stagecraft.runtime.fanout import describe
from stagecraft.runtime.ssh import SSHOptions


@dataclass(frozen=True)
class StackChange:
    """What a deploy would do to one service of the stack."""

    service: str
    action: str  # create, update, keep, remove
    why: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"service": self.service, "action": self.action, "why": list(self.why)}


@dataclass(frozen=True)
class StackPlan:
    """The plan of one deploy to a swarm: per service its action, or why it is unknown."""

    project: str
    env: str
    version: str
    stack: str
    leader: str | None
    changes: tuple[StackChange, ...]
    error: str | None = None

    def counts(self) -> dict[str, int]:
        found = dict.fromkeys(("create", "update", "keep", "remove"), 0)
        for change in self.changes:
            found[change.action] += 1
        return found

    def to_json(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "env": self.env,
            "version": self.version,
            "driver": "swarm",
            "stack": self.stack,
            "leader": self.leader,
            "error": self.error,
            "services": [c.to_json() for c in self.changes],
            "summary": self.counts(),
        }


def plan_stack(
    loaded: LoadedConfig,
    env: str,
    *,
    explicit_version: str | None = None,
    ssh_options: SSHOptions | None = None,
    model: EnvironmentCompose | None = None,
) -> StackPlan:
    """Render the stack as a deploy would and compare it with the swarm's services."""
    from stagecraft.deploy.pipeline import close_all, resolve_secrets

    environment = loaded.environment(env)
    version = resolve_version(loaded.root, explicit_version)
    release = new_release(loaded.config, env, version)
    model = model if model is not None else environment_compose(loaded, env)
    render_stack(loaded, env, release, compose=model)  # bad config fails before SSH
    values = {k: v.reveal() for k, v in resolve_secrets(loaded, env, None).items()}
    hosts = environment_hosts(environment, ssh_options)
    name = stack_name(release.project, env)
    try:
        swarm = cluster.join_state(hosts, environment.managers)
        leader = next(h for h in hosts if h.name == swarm.leader)
        key = read_key(hosts[0], release.project, env) or throwaway_key()
        draft = render_stack(loaded, env, release, compose=model, secrets=values, key=key)
        local = inspect_present(sorted(set(draft.images().values())))
        ids = {tag: image.id for tag, image in local.items()}
        ipvs = has_ipvs(leader)  # as the deploy detects it: the same endpoint mode, same hash
        stack = render_stack(
            loaded, env, release, compose=model, secrets=values, key=key, ipvs=ipvs, image_ids=ids
        )
        current = read_stack(leader, stack.name)
    except StagecraftError as exc:
        if exc.exit_code != ExitCode.UNREACHABLE:
            raise  # a swarm not formed, a damaged answer: the error itself says what to do
        return StackPlan(
            release.project, env, version.value, name, None, (), describe("swarm", exc)
        )
    finally:
        close_all(hosts)
    return StackPlan(
        release.project,
        env,
        version.value,
        stack.name,
        swarm.leader,
        tuple(compare(stack, current)),
    )


def compare(stack: Stack, current: Mapping[str, ServiceState]) -> list[StackChange]:
    """Each desired service against the one running (pure)."""
    changes = []
    wanted = stack.config_hashes()
    for name, digest in wanted.items():
        now = current.get(name)
        if now is None:
            changes.append(StackChange(name, "create"))
        elif now.config_hash == digest:
            changes.append(StackChange(name, "keep"))
        else:
            changes.append(StackChange(name, "update", _why(stack, name, now)))
    for name in sorted(set(current) - set(wanted)):
        changes.append(StackChange(name, "remove"))
    return changes


def _why(stack: Stack, name: str, now: ServiceState) -> tuple[str, ...]:
    """What differs: the image, a secret's value (by name, never the value), else the config."""
    why = []
    definition = stack.document["services"][name]
    if now.image and definition.get("image") != now.image:
        why.append("image")
    desired = {n for n, (service, _) in stack.secret_refs.items() if service == name}
    if name != EDGE_SERVICE and desired != set(now.secrets):
        variables = sorted(
            var for n, (service, var) in stack.secret_refs.items() if n in desired - now.secrets
        )
        why += [f"secret {var} changed" for var in variables]
    return tuple(why) or ("config",)


def render_stack_plan(plan: StackPlan) -> str:
    """The plan as text: a header, one line per service, a summary line."""
    lines = [
        f"plan for {plan.project} {plan.env}: version {plan.version} "
        f"(swarm stack {plan.stack}" + (f", leader {plan.leader})" if plan.leader else ")"),
        "",
    ]
    if plan.error is not None:
        lines += [f"  unknown: {plan.error}", ""]
    width = max((len(c.service) for c in plan.changes), default=0)
    for change in plan.changes:
        why = f" ({', '.join(change.why)})" if change.why else ""
        lines.append(f"  {change.service.ljust(width)}  {change.action}{why}")
    if plan.changes:
        lines.append("")
    counts = plan.counts()
    lines.append(", ".join(f"{counts[a]} {a}" for a in counts))
    return "\n".join(lines) + "\n"
