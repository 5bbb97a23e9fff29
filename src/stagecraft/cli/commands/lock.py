"""`stagecraft lock status|release`: inspect or break an environment's deploy lock."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click

from stagecraft.cli.context import AppContext, global_options, pass_app
from stagecraft.cli.groups import Group

if TYPE_CHECKING:
    from stagecraft.deploy.state.lock import LockInfo
    from stagecraft.runtime.ssh import SSHHost


@click.group(
    cls=Group, help="Inspect or break the deploy lock of an environment (on its primary host)."
)
@global_options
def lock() -> None:
    pass


@lock.command("status", help="Show who holds the deploy lock, since when and for what.")
@global_options
@pass_app
def lock_status(app: AppContext) -> None:
    from stagecraft.deploy.state import lock as locks

    project, env, host = _primary(app)
    info = locks.status(host, project, env)
    if app.json:
        app.output.json(
            {"env": env, "host": host.name, "held": info is not None, "lock": _public(info)}
        )
        return
    if info is None:
        app.output.result(f"{env}: the deploy lock on {host.name} is free")
    else:
        app.output.result(f"{env}: the deploy lock on {host.name} is held by {info.describe()}")


@lock.command("release", help="Break the deploy lock (asks first unless --yes).")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@global_options
@pass_app
def lock_release(app: AppContext, yes: bool) -> None:
    from stagecraft.deploy.state import lock as locks
    from stagecraft.errors import UsageError

    project, env, host = _primary(app)
    current = locks.status(host, project, env)
    if current is None:
        _done(app, env, host.name, None)
        return
    if not yes:
        if not sys.stdin.isatty():
            raise UsageError(
                f"{env}: the deploy lock is held by {current.describe()}; not releasing it "
                "without confirmation",
                hint="pass --yes to release it (make sure that run is really gone)",
            )
        click.confirm(
            f"Release the deploy lock held by {current.describe()}?", abort=True, err=True
        )
    released = locks.force_release(host, project, env)
    _done(app, env, host.name, released)


def _done(app: AppContext, env: str, host: str, released: LockInfo | None) -> None:
    if app.json:
        app.output.json({"env": env, "host": host, "released": _public(released)})
    elif released is None:
        app.output.result(f"{env}: the deploy lock on {host} was not held")
    else:
        app.output.result(f"{env}: released the deploy lock held by {released.describe()}")


def _primary(app: AppContext) -> tuple[str, str, SSHHost]:
    """Project name, environment name, and the environment's primary host."""
    from stagecraft.deploy.state.layout import environment_hosts

    env = app.require_env()
    loaded = app.load_config(compose=False)
    environment = loaded.environment(env)
    return loaded.config.project.name, env, environment_hosts(environment)[0]


def _public(info: LockInfo | None) -> dict[str, Any] | None:
    """The lock record without its token (the token lets its holder release it)."""
    if info is None:
        return None
    from dataclasses import asdict

    data = asdict(info)
    data.pop("token", None)
    return data
