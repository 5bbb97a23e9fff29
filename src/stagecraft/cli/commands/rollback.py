"""`stagecraft rollback`: redeploy a previous release's images through the same rollout."""

from __future__ import annotations

import click

from stagecraft.cli.context import AppContext, global_options, pass_app

HELP = """Redeploy a previous release of --env without building: by default the previous
successful release in the hosts' ledgers, or --to RELEASE (an id or a unique prefix, see
`stagecraft releases`). The same zero-downtime rollout as deploy, recorded as a rollback.
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
@global_options
@pass_app
def rollback(app: AppContext, to: str | None, lock_wait: float) -> None:
    from stagecraft.cli.commands.deploy import progress_printer, run_and_report
    from stagecraft.deploy.pipeline import DeployOptions
    from stagecraft.deploy.pipeline import rollback as run_rollback

    env = app.require_env()
    loaded = app.load_config()
    options = DeployOptions(lock_wait=lock_wait, progress=progress_printer(app))
    run_and_report(app, lambda: run_rollback(loaded, env, to=to, options=options))
