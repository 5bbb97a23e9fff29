"""`stagecraft doctor`: tools, providers, config and (with --env) every host."""

from __future__ import annotations

import click

from stagecraft.cli.context import AppContext, global_options, pass_app
from stagecraft.errors import ExitCode

MARKS = {"ok": ("✓", "green"), "warn": ("!", "yellow"), "fail": ("✗", "red")}


@click.command(
    help="Check docker, compose, ssh, caddy/mkcert, the config, providers, hosts and "
    "(with a network provider) the mesh between them."
)
@global_options
@pass_app
def doctor(app: AppContext) -> None:
    from stagecraft.doctor.checks import run_checks

    report = run_checks(app.config_path, app.env)
    if app.json:
        app.output.json(
            {
                "ok": not report.failed,
                "checks": [c.as_dict() for c in report.checks],
                "providers": [
                    {"kind": p.kind, "id": p.id, "origin": p.origin, "summary": p.summary}
                    for p in report.providers
                ],
            }
        )
    else:
        _render_text(app, report)
    if report.failed:
        raise click.exceptions.Exit(int(ExitCode.FAILED))


def _render_text(app: AppContext, report: object) -> None:
    from rich.markup import escape

    from stagecraft.doctor.checks import Report

    assert isinstance(report, Report)
    out = app.output
    group = None
    for check in report.checks:
        if check.group != group:
            group = check.group
            out.print(f"[bold]{group}[/bold]")
        mark, colour = MARKS[check.status.value]
        out.print(f"  [{colour}]{mark}[/{colour}] {check.name}: {escape(check.detail)}")
        if check.fix and check.status.value != "ok":
            out.print(f"      fix: {escape(check.fix)}")
    if report.providers:
        out.print("[bold]providers found[/bold]")
        origin_width = max(len(info.origin) for info in report.providers)
        for info in report.providers:
            origin = escape(info.origin.ljust(origin_width))
            out.print(f"  {info.kind:<9} {info.id:<13} {origin} {escape(info.summary)}")
    failed = report.failed
    if failed:
        out.result(f"{len(failed)} check(s) failed: " + ", ".join(c.name for c in failed))
    else:
        out.result("all checks passed")
