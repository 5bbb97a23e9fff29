"""``deploy`` and ``rollback`` of an environment with ``driver: swarm`` (issue 14, ADR 0017).

The same phases as the SSH driver (:mod:`stagecraft.deploy.pipeline`) where
they mean the same thing -- hooks, version and release, secrets, the lock on the
primary host, build, the environment's HMAC key, ship, ledger -- and Swarm's
own rollout where the SSH driver rolls out host by host:

1. the swarm must be formed (``hosts bootstrap``); its node labels follow the
   roles in ``stagecraft.yml`` (a changed role relabels that node);
2. the stack file is rendered (:mod:`.stack`) with every image pinned to its
   image ID, so no node tries a registry for an image that only this machine
   has (Swarm pulls before every task start unless the image is named by ID);
3. each node gets the images of the services its roles may run (and the edge
   proxy's on the edge nodes), layer by layer over SSH;
4. each secret-bearing variable's value becomes a Swarm secret named by a keyed
   digest of the value (created on stdin, never on a command line): a rotated
   value is a new name, so the services using it are updated;
5. the stack file goes to the release directory on the leader and ``docker
   stack deploy --resolve-image never --prune`` runs there;
6. the deploy waits until every service converged (its tasks running and
   healthy with the new config) or Swarm rolled it back (``failure_action:
   rollback``), reported per service with the task's error; a node that went
   down meanwhile is reported (Swarm runs its tasks on the other nodes);
7. the release is recorded in the ledger of every manager; secrets and proxy
   configs no longer used are removed; after the lock, every node's images
   beyond the last ``retain`` releases are pruned, as for the SSH driver (an
   image a task container still uses is refused by Docker and stays).

Example::

    result = deploy_stack(loaded, "production", DeployOptions(version="v2"))
    print(render_result(result))
"""

from __future__ import annotations

import json
import logging
import shlex
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, cast

from stagecraft import log
from stagecraft.config.loader import LoadedConfig
from stagecraft.config.models import EnvironmentConfig
from stagecraft.deploy import hooks, secret_digest
from stagecraft.deploy.pipeline import DeployOptions, build_release_images, run_locked, say
from stagecraft.deploy.release import Release
from stagecraft.deploy.render import check_no_secret_values, wiring_address
from stagecraft.deploy.rollout import ServiceOutcome
from stagecraft.deploy.rollout.result import DeployResult, HostResult
from stagecraft.deploy.ship import layers
from stagecraft.deploy.state import ledger, lock
from stagecraft.deploy.state.layout import app_dir
from stagecraft.deploy.swarm import cluster
from stagecraft.deploy.swarm.stack import STACK_FILE, Stack, render_stack
from stagecraft.errors import ExitCode, StagecraftError
from stagecraft.providers.secrets import SecretValue
from stagecraft.runtime.ssh import SSHHost

logger = logging.getLogger(__name__)

SECRET_LABEL = "stagecraft.stack"
STACK_LABEL = "com.docker.stack.namespace"
POLL = 0.5
# A service or task listed can be gone when inspected (task history is pruned, --prune
# removes services): inspect prints the others and that is what counts.
_READ_STACK = r"""
ids=$(docker service ls -q --filter "label=com.docker.stack.namespace=$1") || exit $?
[ -n "$ids" ] || exit 0
docker service inspect --format '{{json .}}' $ids 2>/dev/null
echo '#tasks'
tasks=$(docker service ps -q $ids 2>/dev/null)
[ -z "$tasks" ] || docker inspect --format '{{json .}}' $tasks 2>/dev/null
echo '#nodes'
docker node ls --format '{{.ID}} {{.Status}}' 2>/dev/null
exit 0
"""
_UPDATING = {"updating", "rollback_started"}
_STUCK = {"paused", "rollback_paused"}


class StackFailed(StagecraftError):
    """The stack could not be deployed on the swarm (before any service changed)."""


@dataclass(frozen=True)
class TaskState:
    """One task of a stack service as the manager reports it."""

    service: str
    config_hash: str | None
    state: str
    desired: str
    error: str
    node: str
    id: str = ""


@dataclass(frozen=True)
class ServiceState:
    """One service of the stack: its config hash, desired replicas and rollout status."""

    name: str
    config_hash: str | None
    replicas: int | None  # None: a global service
    update: str | None
    update_started: str
    update_message: str
    tasks: tuple[TaskState, ...] = field(default_factory=tuple)
    image: str = ""
    secrets: frozenset[str] = frozenset()

    def running(self, config_hash: str | None) -> int:
        """Tasks running (healthy, when there is a health check) with ``config_hash``."""
        return sum(
            1
            for t in self.tasks
            if t.desired == "running" and t.state == "running" and t.config_hash == config_hash
        )

    def converged(self) -> bool:
        """Every task meant to run runs this service's current config, none other left."""
        if self.update in _UPDATING or self.update in _STUCK:
            return False
        wanted = [t for t in self.tasks if t.desired == "running"]
        if not wanted or any(
            t.state != "running" or t.config_hash != self.config_hash for t in wanted
        ):
            return False
        return self.replicas is None or len(wanted) == self.replicas

    def failures(self, config_hash: str | None) -> list[str]:
        """The errors of the tasks with ``config_hash`` that failed, newest state first."""
        return [
            t.error or t.state
            for t in self.tasks
            if t.config_hash == config_hash and t.state in ("failed", "rejected")
        ]


def deploy_stack(loaded: LoadedConfig, env: str, options: DeployOptions) -> DeployResult:
    """Deploy (or roll back to) a version of ``env`` as a Swarm stack; see the module docstring.

    The phases around the lock are the SSH driver's
    (:func:`~stagecraft.deploy.pipeline.run_locked`). Raises
    :class:`~stagecraft.deploy.rollout.result.DeployFailed` when a service did
    not converge (Swarm rolled it back, or it never became healthy), with the
    per-service result.
    """
    _refuse_migrations(loaded, env)
    environment = loaded.environment(env)
    return run_locked(
        loaded,
        env,
        options,
        check=lambda release, model: render_stack(loaded, env, release, compose=model),
        work=lambda run: _locked(
            loaded,
            env,
            environment=environment,
            release=run.release,
            secrets=run.secrets,
            hosts=run.hosts,
            opts=options,
            runner=run.runner,
        ),
    )


def _locked(
    loaded: LoadedConfig,
    env: str,
    *,
    environment: EnvironmentConfig,
    release: Release,
    secrets: Mapping[str, SecretValue],
    hosts: Sequence[SSHHost],
    opts: DeployOptions,
    runner: hooks.HookRunner,
) -> DeployResult:
    """Everything between taking the lock and recording the release."""
    started_at = _now()
    by_name = {h.name: h for h in hosts}
    swarm = cluster.join_state(hosts, environment.managers, parallel=environment.deploy.parallel)
    leader = by_name[swarm.leader]
    key = secret_digest.ensure_key(hosts[0], release.project, env)
    values = {name: value.reveal() for name, value in secrets.items()}
    if opts.build:
        build_release_images(loaded, release, opts, runner)
    edge = edge_hosts(environment)
    changes = cluster.label_nodes(
        leader,
        swarm.nodes,
        {h: environment.hosts[h].roles for h in environment.hosts},
        edge,
    )
    for change in changes:
        say(opts, swarm.leader, None, change)
    ipvs = has_ipvs(leader)
    draft = render_stack(loaded, env, release, secrets=values, key=key, ipvs=ipvs)
    local = layers.inspect_present(sorted(set(draft.images().values())), opts.environ)
    ids = {tag: image.id for tag, image in local.items()}
    stack = render_stack(loaded, env, release, secrets=values, key=key, ipvs=ipvs, image_ids=ids)
    before = read_stack(leader, stack.name)
    runner.pre(f"pre-{opts.command}")
    shipped = _ship(environment, stack, hosts, local=local, edge=edge, opts=opts)
    failed_ship = {name: error for name, error in shipped.items() if isinstance(error, str)}
    if failed_ship:
        return _result(
            release,
            env,
            opts,
            hosts,
            leader=swarm.leader,
            services=(),
            errors=failed_ship,
            shipped=shipped,
        )
    release_dir = f"{app_dir(release.project, env)}/releases/{release.id}"
    _create_secrets(leader, stack, values, release)
    _write_release(leader, stack, release_dir, values.values())
    say(opts, swarm.leader, None, f"docker stack deploy {stack.name}")
    leader.run(
        [
            "sh",
            "-c",
            f"cd {shlex.quote(release_dir)} && exec docker stack deploy --resolve-image never "
            f"--prune -c {STACK_FILE} {shlex.quote(stack.name)}",
        ],
        timeout=300,
    )
    outcomes = wait_converged(
        leader,
        stack,
        before,
        timeout=_convergence_timeout(environment, stack),
        say=lambda service, message: say(opts, swarm.leader, service, message),
        ready_after=ready_after(loaded, stack),
    )
    for name in nodes_down(leader, swarm.nodes):
        say(
            opts,
            name,
            None,
            "node down: Swarm runs its tasks on the other nodes of its roles; a rolling update "
            "waits for a task it had sent there (bring the node back, or drain it with `docker "
            "node update --availability drain`), then deploy again",
        )
    result = _result(
        release,
        env,
        opts,
        hosts,
        leader=swarm.leader,
        services=outcomes,
        errors={},
        shipped=shipped,
    )
    _record(
        release,
        stack,
        ids=ids,
        outcomes=outcomes,
        started_at=started_at,
        opts=opts,
        environment=environment,
        by_name=by_name,
        secrets=secrets,
    )
    if result.ok:
        _remove_unused(leader, stack)
    return result


def read_stack(leader: SSHHost, stack: str) -> dict[str, ServiceState]:
    """The stack's services (by compose service name) and their tasks, in one round trip."""
    result = leader.run(["sh", "-c", _READ_STACK, "sh", stack], timeout=60)
    services: dict[str, dict[str, Any]] = {}
    by_id: dict[str, str] = {}
    tasks: dict[str, list[TaskState]] = {}
    in_tasks = False
    text, _, nodes = result.stdout.partition("#nodes\n")
    # A task on a node that is down keeps its last known state (often "running"):
    # Swarm starts its replacement elsewhere, so it counts for nothing.
    down = {
        line.split(" ", 1)[0]
        for line in nodes.splitlines()
        if " " in line and line.split(" ", 1)[1].strip() != "Ready"
    }
    for line in text.splitlines():
        if line == "#tasks":
            in_tasks = True
            continue
        if not line.strip():
            continue
        data = json.loads(line)
        if not in_tasks:
            name = _service_name(data, stack)
            services[name] = data
            by_id[str(data.get("ID"))] = name
            continue
        service = by_id.get(str(data.get("ServiceID")))
        if service is None or str(data.get("NodeID") or "") in down:
            continue
        spec = (data.get("Spec") or {}).get("ContainerSpec") or {}
        status = data.get("Status") or {}
        tasks.setdefault(service, []).append(
            TaskState(
                service,
                (spec.get("Labels") or {}).get("stagecraft.config-hash"),
                str(status.get("State") or ""),
                str(data.get("DesiredState") or ""),
                str(status.get("Err") or ""),
                str(data.get("NodeID") or ""),
                str(data.get("ID") or ""),
            )
        )
    states = {}
    for name, data in services.items():
        spec = data.get("Spec") or {}
        container = (spec.get("TaskTemplate") or {}).get("ContainerSpec") or {}
        mode = spec.get("Mode") or {}
        replicated = mode.get("Replicated")
        update = data.get("UpdateStatus") or {}
        states[name] = ServiceState(
            name,
            (container.get("Labels") or {}).get("stagecraft.config-hash"),
            int(replicated.get("Replicas", 1)) if replicated is not None else None,
            update.get("State"),
            str(update.get("StartedAt") or ""),
            str(update.get("Message") or ""),
            tuple(tasks.get(name, ())),
            str(container.get("Image") or ""),
            frozenset(str(ref.get("SecretName")) for ref in container.get("Secrets") or () if ref),
        )
    return states


def wait_converged(
    leader: SSHHost,
    stack: Stack,
    before: Mapping[str, ServiceState],
    *,
    timeout: float,
    say: Any,
    ready_after: Mapping[str, float] | None = None,
) -> list[ServiceOutcome]:
    """Poll the stack until each service converged, rolled back or failed; one outcome each.

    A service whose config did not change is ``kept``; one Swarm rolled back
    (``failure_action: rollback``) or whose update paused fails with the task
    error; a new service whose tasks failed three times fails without waiting
    for the timeout (there is nothing to roll back to). A task with a health
    check runs (for Swarm) once healthy; a changed service without one must
    keep the same tasks running for its ``ready_after`` seconds (a process that
    exits at once would otherwise look converged between two restarts).
    """
    hold = dict(ready_after or {})
    stable: dict[str, tuple[frozenset[str], float]] = {}
    wanted = stack.config_hashes()
    action = {
        name: (
            "keep"
            if name in before and before[name].config_hash == digest
            else ("update" if name in before else "create")
        )
        for name, digest in wanted.items()
    }
    pending = dict(wanted)
    outcomes: dict[str, ServiceOutcome] = {}
    deadline = time.monotonic() + timeout
    while pending:
        now = read_stack(leader, stack.name)
        for name, digest in list(pending.items()):
            state = now.get(name)
            if state is None:
                continue
            failure = _failure(state, before.get(name), digest)
            if failure is not None:
                error, code = failure
                say(name, f"failed: {error}")
                outcomes[name] = ServiceOutcome(name, action[name], "failed", error, code)
                del pending[name]
            elif state.config_hash == digest and state.converged():
                running = frozenset(t.id for t in state.tasks if t.desired == "running")
                if name not in stable or stable[name][0] != running:
                    stable[name] = (running, time.monotonic())
                wait = hold.get(name, 0.0) if action[name] != "keep" else 0.0
                if time.monotonic() - stable[name][1] >= wait:
                    say(name, f"{len(running)} task(s) running")
                    outcomes[name] = ServiceOutcome(name, action[name], "success")
                    del pending[name]
            else:
                stable.pop(name, None)
        if not pending:
            break
        if time.monotonic() >= deadline:
            for name, digest in pending.items():
                state = now.get(name)
                errors = state.failures(digest) if state is not None else []
                count = state.running(digest) if state is not None else 0
                last = f"; last task error: {errors[-1]}" if errors else ""
                error = (
                    f"not converged after {timeout:.0f}s ({count} task(s) running the new "
                    f"config{last})"
                )
                unhealthy = any("unhealthy" in e for e in errors)
                code = ExitCode.HEALTH_CHECK_FAILED if unhealthy else ExitCode.FAILED
                outcomes[name] = ServiceOutcome(name, action[name], "failed", error, code)
            break
        time.sleep(POLL)  # poll: Swarm has no event for "service converged"
    return [outcomes[name] for name in wanted if name in outcomes]


def _failure(
    state: ServiceState, previous: ServiceState | None, digest: str
) -> tuple[str, ExitCode] | None:
    """Why ``state`` failed in this deploy (error and exit code), or None."""
    new_update = previous is None or state.update_started != previous.update_started
    errors = state.failures(digest)
    detail = f": {errors[-1]}" if errors else ""
    code = (
        ExitCode.HEALTH_CHECK_FAILED if any("unhealthy" in e for e in errors) else ExitCode.FAILED
    )
    if new_update and state.update == "rollback_completed":
        return f"Swarm rolled the update back (the previous version serves){detail}", code
    if new_update and state.update in _STUCK:
        return f"the update is {state.update}: {state.update_message}{detail}", code
    if previous is None and len(errors) >= 3:
        return f"{len(errors)} task(s) failed{detail}", code
    return None


def nodes_down(leader: SSHHost, nodes: Mapping[str, str]) -> list[str]:
    """The hosts (of ``nodes``: host -> node id) whose node the swarm does not see ready."""
    listed = leader.docker("node", "ls", "--format", "{{.ID}} {{.Status}}", check=False)
    status = dict(line.split(" ", 1) for line in listed.stdout.splitlines() if " " in line)
    return [host for host, node in nodes.items() if status.get(node, "Ready") != "Ready"]


def ready_after(loaded: LoadedConfig, stack: Stack) -> dict[str, float]:
    """Per service without a health check, how long its tasks must keep running to count."""
    from stagecraft.deploy.rollout.steps import DEFAULT_READY_AFTER

    compose = loaded.compose
    found: dict[str, float] = {}
    for name, definition in stack.document["services"].items():
        check = definition.get("healthcheck") or {}
        if check and not check.get("disable"):
            continue
        service = compose.services.get(name) if compose is not None else None
        ext = service.x_stagecraft.ready_after if service is not None else None
        found[name] = ext if ext is not None else DEFAULT_READY_AFTER
    return found


def _ship(
    environment: EnvironmentConfig,
    stack: Stack,
    hosts: Sequence[SSHHost],
    *,
    local: Mapping[str, layers.LocalImage],
    edge: Sequence[str],
    opts: DeployOptions,
) -> dict[str, dict[str, Any] | str]:
    """Each node gets the local images its roles may run; per host what was sent, or the error."""
    from stagecraft.deploy import ship

    images = stack.images()
    placement = stack.placement()
    wants: list[tuple[SSHHost, list[str]]] = []
    for host in hosts:
        roles = set(environment.hosts[host.name].roles)
        mine = {
            images[service]
            for service, role in placement.items()
            if (role in roles if role else host.name in edge)
        }
        wanted = sorted(image for image in mine if image in local)
        if wanted:
            wants.append((host, wanted))
    if not wants:
        return {}
    try:
        result = ship.ship_over_ssh_many(wants, parallel=environment.deploy.parallel, local=local)
    except StagecraftError as exc:
        return {host.name: exc.message for host, _ in wants}
    found: dict[str, dict[str, Any] | str] = {}
    for outcome in result.outcomes:
        if outcome.error is not None:
            found[outcome.name] = str(getattr(outcome.error, "message", outcome.error))
            continue
        assert outcome.value is not None
        sent = outcome.value
        found[outcome.name] = {
            "sent": list(sent.sent),
            "tagged": list(sent.tagged),
            "skipped": list(sent.skipped),
            **({"transfer": sent.transfer.to_json()} if sent.transfer is not None else {}),
        }
        say(opts, outcome.name, None, f"images on host ({len(sent.sent)} sent)")
    return found


def _create_secrets(
    leader: SSHHost, stack: Stack, values: Mapping[str, str], release: Release
) -> None:
    """Create the Swarm secrets the stack names that do not exist yet (values on stdin)."""
    wanted = stack.secret_values(values)
    if not wanted:
        return
    listed = leader.docker(
        "secret", "ls", "--filter", f"label={SECRET_LABEL}={stack.name}", "--format", "{{.Name}}"
    )
    existing = set(listed.stdout.split())
    for name, value in sorted(wanted.items()):
        if name in existing:
            continue
        leader.run(
            [
                "docker",
                "secret",
                "create",
                "--label",
                f"{SECRET_LABEL}={stack.name}",
                "--label",
                f"stagecraft.project={release.project}",
                "--label",
                f"stagecraft.env={release.env or ''}",
                name,
                "-",
            ],
            input=value,
        )


def _write_release(
    leader: SSHHost, stack: Stack, release_dir: str, secret_values: Iterable[str]
) -> None:
    """The stack file and its side files in the release directory (no secret value in them)."""
    text = stack.text()
    values = list(secret_values)
    check_no_secret_values(text, values, host=leader.name)
    for content in stack.files.values():
        check_no_secret_values(content, values, host=leader.name)
    leader.run(["mkdir", "-p", release_dir])
    for name, content in sorted(stack.files.items()):
        leader.write_file(f"{release_dir}/{name}", content.encode(), mode=0o644)
    leader.write_file(f"{release_dir}/{STACK_FILE}", text.encode(), mode=0o644)


def _remove_unused(leader: SSHHost, stack: Stack) -> None:
    """Secrets and configs of this stack that no service uses any more (in use: kept)."""
    script = (
        'for s in $(docker secret ls -q --filter "label=$1=$2"); do '
        "docker secret rm $s >/dev/null 2>&1 || true; done; "
        'for c in $(docker config ls -q --filter "label=$3=$2"); do '
        "docker config rm $c >/dev/null 2>&1 || true; done"
    )
    leader.run(["sh", "-c", script, "sh", SECRET_LABEL, stack.name, STACK_LABEL], check=False)


def _record(
    release: Release,
    stack: Stack,
    *,
    ids: Mapping[str, str],
    outcomes: Sequence[ServiceOutcome],
    started_at: str,
    opts: DeployOptions,
    environment: EnvironmentConfig,
    by_name: Mapping[str, SSHHost],
    secrets: Mapping[str, SecretValue],
) -> None:
    """The release in the ledger of every manager (failures logged, never raised)."""
    finished = _now()
    by_service = {o.service: o for o in outcomes}
    hashes = stack.config_hashes()
    services = {
        name: ledger.ServiceRecord(
            service.image,
            ids.get(service.image),
            hashes.get(name),
            by_service[name].outcome if name in by_service else "skipped",
            by_service[name].error if name in by_service else None,
        )
        for name, service in stack.services.items()
    }
    outcome = "success" if all(o.outcome == "success" for o in outcomes) else "failed"
    for manager in environment.managers:
        record = ledger.LedgerRecord(
            release=release.id,
            version=release.version.value,
            env=release.env or "",
            host=manager,
            started_at=started_at,
            finished_at=finished,
            by=lock.local_identity(),
            command=opts.command,
            outcome=outcome,
            services=services,
            peers={m: outcome for m in environment.managers},
        )
        try:
            ledger.append(by_name[manager], release.project, record, secrets=list(secrets.values()))
        except StagecraftError as exc:
            log.event(
                logger,
                logging.ERROR,
                f"ledger not written: {exc.message}",
                host=manager,
                phase="record",
            )


def _result(
    release: Release,
    env: str,
    opts: DeployOptions,
    hosts: Sequence[SSHHost],
    *,
    leader: str,
    services: Sequence[ServiceOutcome],
    errors: Mapping[str, str],
    shipped: Mapping[str, dict[str, Any] | str],
) -> DeployResult:
    """Per host: the leader carries the services' outcomes, every host its shipping."""
    failed = [s for s in services if s.outcome != "success"]
    rows = []
    for host in hosts:
        sent = shipped.get(host.name)
        error = errors.get(host.name)
        code = ExitCode.FAILED if error else ExitCode.OK
        outcomes: tuple[ServiceOutcome, ...] = ()
        if host.name == leader:
            outcomes = tuple(services)
            if failed and error is None:
                error = "; ".join(f"{s.service}: {s.error}" for s in failed)
                codes = {s.exit_code for s in failed}
                code = (
                    ExitCode.HEALTH_CHECK_FAILED
                    if ExitCode.HEALTH_CHECK_FAILED in codes
                    else ExitCode.FAILED
                )
        if errors and host.name not in errors and not outcomes:
            error, code = "not deployed: shipping failed on another node", ExitCode.FAILED
        rows.append(
            HostResult(
                host.name,
                "success" if error is None else "failed",
                outcomes,
                error,
                code,
                sent if isinstance(sent, dict) else None,
            )
        )
    return DeployResult(
        project=release.project,
        env=env,
        release=release.id,
        version=release.version.value,
        command=opts.command,
        hosts=tuple(rows),
    )


def edge_hosts(environment: EnvironmentConfig) -> list[str]:
    """The hosts that run a routed service: the edge proxy runs there."""
    routed = {route.service for route in environment.routes.values()}
    return [name for name in environment.hosts if routed & set(environment.services_on(name))]


def advertise_addresses(loaded: LoadedConfig, env: str) -> dict[str, str]:
    """Where each node is reached by the others: its private (or mesh) address."""
    from stagecraft.deploy.render import mesh_addresses

    environment = loaded.environment(env)
    mesh = mesh_addresses(loaded, env)
    why = "the swarm's nodes talk to each other (ports 2377, 7946, 4789)"
    return {name: wiring_address(environment, env, name, why, mesh) for name in environment.hosts}


def has_ipvs(leader: SSHHost) -> bool:
    """Whether the leader's kernel has IPVS (Swarm's virtual IPs need it)."""
    found = leader.run(
        ["sh", "-c", "test -e /proc/net/ip_vs || test -d /sys/module/ip_vs"], check=False
    )
    return found.returncode == 0


def _convergence_timeout(environment: EnvironmentConfig, stack: Stack) -> float:
    """Health time per task, one task at a time, plus Swarm's monitor windows."""
    most = max((s.replicas or 1 for s in stack.services.values()), default=1)
    return environment.deploy.health_timeout * most + 30.0


def _refuse_migrations(loaded: LoadedConfig, env: str) -> None:
    from stagecraft.migrate.hooks import databases_for_phase

    phases = [
        phase
        for phase in ("pre_deploy", "post_deploy")
        if databases_for_phase(loaded, cast(Literal["pre_deploy", "post_deploy"], phase))
    ]
    if phases:
        raise StagecraftError(
            f"environment {env}: migrations with strategy {', '.join(phases)} cannot run on "
            "driver: swarm yet (the database has no published port to tunnel to)",
            hint="set the database's migrations strategy to manual for this project, or deploy "
            "this environment with driver: ssh (ADR 0017)",
        )


def _service_name(data: Mapping[str, Any], stack: str) -> str:
    spec = data.get("Spec") or {}
    labels = spec.get("Labels") or {}
    name = str(labels.get("stagecraft.service") or spec.get("Name") or "")
    return name.removeprefix(f"{stack}_")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
