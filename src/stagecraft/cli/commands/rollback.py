"""`stagecraft rollback`: redeploy a previous release's images through the same rollout."""

from __future__ import annotations

import click

from stagecraft.cli.context import AppContext, global_options, pass_app

HELP = """Redeploy a previous release of --env without building: by default the previous
successful release in the hosts' ledgers, or --to RELEASE (an id or a unique prefix, see
`stagecraft releases`). The same zero-downtime rollout as deploy, recorded as a rollback.

The hooks pre-rollback, post-rollback and on-failure in .stagecraft/hooks/ run locally
(docs/deploy.md, "Hooks"); --skip-hooks runs none. --dry-run names the target release
and prints the plan of its version (and the hooks that would run), changing nothing.
"""


@click.command(help=HELP)
@click.option("--to", "to", metavar="RELEASE", help="The release id (or unique prefix).")
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
def rollback(app: AppContext, to: str | None, lock_wait: float, skip_hooks: bool) -> None:
    from stagecraft.cli.commands.deploy import (
        hook_printer,
        live_view,
        load_and_connect,
        progress_printer,
        run_and_report,
        show_hooks,
        show_plan,
    )
    from stagecraft.deploy.pipeline import DeployOptions, rollback_target
    from stagecraft.deploy.pipeline import rollback as run_rollback

    env = app.require_env()
    loaded = load_and_connect(app, env)
    if app.dry_run:
        target = rollback_target(loaded, env, to, None)
        progress_printer(app)("-", None, f"would roll back to {target.id} ({target.version})")
        show_hooks(app, loaded, "rollback", skip=skip_hooks)
        show_plan(app, env, target.version)
        return
    view = live_view(app, loaded, env)
    options = DeployOptions(
        lock_wait=lock_wait,
        progress=view.progress if view is not None else progress_printer(app),
        skip_hooks=skip_hooks,
        hook_output=hook_printer(app, view),
        live=view is not None,
    )
    run_and_report(app, lambda: run_rollback(loaded, env, to=to, options=options), view)
