"""`stagecraft releases [show ID]`: an environment's releases, read from every host's ledger."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from stagecraft.cli.context import AppContext, global_options, pass_app
from stagecraft.cli.groups import Group

if TYPE_CHECKING:
    from stagecraft.deploy.state.ledger import History, Release

HELP = """List the releases of an environment (newest first), merged from every host's ledger.

A release succeeded only when every host that recorded it succeeded. Hosts that
cannot be reached are reported; the listing shows what the others recorded.
"""


@click.group(cls=Group, invoke_without_command=True, help=HELP)
@global_options
@pass_app
@click.pass_context
def releases(ctx: click.Context, app: AppContext) -> None:
    if ctx.invoked_subcommand is not None:
        return
    history = _history(app)
    if app.json:
        app.output.json(
            {
                "env": app.env,
                "releases": [r.to_dict() for r in history.releases],
                "unreachable": history.unreachable,
            }
        )
    else:
        _render_table(app, history.releases)
        _render_unreachable(app, history)
    _exit_for_unreachable(app, history)


@releases.command("show", help="Show one release per host and service (ID or a unique prefix).")
@click.argument("release_id", metavar="ID")
@global_options
@pass_app
def show(app: AppContext, release_id: str) -> None:
    from stagecraft.errors import UsageError

    history = _history(app)
    release = history.find(release_id)
    if release is None:
        unreachable = " (some hosts could not be read)" if history.unreachable else ""
        raise UsageError(
            f"{app.env}: no release {release_id}{unreachable}",
            hint=f"list them with `stagecraft releases --env {app.env}`",
        )
    if app.json:
        app.output.json(
            {"env": app.env, "release": release.to_dict(), "unreachable": history.unreachable}
        )
        _exit_for_unreachable(app, history)
    out = app.output
    out.result(f"release {release.id}: {release.outcome}")
    out.result(f"  version {release.version}, {release.command} by {release.by}")
    out.result(f"  started {release.started_at}, finished {release.finished_at}")
    for host, record in release.hosts.items():
        took = f", {record.duration:.1f}s" if record.duration is not None else ""
        out.result(f"  {host}: {record.outcome}{took}")
        for name, svc in sorted(record.services.items()):
            error = f" ({svc.error})" if svc.error else ""
            hash_ = f" config {svc.config_hash[:12]}" if svc.config_hash else ""
            out.result(f"    {name}: {svc.outcome} {svc.image}{hash_}{error}")
    for host, outcome in release.unrecorded.items():
        out.result(f"  {host}: {outcome} (no record on the host: it was not reached)")
    _render_unreachable(app, history)
    _exit_for_unreachable(app, history)


def _history(app: AppContext) -> History:
    from stagecraft.deploy.state.layout import environment_hosts
    from stagecraft.deploy.state.ledger import history

    env = app.require_env()
    loaded = app.load_config(compose=False)
    environment = loaded.environment(env)
    return history(
        environment_hosts(environment),
        loaded.config.project.name,
        env,
        parallel=environment.deploy.parallel,
    )


def _render_table(app: AppContext, found: list[Release]) -> None:
    if not found:
        app.output.result(f"{app.env}: no releases recorded")
        return
    rows = [("ID", "VERSION", "WHEN", "WHO", "COMMAND", "OUTCOME", "HOSTS")]
    for r in found:
        hosts = ",".join(
            name if record.outcome == "success" else f"{name}({record.outcome})"
            for name, record in r.hosts.items()
        )
        hosts += "".join(f",{name}({outcome})" for name, outcome in r.unrecorded.items())
        rows.append((r.id, r.version, r.started_at, r.by, r.command, r.outcome, hosts))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        app.output.result("  ".join([*cells, row[-1]]).rstrip())


def _render_unreachable(app: AppContext, found: History) -> None:
    for host, reason in found.unreachable.items():
        app.output.stderr.write(f"warning: {host}: ledger not read: {reason}\n")


def _exit_for_unreachable(app: AppContext, found: History) -> None:
    """Exit 5 after the listing when a host's ledger could not be read (like `status`)."""
    from stagecraft.cli.failing import unreachable

    if found.unreachable:
        unreachable(app, found.unreachable, "listed what the other hosts recorded")
