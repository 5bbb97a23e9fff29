"""`stagecraft status`: what runs on each host of an environment, per service."""

from __future__ import annotations

import click

from stagecraft.cli.context import AppContext, global_options, pass_app
from stagecraft.cli.failing import unreachable

HELP = """Show, per host and service of --env: release, version, health, uptime and replicas.

Read from the labels of the containers on every host (in parallel). A host that
cannot be reached is shown as unreachable and the other hosts are still listed;
the command then exits 5.
"""


@click.command(help=HELP)
@global_options
@pass_app
def status(app: AppContext) -> None:
    from stagecraft.deploy.state.layout import environment_hosts
    from stagecraft.ops.status import collect_status, render_status

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
        unreachable(app, [h.host for h in found.unreachable], "showed the other hosts only")
