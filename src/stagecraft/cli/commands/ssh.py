"""`stagecraft ssh HOST [-- CMD]`: a shell (or one command) on a host of an environment."""

from __future__ import annotations

import click

from stagecraft.cli.completion import complete_hosts
from stagecraft.cli.context import AppContext, global_options, pass_app

HELP = """Open a shell on HOST of --env, or run COMMAND there (after `--`; its words are
joined with spaces, as ssh does), with the same SSH options Stagecraft uses.

The exit code is ssh's: the command's, or 255 when ssh cannot connect.
"""


@click.command(help=HELP, context_settings={"ignore_unknown_options": True})
@click.argument("host_name", metavar="HOST", shell_complete=complete_hosts)
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@global_options
@pass_app
def ssh(app: AppContext, host_name: str, command: tuple[str, ...]) -> None:
    import os
    import sys

    from stagecraft.deploy.state.layout import environment_hosts
    from stagecraft.ops.shell import ssh_argv

    env = app.require_env()
    loaded = app.load_config(compose=False)
    environment = loaded.environment(env)
    loaded.host(env, host_name)  # an unknown name is answered with the closest known ones
    host = next(h for h in environment_hosts(environment) if h.name == host_name)
    argv = ssh_argv(host, list(command), tty=sys.stdin.isatty())
    sys.stdout.flush()
    sys.stderr.flush()
    os.execvp(argv[0], argv)
