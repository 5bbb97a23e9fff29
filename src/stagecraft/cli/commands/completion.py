"""`stagecraft completion SHELL`: print the script that hooks stagecraft into a shell's Tab."""

from __future__ import annotations

import click

from stagecraft.cli.completion import SHELLS, script
from stagecraft.cli.context import AppContext, global_options, pass_app

HELP = """Print the completion script for SHELL (bash, zsh or fish).

Load it from your shell's start-up file:

\b
  bash (~/.bashrc):                  eval "$(stagecraft completion bash)"
  zsh (~/.zshrc, after compinit):    eval "$(stagecraft completion zsh)"
  fish (~/.config/fish/config.fish): stagecraft completion fish | source

Commands, options, environment names (--env), host names and service names
are completed from the stagecraft.yml the command line would use.
"""


@click.command(help=HELP)
@click.argument("shell", type=click.Choice(SHELLS))
@global_options
@pass_app
@click.pass_context
def completion(ctx: click.Context, app: AppContext, shell: str) -> None:
    app.output.stdout.write(script(ctx.find_root().command, shell))
