"""`stagecraft secrets check`: does every declared secret of an environment resolve?"""

from __future__ import annotations

import click

from stagecraft.cli.context import AppContext, global_options, pass_app
from stagecraft.cli.groups import Group


@click.group(
    cls=Group, help="Work with an environment's secrets (names only; values are never shown)."
)
@global_options
def secrets() -> None:
    pass


CHECK_HELP = """Resolve every secret declared for --env through its secrets provider and
print each name with ok or missing. Values are never printed. Exits 2 listing
every missing name when any is missing.
"""


@secrets.command("check", help=CHECK_HELP)
@global_options
@pass_app
def check(app: AppContext) -> None:
    from stagecraft.cli.failing import fail
    from stagecraft.ops.secrets import SecretsMissing, check_secrets

    env = app.require_env()
    loaded = app.load_config(compose=False)
    report = check_secrets(loaded, env)
    if app.json:
        app.output.json(report.to_json())
    else:
        if not report.entries:
            app.output.result(f"{env}: no secrets declared")
        width = max((len(e.name) for e in report.entries), default=0)
        for entry in report.entries:
            app.output.result(f"{entry.name.ljust(width)}  {entry.status}")
    try:
        report.raise_for_missing()
    except SecretsMissing as exc:
        fail(app, exc)
