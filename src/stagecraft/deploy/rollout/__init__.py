"""Roll a release out on one host: release files, then each service's step (SPEC 6 phase 6).

Every step runs ``docker compose up -d --no-deps`` for its service only (ADR 0005
section 6), from the release directory holding the rendered compose file and the
0600 secrets files (written first, :func:`write_release`). Starting and waiting
until ready is one remote script per step (:mod:`stagecraft.deploy.rollout.script`),
the switch one more, stopping the old containers one more (ADR 0015):

- ``start`` (create): start the service, wait until ready; a web service is then
  made the target of its upstream name (the proxy's
  :meth:`~stagecraft.providers.proxy.HostProxy.switch`);
- ``side-by-side`` (replace a web or worker service): scale the service up with
  ``--no-recreate`` so compose starts new containers of the new definition next
  to the old ones, wait until they are ready, switch the proxy to them (web; it
  returns once the proxy routes there), drain until the proxy has no request in
  flight to the old ones (at most ``drain``), then stop the old ones with their
  stop signal and grace period and remove them;
- ``recreate`` (replace an accessory): recreated in place, with a warning;
- ``remove``: the service's containers are stopped and removed.

Ready means: Docker reports the container ``healthy`` (an event, the moment it
happens) when it has a healthcheck, else the x-stagecraft HTTP probe answers
2xx, else the container kept running for ``x-stagecraft.ready_after`` (default
3 s). A new container that is not ready
within ``health_timeout`` is removed (the old ones keep serving) and the step
raises :class:`~stagecraft.errors.HealthCheckFailed` with its last log lines
(declared secret values masked).

Example::

    ctx = HostContext(host, rendered, release_dir, project="fleet", env="production",
                      health_timeout=60, upstreams={"web": "web.production.fleet.internal"},
                      proxy=edge_for(loaded, "production").on(host))
    write_release(host, rendered, release_dir, {"web": {"DATABASE_URL": "..."}})
    outcomes = run_steps(ctx, plan_steps(rendered, host_plan, settings))
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from stagecraft import log
from stagecraft.deploy.render import (
    RenderedHost,
    check_no_secret_values,
    env_file_name,
    env_file_text,
)
from stagecraft.deploy.rollout.script import StartResult, StartSpec, start_script, stop_script
from stagecraft.deploy.rollout.steps import DEFAULT_GRACE, ServiceSettings, Step, waves
from stagecraft.errors import ExitCode, HealthCheckFailed, StagecraftError
from stagecraft.providers.proxy import EDGE_NETWORK, HostProxy
from stagecraft.runtime.fanout import fan_out
from stagecraft.runtime.ssh import SSHHost

logger = logging.getLogger(__name__)

Progress = Callable[[str, str | None, str], None]
"""``progress(host, service, message)``: one progress line for the user."""
LOG_LINES = 15


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
    proxy: HostProxy | None = None
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
    """Run ``steps``; services that do not depend on each other roll out at the same time.

    Steps go in :func:`~stagecraft.deploy.rollout.steps.waves`: a step starts
    once the steps it depends on finished. After a failure, steps not started
    yet are ``skipped``; the ones running finish. Outcomes are in ``steps`` order.
    """
    outcomes: dict[int, ServiceOutcome] = {}
    index = {id(step): i for i, step in enumerate(steps)}
    failed = False
    for wave in waves(steps):
        if failed:
            for step in wave:
                outcomes[index[id(step)]] = ServiceOutcome(step.service, step.action, "skipped")
            continue
        if len(wave) == 1:
            results = [_outcome(ctx, wave[0])]
        else:
            group = fan_out(wave, lambda step: _outcome(ctx, step), name=lambda s: s.service)
            for each in group.outcomes:
                if each.error is not None:
                    raise each.error
            results = [each.value for each in group.outcomes if each.value is not None]
        for step, outcome in zip(wave, results, strict=True):
            outcomes[index[id(step)]] = outcome
            failed = failed or outcome.outcome == "failed"
    return [outcomes[i] for i in range(len(steps))]


def _outcome(ctx: HostContext, step: Step) -> ServiceOutcome:
    """Run one step; a StagecraftError becomes its ``failed`` outcome."""
    try:
        run_step(ctx, step)
    except StagecraftError as exc:
        ctx.say(step.service, f"failed: {exc.message}", logging.ERROR)
        return ServiceOutcome(step.service, step.action, "failed", exc.message, exc.exit_code)
    return ServiceOutcome(step.service, step.action, "success")


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
        # A new service that never got ready is removed; an accessory keeps its container.
        started = _start(ctx, step.service, settings, side_by_side=False)
        _ready_or_fail(ctx, step.service, started, remove_on_failure=step.strategy == "start")
        if step.kind == "web":
            _switch(ctx, step.service, started)
        ctx.say(step.service, "done")
        return
    _side_by_side(ctx, step.service, step.kind, settings)


def _side_by_side(ctx: HostContext, service: str, kind: str, settings: ServiceSettings) -> None:
    """Start new containers next to the old ones, wait, switch, drain, stop the old ones."""
    ctx.say(service, f"starting {settings.replicas} new container(s) next to the running ones")
    switched = False
    started = StartResult()
    try:
        started = _start(ctx, service, settings, side_by_side=True, into=started)
        _ready_or_fail(ctx, service, started, remove_on_failure=False)
        if kind == "web":
            _switch(ctx, service, started)
            switched = True
            old = [started.addresses[i] for i in started.old if i in started.addresses]
            if settings.drain > 0 and old and ctx.proxy and ctx.upstreams.get(service):
                waited = ctx.proxy.drain(old, timeout=settings.drain)
                ctx.say(service, f"drained in {waited:.2f}s (no request left on the old ones)")
    except BaseException:
        if started.new and not switched:
            # Not serving yet (or not healthy): remove it; the old containers keep running.
            ctx.host.docker("rm", "-f", *started.new, check=False)
        raise
    ctx.say(service, f"stopping {len(started.old)} old container(s)")
    _stop_and_remove(ctx, started.old, settings.stop_grace)
    ctx.say(service, "done")


def _start(
    ctx: HostContext,
    service: str,
    settings: ServiceSettings,
    *,
    side_by_side: bool,
    into: StartResult | None = None,
) -> StartResult:
    """Run the step's start script (``compose up``, wait until ready, addresses): one SSH call.

    ``into`` is filled as the lines arrive, so the caller knows the new
    containers even when the script is interrupted.
    """
    result = into if into is not None else StartResult()
    spec = StartSpec(
        project_name=ctx.rendered.project_name,
        release_dir=ctx.release_dir,
        service=service,
        add=settings.replicas if side_by_side else None,
        side_by_side=side_by_side,
        timeout=ctx.health_timeout,
        http_check=settings.http_check,
        ready_after=settings.ready_after,
        network=EDGE_NETWORK,
    )

    def on_line(stream: str, line: str) -> None:
        if stream == "stdout":
            result.feed(line)

    ctx.host.run(
        ["sh", "-c", start_script(spec)],
        check=False,
        on_line=on_line,
        timeout=ctx.health_timeout + 120,
    )
    if result.error is not None:
        raise StagecraftError(
            f"{ctx.host.name}: {service}: {result.error}",
            hint="the old containers keep serving; `docker compose ps` on the host shows more",
        )
    if result.problem is None and not result.ready:
        result.problem = "the start script ended without a result"
    return result


def _switch(ctx: HostContext, service: str, started: StartResult) -> None:
    """Point the service's upstream name at the new containers; returns once routed there."""
    name = ctx.upstreams.get(service)
    if name is None or ctx.proxy is None:
        return  # a web service without a route on this host: nothing to switch
    found = [started.addresses[i] for i in started.new if started.addresses.get(i)]
    ctx.say(service, f"switching {name} to {', '.join(found)}")
    result = ctx.proxy.switch(name, found, timeout=60.0)
    ctx.say(service, f"switched in {result.seconds:.3f}s")


def _stop_and_remove(ctx: HostContext, ids: Sequence[str], grace: float) -> None:
    """``docker stop`` (the container's stop signal, then KILL after ``grace``) and ``rm``."""
    if not ids:
        return
    ctx.host.run(["sh", "-c", stop_script(list(ids), grace)], timeout=grace + 60)


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
    started: StartResult,
    *,
    remove_on_failure: bool,
) -> None:
    """Raise HealthCheckFailed (removing the new containers if asked) unless they are ready."""
    if started.problem is None:
        ctx.say(service, "ready")
        return
    ids = started.new
    logs = _last_logs(ctx.host, ids, ctx.secrets) if ids else ""
    if remove_on_failure and ids:
        ctx.host.docker("rm", "-f", *ids, check=False)
    detail = f"; last log lines:\n{logs}" if logs else ""
    raise HealthCheckFailed(
        f"{ctx.host.name}: {service}: the new container is not healthy: {started.problem}{detail}",
        hint="the old containers keep serving; fix the service and deploy again "
        "(`docker logs` on the host shows more)",
    )


def _last_logs(host: SSHHost, ids: Sequence[str], secrets: Sequence[str]) -> str:
    """The last log lines of the first container, declared secret values masked."""
    result = host.docker("logs", "--tail", str(LOG_LINES), ids[0], check=False)
    text = (result.stdout + result.stderr).strip()
    for value in secrets:
        if len(value) >= 4:
            text = text.replace(value, "********")
    return "\n".join("    " + line for line in text.splitlines()[-LOG_LINES:])
