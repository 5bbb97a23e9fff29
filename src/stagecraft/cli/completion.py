"""Shell completion (bash, zsh, fish): the request, the scripts and the value completers.

The mechanism is click's: the script the shell loads (``stagecraft completion
bash``) runs ``stagecraft`` again on each Tab with ``_STAGECRAFT_COMPLETE`` set
(``bash_complete``, ``zsh_complete``, ``fish_complete``) and the words typed
so far in ``COMP_WORDS``/``COMP_CWORD``; click resolves the command line and
asks the parameter under the cursor for its values. The completers here
offer environment, host and service names from ``stagecraft.yml`` alone
(:mod:`stagecraft.config.declared`), found as every command finds it
(``-c``/``--config`` earlier on the line, ``STAGECRAFT_CONFIG``, else the
nearest upwards), and offer nothing rather than fail: no config, a broken
one, any error. Completion never prints a traceback.

Try it without a shell::

    _STAGECRAFT_COMPLETE=bash_complete COMP_WORDS="stagecraft ssh --env production " \\
        COMP_CWORD=4 stagecraft
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from stagecraft.config.declared import DeclaredNames

PROG_NAME = "stagecraft"
COMPLETE_VAR = "_STAGECRAFT_COMPLETE"
SHELLS = ("bash", "zsh", "fish")


def completion_request() -> str | None:
    """The shell's completion instruction (``bash_complete``, ...), if this run is one."""
    return os.environ.get(COMPLETE_VAR) or None


def answer(cli: click.Command, instruction: str) -> int:
    """Print the completions (or the script) ``instruction`` asks for; the exit code."""
    from click.shell_completion import shell_complete

    from stagecraft.cli.context import AppContext

    try:
        return shell_complete(cli, {"obj": AppContext()}, PROG_NAME, COMPLETE_VAR, instruction)
    except Exception:
        # A half-typed line must never put a traceback in the user's prompt.
        return 1


def script(cli: click.Command, shell: str) -> str:
    """The script that hooks ``stagecraft`` into ``shell``'s completion."""
    from click.shell_completion import get_completion_class

    comp_cls = get_completion_class(shell)
    if comp_cls is None:
        raise click.BadParameter(f"unsupported shell {shell!r}; known: {', '.join(SHELLS)}")
    return comp_cls(cli, {}, PROG_NAME, COMPLETE_VAR).source()


def complete_environments(
    ctx: click.Context, _param: click.Parameter, incomplete: str
) -> list[str]:
    """Environment names (for ``--env``)."""
    return _offer(ctx, incomplete, lambda names, _env: list(names.environments))


def complete_hosts(ctx: click.Context, _param: click.Parameter, incomplete: str) -> list[str]:
    """Host names of ``--env`` if given (else of every environment)."""
    return _offer(ctx, incomplete, lambda names, env: names.hosts(env))


def complete_services(ctx: click.Context, _param: click.Parameter, incomplete: str) -> list[str]:
    """Compose services the roles of ``--env`` run (else of every environment)."""
    return _offer(ctx, incomplete, lambda names, env: names.services(env))


def _offer(
    ctx: click.Context,
    incomplete: str,
    pick: Callable[[DeclaredNames, str | None], list[str]],
) -> list[str]:
    try:
        names, env = _declared(ctx)
        return [name for name in pick(names, env) if name.startswith(incomplete)]
    except Exception:
        return []


def _declared(ctx: click.Context) -> tuple[DeclaredNames, str | None]:
    """The names of the config this command line would use, and its environment."""
    from stagecraft.cli.context import AppContext
    from stagecraft.config.declared import DeclaredNames, declared_names
    from stagecraft.config.locate import find_config
    from stagecraft.errors import ConfigNotFound

    # The global flags' callbacks ran while click parsed the words before the cursor.
    app = ctx.find_object(AppContext) or AppContext()
    explicit = app.config_path
    if explicit is None and os.environ.get("STAGECRAFT_CONFIG"):
        explicit = Path(os.environ["STAGECRAFT_CONFIG"])
    env = app.env or os.environ.get("STAGECRAFT_ENV") or None
    try:
        path = find_config(explicit)
    except ConfigNotFound:
        return DeclaredNames(), env
    return declared_names(path), env
