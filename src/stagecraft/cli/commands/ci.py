"""`stagecraft ci init`: write the CI workflow (GitHub Actions by default)."""

from __future__ import annotations

import click

from stagecraft.cli.context import AppContext, global_options, pass_app
from stagecraft.cli.groups import Group


@click.group(
    cls=Group, help="Continuous integration: generate the workflow that tests and deploys."
)
@global_options
def ci() -> None:
    pass


@ci.command(help="Write the CI workflow for every environment (never overwrites without --force).")
@click.option("--force", is_flag=True, help="Replace an existing, different workflow file.")
@global_options
@pass_app
def init(app: AppContext, force: bool) -> None:
    from stagecraft.workflows import render_workflow, write_workflow

    loaded = app.load_config(compose=False)
    workflow = render_workflow(loaded)
    if app.dry_run:
        app.output.stdout.write(workflow.text)
        return
    changed = write_workflow(workflow, force=force)
    if app.json:
        app.output.json(
            {"provider": workflow.provider, "path": str(workflow.path), "written": changed}
        )
    elif changed:
        app.output.result(f"wrote {workflow.path} ({workflow.provider})")
    else:
        app.output.result(f"{workflow.path} is up to date")
