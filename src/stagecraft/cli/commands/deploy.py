"""`stagecraft deploy`: build, ship and roll out the current version to an environment."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from stagecraft.cli.context import AppContext, global_options, pass_app

if TYPE_CHECKING:
    from collections.abc import Callable

    from stagecraft.cli.live import DeployView
    from stagecraft.config.loader import LoadedConfig
    from stagecraft.deploy.hooks import Command, HookLine
    from stagecraft.deploy.pipeline import DeployResult
    from stagecraft.deploy.rollout import Progress

HELP = """Deploy the current version (or --version) to --env with zero downtime.

Phases: resolve, lock (on the primary host), build, ship, pre_deploy migrations, roll out
(hosts in parallel; web services start next to the old ones and take over once healthy),
post_deploy migrations, record in every host's ledger, unlock, prune old images.
Progress lines go to stderr; the result per host and service is printed at the end
(--json: as data on stdout). --dry-run prints the plan (and the hooks that would run)
and changes nothing.

Hooks: the executables pre-build, pre-deploy, post-deploy and on-failure in
.stagecraft/hooks/ run locally at those moments (docs/deploy.md, "Hooks"); a failing
pre hook stops the deploy before any host changes. --skip-hooks runs none.

Exit codes: 1 a hook failed (or another error), 3 a new container failed its health
check (the old one keeps serving), 4 another deploy holds the lock, 5 a host is
unreachable.
"""


@click.command(help=HELP)
@click.option(
    "--version", "version", metavar="VERSION", help="Deploy this version (no build if it exists)."
)
@click.option("--allow-dirty", is_flag=True, help="Deploy a version with uncommitted changes.")
@click.option(
    "--lock-wait",
    type=click.FloatRange(min=0),
    default=0.0,
    metavar="SECONDS",
    help="Wait this long for a held deploy lock instead of failing at once.",
)
@click.option("--skip-hooks", is_flag=True, help="Run none of the .stagecraft/hooks/ hooks.")
@global_options
@pass_app
def deploy(
    app: AppContext, version: str | None, allow_dirty: bool, lock_wait: float, skip_hooks: bool
) -> None:
    from stagecraft.deploy.pipeline import DeployOptions
    from stagecraft.deploy.pipeline import deploy as run_deploy

    env = app.require_env()
    loaded = load_and_connect(app, env)
    if app.dry_run:
        show_hooks(app, loaded, "deploy", skip=skip_hooks)
        show_plan(app, env, version)
        return
    view = live_view(app, loaded, env)
    options = DeployOptions(
        version=version,
        allow_dirty=allow_dirty,
        lock_wait=lock_wait,
        progress=view.progress if view is not None else progress_printer(app),
        skip_hooks=skip_hooks,
        hook_output=hook_printer(app, view),
        live=view is not None,
    )
    run_and_report(app, lambda: run_deploy(loaded, env, options), view)


def load_and_connect(app: AppContext, env: str) -> LoadedConfig:
    """The config; unless ``--dry-run``, the hosts' SSH connections open while compose loads."""
    from stagecraft.deploy.state.layout import warm_up_hosts
    from stagecraft.runtime.ssh import stop_warm_ups

    if app.dry_run:
        return app.load_config()
    try:
        return app.load_config(on_config=lambda loaded: warm_up_hosts(loaded.environment(env)))
    except BaseException:
        stop_warm_ups()
        raise


def show_plan(app: AppContext, env: str, version: str | None, *, migrations: bool = True) -> None:
    """What `stagecraft plan` prints (and its exit code for unreachable hosts)."""
    from stagecraft.cli.failing import unreachable
    from stagecraft.deploy.compose_env import load_for_environment
    from stagecraft.deploy.model_planning import compute_plan
    from stagecraft.deploy.plan import render_text

    loaded, model = load_for_environment(app.config_path, env)
    if loaded.environment(env).driver == "swarm":
        from stagecraft.deploy.swarm.plan import plan_stack, render_stack_plan

        stack = plan_stack(loaded, env, explicit_version=version, model=model)
        if app.json:
            app.output.json(stack.to_json())
        else:
            app.output.result(render_stack_plan(stack).rstrip("\n"))
        if stack.error is not None:
            unreachable(app, [stack.leader or "swarm"], "the swarm could not be read")
        return
    result = compute_plan(loaded, env, explicit_version=version, migrations=migrations, model=model)
    if app.json:
        app.output.json(result.to_json())
    else:
        app.output.result(render_text(result).rstrip("\n"))
    if result.unreachable:
        unreachable(app, [h.host for h in result.unreachable], "planned the other hosts only")


def show_hooks(app: AppContext, loaded: LoadedConfig, command: Command, *, skip: bool) -> None:
    """For --dry-run: which hooks would run, on stderr (nothing when the project has none)."""
    from stagecraft.deploy import hooks

    if skip:
        if (loaded.root / hooks.HOOKS_DIR).is_dir():
            _stderr(app, "hooks: none would run (--skip-hooks)")
        return
    found = hooks.discover(loaded.root, command)  # a hook without +x fails here too
    if found.planned():
        _stderr(app, found.describe())


def progress_printer(app: AppContext) -> Progress:
    """Per-host progress lines on stderr, redacted (nothing with --quiet)."""

    def show(host: str, service: str | None, message: str) -> None:
        where = f"{host} {service}" if service else host
        _stderr(app, f"[{where}] {message}")

    return show


def hook_printer(app: AppContext, view: DeployView | None = None) -> HookLine:
    """Each output line of a hook on stderr as ``[hook NAME] line``, redacted (not --quiet)."""

    def show(hook: str, line: str) -> None:
        if view is not None:
            view.line(f"[hook {hook}] {line}")
        else:
            _stderr(app, f"[hook {hook}] {line}")

    return show


def live_view(app: AppContext, loaded: LoadedConfig, env: str) -> DeployView | None:
    """The live view of the hosts when stderr is a terminal (not --quiet, --json logs)."""
    stream = app.output.stderr
    if app.quiet or app.log_format == "json" or not stream.isatty():
        return None
    from rich.console import Console

    from stagecraft.cli.live import DeployView

    console = Console(file=stream, no_color=app.no_color, highlight=False)
    return DeployView(console, list(loaded.environment(env).hosts))


def _stderr(app: AppContext, text: str) -> None:
    from stagecraft.redact import redact

    if app.quiet:
        return
    stream = app.output.stderr
    stream.write(redact(text) + "\n")
    stream.flush()


def run_and_report(
    app: AppContext, run: Callable[[], DeployResult], view: DeployView | None = None
) -> None:
    """Run the deploy/rollback, print the aggregate, re-raise a failure for the exit code.

    With ``view``, the live table runs meanwhile and ends showing each host's outcome.
    """
    import contextlib

    from stagecraft.deploy.pipeline import DeployFailed, PostHookFailed

    failure: DeployFailed | PostHookFailed | None = None
    with view if view is not None else contextlib.nullcontext():
        try:
            result = run()
        except (DeployFailed, PostHookFailed) as exc:
            result, failure = exc.result, exc  # a failed post hook: the deploy itself succeeded
        if view is not None:
            view.finish({host.host: host.outcome for host in result.hosts})
    _report(app, result)
    if failure is not None:
        raise failure


def _report(app: AppContext, result: DeployResult) -> None:
    from stagecraft.deploy.pipeline import render_result

    if app.json:
        app.output.json(result.to_json())
    else:
        app.output.result(render_result(result))
