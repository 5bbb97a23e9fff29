"""`stagecraft exec SERVICE -- CMD`: run a command in a running container of a service."""

from __future__ import annotations

import click

from stagecraft.cli.completion import complete_hosts, complete_services
from stagecraft.cli.context import AppContext, global_options, pass_app

HELP = """Run COMMAND in a running container of SERVICE on --env (the first host that runs
it, or --host) and exit with its exit code.

A terminal is attached (docker exec -it) when stdin is a terminal; otherwise stdin
is passed through, so `echo hi | stagecraft exec web --env production -- cat` works.
Put the command after `--`.
"""


@click.command("exec", help=HELP, context_settings={"ignore_unknown_options": True})
@click.argument("service", shell_complete=complete_services)
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@click.option(
    "--host", "host_name", metavar="HOST", shell_complete=complete_hosts, help="Run on this host."
)
@global_options
@pass_app
def exec_(app: AppContext, service: str, command: tuple[str, ...], host_name: str | None) -> None:
    import os
    import sys

    from stagecraft.ops.shell import exec_argv, find_exec_target, service_hosts

    env = app.require_env()
    loaded = app.load_config()
    loaded.check_service(service)  # unknown names get the closest known ones
    if host_name is not None:
        loaded.host(env, host_name)
    hosts = service_hosts(loaded, env, service, host_name)
    try:
        target = find_exec_target(
            hosts, project=loaded.config.project.name, env=env, service=service
        )
    finally:
        for host in hosts:
            host.close()
    argv = exec_argv(target.host, target.container, list(command), tty=sys.stdin.isatty())
    sys.stdout.flush()
    sys.stderr.flush()
    os.execvp(argv[0], argv)
