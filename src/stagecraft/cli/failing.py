"""How a command that printed its result still fails: one exit path for every reader of hosts.

``status``, ``logs``, ``plan`` and ``releases`` print what the reachable hosts
said, then exit 5 naming the hosts they could not read (docs/exit-codes.md).
With ``--json`` the error goes to stderr only, so stdout stays one document
whose ``unreachable`` field names the hosts.

Example::

    if found.unreachable:
        unreachable(app, found.unreachable, "showed the other hosts only")
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, NoReturn

import click

if TYPE_CHECKING:
    from stagecraft.cli.context import AppContext
    from stagecraft.errors import StagecraftError


def fail(app: AppContext, error: StagecraftError) -> NoReturn:
    """Raise ``error``; with --json, only report it on stderr so stdout stays one document."""
    if not app.json:
        raise error
    app.output.stderr.write(f"error: {error.message}\n")
    if error.hint:
        app.output.stderr.write(f"hint: {error.hint}\n")
    raise click.exceptions.Exit(int(error.exit_code))


def unreachable(app: AppContext, hosts: Iterable[str], done: str) -> NoReturn:
    """Exit 5 for ``hosts`` that could not be read; ``done`` says what was shown instead."""
    from stagecraft.errors import HostError

    fail(
        app,
        HostError(
            ", ".join(hosts),
            f"unreachable: {done}",
            hint="check the host is up and reachable with `stagecraft ssh HOST --env ENV`",
        ),
    )
