"""The deploy pipeline (SPEC 6): resolve, lock, build, ship, migrate, roll out, record, prune.

:func:`deploy` runs every phase for one environment and returns a
:class:`DeployResult` (per host and service outcomes), or raises
:class:`DeployFailed` carrying that same result when any host failed: one
host's failure never hides the others. Phases:

1. resolve: the project's hooks (:mod:`stagecraft.deploy.hooks`), version
   (``--version`` or git), dirty check, release id, per-host compose files, secret
   values from the environment's secrets provider;
2. lock on the primary host (``lock_wait``), held until the ledger is written,
   released on success, failure and Ctrl-C;
3. build (skipped for ``rollback``; existing tags are not rebuilt), after the
   ``pre-build`` hook when an image is to be built;
4. plan against what runs (container labels); unreachable hosts fail, the others go
   on; then the ``pre-deploy`` (``pre-rollback``) hook, whose failure stops here;
5. ship the host's images (registry-less: only what it lacks);
6. roll out accessories on every host, then ``pre_deploy`` migrations (the
   database may be one of those accessories), then the other services — hosts
   in parallel (``deploy.parallel``), in boot groups (``deploy.boot``);
7. ``post_deploy`` migrations (only when every host succeeded);
8. a ledger record on every reachable host, secrets guard on; the lock is
   released; images beyond the last ``retain`` successful releases are pruned;
9. the ``post-deploy`` (``post-rollback``) hook on success, else ``on-failure`` for
   any failure or interruption after the lock was taken, except a failed pre hook.

Example::

    from stagecraft.deploy.pipeline import DeployOptions, deploy, rollback

    result = deploy(loaded, "production", DeployOptions(version=None, lock_wait=30))
    print(render_result(result))
    rollback(loaded, "production", to=None)     # the previous successful release
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Literal

from stagecraft import log
from stagecraft.config.loader import LoadedConfig
from stagecraft.config.models import EnvironmentConfig
from stagecraft.deploy import edge, hooks, secret_digest
from stagecraft.deploy.compose_env import EnvironmentCompose, environment_compose
from stagecraft.deploy.plan import DeployPlan, make_plan
from stagecraft.deploy.release import Release, check_dirty, new_release, resolve_version
from stagecraft.deploy.render import RenderedHost, env_file_values, render_hosts
from stagecraft.deploy.rollout import (
    HostContext,
    Progress,
    first_error,
    run_steps,
    write_release,
)
from stagecraft.deploy.rollout.record import prune, record
from stagecraft.deploy.rollout.result import (
    DeployFailed,
    DeployResult,
    HostJob,
    HostResult,
    PostHookFailed,
    host_result,
    render_result,
    run_jobs,
)
from stagecraft.deploy.rollout.steps import plan_steps, service_settings, split_stages
from stagecraft.deploy.ship.stage import ship_jobs
from stagecraft.deploy.state import ledger, lock
from stagecraft.deploy.state.containers import read_states
from stagecraft.deploy.state.layout import app_dir, environment_hosts
from stagecraft.errors import ExitCode, StagecraftError
from stagecraft.providers.proxy import Route
from stagecraft.providers.secrets import SecretValue
from stagecraft.runtime.ssh import SSHHost, SSHOptions

logger = logging.getLogger(__name__)

Command = Literal["deploy", "rollback"]


@dataclass(frozen=True)
class DeployOptions:
    """How to deploy: version, dirty tree, lock wait, hooks, and where progress lines go."""

    version: str | None = None
    allow_dirty: bool = False
    lock_wait: float = 0.0
    command: Command = "deploy"
    build: bool = True
    ssh_options: SSHOptions | None = None
    environ: Mapping[str, str] | None = field(default=None, repr=False)
    progress: Progress | None = None
    skip_hooks: bool = False
    hook_output: hooks.HookLine | None = None  # each hook output line (else logged)
    live: bool = False  # progress as it goes (a terminal): shipping reports bytes every second


@dataclass(frozen=True)
class Locked:
    """What a driver's work under the lock gets: the release, hosts, secrets and hooks."""

    release: Release
    model: EnvironmentCompose
    hosts: Sequence[SSHHost]
    secrets: Mapping[str, SecretValue]
    runner: hooks.HookRunner


def deploy(loaded: LoadedConfig, env: str, options: DeployOptions | None = None) -> DeployResult:
    """Deploy the current version (or ``options.version``) to ``env``; see the module docstring.

    Raises :class:`DeployFailed` (with the per-host result) when a host failed,
    :class:`~stagecraft.errors.LockHeld` when another deploy holds the lock,
    :class:`~stagecraft.deploy.hooks.HookFailed` when a pre hook failed (nothing
    changed) and :class:`PostHookFailed` (with the result) when the post hook did.
    An environment with ``driver: swarm`` is deployed as a stack
    (:mod:`stagecraft.deploy.swarm.driver`).
    """
    opts = options or DeployOptions()
    environment = loaded.environment(env)
    if environment.driver == "swarm":
        from stagecraft.deploy.swarm.driver import deploy_stack

        return deploy_stack(loaded, env, opts)

    def work(run: Locked) -> DeployResult:
        key = secret_digest.ensure_key(run.hosts[0], run.release.project, env)
        values = {name: value.reveal() for name, value in run.secrets.items()}
        rendered = render_hosts(
            loaded,
            env,
            run.release,
            compose=run.model,
            secret_digests=secret_digest.digests(key, values),
        )
        return _locked(
            loaded,
            env,
            environment=environment,
            release=run.release,
            rendered=rendered,
            secrets=run.secrets,
            hosts=run.hosts,
            opts=opts,
            runner=run.runner,
        )

    return run_locked(
        loaded,
        env,
        opts,
        check=lambda release, model: render_hosts(loaded, env, release, compose=model),
        work=work,
    )


def run_locked(
    loaded: LoadedConfig,
    env: str,
    opts: DeployOptions,
    *,
    check: Callable[[Release, EnvironmentCompose], object],
    work: Callable[[Locked], DeployResult],
) -> DeployResult:
    """Phases 1, 2, 8 and 9 of every driver around its ``work`` under the lock.

    Hooks are found (a hook file without +x fails first), the hosts' SSH
    handshakes start, then the version, dirty check, release and compose model
    are resolved and ``check`` renders them (bad config fails before any remote
    command), and the secrets are read. Under the lock on the primary host
    ``work`` runs; after it the images beyond ``deploy.retain`` are pruned, the
    ``on-failure`` hook runs for a failure or an interruption after the lock was
    taken (not for a failed pre hook: nothing changed), the ``post-`` hook on
    success.
    """
    started = time.monotonic()
    found = (  # a hook file without +x fails here, before anything else
        hooks.Hooks(loaded.root, opts.command)
        if opts.skip_hooks
        else hooks.discover(loaded.root, opts.command)
    )
    environment = loaded.environment(env)
    hosts = environment_hosts(environment, opts.ssh_options)
    for host in hosts:  # the handshakes overlap the local work below
        host.warm_up()
    try:
        version = resolve_version(loaded.root, opts.version)
        if opts.command == "deploy":
            check_dirty(version, env=env, allow_dirty=opts.allow_dirty)
        release = new_release(loaded.config, env, version)
        model = environment_compose(loaded, env)
        check(release, model)  # bad config: no command
        secrets = resolve_secrets(loaded, env, opts.environ)
    except BaseException:
        for host in hosts:
            host.cancel_warm_up()
        close_all(hosts)
        raise
    runner = hooks.HookRunner(
        found,
        hooks.HookContext(
            opts.command,
            release.project,
            env,
            version.value,
            release.id,
            tuple(h.name for h in hosts),
            lock.local_identity(),
        ),
        secrets=secrets.values(),
        environ=opts.environ,
        on_line=opts.hook_output,
        say=lambda message: say(opts, "local", None, message),
        started=started,
    )
    info = lock.LockInfo.create(
        release.project,
        env,
        host=hosts[0].name,
        command=opts.command,
        version=version.value,
        release=release.id,
    )
    locked = False
    try:
        with lock.held(hosts[0], info, wait=opts.lock_wait):
            locked = True
            say(opts, hosts[0].name, None, f"lock taken ({opts.command} {version.value})")
            result = work(Locked(release, model, hosts, secrets, runner))
        prune(
            hosts,
            release,
            retain=environment.deploy.retain,
            parallel=environment.deploy.parallel,
            progress=opts.progress,
        )
    except hooks.HookFailed:
        raise  # a pre hook: nothing on the hosts changed, so no on-failure (as Kamal)
    except KeyboardInterrupt:
        if locked:
            runner.on_failure("interrupted")
        raise
    except Exception:
        if locked:
            runner.on_failure("failed")
        raise
    finally:
        close_all(hosts)
    if not result.ok:
        runner.on_failure("failed")
        raise DeployFailed(result)
    try:
        runner.post()
    except hooks.HookFailed as exc:
        raise PostHookFailed(result, exc) from None
    return result


def rollback(
    loaded: LoadedConfig,
    env: str,
    *,
    to: str | None = None,
    options: DeployOptions | None = None,
) -> DeployResult:
    """Redeploy a previous release's images (default: the previous successful one).

    Nothing is built; the images come from the hosts (kept for the last
    ``retain`` releases) or, when still there, the local daemon.
    """
    opts = options or DeployOptions()
    target = rollback_target(loaded, env, to, opts.ssh_options)
    say(opts, "-", None, f"rolling back to {target.id} (version {target.version})")
    return deploy(
        loaded, env, replace(opts, version=target.version, command="rollback", build=False)
    )


def rollback_target(
    loaded: LoadedConfig, env: str, to: str | None, ssh_options: SSHOptions | None
) -> ledger.Release:
    """The release to roll back to: ``to`` (an id or unique prefix) or the previous success."""
    environment = loaded.environment(env)
    hosts = environment_hosts(environment, ssh_options)
    try:
        found = ledger.history(hosts, loaded.config.project.name, env)
    finally:
        close_all(hosts)
    target = found.find(to) if to is not None else ledger.previous_successful(found.releases)
    if target is None:
        what = f"no release {to}" if to else "no previous successful release"
        raise StagecraftError(
            f"{env}: {what} in the ledger to roll back to",
            hint=f"list releases with `stagecraft releases --env {env}`",
        )
    return target


def resolve_secrets(
    loaded: LoadedConfig,
    env: str,
    environ: Mapping[str, str] | None,
    names: Sequence[str] | None = None,
) -> dict[str, SecretValue]:
    """The values of ``names`` (default: ``env``'s declared secrets) from its secrets provider."""
    from stagecraft.providers import registry
    from stagecraft.providers.secrets import SecretsContext

    if names is None:
        names = loaded.environment(env).secrets
    if not names:
        return {}
    provider_id, raw = loaded.config.secrets_provider_for(env)
    provider = registry("secrets").create(provider_id, raw)
    context = SecretsContext(loaded.root, dict(os.environ if environ is None else environ))
    values: dict[str, SecretValue] = provider.resolve(names, context)
    return values


def _locked(
    loaded: LoadedConfig,
    env: str,
    *,
    environment: EnvironmentConfig,
    release: Release,
    rendered: Mapping[str, RenderedHost],
    secrets: Mapping[str, SecretValue],
    hosts: Sequence[SSHHost],
    opts: DeployOptions,
    runner: hooks.HookRunner,
) -> DeployResult:
    """Phases 3 to 8 (minus prune) while the lock is held."""
    started = _now()
    jobs = [HostJob(host, rendered[host.name]) for host in hosts]
    if opts.build:
        build_release_images(loaded, release, opts, runner)
    plan = _plan(release, rendered, jobs, environment)
    runner.pre(f"pre-{opts.command}")
    # The same proxy `hosts bootstrap` sets up: a difference in its settings would make
    # ensure() replace the running proxy (a gap in service) on every deploy.
    proxy = edge.edge_for(loaded, env)
    try:
        ship_jobs(
            loaded,
            environment,
            release,
            jobs,
            secrets=secrets,
            environ=opts.environ,
            say=lambda host, message: say(opts, host, None, message),
            live=opts.live,
            edge_images=proxy.images if environment.routes else (),
        )
        _prepare(
            loaded,
            env,
            environment=environment,
            release=release,
            plan=plan,
            secrets=secrets,
            jobs=jobs,
            opts=opts,
            edge_proxy=proxy,
        )
        _stage(jobs, environment, opts, first=True)
        _stop_if_any_failed(jobs, "accessories")
        if any(j.alive for j in jobs):
            _migrate(
                loaded, env, "pre_deploy", jobs, opts, timeout=environment.deploy.health_timeout
            )
        _stage(jobs, environment, opts, first=False)
        if all(j.alive for j in jobs):
            _migrate(
                loaded, env, "post_deploy", jobs, opts, timeout=environment.deploy.health_timeout
            )
    except KeyboardInterrupt:
        for job in jobs:
            job.interrupted = True
        record(release, jobs, secrets, started, command=opts.command)
        raise
    record(release, jobs, secrets, started, command=opts.command)
    return DeployResult(
        project=release.project,
        env=env,
        release=release.id,
        version=release.version.value,
        command=opts.command,
        hosts=tuple(host_result(job) for job in jobs),
    )


def build_release_images(
    loaded: LoadedConfig, release: Release, opts: DeployOptions, runner: hooks.HookRunner
) -> None:
    """The ``pre-build`` hook when an image is to be built, then the build."""
    from stagecraft.deploy.build import execute_build, image_exists, plan_build

    plan = plan_build(loaded, release)
    # execute_build's rule: a dirty version is always rebuilt, an existing tag never is.
    if runner.has("pre-build") and any(
        release.version.dirty or not image_exists(item.image, opts.environ) for item in plan.images
    ):
        runner.pre("pre-build")
    for result in execute_build(plan, environ=opts.environ):
        say(opts, "local", result.service, f"image {result.image} {result.status}")


def _plan(
    release: Release,
    rendered: Mapping[str, RenderedHost],
    jobs: Sequence[HostJob],
    environment: EnvironmentConfig,
) -> DeployPlan:
    """Read every host's state and plan; unreachable hosts fail their job."""
    states = read_states(
        [j.host for j in jobs],
        project=release.project,
        env=release.env or "",
        parallel=environment.deploy.parallel,
    )
    plan = make_plan(release, rendered, states)
    for job, host_plan in zip(jobs, plan.hosts, strict=True):
        job.plan = host_plan
        outcome = states[job.name]
        if outcome.error is not None:
            job.fail(outcome.error)
    return plan


def _prepare(
    loaded: LoadedConfig,
    env: str,
    *,
    environment: EnvironmentConfig,
    release: Release,
    plan: DeployPlan,
    secrets: Mapping[str, SecretValue],
    jobs: Sequence[HostJob],
    opts: DeployOptions,
    edge_proxy: edge.Edge,
) -> None:
    """Per host: steps, release files (0600 secrets), proxy and routes when it serves web."""
    compose = loaded.compose
    assert compose is not None  # render_hosts checked it
    routes = environment.routes
    revealed = tuple(v.reveal() for v in secrets.values())

    def one(job: HostJob) -> None:
        assert job.plan is not None
        settings = {}
        for name, svc in job.rendered.services.items():
            port = next((r.port for r in routes.values() if r.service == name), None)
            settings[name] = service_settings(
                compose.services[name], svc.kind, route_port=port, drain=environment.deploy.drain
            )
        job.steps = plan_steps(job.rendered, job.plan, settings)
        release_dir = f"{app_dir(release.project, env)}/releases/{release.id}"
        values = {name: value.reveal() for name, value in secrets.items()}
        per_service = {
            name: env_file_values(svc, values) for name, svc in job.rendered.services.items()
        }
        write_release(
            job.host, job.rendered, release_dir, per_service, secret_values=values.values()
        )
        web = [r for r in routes.values() if job.rendered.services.get(r.service, None)]
        upstreams = {r.service: edge.upstream_name(release.project, env, r.service) for r in web}
        proxy = None
        if web:
            proxy = edge_proxy.on(job.host)
            proxy.ensure()
            host_routes = [
                Route(r.host, upstreams[r.service], r.port, r.path)
                for r in web
                if job.rendered.services[r.service].kind == "web"
            ]
            proxy.apply_routes(release.project, env, host_routes)
        job.ctx = HostContext(
            job.host,
            job.rendered,
            release_dir,
            project=release.project,
            env=env,
            health_timeout=environment.deploy.health_timeout,
            upstreams=upstreams,
            proxy=proxy,
            secrets=revealed,
            progress=opts.progress,
        )

    run_jobs([j for j in jobs if j.alive], one, environment.deploy.parallel)


def _stage(
    jobs: Sequence[HostJob], environment: EnvironmentConfig, opts: DeployOptions, *, first: bool
) -> None:
    """Run one stage (accessories, or the rest) on every live host, in boot groups."""
    live = [j for j in jobs if j.alive and j.ctx is not None]
    size = environment.deploy.boot.group_size(len(live))
    groups = [live[i : i + size] for i in range(0, len(live), size)]
    for index, group in enumerate(groups):
        if index and environment.deploy.boot.wait:
            time.sleep(environment.deploy.boot.wait)  # boot groups: a deliberate pause

        def one(job: HostJob) -> None:
            assert job.ctx is not None
            accessories, rest = split_stages(job.steps)
            outcomes = run_steps(job.ctx, accessories if first else rest)
            job.outcomes.extend(outcomes)
            failed = first_error(outcomes)
            if failed is not None:
                job.error = f"{failed.service}: {failed.error}"
                job.exit_code = failed.exit_code

        run_jobs(group, one, environment.deploy.parallel)
        if any(not j.alive for j in group):
            for later in groups[index + 1 :]:
                for job in later:
                    job.error = "not rolled out: an earlier boot group failed"
                    job.exit_code = ExitCode.FAILED
            return


def _stop_if_any_failed(jobs: Sequence[HostJob], what: str) -> None:
    """After a failed stage on some host, the others stop too (migrations need every host)."""
    failed = [j.name for j in jobs if not j.alive and j.ctx is not None]
    if not failed:
        return
    for job in jobs:
        if job.alive:
            job.error = f"not rolled out further: {what} failed on {', '.join(failed)}"
            job.exit_code = ExitCode.FAILED


def _migrate(
    loaded: LoadedConfig,
    env: str,
    phase: Literal["pre_deploy", "post_deploy"],
    jobs: Sequence[HostJob],
    opts: DeployOptions,
    *,
    timeout: float,
) -> None:
    """Run a migration phase; a failure fails every live host (nothing else is rolled out).

    A database that does not accept connections yet (an accessory just started) is
    retried for up to ``timeout`` seconds.
    """
    from stagecraft.migrate.hooks import databases_for_phase, run_phase
    from stagecraft.providers.migration import DatabaseUnreachableError

    if not databases_for_phase(loaded, phase):
        return
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                applied = run_phase(
                    loaded, env, phase, environ=opts.environ, ssh_options=opts.ssh_options
                )
                break
            except DatabaseUnreachableError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(1.0)  # poll: the database is still starting
    except StagecraftError as exc:
        for job in jobs:
            if job.alive:
                job.fail(exc)
                job.error = f"{phase} migrations failed: {exc.message}"
        return
    say(opts, "-", None, f"{phase} migrations: {len(applied)} applied")


def close_all(hosts: Sequence[SSHHost]) -> None:
    """End this process's SSH control connections (each socket is per process: see runtime.ssh)."""
    for host in hosts:
        host.close()


def say(opts: DeployOptions, host: str, service: str | None, message: str) -> None:
    """One progress line: to ``opts.progress`` (else logged at INFO)."""
    level = logging.DEBUG if opts.progress is not None else logging.INFO
    log.event(logger, level, message, host=host, service=service, phase="deploy")
    if opts.progress is not None:
        opts.progress(host, service, message)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


__all__ = [
    "DeployFailed",
    "DeployOptions",
    "DeployResult",
    "HostResult",
    "Locked",
    "PostHookFailed",
    "build_release_images",
    "close_all",
    "deploy",
    "render_result",
    "resolve_secrets",
    "rollback",
    "rollback_target",
    "run_locked",
    "say",
]
