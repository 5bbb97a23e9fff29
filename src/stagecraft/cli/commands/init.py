"""`stagecraft init`: detect the project and write a commented stagecraft.yml."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import IO, TYPE_CHECKING

import click

from stagecraft.cli.context import AppContext, global_options, pass_app

if TYPE_CHECKING:
    from stagecraft.init import Detection, InitChoices

LABEL_WIDTH = 18


@click.command(
    help="Detect the project (compose file, Vite, Encore, migrations) and write a commented "
    "stagecraft.yml. Asks before using each detected choice when run in a terminal; "
    "--yes (or a non-terminal stdin) takes the defaults. Never overwrites without --force; "
    "--dry-run prints the file instead of writing it."
)
@click.option("-y", "--yes", is_flag=True, help="Accept the detected defaults without asking.")
@click.option("--force", is_flag=True, help="Overwrite an existing stagecraft.yml.")
@click.option(
    "--project", "project", metavar="NAME", help="Project name (default: the directory name)."
)
@global_options
@pass_app
def init(app: AppContext, yes: bool, force: bool, project: str | None) -> None:
    from stagecraft.errors import UsageError
    from stagecraft.init import (
        ConfigExistsError,
        detect,
        is_valid_project_name,
        output_path,
        render,
        write_config,
    )

    path = output_path(app.config_path)
    if project is not None and not is_valid_project_name(project):
        raise UsageError(f"--project {project!r} is not a valid project name", hint=_NAME_HINT)
    if path.exists() and not force and not app.dry_run:
        raise ConfigExistsError(_shown(path))
    detection = detect(path.parent)
    report = app.output.stderr if app.dry_run or app.json else app.output.stdout
    human = not app.quiet and not app.json
    if human:
        _report_detection(report, detection)
    interactive = not yes and not app.json and stdin_is_interactive()
    if interactive:
        choices = ask(detection, project=project, err=app.dry_run)
    else:
        choices = detection.choose(project=project)
    text = render(choices)
    if not app.dry_run:
        write_config(path, text, force=force)
    if app.json:
        app.output.json(
            {
                "config": str(path),
                "written": not app.dry_run,
                "detection": detection.to_dict(),
                "content": text,
            }
        )
        return
    if app.dry_run:
        app.output.stdout.write(text)
        app.output.stdout.flush()
    if human:
        _report_result(report, path, choices, written=not app.dry_run, asked=interactive)


_NAME_HINT = "use lowercase letters, digits, '-' and '_', starting with a letter or digit"


def stdin_is_interactive() -> bool:
    """Whether to ask questions: stdin is a terminal."""
    try:
        return sys.stdin.isatty()
    except (AttributeError, ValueError):
        return False


def ask(detection: Detection, *, project: str | None, err: bool) -> InitChoices:
    """Ask for the project name and confirm each detected choice."""
    from stagecraft.init import is_valid_project_name

    def check_name(value: str) -> str:
        value = value.strip()
        if not is_valid_project_name(value):
            raise click.BadParameter(f"{value!r} is not a valid project name: {_NAME_HINT}")
        return value

    name = project or click.prompt(
        "Project name", default=detection.project, value_proc=check_name, err=err
    )
    frontend = detection.frontend is not None and click.confirm(
        f"Use frontend {detection.frontend.describe()}?", default=True, err=err
    )
    backend = detection.backend is not None and click.confirm(
        f"Use backend {detection.backend.describe()}?", default=True, err=err
    )
    database = detection.database is not None and click.confirm(
        f"Use database {detection.database.name}: {detection.database.describe()}?",
        default=True,
        err=err,
    )
    infra = tuple(
        service
        for service in detection.infra
        if click.confirm(f"Start {service} with `stagecraft dev`?", default=True, err=err)
    )
    return detection.choose(
        project=name, frontend=frontend, backend=backend, database=database, infra=infra
    )


def _report_detection(out: IO[str], detection: Detection) -> None:
    compose = detection.compose
    rows = [
        ("compose services", ", ".join(s.name for s in compose.services) or "none"),
        ("backend", detection.backend.describe() if detection.backend else "none detected"),
        ("frontend", detection.frontend.describe() if detection.frontend else "none detected"),
    ]
    if detection.database:
        rows.append((f"database {detection.database.name}", detection.database.describe()))
    else:
        rows.append(("database", "no migrations directory detected"))
    rows.append(("dev infra", ", ".join(detection.infra) or "none"))
    rows.append(("dev routes", _routes(detection.defaults())))
    lines = [f"Detected in {_shown(detection.root)} ({compose.file}, read with {compose.source}):"]
    lines += [f"  {label.ljust(LABEL_WIDTH)}{value}" for label, value in rows]
    lines += [f"note: {note}" for note in detection.notes]
    out.write("\n".join(lines) + "\n")
    out.flush()


def _routes(choices: InitChoices) -> str:
    return ", ".join(f"{r.name} -> {r.target}" for r in choices.routes) or "none"


def _report_result(
    out: IO[str], path: Path, choices: InitChoices, *, written: bool, asked: bool
) -> None:
    config = _shown(path)
    flag = "" if config == "stagecraft.yml" else f" -c {config}"
    lines = [f"With your answers, dev routes: {_routes(choices)}"] if asked else []
    if written:
        lines.append(f"Wrote {config}")
    else:
        lines.append(f"Dry run: {config} not written (the file is printed on stdout)")
    # Only commands that exist today; `dev` and `deploy` join this list when they land.
    steps = [
        (f"stagecraft config validate{flag}", "check the file (again after each edit)"),
        (f"stagecraft doctor{flag}", "check docker, compose, ssh and the providers"),
        (
            f"stagecraft doctor --env staging{flag}",
            f"reach your servers, after you fill in environments: in {config}",
        ),
    ]
    width = max(len(command) for command, _ in steps) + 3
    lines += ["", "Next steps:"]
    lines += [f"  {command.ljust(width)}{why}" for command, why in steps]
    out.write("\n".join(lines) + "\n")
    out.flush()


def _shown(path: Path) -> str:
    """``path`` relative to the working directory when it is below it."""
    try:
        rel = path.resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        return str(path)
    return rel.as_posix() if rel.parts else "."
