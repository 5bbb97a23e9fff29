"""`stagecraft status`: what runs on each host of an environment, per service."""

from __future__ import annotations

from typing import TYPE_CHECKING, NoReturn

import click

from stagecraft.cli.context import AppContext, global_options, pass_app

if TYPE_CHECKING:
    from stagecraft.errors import StagecraftError

HELP = """Show, per host and service of --env: release, version, health, uptime and replicas.

Read from the labels of the containers on every host (in parallel). A host that
cannot be reached is shown as unreachable and the other hosts are still listed;
the command then exits 5.
"""


@click.command(help=HELP)
@global_options
@pass_app
def status(app: AppContext) -> None:
    from stagecraft.deploy.ops import collect_status, render_status
    from stagecraft.deploy.state_layout import environment_hosts
    from stagecraft.errors import HostError

    env = app.require_env()
    loaded = app.load_config(compose=False)
    environment = loaded.environment(env)
    hosts = environment_hosts(environment)
    try:
        found = collect_status(hosts, environment, project=loaded.config.project.name, env=env)
    finally:
        for host in hosts:
            host.close()
    if app.json:
        app.output.json(found.to_json())
    else:
        app.output.result(render_status(found).rstrip("\n"))
    if found.unreachable:
        names = ", ".join(h.host for h in found.unreachable)
        fail(
            app,
            HostError(
                names,
                "unreachable: showed the other hosts only",
                hint="check the host is up and reachable with `stagecraft ssh HOST`",
            ),
        )


def fail(app: AppContext, error: StagecraftError) -> NoReturn:
    """Raise ``error``; with --json, only report it on stderr so stdout stays one document."""
    if not app.json:
        raise error
    app.output.stderr.write(f"error: {error.message}\n")
    if error.hint:
        app.output.stderr.write(f"hint: {error.hint}\n")
    raise click.exceptions.Exit(int(error.exit_code))
