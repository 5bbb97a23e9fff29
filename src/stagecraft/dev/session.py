"""One ``stagecraft dev`` session: infra, migrations, certificates, proxy, dev servers, stop.

:class:`DevSession` runs SPEC section 5 in order:

1. check before starting anything: Docker answers, the caddy binary exists,
   every dev command resolves, every port is free (each failure one line
   naming the component: ``infra``, ``proxy``, ``backend``, ``frontend``);
2. the local CA and a leaf certificate for exactly the dev hostnames;
3. ``docker compose up --wait`` of the infra services (generated override
   under ``.stagecraft/dev``), then the host ports Docker picked;
4. pending migrations of the dev databases (``apply_dev``; opt out with
   ``DevOptions(migrate=False)``);
5. managed hosts-file lines for names outside ``*.localhost`` (opt-in);
6. the proxy and the dev servers under one :class:`Supervisor`, with
   ``DATABASE_URL`` & co. in their environment; wait until all are ready.

:meth:`DevSession.stop` undoes it all in reverse, whatever got started: the
process trees (stop signal, then SIGKILL after the timeout), the hosts-file
lines, the infra containers (stopped, or removed with ``down``). A failure
while starting stops what was started before the error is raised.
:meth:`DevSession.force` is the second Ctrl-C: everything is killed at once.

The session never prints: dev-server output and process events go to the
callbacks, progress to the ``stagecraft`` logger.

Example::

    session = DevSession(load_project(), DevOptions(down=True),
                         on_output=stream_sink(sys.stderr, prefixer), on_event=show)
    try:
        summary = session.start()      # DevError/DevProcessError/... naming the component
        print(summary.plan.urls())
        session.wait()                 # until request_stop() (e.g. from a SIGINT handler)
    finally:
        report = session.stop()
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from stagecraft import log
from stagecraft.dev.infra import Infra
from stagecraft.dev.logprefix import OutputSink
from stagecraft.dev.model import DevProcessError, EventSink, ProcessSpec, ProcessStatus
from stagecraft.dev.plan import DevOptions, DevPlan, Resolved, build_plan, database_env
from stagecraft.dev.proxy import DevProxy, free_port

if TYPE_CHECKING:
    from stagecraft.config.loader import LoadedConfig
    from stagecraft.dev.ca import CA
    from stagecraft.dev.certs import LeafCert
    from stagecraft.dev.supervisor import Supervisor
    from stagecraft.providers.migration import MigrationReport

logger = logging.getLogger(__name__)

PROXY_SERVING_TIMEOUT = 15.0
MIGRATION_WAIT = 30.0


@dataclass(frozen=True)
class DevSummary:
    """The session once everything is ready: what runs where."""

    plan: DevPlan
    ready_after: float
    processes: tuple[ProcessStatus, ...]
    infra: Mapping[str, tuple[str, ...]]
    """Infra service -> its host addresses (``127.0.0.1:32771->5432``)."""
    migrations: tuple[str, ...]
    ca_cert: str | None
    hosts_file: str | None
    """What happened to the hosts file, in words (None: nothing to do)."""

    def to_json(self) -> dict[str, Any]:
        """JSON-ready data for ``--json``."""
        return {
            "ready_after": round(self.ready_after, 3),
            "urls": self.plan.urls(),
            "dashboard": self.plan.dashboard.url if self.plan.dashboard is not None else None,
            "processes": [
                {"name": p.name, "state": str(p.state), "pid": p.pid, "port": p.port}
                for p in self.processes
            ],
            "infra": {name: list(addresses) for name, addresses in self.infra.items()},
            "migrations": list(self.migrations),
            "ca_cert": self.ca_cert,
            "hosts_file": self.hosts_file,
        }


@dataclass
class StopReport:
    """What :meth:`DevSession.stop` did; ``problems`` lists steps that failed (already logged)."""

    processes_stopped: bool = False
    infra: str = "untouched"
    hosts_restored: bool = False
    forced: bool = False
    problems: list[str] = field(default_factory=list)


class DevSession:
    """Start, watch and stop the whole local environment (see the module docstring)."""

    def __init__(
        self,
        loaded: LoadedConfig,
        options: DevOptions | None = None,
        *,
        on_output: OutputSink | None = None,
        on_event: EventSink | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.loaded = loaded
        self.options = options or DevOptions()
        if self.options.dashboard and self.options.dashboard_port is None:
            self.options = replace(self.options, dashboard_port=free_port())
        self.on_output = on_output
        self.on_event = on_event
        self.environ = dict(os.environ if environ is None else environ)
        self.plan = build_plan(loaded, self.options)
        self.infra = Infra(self.plan, environ=self.environ)
        self.admin_port = self.options.admin_port or free_port()
        self._supervisor: Supervisor | None = None
        self._hosts_added = False
        self._stop_requested = threading.Event()
        self._forced = threading.Event()
        self._stopped = False
        self._lock = threading.Lock()
        self._migrate_lock = threading.Lock()
        self._resolved: Resolved | None = None

    # -- start -----------------------------------------------------------------------

    def start(self) -> DevSummary:
        """Bring everything up and wait until it is ready; on any failure stop what started."""
        started = time.monotonic()
        try:
            return self._start(started)
        except BaseException:
            self.stop()
            raise

    def _start(self, started: float) -> DevSummary:
        proxy_needed = bool(self.plan.proxy_routes)
        self._preflight(proxy_needed)
        ca, leaf = self._certificates()
        ca_cert = ca.cert_path if ca is not None else None
        self.infra.write_override()
        self.infra.up()
        addresses = self.infra.addresses()
        resolved = database_env(self.plan, self.loaded, Resolved(addresses=addresses))
        core_env = dict(resolved.env)
        if ca_cert is not None:
            core_env.setdefault("NODE_EXTRA_CA_CERTS", str(ca_cert))
        resolved = Resolved(addresses=addresses, env=core_env)
        self._resolved = resolved
        migrations = self._migrate(resolved) if self.options.migrate else []
        self.plan = build_plan(self.loaded, self.options, resolved, ca_cert=ca_cert)
        hosts_note = self._hosts_file()
        specs: list[ProcessSpec] = []
        proxy: DevProxy | None = None
        if proxy_needed:
            proxy = DevProxy(self.plan, leaf, admin_port=self.admin_port)
            proxy.write_config()
            specs.append(proxy.process_spec())
        specs += [ProcessSpec.from_dev_process(p) for p in self.plan.processes]
        supervisor = self._supervise(specs)
        supervisor.wait_ready(self.options.ready_timeout)
        if proxy is not None:
            proxy.wait_serving(PROXY_SERVING_TIMEOUT)
        ready_after = time.monotonic() - started
        log.event(logger, logging.INFO, f"ready in {ready_after:.1f}s", phase="dev")
        return DevSummary(
            plan=self.plan,
            ready_after=ready_after,
            processes=tuple(supervisor.status()),
            infra=_infra_addresses(self.plan, addresses),
            migrations=tuple(migrations),
            ca_cert=str(ca_cert) if ca_cert is not None else None,
            hosts_file=hosts_note,
        )

    def _preflight(self, proxy_needed: bool) -> None:
        """Everything that can be checked before anything starts."""
        from stagecraft.dev.supervisor import preflight

        self.infra.check_docker()
        for proc in self.plan.processes:
            preflight(ProcessSpec.from_dev_process(proc))
        if proxy_needed:
            proxy = DevProxy(self.plan, None, admin_port=self.admin_port)
            proxy.caddy()
            proxy.check_ports()

    def _certificates(self) -> tuple[CA | None, LeafCert | None]:
        if not self.plan.https or not self.plan.routes:
            return None, None
        from stagecraft.dev.certs import ensure_ca, ensure_leaf

        ca = ensure_ca(environ=self.environ)
        leaf = ensure_leaf(ca, self.plan.hostnames, self.plan.state_dir / "certs")
        what = f"issued ({leaf.reason})" if leaf.issued else "reused"
        log.event(
            logger,
            logging.INFO,
            f"certificate for {', '.join(leaf.hostnames)} {what}; CA: {ca.cert_path} ({ca.source})",
            phase="certs",
        )
        return ca, leaf

    def _migrate(self, resolved: Resolved) -> list[str]:
        if not self.plan.databases:
            return []
        from stagecraft.migrate.hooks import apply_dev

        environ = {**self.environ, **resolved.env}
        results = apply_dev(self.loaded, environ=environ, wait=MIGRATION_WAIT)
        if not results:
            log.event(logger, logging.INFO, "databases are up to date", phase="migrate")
        return [f"{r.database}: {r.name}" for r in results]

    def _hosts_file(self) -> str | None:
        entries = self.plan.hosts_entries
        if not entries:
            return None
        from stagecraft.dev.hostsfile import DEFAULT_PATH, HostsFile

        path = self.options.hosts_path or DEFAULT_PATH
        if not self.plan.manage_hosts_file:
            note = (
                f"{', '.join(entries)} must resolve to 127.0.0.1: add them to {path}, "
                "or set dev.hosts_file: true"
            )
            log.event(logger, logging.WARNING, note, phase="hosts")
            return note
        hosts = HostsFile(self.plan.project, path)
        self._hosts_added = True
        hosts.add(entries)
        return f"added {', '.join(entries)} to {path} (removed on exit)"

    def _supervise(self, specs: list[ProcessSpec]) -> Supervisor:
        from stagecraft.dev.supervisor import Supervisor

        supervisor = Supervisor(specs, on_output=self.on_output, on_event=self.on_event)
        with self._lock:
            if self._forced.is_set() or self._stopped:
                raise KeyboardInterrupt
            self._supervisor = supervisor
        supervisor.start()
        return supervisor

    # -- running ---------------------------------------------------------------------

    def status(self) -> list[ProcessStatus]:
        """The supervised processes now (empty before they start)."""
        return self._supervisor.status() if self._supervisor is not None else []

    @property
    def dashboard_port(self) -> int | None:
        """Where the dev dashboard should listen on 127.0.0.1 (None: it is off)."""
        return self.options.dashboard_port if self.options.dashboard else None

    def last_lines(self, name: str, count: int = 20) -> tuple[str, ...]:
        """The last output lines of supervised process ``name`` (empty before it starts)."""
        supervisor = self._supervisor
        return supervisor.last_lines(name, count) if supervisor is not None else ()

    def restart(self, name: str, *, wait: bool = True) -> None:
        """Stop dev server ``name`` and start it again (DevProcessError: unknown, or not now).

        ``wait=False`` returns as soon as it is ``restarting`` (see :meth:`Supervisor.restart`).
        """
        supervisor = self._supervisor
        names = {p.name for p in self.plan.processes}
        if name not in names:
            known = ", ".join(sorted(names)) or "none"
            raise DevProcessError(name, "is not a dev server", hint=f"dev servers: {known}")
        if supervisor is None or self._stop_requested.is_set():
            raise DevProcessError(name, "cannot restart now: the session is not running")
        supervisor.restart(name, wait=wait)

    def migrate(self) -> list[str]:
        """Apply pending migrations again (one run at a time); ``database: name`` of each."""
        resolved = self._resolved
        if resolved is None:
            raise DevProcessError("migrate", "cannot migrate yet: the infra is not up")
        with self._migrate_lock:
            return self._migrate(resolved)

    def migration_reports(self) -> list[MigrationReport]:
        """Applied and pending migrations of every dev database (empty before the infra is up)."""
        resolved = self._resolved
        if resolved is None or not self.plan.databases:
            return []
        from stagecraft.migrate.runner import engine_for, open_target, setups

        environ = {**self.environ, **resolved.env}
        reports = []
        for setup in setups(self.loaded):
            with open_target(self.loaded, setup, environ=environ) as target:
                reports.append(engine_for(setup).report(target))
        return reports

    def infra_addresses(self) -> dict[str, tuple[str, ...]]:
        """Infra service -> its host addresses (empty before the infra is up)."""
        resolved = self._resolved
        if resolved is None:
            return {}
        return _infra_addresses(self.plan, resolved.addresses)

    def infra_states(self) -> dict[str, str]:
        """Each infra service's container state (``running``, ``exited``... or ``missing``)."""
        if not self.infra.started:
            return {name: "pending" for name in self.plan.infra}
        return self.infra.states()

    def request_stop(self) -> None:
        """Make :meth:`wait` return (safe from a signal handler or another thread)."""
        self._stop_requested.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until :meth:`request_stop`; False if ``timeout`` passed first."""
        return self._stop_requested.wait(timeout)

    def force(self) -> None:
        """Kill every process tree now and make the infra stop a ``kill`` (a second Ctrl-C)."""
        self._forced.set()
        self._stop_requested.set()
        supervisor = self._supervisor
        if supervisor is not None:
            supervisor.kill()

    # -- stop ------------------------------------------------------------------------

    def stop(self) -> StopReport:
        """Stop whatever this session started, in reverse order; safe to call more than once."""
        report = StopReport()
        with self._lock:
            if self._stopped:
                return report
            self._stopped = True
        self._stop_requested.set()
        supervisor = self._supervisor
        if supervisor is not None:
            try:
                if self._forced.is_set():
                    supervisor.kill()
                supervisor.stop()
                report.processes_stopped = True
            except Exception as exc:  # keep stopping the rest
                report.problems.append(f"dev processes: {exc}")
        if self._hosts_added:
            report.hosts_restored = self._restore_hosts(report)
        if self.infra.started:
            report.infra = self._stop_infra(report)
        report.forced = self._forced.is_set()
        for problem in report.problems:
            log.event(logger, logging.ERROR, f"while stopping: {problem}", phase="stop")
        return report

    def _restore_hosts(self, report: StopReport) -> bool:
        from stagecraft.dev.hostsfile import DEFAULT_PATH, HostsFile

        try:
            HostsFile(self.plan.project, self.options.hosts_path or DEFAULT_PATH).remove()
            return True
        except Exception as exc:
            report.problems.append(f"hosts file: {exc}")
            return False

    def _stop_infra(self, report: StopReport) -> str:
        try:
            if self.options.down:
                self.infra.down()
                return "removed"
            self.infra.stop(force=self._forced.is_set())
            return "stopped"
        except Exception as exc:
            report.problems.append(f"infra: {exc}")
            return "failed"


def _infra_addresses(
    plan: DevPlan, addresses: Mapping[tuple[str, int], tuple[str, int]]
) -> dict[str, tuple[str, ...]]:
    found: dict[str, list[str]] = {name: [] for name in plan.infra}
    for (service, target), (host, port) in sorted(addresses.items()):
        found.setdefault(service, []).append(f"{host}:{port}->{target}")
    return {name: tuple(items) for name, items in found.items()}
