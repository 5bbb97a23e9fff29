"""`stagecraft infra up|down --env E`: create or destroy an environment's servers."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from stagecraft.cli.context import AppContext, global_options, pass_app
from stagecraft.cli.groups import Group

if TYPE_CHECKING:
    from stagecraft.deploy.bootstrap import HostReady
    from stagecraft.runtime.fanout import GroupResult

UP_HELP = """Create the servers --env declares through its cloud provider, then bootstrap them.

Servers are found by their tags: existing ones are kept (never recreated), missing
ones created. Waits until each answers over SSH, records its host key in
.stagecraft/infra/<env>.known_hosts and its address in .stagecraft/infra/<env>.yml,
then runs `hosts bootstrap`. --plan only shows what it would create and keep.
"""

DOWN_HELP = """Destroy every server of --env that the cloud lists under the environment's tag.

Names each server and asks first (--yes for scripts); --plan only lists them.
Servers without the environment's tag are never touched. Forgets their host keys
and the environment's .stagecraft/infra/<env>.yml.
"""


@click.group(cls=Group, help="Create or destroy the servers of an environment.")
@global_options
def infra() -> None:
    pass


@infra.command(help=UP_HELP)
@click.option("--plan", "plan_only", is_flag=True, help="Only show what would be created.")
@click.option(
    "--timeout",
    type=float,
    default=600.0,
    metavar="SECONDS",
    help="How long to wait for new servers to answer over SSH.",
)
@click.option("--no-bootstrap", is_flag=True, help="Do not run `hosts bootstrap` afterwards.")
@global_options
@pass_app
def up(app: AppContext, plan_only: bool, timeout: float, no_bootstrap: bool) -> None:
    from stagecraft.config.infra_state import state_path
    from stagecraft.infra.plan import render_up
    from stagecraft.infra.provision import apply_up, open_cloud, plan_environment

    env = app.require_env()
    loaded = app.load_config(compose=False, provisioned=False)
    provider, session = open_cloud(loaded, env)
    try:
        plan = plan_environment(loaded, env, provider, session)
        if plan_only or app.dry_run:
            _show(app, plan.to_json(), render_up(plan))
            return
        if not app.json:
            app.output.result(render_up(plan))
        result = apply_up(loaded, env, plan, session, timeout=timeout, say=_say)
    finally:
        session.close()
    shown = {**plan.to_json(), "hosts": [o.value.to_json() for o in result.outcomes if o.value]}
    booted = None
    if result.ok:
        if not app.json:
            app.output.result(f"addresses recorded in {state_path(loaded.root, env)}")
        if not no_bootstrap:
            booted = _bootstrap(app, env)
            shown["bootstrap"] = {o.name: o.ok for o in booted.outcomes}
    if app.json:
        app.output.json(shown)
    result.raise_for_failures()
    if booted is not None:
        booted.raise_for_failures()


def _bootstrap(app: AppContext, env: str) -> GroupResult[HostReady]:
    """``hosts bootstrap`` on the freshly recorded addresses (the config is read again)."""
    from stagecraft.deploy.bootstrap import bootstrap

    result = bootstrap(app.load_config(compose=False), env)
    for outcome in result.outcomes:
        if outcome.value is not None and not app.json:
            state = outcome.value.proxy_state
            app.output.result(
                f"{outcome.name}: ready (docker {outcome.value.docker_version}, {state})"
            )
    return result


@infra.command(help=DOWN_HELP)
@click.option("--plan", "plan_only", is_flag=True, help="Only list what would be destroyed.")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@global_options
@pass_app
def down(app: AppContext, plan_only: bool, yes: bool) -> None:
    from stagecraft.errors import UsageError
    from stagecraft.infra.plan import render_down
    from stagecraft.infra.provision import apply_down, open_cloud, plan_environment

    env = app.require_env()
    loaded = app.load_config(compose=False, provisioned=False)
    provider, session = open_cloud(loaded, env)
    try:
        plan = plan_environment(loaded, env, provider, session)
        listing = plan.down_json()
        if plan_only or app.dry_run:
            _show(app, listing, render_down(plan))
            return
        if not plan.servers:  # nothing at the cloud: only what was recorded goes
            _show(app, listing, render_down(plan))
            apply_down(loaded, env, plan, session, say=_say)
            return
        if not app.json:
            app.output.result(render_down(plan))
        if not yes:
            if not sys.stdin.isatty():
                raise UsageError(
                    f"{env}: not destroying servers without confirmation",
                    hint="pass --yes to destroy the servers listed above",
                )
            names = ", ".join(server.name for server in plan.servers)
            click.confirm(f"Destroy {names}?", abort=True, err=True)
        apply_down(loaded, env, plan, session, say=_say)
    finally:
        session.close()
    if app.json:
        app.output.json(listing)


def _say(host: str, text: str) -> None:
    """A progress line about ``host`` on stderr (``[web-1] created ...``)."""
    import logging

    from stagecraft.log import event

    event(logging.getLogger("stagecraft.infra"), logging.INFO, text, host=host, phase="infra")


def _show(app: AppContext, data: dict[str, object], text: str) -> None:
    if app.json:
        app.output.json(data)
    else:
        app.output.result(text)
