"""What the dev dashboard shows of a running ``stagecraft dev`` session.

:class:`DevBoard` is fed by the session's own sinks (every output line and
every process event, the same ones the terminal gets) and keeps the last
:data:`MAX_LINES` lines with a sequence number, so a page can stream what came
after the last line it saw. It shapes the session's processes (proxy and dev
servers, from the supervisor), its infra services (``docker compose ps``, read
at most every ``interval`` seconds) and its migrations (applied and pending,
same interval) into plain values, and runs the page's actions: restart a dev
server, apply pending migrations again. Lines and values go through
:func:`stagecraft.redact.redact` with the session's DSN passwords added.

Example::

    board = DevBoard()
    session = DevSession(loaded, options, on_output=board.tee(sink), on_event=board.tee_event(show))
    board.attach(session)
    board.processes()     # [{"name": "backend", "state": "ready", "uptime": "12s", ...}, ...]
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from stagecraft.dashboard.ansi import level, strip, to_html
from stagecraft.errors import StagecraftError, UsageError
from stagecraft.redact import Redactor, is_dsn, redact

if TYPE_CHECKING:
    from stagecraft.dev.logprefix import OutputSink
    from stagecraft.dev.model import EventSink, ProcessEvent
    from stagecraft.dev.session import DevSession

MAX_LINES = 5000
CRASHED_STATES = frozenset({"crashed", "failed", "exited"})


@dataclass(frozen=True)
class LogEntry:
    """One output line of one process (``stream``: stdout, stderr, or event)."""

    seq: int
    name: str
    stream: str
    text: str
    """Redacted, ANSI sequences kept (rendered by :meth:`html`)."""
    at: float

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "name": self.name,
            "stream": self.stream,
            "text": strip(self.text),
            "html": to_html(self.text),
            "level": level(self.text),
            "at": self.at,
        }


class DevBoard:
    """The dashboard's view of one dev session (see the module docstring)."""

    def __init__(self, *, interval: float = 5.0, max_lines: int = MAX_LINES) -> None:
        self.interval = interval
        self.session: DevSession | None = None
        self._lines: deque[LogEntry] = deque(maxlen=max_lines)
        self._seq = 0
        self._lock = threading.Lock()
        self.changed = threading.Condition(self._lock)
        self._state_seq = 0
        self._redactor = Redactor()
        self._learned_plan: int | None = None
        self._infra: tuple[float, dict[str, str]] | None = None
        self._infra_lock = threading.Lock()
        self._migrations: tuple[float, list[dict[str, Any]]] | None = None
        self._migrations_lock = threading.Lock()
        self._action_lock = threading.Lock()
        self.closed = threading.Event()

    def attach(self, session: DevSession) -> None:
        """Show ``session`` (its processes, infra, migrations; its actions)."""
        self.session = session

    # -- feeding -------------------------------------------------------------------------

    def tee(self, sink: OutputSink | None) -> OutputSink:
        """An output sink that records each line here and passes it on to ``sink``."""

        def both(name: str, stream: str, line: str) -> None:
            self.output(name, stream, line)
            if sink is not None:
                sink(name, stream, line)

        return both

    def tee_event(self, sink: EventSink | None) -> EventSink:
        """An event sink that records each event here and passes it on to ``sink``."""

        def both(event: ProcessEvent) -> None:
            self.event(event)
            if sink is not None:
                sink(event)

        return both

    def output(self, name: str, stream: str, line: str) -> None:
        """Record one output line of process ``name``."""
        self._append(name, stream, self.redact(line))

    def event(self, event: ProcessEvent) -> None:
        """Record a process event as a line of its log; wake the pages (state changed)."""
        self._append(event.name, "event", self.redact(f"[stagecraft] {event.message}"))
        with self.changed:
            self._state_seq += 1
            self.changed.notify_all()

    def _append(self, name: str, stream: str, text: str) -> None:
        with self.changed:
            self._seq += 1
            self._lines.append(LogEntry(self._seq, name, stream, text, time.time()))
            self.changed.notify_all()

    # -- reading -------------------------------------------------------------------------

    @property
    def state_seq(self) -> int:
        """Grows with every process event (a page refreshes its table when it changes)."""
        return self._state_seq

    def lines_since(self, seq: int, *, limit: int = 500) -> list[LogEntry]:
        """The lines after ``seq`` (at most the ``limit`` newest of them)."""
        with self._lock:
            found = [entry for entry in self._lines if entry.seq > seq]
        return found[-limit:]

    def wait_for_lines(self, seq: int, timeout: float) -> bool:
        """Block until a line after ``seq`` exists (True) or ``timeout`` passes (False)."""
        with self.changed:
            return self.changed.wait_for(lambda: self._seq > seq, timeout)

    def redact(self, text: str) -> str:
        """``text`` with the session's DSN passwords and every password syntax hidden."""
        self._learn()
        return redact(text, self._redactor)

    def _learn(self) -> None:
        session = self.session
        if session is None or id(session.plan) == self._learned_plan:
            return
        self._learned_plan = id(session.plan)
        for value in session.plan.env.values():
            if is_dsn(value):
                self._redactor.add_dsn(value)

    def processes(self) -> list[dict[str, Any]]:
        """Proxy, dev servers and infra services: state, pid, uptime, restarts, URL, port."""
        session = self.session
        if session is None:
            return []
        from stagecraft.dev.plan import LOOPBACK, public_url

        plan = session.plan
        opts = plan.options
        urls = {route.kind: route.url for route in plan.routes if route.kind != "service"}
        urls["proxy"] = public_url(f"*.{plan.domain}", plan.https, opts.https_port, opts.http_port)
        rows: list[dict[str, Any]] = []
        infra = self.infra_states()
        addresses = session.infra_addresses()
        for name in plan.infra:
            rows.append(
                {
                    "name": name,
                    "kind": "infra",
                    "state": _infra_state(infra.get(name, "unknown")),
                    "detail": infra.get(name, "unknown"),
                    "pid": None,
                    "port": ", ".join(addresses.get(name, ())) or None,
                    "uptime": None,
                    "restarts": None,
                    "url": None,
                    "last_lines": [],
                    "restartable": False,
                }
            )
        dev_servers = {p.name for p in plan.processes}
        for status in session.status():
            state = str(status.state)
            crashed = state in CRASHED_STATES
            last = [self.redact(line) for line in session.last_lines(status.name, 15)]
            rows.append(
                {
                    "name": status.name,
                    "kind": "dev server" if status.name in dev_servers else status.name,
                    "state": state,
                    "detail": _exit_detail(status.exit_code) if crashed else "",
                    "pid": status.pid,
                    "port": f"{LOOPBACK}:{status.port}" if status.port else None,
                    "uptime": _uptime(status.uptime),
                    "restarts": status.restarts,
                    "url": urls.get(status.name),
                    "last_lines": [to_html(line) for line in last] if crashed else [],
                    "restartable": status.name in dev_servers,
                }
            )
        return rows

    def infra_states(self) -> dict[str, str]:
        """The infra services' states, read at most every ``interval`` seconds."""
        session = self.session
        if session is None:
            return {}
        with self._infra_lock:
            cached = self._infra
            if cached is not None and time.monotonic() - cached[0] < self.interval:
                return cached[1]
            states = session.infra_states()
            self._infra = (time.monotonic(), states)
            return states

    def migrations(self) -> list[dict[str, Any]]:
        """Applied and pending migrations of each dev database (read at most every interval)."""
        session = self.session
        if session is None:
            return []
        with self._migrations_lock:
            cached = self._migrations
            if cached is not None and time.monotonic() - cached[0] < self.interval:
                return cached[1]
            try:
                shaped = [_report(report) for report in session.migration_reports()]
            except StagecraftError as exc:
                shaped = [{"database": "?", "error": self.redact(exc.message), "migrations": []}]
            self._migrations = (time.monotonic(), shaped)
            return shaped

    def to_json(self) -> dict[str, Any]:
        """Everything a page shows but the logs (``GET /api/state``)."""
        return {"processes": self.processes(), "migrations": self.migrations()}

    # -- actions ---------------------------------------------------------------------------

    def restart(self, name: str) -> None:
        """Restart dev server ``name``; returns once it is ``restarting`` (its stop goes on).

        The page follows the rest (starting, ready) through the process's events.
        """
        self._running().restart(name, wait=False)
        with self._lock:
            self._state_seq += 1

    def migrate(self) -> list[str]:
        """Apply pending migrations again; ``database: name`` of each one applied."""
        session = self._running()
        if not self._action_lock.acquire(blocking=False):
            raise UsageError("migrations are already running", hint="wait for them to finish")
        try:
            applied = session.migrate()
        finally:
            self._action_lock.release()
            with self._migrations_lock:
                self._migrations = None
        self._append("migrate", "event", f"[stagecraft] applied: {', '.join(applied) or 'none'}")
        return applied

    def _running(self) -> DevSession:
        if self.session is None:
            raise UsageError("the dev session has not started", hint="wait for it to start")
        return self.session


def _report(report: Any) -> dict[str, Any]:
    return {
        "database": report.database,
        "error": None,
        "migrations": [
            {"version": m.version, "name": m.name, "state": str(m.state)} for m in report.migrations
        ],
        "pending": len(report.pending),
        "applied": len(report.applied),
    }


def _infra_state(detail: str) -> str:
    """A container state in the dashboard's words (``running (healthy)`` is ready)."""
    if detail.startswith("running"):
        return "starting" if "(starting)" in detail else "ready"
    if detail in ("restarting", "created", "pending"):
        return "starting" if detail != "restarting" else "restarting"
    if detail in ("exited", "dead"):
        return "stopped"
    return detail


def _exit_detail(code: int | None) -> str:
    if code is None:
        return ""
    from stagecraft.dev.model import describe_exit

    return describe_exit(code)


def _uptime(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    from stagecraft.ops.status import format_uptime

    return format_uptime(seconds)
