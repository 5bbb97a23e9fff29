"""`stagecraft logs SERVICE`: a service's logs across hosts, merged with host/service prefixes."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, NoReturn

import click

from stagecraft.cli.completion import complete_hosts, complete_services
from stagecraft.cli.context import AppContext, global_options, pass_app

if TYPE_CHECKING:
    from stagecraft.ops.logs import LogOptions, Targets
    from stagecraft.runtime.ssh import SSHHost

HELP = """Show the logs of SERVICE's containers on every host of --env that runs it.

Lines are prefixed with `host/service |` and merged by time. With -f, every
host is followed at once until Ctrl-C. --since takes a duration (30s, 10m,
1h30m, 2d) or a time (2026-11-24T10:00:00Z); --tail limits each container.
Exits 5 when a host cannot be reached (after showing the others' logs).
"""


@click.command(help=HELP)
@click.argument("service", shell_complete=complete_services)
@click.option("-f", "--follow", is_flag=True, help="Keep streaming new lines until Ctrl-C.")
@click.option("--since", metavar="WHEN", help="Only lines newer than a duration or a time.")
@click.option("--tail", type=click.IntRange(min=0), metavar="N", help="Last N lines per container.")
@click.option(
    "--host", "host_name", metavar="HOST", shell_complete=complete_hosts, help="Only this host."
)
@click.option("-t", "--timestamps", is_flag=True, help="Show Docker's timestamp on each line.")
@global_options
@pass_app
def logs(  # noqa: PLR0917 (click passes every option)
    app: AppContext,
    service: str,
    follow: bool,
    since: str | None,
    tail: int | None,
    host_name: str | None,
    timestamps: bool,
) -> None:
    from stagecraft.ops.logs import LogOptions, parse_since
    from stagecraft.ops.shell import service_hosts

    env = app.require_env()
    options = LogOptions(
        since=parse_since(since) if since else None, tail=tail, timestamps=timestamps
    )
    loaded = app.load_config()
    loaded.check_service(service)  # unknown names get the closest known ones
    if host_name is not None:
        loaded.host(env, host_name)
    hosts = service_hosts(loaded, env, service, host_name)
    try:
        _show(
            app,
            hosts,
            project=loaded.config.project.name,
            env=env,
            service=service,
            options=options,
            follow=follow,
        )
    finally:
        for host in hosts:
            host.close()


def _show(
    app: AppContext,
    hosts: list[SSHHost],
    *,
    project: str,
    env: str,
    service: str,
    options: LogOptions,
    follow: bool,
) -> None:
    from stagecraft.dev.logprefix import LinePrefixer, stream_sink, wants_color
    from stagecraft.errors import UsageError
    from stagecraft.ops.logs import fetch_logs, find_targets, follow_logs, render_text

    found = find_targets(hosts, project=project, env=env, service=service)
    _warn_unreachable(app, found.unreachable)
    if not found.targets:
        if found.unreachable:
            _raise_unreachable(app, found)
        where = ", ".join(h.name for h in hosts) or "no host (no role places it)"
        raise UsageError(
            f"{env}: no container of {service!r} on {where}",
            hint=f"see what runs where with `stagecraft status --env {env}`",
        )
    stdout = sys.stdout
    if app.json:
        sink = _json_lines_sink(stdout)
    else:
        color = wants_color(stdout, no_color=app.no_color)
        prefixer = LinePrefixer([t.label for t in found.targets], color=color)
        sink = stream_sink(stdout, prefixer)
    if follow:
        failed = follow_logs(found.targets, options, sink)
        _warn_unreachable(app, failed)
    else:
        for line in fetch_logs(found.targets, options):
            sink(line.label, line.stream, render_text(line, options))
    if found.unreachable:
        _raise_unreachable(app, found)


def _json_lines_sink(stdout: IO[str]) -> Callable[[str, str, str], None]:
    """``--json``: one JSON object per log line (``source``, ``stream``, ``line``)."""
    lock = threading.Lock()

    def sink(label: str, stream: str, line: str) -> None:
        record = json.dumps({"source": label, "stream": stream, "line": line})
        with lock:
            stdout.write(record + "\n")
            stdout.flush()

    return sink


def _warn_unreachable(app: AppContext, failed: dict[str, str]) -> None:
    for name, reason in failed.items():
        app.output.stderr.write(f"warning: {name}: logs not read: {reason}\n")


def _raise_unreachable(app: AppContext, found: Targets) -> NoReturn:
    from stagecraft.cli.failing import unreachable

    unreachable(app, found.unreachable, "logs of the other hosts only")
