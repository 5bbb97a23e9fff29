"""Run the long-lived dev processes of ``stagecraft dev`` side by side.

The :class:`Supervisor` starts each :class:`ProcessSpec` in its own process
group, merges their output into one sink (``(name, stream, line)``; render it
with :mod:`stagecraft.dev.logprefix`), tells when each is ready (HTTP probe or
log pattern), reports a crash (exit code and last lines) while the others keep
running, restarts per the spec's :class:`~stagecraft.dev.restart.RestartPolicy`,
and stops every process tree it started. It never prints: events go to the
``on_event`` callback and to the ``stagecraft`` logger.

How no process is left behind: each process is a session and process-group
leader, and stop signals go to the whole group (grandchildren such as node or
esbuild workers included). A descendant that moves into a session of its own
(``setsid``) leaves the group, so the supervisor also samples every tree through
``/proc`` (every ``track_interval`` seconds, and again at stop) and signals such
escapees one by one; processes are identified by pid and start time, so a
reused pid is never signalled. Limit: a descendant that detaches *and* loses
its parent between two samples (a double-forking daemon, within
``track_interval``) can escape; dev servers do not do this.

Callbacks run on the supervisor's threads, one at a time.
"""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from stagecraft.dev import proctree
from stagecraft.dev.hub import Hub
from stagecraft.dev.logprefix import OutputSink
from stagecraft.dev.managed import KILL_WAIT, ManagedProcess, Run
from stagecraft.dev.model import (
    DevProcessError,
    EventKind,
    EventSink,
    ProcessEvent,
    ProcessSpec,
    ProcessState,
    ProcessStatus,
    describe_exit,
)
from stagecraft.dev.readiness import describe
from stagecraft.dev.restart import RestartPolicy

__all__ = [
    "DevProcessError",
    "EventKind",
    "ProcessEvent",
    "ProcessSpec",
    "ProcessState",
    "ProcessStatus",
    "RestartPolicy",
    "Supervisor",
    "describe_exit",
]

_ENDED = (ProcessState.FAILED, ProcessState.STOPPED, ProcessState.CRASHED, ProcessState.EXITED)


class Supervisor:
    """Start, watch and stop a set of dev processes.

    Example::

        specs = [
            ProcessSpec("api", ("node", "server.js"), cwd=Path("api"), port=4000,
                        readiness=Readiness(http_path="/healthz")),
            ProcessSpec("web", ("npx", "vite"), cwd=Path("web"), port=5173,
                        readiness=Readiness(log_pattern=r"Local:")),
        ]
        prefixer = LinePrefixer([s.name for s in specs], color=wants_color(sys.stderr))
        with Supervisor(specs, on_output=stream_sink(sys.stderr, prefixer),
                        on_event=lambda e: print(e.describe())) as sup:
            sup.start()         # DevProcessError: missing command, port taken
            sup.wait_ready()    # DevProcessError: timed out, exited before ready
            sup.wait_stopped()  # until stop() is called (e.g. by a SIGINT handler)

    A second :meth:`stop` while the first is still waiting (a second Ctrl-C)
    kills everything at once.
    """

    def __init__(
        self,
        specs: Sequence[ProcessSpec],
        *,
        on_output: OutputSink | None = None,
        on_event: EventSink | None = None,
        keep_lines: int = 20,
        track_interval: float = 0.5,
    ) -> None:
        names = [spec.name for spec in specs]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"duplicate dev process names: {', '.join(duplicates)}")
        self._hub = Hub(on_output, on_event)
        self._procs = [ManagedProcess(spec, self._hub, keep_lines=keep_lines) for spec in specs]
        self._track_interval = track_interval
        self._tracker: threading.Thread | None = None
        self._started = False
        self._stop_started = False
        self._stopped = threading.Event()

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        """Check every process can start (command, directory, port), then start them all.

        Raises :class:`DevProcessError` for the first problem found, before
        anything runs; if the OS refuses a command after others started, those
        are stopped again before the error is raised.
        """
        with self._hub.lock:
            if self._started:
                raise RuntimeError("the supervisor was already started")
            self._started = True
        for proc in self._procs:
            preflight(proc.spec)
        try:
            for proc in self._procs:
                proc.start()
        except BaseException:
            self.stop()
            raise
        self._tracker = threading.Thread(target=self._track, name="dev-tracker", daemon=True)
        self._tracker.start()

    def wait_ready(self, timeout: float | None = None) -> None:
        """Block until every process is ready.

        Raises :class:`DevProcessError` naming the process when one fails to
        become ready (its readiness timeout passed, or it exited first: exit
        code and last lines included), or when ``timeout`` seconds pass first.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._hub.changed:
            while True:
                for proc in self._procs:
                    if proc.failure is not None and not proc.ever_ready:
                        raise proc.failure
                waiting = [proc for proc in self._procs if not proc.ever_ready]
                if not waiting:
                    return
                if self._hub.stopping.is_set():
                    raise DevProcessError(
                        waiting[0].spec.name, "stopped before it was ready", hint=None
                    )
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise _not_ready_in_time(waiting, timeout or 0.0)
                self._hub.changed.wait(0.5 if remaining is None else min(remaining, 0.5))

    def wait_stopped(self, timeout: float | None = None) -> bool:
        """Block until :meth:`stop` has finished; False if ``timeout`` passed first."""
        return self._stopped.wait(timeout)

    def status(self) -> list[ProcessStatus]:
        """Every process as it is now, in the order given."""
        with self._hub.lock:
            return [proc.status() for proc in self._procs]

    def restart(self, name: str, *, wait: bool = True) -> None:
        """Stop process ``name`` (its whole tree) and start it again.

        Raises KeyError for an unknown name and :class:`DevProcessError` while
        the supervisor is stopping. The process counts one more restart and
        goes through ``restarting``, ``starting`` and ``ready`` again. With
        ``wait``, returns once the old tree is gone (the new one is starting);
        without, as soon as the process is ``restarting`` (a thread stops it).
        """
        proc = self._proc(name)
        run = proc.request_restart()
        if run is None:
            return
        if wait:
            proc.terminate(run, proc.spec.stop_timeout)
            return
        threading.Thread(
            target=proc.terminate,
            args=(run, proc.spec.stop_timeout),
            name=f"dev-{name}-restart",
            daemon=True,
        ).start()

    def last_lines(self, name: str, count: int = 20) -> tuple[str, ...]:
        """The last ``count`` output lines of process ``name``."""
        return self._proc(name).last_lines(count)

    @property
    def stopping(self) -> bool:
        """Whether :meth:`stop` (or :meth:`kill`) has been called."""
        return self._hub.stopping.is_set()

    def stop(self) -> None:
        """Stop every process tree: stop signal to each group, SIGKILL after its stop timeout.

        Returns once no process of any tree is left. Called again while a stop
        is in progress (from another thread or a signal handler), it kills
        everything immediately instead.
        """
        with self._hub.lock:
            again = self._stop_started
            self._stop_started = True
            self._hub.stopping.set()
        if again:
            self.kill()
            return
        try:
            self._stop_all()
        finally:
            self._stopped.set()

    def kill(self) -> None:
        """SIGKILL every process tree now (what a second Ctrl-C does)."""
        self._hub.forced.set()
        self._hub.stopping.set()
        for proc in self._procs:
            run = proc.run
            if run is not None:
                run.stop_requested = True
                run.signal(signal.SIGKILL)

    def __enter__(self) -> Supervisor:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self._stopped.is_set():
            self.stop()

    # -- internals ---------------------------------------------------------------------

    def _proc(self, name: str) -> ManagedProcess:
        for proc in self._procs:
            if proc.spec.name == name:
                return proc
        raise KeyError(name)

    def _stop_all(self) -> None:
        pending: list[tuple[ManagedProcess, Run, float]] = []
        for proc in self._procs:
            run = proc.begin_stop()
            if run is not None:
                run.signal(proc.spec.stop_signal)
                pending.append((proc, run, time.monotonic() + proc.spec.stop_timeout))
        self._hub.notify()
        killed: set[int] = set()
        while pending:
            now = time.monotonic()
            still: list[tuple[ManagedProcess, Run, float]] = []
            for proc, run, deadline in pending:
                if not run.alive():
                    continue
                until = deadline
                if id(run) not in killed and (now >= deadline or self._hub.forced.is_set()):
                    run.signal(signal.SIGKILL)
                    killed.add(id(run))
                    until = now + KILL_WAIT
                elif id(run) in killed and now >= deadline:
                    continue  # unkillable (uninterruptible sleep): give up waiting on it
                still.append((proc, run, until))
            pending = still
            if pending:
                self._hub.forced.wait(0.05)
        for proc in self._procs:
            if proc.monitor is not None and proc.monitor is not threading.current_thread():
                proc.monitor.join(timeout=KILL_WAIT)
        if self._tracker is not None and self._tracker is not threading.current_thread():
            self._tracker.join(timeout=2.0)

    def _track(self) -> None:
        while not self._hub.stopping.wait(self._track_interval):
            table = proctree.process_table()
            with self._hub.lock:
                runs = [proc.run for proc in self._procs if proc.run is not None]
            for run in runs:
                run.track(table)


def preflight(spec: ProcessSpec) -> None:
    """Raise :class:`DevProcessError` if ``spec`` cannot start: directory, command, port."""
    if spec.cwd is not None and not spec.cwd.is_dir():
        raise DevProcessError(
            spec.name,
            f"working directory {spec.cwd} does not exist",
            hint="create it, or fix the workdir in stagecraft.yml",
        )
    resolve_command(spec)
    if spec.port is not None and proctree.port_in_use(spec.port):
        holders = proctree.port_holders(spec.port)
        by = f" by {', '.join(h.describe() for h in holders)}" if holders else ""
        raise DevProcessError(
            spec.name,
            f"port {spec.port} is already in use{by}",
            hint=f"stop what listens on port {spec.port}, or give {spec.name} another port",
        )


def resolve_command(spec: ProcessSpec) -> str:
    """The executable ``spec.argv[0]`` runs (searching its PATH); DevProcessError if none."""
    program = spec.argv[0]
    if os.sep in program:
        path = Path(program)
        if not path.is_absolute() and spec.cwd is not None:
            path = spec.cwd / path
        if not path.exists():
            raise DevProcessError(
                spec.name,
                f"command `{program}` not found ({path} does not exist)",
                hint="fix the command in stagecraft.yml",
            )
        if not os.access(path, os.X_OK) or path.is_dir():
            raise DevProcessError(
                spec.name,
                f"command `{program}` is not executable",
                hint=f"chmod +x {path}, or fix the command in stagecraft.yml",
            )
        return str(path)
    search = spec.env.get("PATH", os.environ.get("PATH", os.defpath))
    found = shutil.which(program, path=search)
    if found is None:
        raise DevProcessError(
            spec.name,
            f"command `{program}` not found on PATH",
            hint=f"install {program}, or fix the command in stagecraft.yml",
        )
    return found


def _not_ready_in_time(waiting: Sequence[ManagedProcess], timeout: float) -> DevProcessError:
    first = waiting[0]
    names = ", ".join(proc.spec.name for proc in waiting[1:])
    also = f" (also not ready: {names})" if names else ""
    waited = describe(first.spec.readiness, first.spec.port)
    return DevProcessError(
        first.spec.name,
        f"not ready after {timeout:g}s: timed out waiting for {waited}{also}",
        last_lines=first.last_lines(),
        hint="see its last output; raise the timeout if it is just slow",
    )
