"""`stagecraft dev`: the whole local environment in one command; `dev trust` for the CA."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import click

from stagecraft.cli.context import AppContext, global_options, pass_app
from stagecraft.cli.groups import Group

if TYPE_CHECKING:
    from stagecraft.dashboard.devboard import DevBoard
    from stagecraft.dashboard.serve import Server
    from stagecraft.dev.logprefix import LinePrefixer, OutputSink
    from stagecraft.dev.model import EventSink, ProcessEvent
    from stagecraft.dev.plan import DevOptions, DevPlan
    from stagecraft.dev.session import DevSession, DevSummary, StopReport

HELP = """Run the whole local environment: infra, migrations, HTTPS proxy and dev servers.

Starts the compose services listed in dev.infra with `docker compose up --wait`, applies
pending migrations, then runs the backend and frontend dev servers and a Caddy proxy that
serves https://<route>.<domain> with a certificate from the local CA. Output of every
process is merged with `name |` prefixes. Ctrl-C stops everything (twice: kill at once).

Ports 443/80 need root; otherwise pass e.g. --https-port 8443 --http-port 8080 and use
https://app.<domain>:8443.

The dev dashboard (https://stagecraft.<domain>, through the same proxy) shows every
process and infra service live, the migrations and the logs, with a restart button
per dev server; --no-dashboard turns it off.
"""

HOSTS_FILE_ENV = "STAGECRAFT_HOSTS_FILE"


@click.group(cls=Group, help=HELP, invoke_without_command=True)
@click.option("--down", is_flag=True, help="On exit, remove the infra containers and networks.")
@click.option("--no-migrate", is_flag=True, help="Do not apply pending migrations.")
@click.option(
    "--https-port", type=int, default=443, show_default=True, help="Port of the HTTPS proxy."
)
@click.option(
    "--http-port",
    type=int,
    default=80,
    show_default=True,
    help="Port of the HTTP proxy (redirects to HTTPS).",
)
@click.option(
    "--admin-port", type=int, default=None, help="Proxy admin API port on 127.0.0.1 [free port]."
)
@click.option(
    "--no-dashboard",
    is_flag=True,
    help="Do not serve the dev dashboard at https://stagecraft.<domain>.",
)
@click.option(
    "--timeout",
    "ready_timeout",
    type=float,
    default=None,
    help="Seconds to wait for every dev server to be ready [each one's own].",
)
@global_options
@pass_app
@click.pass_context
def dev(  # noqa: PLR0917 (click passes every option)
    ctx: click.Context,
    app: AppContext,
    down: bool,
    no_migrate: bool,
    https_port: int,
    http_port: int,
    admin_port: int | None,
    no_dashboard: bool,
    ready_timeout: float | None,
) -> None:
    if ctx.invoked_subcommand is not None:
        return
    from stagecraft.dev.plan import DevOptions, build_plan, check_ports

    hosts = os.environ.get(HOSTS_FILE_ENV)
    options = DevOptions(
        https_port=https_port,
        http_port=http_port,
        migrate=not no_migrate,
        down=down,
        admin_port=admin_port,
        ready_timeout=ready_timeout,
        hosts_path=Path(hosts) if hosts else None,
        dashboard=not no_dashboard,
    )
    check_ports(options)
    loaded = app.load_config()
    if app.dry_run:
        _show_plan(app, build_plan(loaded, options))
        return
    _run(app, loaded, options)


@dev.command(help="Trust the dev CA: install it into the system store, or print the steps.")
@click.option("--print-only", is_flag=True, help="Only print the steps; change nothing.")
@global_options
@pass_app
def trust(app: AppContext, print_only: bool) -> None:
    from stagecraft.dev.certs import ensure_ca, install_trust, trust_instructions

    ca = ensure_ca()
    if print_only:
        steps = trust_instructions(ca)
        if app.json:
            app.output.json({"ca": str(ca.cert_path), "installed": False, "steps": steps})
            return
        _say(app, f"dev CA: {ca.cert_path} ({ca.source}); to trust it:")
        for line in steps:
            app.output.result(f"  {line}")
        return
    result = install_trust(ca)
    if app.json:
        app.output.json(
            {
                "ca": str(ca.cert_path),
                "installed": result.installed,
                "changed": result.changed,
                "actions": list(result.actions),
                "steps": list(result.manual_steps),
                "reason": result.reason,
            }
        )
        return
    if result.installed:
        for action in result.actions:
            app.output.result(action)
        if result.manual_steps:
            _say(app, "browsers and Node.js keep their own stores:")
            for line in result.manual_steps:
                app.output.result(f"  {line}")
        return
    app.output.result(f"not installed: {result.reason}; to trust {ca.cert_path}, run:")
    for line in result.manual_steps:
        app.output.result(f"  {line}")


# -- running a session -----------------------------------------------------------------


class _Signals:
    """SIGINT/SIGTERM/SIGHUP while starting: abort; while running: stop; again: force."""

    def __init__(self, session: DevSession) -> None:
        self.session = session
        self.phase = "starting"
        self.count = 0
        self._old: dict[int, Any] = {}

    def install(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            self._old[sig] = signal.signal(sig, self._handle)

    def restore(self) -> None:
        for sig, handler in self._old.items():
            signal.signal(sig, handler)

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        if signum == signal.SIGHUP:
            from stagecraft.cli.signals import drop_terminal_output

            drop_terminal_output()  # the terminal is gone: writing to it would fail the stop
        self.count += 1
        if self.count > 1:
            sys.stderr.write("stagecraft dev: forcing stop (killing everything)\n")
            self.session.force()
            return
        if self.phase == "starting":
            raise KeyboardInterrupt
        self.session.request_stop()


def _run(app: AppContext, loaded: Any, options: DevOptions) -> None:
    from stagecraft.dev.logprefix import LinePrefixer, stream_sink, wants_color
    from stagecraft.dev.session import DevSession
    from stagecraft.errors import Interrupted

    color = wants_color(sys.stderr, no_color=app.no_color)
    prefixer = LinePrefixer(["proxy", "backend", "frontend"], color=color)
    on_output: OutputSink = stream_sink(sys.stderr, prefixer)

    def on_event(event: ProcessEvent) -> None:
        _show_event(event, prefixer)

    board = None
    if options.dashboard:
        from stagecraft.dashboard.devboard import DevBoard

        board = DevBoard()
        on_output = board.tee(on_output)
    events: EventSink = board.tee_event(on_event) if board is not None else on_event
    session = DevSession(loaded, options, on_output=on_output, on_event=events)
    server = _serve_dashboard(board, session) if board is not None else None
    signals = _Signals(session)
    signals.install()
    try:
        try:
            summary = session.start()
        except KeyboardInterrupt:
            raise Interrupted(
                "dev: interrupted while starting; everything it started was stopped"
            ) from None
        signals.phase = "running"
        _show_summary(app, summary)
        while not session.wait(0.5):
            pass
        signals.phase = "stopping"
        sys.stderr.write("stagecraft dev: stopping (Ctrl-C again to force)\n")
        sys.stderr.flush()
        report = session.stop()
        _show_stop(app, report)
    finally:
        signals.phase = "stopping"
        session.stop()
        if board is not None:
            board.closed.set()
        if server is not None:
            server.stop()
        signals.restore()


def _serve_dashboard(board: DevBoard, session: DevSession) -> Server | None:
    """Serve the dev dashboard on its loopback port (the proxy routes its URL to it)."""
    from stagecraft.dashboard.app import dev_app
    from stagecraft.dashboard.security import Guard
    from stagecraft.dashboard.serve import Server, bind_loopback

    route = session.plan.dashboard
    port = session.dashboard_port
    if route is None or port is None:
        return None
    board.attach(session)
    sock = bind_loopback(port)
    server = Server(dev_app(board, Guard.for_public_url(route.url, port)), sock)
    server.start()
    return server


def _show_event(event: ProcessEvent, prefixer: LinePrefixer) -> None:
    """The last output lines of a crashed or failed process (the event itself is logged)."""
    if str(event.kind) not in ("crashed", "failed") or not event.last_lines:
        return
    prefix = prefixer.prefix(event.name)
    lines = [f"{prefix}[stagecraft] {event.message}; its last output:"]
    lines += [f"{prefix}    {line}" for line in event.last_lines[-10:]]
    sys.stderr.write("\n".join(lines) + "\n")
    sys.stderr.flush()


def _show_summary(app: AppContext, summary: DevSummary) -> None:
    if app.json:
        app.output.json(summary.to_json())
        return
    from stagecraft.dev.plan import redact_value

    plan = summary.plan
    states = {p.name: p for p in summary.processes}
    width = max([len(r.url) for r in plan.routes] + [8])
    lines = [f"stagecraft dev: ready in {summary.ready_after:.1f}s", ""]
    for route in plan.routes:
        target = route.describe()
        upstream = f"127.0.0.1:{route.port}" if route.port else "?"
        state = states.get(route.kind)
        shown = str(state.state) if state is not None else "running"
        lines.append(f"  {route.url.ljust(width)}  -> {target} ({upstream})  {shown}")
    if "proxy" in states:
        opts = plan.options
        how = (
            f"https :{opts.https_port}, http :{opts.http_port} redirects"
            if plan.https
            else (f"http :{opts.http_port}")
        )
        lines.append(f"  proxy: caddy ({how}), {states['proxy'].state}")
    for name, addresses in summary.infra.items():
        lines.append(f"  {name}: running, {', '.join(addresses) or 'no published ports'}")
    for key, value in sorted(plan.env.items()):
        if key != "NODE_EXTRA_CA_CERTS":
            lines.append(f"  {key}={redact_value(key, value)}")
    if summary.migrations:
        lines.append(f"  migrations applied: {', '.join(summary.migrations)}")
    if summary.ca_cert:
        lines.append(f"  dev CA: {summary.ca_cert} (trust it with `stagecraft dev trust`)")
    if summary.hosts_file:
        lines.append(f"  hosts file: {summary.hosts_file}")
    if plan.dashboard is not None:
        lines.append(f"  dashboard: {plan.dashboard.url}")
    lines += ["", "Press Ctrl-C to stop (twice to force)."]
    for line in lines:
        _say(app, line)


def _show_stop(app: AppContext, report: StopReport) -> None:
    infra = {"untouched": "", "stopped": ", infra stopped", "removed": ", infra removed"}
    done = "killed" if report.forced else "stopped"
    tail = infra.get(report.infra, f", infra {report.infra}")
    hosts = ", hosts file restored" if report.hosts_restored else ""
    sys.stderr.write(f"stagecraft dev: {done}{tail}{hosts}\n")
    if report.problems:
        from stagecraft.errors import StagecraftError

        raise StagecraftError(
            f"dev: stopping left problems: {'; '.join(report.problems)}",
            hint="check `docker compose ps` and the hosts file",
        )


def _show_plan(app: AppContext, plan: DevPlan) -> None:
    data = plan.to_json()
    if app.json:
        app.output.json(data)
        return
    _say(app, f"stagecraft dev would (project {plan.project}, domain {plan.domain}):")
    infra = data["infra"]
    if infra["services"]:
        _say(app, f"  start infra: docker compose up --wait {' '.join(infra['services'])}")
        for port in infra["ports"]:
            where = port["published"] or "a free port"
            _say(
                app,
                f"    {port['service']}:{port['target']} on {port['host_ip']}:{where} "
                f"({port['reason']})",
            )
    if data["migrate"]:
        _say(app, f"  apply pending migrations of {', '.join(d.name for d in plan.databases)}")
    for proc in data["processes"]:
        _say(app, f"  run {proc['name']}: {' '.join(proc['argv'])} (in {proc['cwd']})")
    for route in data["routes"]:
        _say(app, f"  route {route['url']} -> {route['target']}")
    if plan.hosts_entries:
        verb = "manage" if plan.manage_hosts_file else "needs"
        _say(app, f"  hosts file: {verb} {', '.join(plan.hosts_entries)}")
    _say(app, f"  on exit: {data['on_stop']} infra")


def _say(app: AppContext, text: str) -> None:
    if not app.quiet:
        app.output.console.print(text, markup=False, highlight=False)
