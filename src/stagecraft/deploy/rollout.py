"""Roll a release out on one host: release files, then each service's step (SPEC 6 phase 6).

Every step runs ``docker compose up -d --no-deps`` for its service only (ADR 0005
section 6), from the release directory holding the rendered compose file and the
0600 secrets files (written first, :func:`write_release`):

- ``start`` (create): start the service, wait until ready; a web service is then
  made the target of its upstream name (:func:`~stagecraft.deploy.edge.switch`);
- ``side-by-side`` (replace a web or worker service): scale the service up with
  ``--no-recreate`` so compose starts new containers of the new definition next
  to the old ones, wait until they are ready, switch the proxy to them (web; it
  returns once the proxy routes there), drain, then stop the old ones with their
  stop signal and grace period and remove them;
- ``recreate`` (replace an accessory): recreated in place, with a warning;
- ``remove``: the service's containers are stopped and removed.

Ready means: Docker's healthcheck says ``healthy`` when the container has one,
else the x-stagecraft HTTP probe answers 2xx, else the container stayed running
(same restart count) for ``grace`` seconds. A new container that is not ready
within ``health_timeout`` is removed (the old ones keep serving) and the step
raises :class:`~stagecraft.errors.HealthCheckFailed` with its last log lines
(declared secret values masked).

Example::

    ctx = HostContext(host, rendered, release_dir, project="fleet", env="production",
                      health_timeout=60, upstreams={"web": "web.production.fleet.internal"})
    write_release(host, rendered, release_dir, {"web": {"DATABASE_URL": "..."}})
    outcomes = run_steps(ctx, plan_steps(rendered, host_plan, settings))
"""

from __future__ import annotations

import json
import logging
import shlex
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from stagecraft import log
from stagecraft.deploy import edge
from stagecraft.deploy.render import (
    RenderedHost,
    check_no_secret_values,
    env_file_name,
    env_file_text,
)
from stagecraft.deploy.rollout_steps import DEFAULT_GRACE, HttpCheck, ServiceSettings, Step
from stagecraft.errors import ExitCode, HealthCheckFailed, StagecraftError
from stagecraft.runtime.ssh import SSHHost

logger = logging.getLogger(__name__)

Progress = Callable[[str, str | None, str], None]
"""``progress(host, service, message)``: one progress line for the user."""
LOG_LINES = 15
POLL = 0.5


@dataclass(frozen=True)
class ServiceOutcome:
    """What one step did: ``outcome`` is success, failed, skipped or interrupted."""

    service: str
    action: str
    outcome: str
    error: str | None = None
    exit_code: ExitCode = ExitCode.OK


@dataclass(frozen=True)
class HostContext:
    """Everything a host's steps need besides the steps themselves."""

    host: SSHHost
    rendered: RenderedHost
    release_dir: str
    project: str
    env: str
    health_timeout: float
    upstreams: Mapping[str, str] = field(default_factory=dict)
    proxy: edge.ProxyState | None = None
    grace: float = 3.0
    secrets: tuple[str, ...] = field(default=(), repr=False)
    progress: Progress | None = None

    def say(self, service: str | None, message: str, level: int = logging.INFO) -> None:
        """Log ``message`` and pass it to the progress callback."""
        # With a progress callback the user sees the line there; the log keeps it at debug.
        shown = logging.DEBUG if self.progress is not None else level
        log.event(logger, shown, message, host=self.host.name, service=service, phase="rollout")
        if self.progress is not None:
            self.progress(self.host.name, service, message)


def write_release(
    host: SSHHost,
    rendered: RenderedHost,
    release_dir: str,
    secrets: Mapping[str, Mapping[str, str]],
    *,
    secret_values: Iterable[str] = (),
) -> None:
    """Write the release's compose file and each service's 0600 secrets file on ``host``.

    ``secrets`` holds per service the variables of its env file; the compose file
    is checked to contain none of ``secret_values`` (the declared secrets' values)
    before anything is written.
    """
    text = rendered.text()
    check_no_secret_values(text, secret_values, host=rendered.host)
    host.run(["mkdir", "-p", release_dir])
    for name, service in sorted(rendered.services.items()):
        if service.env_file is None:
            continue
        values = {k: v for k, v in secrets.get(name, {}).items() if k in service.secret_env}
        data = env_file_text(values).encode()
        host.write_file(f"{release_dir}/{env_file_name(name)}", data, mode=0o600)
    host.write_file(f"{release_dir}/docker-compose.yml", text.encode(), mode=0o644)


def run_steps(ctx: HostContext, steps: Sequence[Step]) -> list[ServiceOutcome]:
    """Run ``steps`` in order; after a failure the remaining ones are ``skipped``.

    KeyboardInterrupt propagates after the running step cleaned up.
    """
    outcomes: list[ServiceOutcome] = []
    failed = False
    for step in steps:
        if failed:
            outcomes.append(ServiceOutcome(step.service, step.action, "skipped"))
            continue
        try:
            run_step(ctx, step)
        except StagecraftError as exc:
            failed = True
            ctx.say(step.service, f"failed: {exc.message}", logging.ERROR)
            outcomes.append(
                ServiceOutcome(step.service, step.action, "failed", exc.message, exc.exit_code)
            )
            continue
        outcomes.append(ServiceOutcome(step.service, step.action, "success"))
    return outcomes


def first_error(outcomes: Sequence[ServiceOutcome]) -> ServiceOutcome | None:
    """The failed outcome, if any."""
    return next((o for o in outcomes if o.outcome == "failed"), None)


def run_step(ctx: HostContext, step: Step) -> None:
    """One service's step (see the module docstring)."""
    if step.strategy == "keep":
        return
    if step.strategy == "remove":
        ids = _labelled(ctx, step.service)
        ctx.say(step.service, f"removing {len(ids)} container(s): no longer placed here")
        _stop_and_remove(ctx, ids, DEFAULT_GRACE)
        return
    settings = step.settings or ServiceSettings(step.service, step.kind, None, 0.0, DEFAULT_GRACE)
    if step.strategy == "recreate":
        ctx.say(
            step.service,
            "recreating the accessory in place (its definition changed)",
            logging.WARNING,
        )
    if step.strategy in ("start", "recreate"):
        ctx.say(step.service, "starting")
        _up(ctx, step.service)
        new = _service_ids(ctx, step.service, running_only=False)
        # A new service that never got ready is removed; an accessory keeps its container.
        fresh = step.strategy == "start"
        _ready_or_fail(ctx, step.service, new, settings, remove_on_failure=fresh)
        if step.kind == "web":
            _switch(ctx, step.service, new)
        ctx.say(step.service, "done")
        return
    _side_by_side(ctx, step.service, step.kind, settings)


def _side_by_side(ctx: HostContext, service: str, kind: str, settings: ServiceSettings) -> None:
    """Start new containers next to the old ones, wait, switch, drain, stop the old ones."""
    everything = _service_ids(ctx, service, running_only=False)
    old = _service_ids(ctx, service, running_only=True)
    stale = [i for i in everything if i not in old]
    if stale:
        ctx.host.docker("rm", "-f", *stale)
    ctx.say(service, f"starting {settings.replicas} new container(s) next to {len(old)} old")
    switched = False
    new: list[str] = []
    try:
        _up(ctx, service, scale=len(old) + settings.replicas)
        new = [i for i in _service_ids(ctx, service, running_only=False) if i not in old]
        if not new:
            raise StagecraftError(
                f"{ctx.host.name}: {service}: compose started no new container",
                hint="check `docker compose ps` on the host",
            )
        _ready_or_fail(ctx, service, new, settings, remove_on_failure=False)
        if kind == "web":
            _switch(ctx, service, new)
            switched = True
            if settings.drain > 0:
                ctx.say(service, f"draining the old container(s) for {settings.drain:g}s")
                time.sleep(settings.drain)  # in-flight requests finish on the old containers
    except BaseException:
        if new and not switched:
            # Not serving yet (or not healthy): remove it; the old containers keep running.
            ctx.host.docker("rm", "-f", *new, check=False)
        raise
    ctx.say(service, f"stopping {len(old)} old container(s)")
    _stop_and_remove(ctx, old, settings.stop_grace)
    ctx.say(service, "done")


def _up(ctx: HostContext, service: str, *, scale: int | None = None) -> None:
    """``docker compose up -d --no-deps [--no-recreate --scale S=N] SERVICE`` in the release dir."""
    args = ["up", "-d", "--no-deps"]
    if scale is not None:
        args += ["--no-recreate", "--scale", f"{service}={scale}"]
    ctx.host.compose(
        *args,
        service,
        project_dir=ctx.release_dir,
        project_name=ctx.rendered.project_name,
        timeout=max(ctx.health_timeout, 120.0),
    )


def _switch(ctx: HostContext, service: str, ids: Sequence[str]) -> None:
    """Point the service's upstream name at ``ids``' addresses; returns once routed there."""
    name = ctx.upstreams.get(service)
    if name is None:
        return  # a web service without a route on this host: nothing to switch
    addresses = [info.address(edge.NETWORK) for info in _inspect(ctx.host, ids)]
    found = [a for a in addresses if a]
    ctx.say(service, f"switching {name} to {', '.join(found)}")
    result = edge.switch(ctx.host, name, found, proxy=ctx.proxy, timeout=60.0)
    ctx.say(service, f"switched in {result.seconds:.1f}s")


def _stop_and_remove(ctx: HostContext, ids: Sequence[str], grace: float) -> None:
    """``docker stop`` (the container's stop signal, then KILL after ``grace``) and ``rm``."""
    if not ids:
        return
    ctx.host.docker("stop", "-t", str(max(1, round(grace))), *ids, timeout=grace + 60)
    ctx.host.docker("rm", "-f", *ids)


@dataclass(frozen=True)
class _Info:
    """The parts of ``docker inspect`` the readiness check reads."""

    id: str
    status: str
    health: str
    restarts: int
    networks: Mapping[str, str]

    def address(self, network: str | None = None) -> str:
        if network is not None:
            return self.networks.get(network, "")
        return next((ip for ip in self.networks.values() if ip), "")


def _inspect(host: SSHHost, ids: Sequence[str]) -> list[_Info]:
    """Status, health, restart count and network addresses of ``ids``."""
    result = host.docker("inspect", *ids)
    return parse_inspect(result.stdout)


def parse_inspect(text: str) -> list[_Info]:
    """The readiness facts of each container in ``docker inspect`` JSON output."""
    found = []
    for item in json.loads(text or "[]"):
        state = item.get("State") or {}
        health = (state.get("Health") or {}).get("Status") or "none"
        networks = (item.get("NetworkSettings") or {}).get("Networks") or {}
        found.append(
            _Info(
                id=str(item.get("Id", "")),
                status=str(state.get("Status", "unknown")),
                health=str(health),
                restarts=int(item.get("RestartCount") or 0),
                networks={k: str((v or {}).get("IPAddress") or "") for k, v in networks.items()},
            )
        )
    return found


def _service_ids(ctx: HostContext, service: str, *, running_only: bool) -> list[str]:
    """Container ids of ``service`` in this host's compose project."""
    args = ["ps", "-q", "--no-trunc"]
    if not running_only:
        args.append("-a")
    args += [
        "--filter",
        f"label=com.docker.compose.project={ctx.rendered.project_name}",
        "--filter",
        f"label=com.docker.compose.service={service}",
    ]
    return sorted(ctx.host.docker(*args).stdout.split())


def _labelled(ctx: HostContext, service: str) -> list[str]:
    """Every container Stagecraft started for ``service`` of this project and env."""
    result = ctx.host.docker(
        "ps",
        "-aq",
        "--no-trunc",
        "--filter",
        f"label=stagecraft.project={ctx.project}",
        "--filter",
        f"label=stagecraft.env={ctx.env}",
        "--filter",
        f"label=stagecraft.service={service}",
    )
    return sorted(result.stdout.split())


def _ready_or_fail(
    ctx: HostContext,
    service: str,
    ids: Sequence[str],
    settings: ServiceSettings,
    *,
    remove_on_failure: bool,
) -> None:
    """Wait until ``ids`` are ready; else remove them (if asked) and raise HealthCheckFailed."""
    problem = wait_ready(ctx.host, ids, settings.http_check, ctx.health_timeout, ctx.grace)
    if problem is None:
        ctx.say(service, "ready")
        return
    logs = _last_logs(ctx.host, ids, ctx.secrets)
    if remove_on_failure:
        ctx.host.docker("rm", "-f", *ids, check=False)
    detail = f"; last log lines:\n{logs}" if logs else ""
    raise HealthCheckFailed(
        f"{ctx.host.name}: {service}: the new container is not healthy: {problem}{detail}",
        hint="the old containers keep serving; fix the service and deploy again "
        "(`docker logs` on the host shows more)",
    )


def wait_ready(
    host: SSHHost,
    ids: Sequence[str],
    check: HttpCheck | None,
    timeout: float,
    grace: float,
) -> str | None:
    """Poll until every container is ready; ``None`` when they are, else why not."""
    deadline = time.monotonic() + timeout
    running_since: dict[str, tuple[float, int]] = {}
    while True:
        infos = _inspect(host, ids)
        problem = _not_ready(host, infos, check, grace, running_since)
        if problem is None or problem.startswith("exited"):
            return problem
        if time.monotonic() >= deadline:
            return f"{problem} after {timeout:g}s"
        time.sleep(check.interval if check is not None else POLL)


def _not_ready(
    host: SSHHost,
    infos: Sequence[_Info],
    check: HttpCheck | None,
    grace: float,
    running_since: dict[str, tuple[float, int]],
) -> str | None:
    """Why the containers are not ready yet, or ``None``."""
    now = time.monotonic()
    for info in infos:
        if info.status in ("exited", "dead"):
            return f"exited ({info.status})"
        if info.health == "unhealthy":
            return "Docker healthcheck: unhealthy"
        if info.health != "none":
            if info.health != "healthy":
                return f"Docker healthcheck: {info.health}"
            continue
        if info.status != "running":
            running_since.pop(info.id, None)
            return f"container {info.status}"
        if check is not None:
            if not _http_ok(host, info.address(), check):
                return f"HTTP GET {check.path} on port {check.port} did not answer 2xx"
            continue
        since, restarts = running_since.get(info.id, (now, info.restarts))
        if restarts != info.restarts:
            since = now
        running_since[info.id] = (since, info.restarts)
        if now - since < grace:
            return f"running for less than {grace:g}s"
    return None


def _http_ok(host: SSHHost, address: str, check: HttpCheck) -> bool:
    """Whether ``GET http://address:port/path`` answers 2xx, probed from the host."""
    if not address:
        return False
    url = shlex.quote(f"http://{address}:{check.port}{check.path}")
    seconds = str(max(1, round(check.timeout)))
    script = (
        f"if command -v curl >/dev/null; then curl -fsS -o /dev/null -m {seconds} {url}; "
        f"else wget -q -T {seconds} -O /dev/null {url}; fi"
    )
    return host.run(["sh", "-c", script], check=False, timeout=check.timeout + 30).ok


def _last_logs(host: SSHHost, ids: Sequence[str], secrets: Sequence[str]) -> str:
    """The last log lines of the first container, declared secret values masked."""
    result = host.docker("logs", "--tail", str(LOG_LINES), ids[0], check=False)
    text = (result.stdout + result.stderr).strip()
    for value in secrets:
        if len(value) >= 4:
            text = text.replace(value, "********")
    return "\n".join("    " + line for line in text.splitlines()[-LOG_LINES:])
