"""`stagecraft hosts bootstrap`: prepare every host of an environment."""

from __future__ import annotations

import click

from stagecraft.cli.context import AppContext, global_options, pass_app
from stagecraft.cli.groups import Group


@click.group(cls=Group, help="Prepare and inspect the hosts of an environment.")
@global_options
def hosts() -> None:
    pass


@hosts.command(
    help="Install Docker when missing, create state directories, start the edge proxy and join "
    "the network provider's mesh on every host."
)
@global_options
@pass_app
def bootstrap(app: AppContext) -> None:
    from stagecraft.deploy.bootstrap import bootstrap as run_bootstrap

    env = app.require_env()
    loaded = app.load_config(compose=False)
    result = run_bootstrap(loaded, env)
    if app.json:
        app.output.json(
            {
                "env": env,
                "ok": result.ok,
                "hosts": [
                    {
                        "host": o.name,
                        "ok": o.ok,
                        "docker": o.value.docker_version if o.value else None,
                        "compose": o.value.compose_version if o.value else None,
                        "proxy_started": o.value.proxy_created if o.value else None,
                        "changes": list(o.value.changes) if o.value else [],
                        "notes": list(o.value.notes) if o.value else [],
                        "mesh": o.value.mesh.to_json() if o.value and o.value.mesh else None,
                        "error": getattr(o.error, "message", str(o.error)) if o.error else None,
                    }
                    for o in result.outcomes
                ],
            }
        )
    else:
        for outcome in result.outcomes:
            ready = outcome.value
            if ready is not None:
                for change in ready.changes:
                    app.output.result(f"{outcome.name}: {change}")
                app.output.result(
                    f"{outcome.name}: ready (docker {ready.docker_version}, {ready.proxy_state})"
                )
                if ready.mesh is not None:
                    app.output.result(f"{outcome.name}: {ready.mesh.describe()}")
                for note in ready.notes:
                    app.output.result(f"{outcome.name}: note: {note}")
    if app.json and not result.ok:
        # One JSON document on stdout: the report above already holds every error.
        from stagecraft.runtime.fanout import GroupError

        try:
            result.raise_for_failures()
        except GroupError as exc:
            for line in exc.lines():
                app.output.stderr.write(f"error: {line}\n")
            raise click.exceptions.Exit(int(exc.exit_code)) from None
    result.raise_for_failures()
