"""`stagecraft plan`: what a deploy would do on each host; changes nothing."""

from __future__ import annotations

import click

from stagecraft.cli.context import AppContext, global_options, pass_app

HELP = """Show what deploying the current version to --env would do, per host and service.

Compares the per-host compose files of the release with the containers running on each
host (from their labels): create, replace (image and/or config changed), keep, remove;
plus pending migrations. Changes nothing. Exits 5 when a host cannot be reached (the
other hosts are still planned).
"""


@click.command(help=HELP)
@click.option(
    "--version",
    "version",
    metavar="VERSION",
    help="Plan this version instead of the git tree's.",
)
@click.option(
    "--no-migrations",
    is_flag=True,
    help="Do not connect to databases for pending migrations.",
)
@global_options
@pass_app
def plan(app: AppContext, version: str | None, no_migrations: bool) -> None:
    from stagecraft.cli.commands.deploy import show_plan

    show_plan(app, app.require_env(), version, migrations=not no_migrations)
