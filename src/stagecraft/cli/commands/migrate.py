"""`stagecraft migrate`: apply pending migrations, or show the plan or the status."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC
from typing import TYPE_CHECKING, Any

import click

from stagecraft.cli.context import AppContext, global_options, pass_app

if TYPE_CHECKING:
    from stagecraft.migrate.runner import MigrationSetup
    from stagecraft.providers.migration import (
        MigrationEngine,
        MigrationReport,
        MigrationResult,
        MigrationTarget,
    )

HELP = """Apply pending database migrations (locally, or with --env through an SSH tunnel).

Without --env the database is the local dev one: $<url_env> if set, else the compose
service's published port. --plan lists what would run, read from the database; --status
shows every migration as applied, pending, changed or missing.
"""


@click.command(help=HELP)
@click.option(
    "-d",
    "--database",
    metavar="NAME",
    help="Only this database (default: every one with migrations).",
)
@click.option("--plan", is_flag=True, help="List the pending migrations; change nothing.")
@click.option("--status", is_flag=True, help="Show applied / pending / changed migrations.")
@click.option(
    "--allow-out-of-order",
    is_flag=True,
    help="Apply pending files older than the newest applied one.",
)
@global_options
@pass_app
def migrate(
    app: AppContext,
    database: str | None,
    plan: bool,
    status: bool,
    allow_out_of_order: bool,
) -> None:
    from stagecraft.errors import UsageError
    from stagecraft.migrate.runner import engine_for, open_target, setups
    from stagecraft.providers.migration import MigrationConfigError

    if plan and status:
        raise UsageError("--plan and --status cannot be combined", hint="pass one of them")
    mode = "status" if status else "plan" if plan or app.dry_run else "apply"
    loaded = app.load_config()
    chosen = setups(loaded, database)
    if not chosen:
        raise MigrationConfigError(
            f"{loaded.path}: no database has migrations configured",
            hint="add databases.<name>.migrations: {path: migrations}",
        )
    payload: list[dict[str, Any]] = []
    for setup in chosen:
        engine = engine_for(setup)
        with open_target(loaded, setup, env=app.env) as target:
            _say(app, f"database {setup.database}: {target.shown}")
            entry = _run_one(app, mode, engine, target, allow_out_of_order)
        payload.append({"database": setup.database, "source": target.shown, **_setup_json(setup)})
        payload[-1].update(entry)
    if app.json:
        app.output.json({"mode": mode, "env": app.env, "databases": payload})


def _run_one(
    app: AppContext,
    mode: str,
    engine: MigrationEngine,
    target: MigrationTarget,
    allow_out_of_order: bool,
) -> dict[str, Any]:
    """Run one database in ``mode``; print as it goes; return its JSON entry."""
    if mode == "status":
        report = engine.report(target)
        _render_status(app, report)
        return report.to_json()
    if mode == "plan":
        report = engine.plan(target, allow_out_of_order=allow_out_of_order)
        _render_plan(app, report)
        return report.to_json()
    results = engine.apply(target, allow_out_of_order=allow_out_of_order, on_applied=_progress(app))
    name = target.database
    if results:
        total = sum(r.duration for r in results) * 1000
        count = f"{len(results)} migration{'s' if len(results) != 1 else ''}"
        app.output.result(f"database {name}: applied {count} in {total:.0f} ms")
    else:
        app.output.result(f"database {name}: up to date, nothing to apply")
    return {"applied": [r.to_json() for r in results]}


def _progress(app: AppContext) -> Callable[[MigrationResult], None]:
    def show(result: MigrationResult) -> None:
        mode = "" if result.transactional else ", no transaction"
        _say(app, f"  applied {result.name} ({result.duration * 1000:.0f} ms{mode})")

    return show


def _render_plan(app: AppContext, report: MigrationReport) -> None:
    for info in report.pending:
        late = " (out of order)" if info.out_of_order else ""
        _say(app, f"  pending {info.name}{late}")
    pending = len(report.pending)
    if pending:
        app.output.result(
            f"database {report.database}: {pending} pending migration{'s' if pending != 1 else ''}"
        )
    else:
        app.output.result(f"database {report.database}: up to date, nothing to apply")


def _render_status(app: AppContext, report: MigrationReport) -> None:
    rows = [("VERSION", "NAME", "STATE", "APPLIED AT")]
    for info in report.migrations:
        state = info.state.value + (" (out of order)" if info.out_of_order else "")
        when = (
            info.applied_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
            if info.applied_at
            else ""
        )
        rows.append((str(info.version), info.name, state, when))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)] + [row[3]]
        _say(app, ("  " + "  ".join(cells)).rstrip())
    counts = (
        [
            f"{len(report.of_state(state))} {state.value}"
            for state in type(report.migrations[0].state)
            if report.of_state(state)
        ]
        if report.migrations
        else ["no migrations"]
    )
    app.output.result(f"database {report.database}: " + ", ".join(counts))
    for info in report.changed:
        _say(app, f"  ! {info.name} changed after it was applied: `stagecraft migrate` will refuse")
    for info in report.out_of_order:
        _say(app, f"  ! {info.name} is older than applied ones: apply with --allow-out-of-order")


def _setup_json(setup: MigrationSetup) -> dict[str, Any]:
    return {"engine": setup.engine, "table": setup.table, "strategy": setup.strategy}


def _say(app: AppContext, text: str) -> None:
    """A progress line for people (not in --quiet; on stderr with --json)."""
    if not app.output.quiet:
        app.output.console.print(text, markup=False, highlight=False)
