"""Click groups whose unknown command names get a did-you-mean.

``stagecraft deplyo`` exits 2 with ``No such command 'deplyo' (did you mean
'deploy'?).``; the root group and every group of subcommands (``config``,
``lock``, ...) use :class:`Group`, so a typo reads the same at any depth.
"""

from __future__ import annotations

import click


class Group(click.Group):
    """A click group that suggests the closest command for an unknown one."""

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name = args[0]
        if (
            not ctx.resilient_parsing
            and not name.startswith("-")
            and self.get_command(ctx, name) is None
        ):
            from stagecraft.suggest import suggestion

            near = suggestion(name, self.list_commands(ctx))
            raise click.UsageError(f"No such command '{name}'{near}.", ctx)
        return super().resolve_command(ctx, args)
