"""One supervised dev process across its restarts: spawn, read, probe, react to exits.

Internal to :mod:`stagecraft.dev.supervisor`. Threads per run: two output
readers and one monitor (readiness, then exit). Every state change happens
under the hub's lock; sinks are called outside it (see :class:`Hub`).
"""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO

from stagecraft.dev import proctree
from stagecraft.dev.hub import Hub
from stagecraft.dev.model import (
    DevProcessError,
    EventKind,
    ProcessEvent,
    ProcessSpec,
    ProcessState,
    ProcessStatus,
    describe_exit,
)
from stagecraft.dev.readiness import LogMatcher, describe, probe_http
from stagecraft.dev.restart import RestartDecision

PROBE_INTERVAL = 0.15
KILL_WAIT = 5.0
"""How long to wait for a SIGKILLed tree to disappear."""
CRASH_GRACE = 2.0
"""After a crash, how long the rest of the crashed tree gets before SIGKILL."""


@dataclass(eq=False)
class Run:
    """One spawn of a process: its Popen, leader identity, and what its threads saw."""

    popen: subprocess.Popen[bytes]
    leader: proctree.ProcInfo | None
    started: float
    ready_at: float | None = None
    abandoned: str | None = None
    stop_requested: bool = False
    tracked: dict[tuple[int, int], proctree.ProcInfo] = field(default_factory=dict)
    readers: list[threading.Thread] = field(default_factory=list)

    def refs(self, table: dict[int, proctree.ProcInfo]) -> list[proctree.ProcInfo]:
        """The leader, everything tracked so far, and the tree as ``table`` shows it now."""
        refs = dict(self.tracked)
        if self.leader is not None:
            refs[self.leader.key] = self.leader
            if self._group_valid(table):
                for info in proctree.tree_of(self.leader.pid, table):
                    refs[info.key] = info
        return list(refs.values())

    def _group_valid(self, table: dict[int, proctree.ProcInfo]) -> bool:
        """Whether the leader's pid still names our group (not reaped, or members left).

        The kernel does not reuse a pid while a process group of that id has
        members, so this guards the group signal against pid reuse.
        """
        if self.leader is None:
            return False
        if self.popen.returncode is None:
            return True
        pgid = self.leader.pid
        return any(info.pgid == pgid and info.state not in ("Z", "X") for info in table.values())

    def track(self, table: dict[int, proctree.ProcInfo]) -> None:
        """Remember the current tree, so descendants that leave the group are found later."""
        if self.leader is None or self.popen.returncode is not None:
            return
        for info in proctree.tree_of(self.leader.pid, table):
            self.tracked.setdefault(info.key, info)

    def alive(self) -> bool:
        """Whether any process of this run's tree still runs."""
        table = proctree.process_table()
        return any(_alive_in(ref, table) for ref in self.refs(table))

    def signal(self, sig: signal.Signals) -> None:
        """Send ``sig`` to the process group and to every tracked process outside it."""
        table = proctree.process_table()
        pgid = self.leader.pid if self.leader is not None else None
        if pgid is not None and self._group_valid(table):
            proctree.signal_group(pgid, sig)
        for ref in self.refs(table):
            if ref.pgid != pgid and _alive_in(ref, table):
                proctree.signal_process(ref, sig)


def _alive_in(ref: proctree.ProcInfo, table: dict[int, proctree.ProcInfo]) -> bool:
    now = table.get(ref.pid)
    return now is not None and now.starttime == ref.starttime and now.state not in ("Z", "X")


class ManagedProcess:
    """One supervised process: its current run, state, restarts and last lines."""

    def __init__(self, spec: ProcessSpec, hub: Hub, *, keep_lines: int) -> None:
        self.spec = spec
        self.hub = hub
        self.state = ProcessState.PENDING
        self.run: Run | None = None
        self.restarts = 0
        self.ever_ready = False
        self.exit_code: int | None = None
        self.failure: DevProcessError | None = None
        self.monitor: threading.Thread | None = None
        self._lines: collections.deque[str] = collections.deque(maxlen=keep_lines)
        self._matcher = (
            LogMatcher(spec.readiness.log_pattern) if spec.readiness.log_pattern else None
        )
        self._env = {**os.environ, **spec.env}
        self._restart_requested = False

    # -- reporting -----------------------------------------------------------------

    def status(self) -> ProcessStatus:
        run = self.run
        ready_after = None
        if run is not None and run.ready_at is not None:
            ready_after = run.ready_at - run.started
        alive = run is not None and run.popen.returncode is None
        return ProcessStatus(
            name=self.spec.name,
            state=self.state,
            pid=run.popen.pid if run is not None and run.popen.returncode is None else None,
            port=self.spec.port,
            restarts=self.restarts,
            exit_code=self.exit_code,
            ready_after=ready_after,
            uptime=time.monotonic() - run.started if alive and run is not None else None,
        )

    def last_lines(self, count: int = 20) -> tuple[str, ...]:
        with self.hub.lock:
            return tuple(self._lines)[-count:]

    def _event(
        self,
        kind: EventKind,
        message: str,
        *,
        pid: int | None = None,
        exit_code: int | None = None,
        last_lines: tuple[str, ...] = (),
        attempt: int = 0,
    ) -> None:
        self.hub.event(
            ProcessEvent(self.spec.name, kind, message, pid, exit_code, last_lines, attempt)
        )

    # -- starting ------------------------------------------------------------------

    def start(self) -> None:
        """Spawn the process; :class:`DevProcessError` if the OS refuses to run it."""
        self._spawn(attempt=0)

    def _spawn(self, attempt: int) -> Run:
        spec = self.spec
        try:
            popen = proctree.spawn(spec.argv, cwd=spec.cwd, env=self._env)
        except FileNotFoundError:
            raise DevProcessError(
                spec.name,
                f"command `{spec.argv[0]}` not found",
                hint="install it, or fix the command in stagecraft.yml",
            ) from None
        except PermissionError:
            raise DevProcessError(
                spec.name,
                f"command `{spec.argv[0]}` is not executable",
                hint=f"chmod +x {spec.argv[0]}, or fix the command in stagecraft.yml",
            ) from None
        run = Run(popen=popen, leader=proctree.read_proc(popen.pid), started=time.monotonic())
        again = f", restart {attempt}" if attempt else ""
        # Reported before the reader threads run, so STARTED always precedes READY.
        self._event(
            EventKind.STARTED, f"started (pid {popen.pid}{again})", pid=popen.pid, attempt=attempt
        )
        with self.hub.lock:
            self.run = run
            self.state = ProcessState.STARTING
            self.exit_code = None
            # stop() sets the flag before it looks at runs: a run it cannot have seen ends here.
            doomed = self.hub.stopping.is_set()
            run.stop_requested = doomed
        if doomed:
            run.signal(signal.SIGKILL)
        for stream, pipe in (("stdout", popen.stdout), ("stderr", popen.stderr)):
            reader = threading.Thread(
                target=self._read,
                args=(run, stream, pipe),
                name=f"dev-{spec.name}-{stream}",
                daemon=True,
            )
            run.readers.append(reader)
            reader.start()
        self.monitor = threading.Thread(
            target=self._monitor, args=(run,), name=f"dev-{spec.name}-monitor", daemon=True
        )
        self.monitor.start()
        self.hub.notify()
        return run

    def _read(self, run: Run, stream: str, pipe: IO[bytes] | None) -> None:
        assert pipe is not None
        with pipe:
            for raw in iter(pipe.readline, b""):
                line = raw.decode(errors="replace").rstrip("\r\n")
                with self.hub.lock:
                    self._lines.append(line)
                self.hub.output(self.spec.name, stream, line)
                matcher = self._matcher
                if matcher is not None and run.ready_at is None and matcher.matches(line):
                    self._mark_ready(run)

    # -- readiness and exit ----------------------------------------------------------

    def _mark_ready(self, run: Run) -> None:
        with self.hub.lock:
            stale = run is not self.run or run.abandoned or run.stop_requested
            if stale or run.ready_at is not None:
                return
            run.ready_at = time.monotonic()
            self.ever_ready = True
            self.state = ProcessState.READY
            after = run.ready_at - run.started
        self._event(
            EventKind.READY,
            f"ready after {after:.1f}s ({describe(self.spec.readiness, self.spec.port)})",
            pid=run.popen.pid,
        )
        self.hub.notify()

    def _monitor(self, run: Run) -> None:
        code = self._await_ready_or_exit(run)
        if code is None:
            code = run.popen.wait()
        # Leftovers of a tree whose leader is gone are orphans: end them.
        if not run.stop_requested and run.alive():
            self.terminate(run, min(self.spec.stop_timeout, CRASH_GRACE))
        for reader in run.readers:
            reader.join(timeout=2.0)
        self._after_exit(run, code)

    def _await_ready_or_exit(self, run: Run) -> int | None:
        """Wait for readiness (or give up on it); the exit code if the process ends first."""
        readiness = self.spec.readiness
        if readiness.kind == "none":
            self._mark_ready(run)
            return None
        deadline = run.started + readiness.timeout
        last = "no answer yet"
        while run.ready_at is None:
            code = run.popen.poll()
            if code is not None:
                return code
            if run.stop_requested:
                return None
            if readiness.http_path is not None and self.spec.port is not None:
                result = probe_http(self.spec.port, readiness.http_path)
                last = result.detail
                if result.ready:
                    self._mark_ready(run)
                    return None
            if time.monotonic() >= deadline:
                self._readiness_timed_out(run, last)
                return None
            try:
                return run.popen.wait(timeout=PROBE_INTERVAL)
            except subprocess.TimeoutExpired:
                continue
        return None

    def _readiness_timed_out(self, run: Run, last: str) -> None:
        spec = self.spec
        waited = describe(spec.readiness, spec.port)
        detail = f" (last answer: {last})" if spec.readiness.kind == "http" else ""
        reason = (
            f"not ready after {spec.readiness.timeout:g}s: timed out waiting for {waited}{detail}"
        )
        lines = self.last_lines()
        with self.hub.lock:
            if run is not self.run or run.stop_requested:
                return
            run.abandoned = reason
            first_start = not self.ever_ready
            if first_start:
                # Reported now, so wait_ready() fails at once, not after the tree is ended.
                hint = self._failure_hint(run)
                self.failure = DevProcessError(spec.name, reason, last_lines=lines, hint=hint)
                self.state = ProcessState.FAILED
        if first_start:
            self._event(EventKind.FAILED, reason, pid=run.popen.pid, last_lines=lines)
            self.hub.notify()
        self.terminate(run, spec.stop_timeout)

    def _after_exit(self, run: Run, code: int) -> None:
        spec = self.spec
        lines = self.last_lines()
        decision: RestartDecision | None = None
        respawn = False
        with self.hub.lock:
            self.exit_code = code
            if run.abandoned and not self.ever_ready and not self._restart_requested:
                return  # reported as FAILED when its readiness timed out
            if run.stop_requested and self._restart_requested and not self.hub.stopping.is_set():
                self._restart_requested = False
                respawn = True
                self.restarts += 1
                self.state = ProcessState.RESTARTING
                kind = EventKind.RESTARTING
                message = f"restarting on request ({describe_exit(code)})"
            elif run.stop_requested:
                self.state = ProcessState.STOPPED
                kind, message = EventKind.STOPPED, f"stopped ({describe_exit(code)})"
            elif not self.ever_ready:
                reason = f"{describe_exit(code)} before it was ready"
                self.failure = DevProcessError(
                    spec.name, reason, last_lines=lines, hint=self._failure_hint(run)
                )
                self.state = ProcessState.FAILED
                kind, message = EventKind.FAILED, reason
            else:
                decision = self._decide(run, code)
                clean = code == 0 and run.abandoned is None
                if decision.restart:
                    self.state = ProcessState.RESTARTING
                else:
                    self.state = ProcessState.EXITED if clean else ProcessState.CRASHED
                kind = EventKind.EXITED if clean else EventKind.CRASHED
                message = f"{run.abandoned or describe_exit(code)}; {decision.reason}"
        self._event(kind, message, pid=run.popen.pid, exit_code=code, last_lines=lines)
        self.hub.notify()
        if respawn:
            self._respawn(self.restarts)
        elif decision is not None and decision.restart:
            self._restart(decision)

    def _decide(self, run: Run, code: int) -> RestartDecision:
        uptime = time.monotonic() - (run.ready_at or run.started)
        decision = self.spec.restart.decide(
            exit_code=None if run.abandoned else code, restarts=self.restarts, uptime=uptime
        )
        if decision.restart:
            self.restarts = decision.attempt
        return decision

    def _failure_hint(self, run: Run) -> str:
        if run.abandoned is None:
            return "see its last output; fix the error and run again"
        if self.spec.readiness.kind == "http":
            return (
                f"check that it listens on 127.0.0.1:{self.spec.port} and answers "
                f"{self.spec.readiness.http_path} with 2xx/3xx, or raise ready.timeout"
            )
        return "check the ready.log pattern against its output, or raise ready.timeout"

    def _restart(self, decision: RestartDecision) -> None:
        self._event(
            EventKind.RESTARTING,
            f"restarting in {decision.delay:g}s ({decision.reason})",
            attempt=decision.attempt,
        )
        if self.hub.stopping.wait(decision.delay):
            with self.hub.lock:
                self.state = ProcessState.STOPPED
            self.hub.notify()
            return
        self._respawn(decision.attempt)

    def request_restart(self) -> Run | None:
        """Restart on request (the dashboard's button): the run to end, or None if none runs.

        The caller ends the returned run (:meth:`terminate`); its monitor then
        starts the process again. With no live run (it crashed, exited or
        failed), the process is started again at once.
        """
        with self.hub.lock:
            if self.hub.stopping.is_set():
                raise DevProcessError(self.spec.name, "cannot restart: the session is stopping")
            run = self.run
            if self.state in (ProcessState.RESTARTING, ProcessState.STOPPING):
                return None  # already on its way
            live = run is not None and run.popen.returncode is None and not run.stop_requested
            if live and run is not None:
                self._restart_requested = True
                run.stop_requested = True
                self.state = ProcessState.RESTARTING
                return run
            if self.monitor is not None and self.monitor.is_alive():
                return None  # its exit is still being handled
            self.restarts += 1
            self.state = ProcessState.RESTARTING
            attempt = self.restarts
        self._event(EventKind.RESTARTING, "restarting on request", attempt=attempt)
        self._respawn(attempt)
        return None

    def _respawn(self, attempt: int) -> None:
        try:
            self._spawn(attempt=attempt)
        except DevProcessError as exc:
            with self.hub.lock:
                self.state = ProcessState.FAILED
                self.failure = exc
            self._event(EventKind.FAILED, f"restart failed: {exc.reason}")
            self.hub.notify()

    # -- stopping -----------------------------------------------------------------------

    def begin_stop(self) -> Run | None:
        """Mark the process as stopping; its run if a tree may still be alive."""
        with self.hub.lock:
            run = self.run
            if self.state in (ProcessState.PENDING, ProcessState.RESTARTING):
                self.state = ProcessState.STOPPED
            if run is None:
                return None
            run.stop_requested = True
            if self.state in (ProcessState.STARTING, ProcessState.READY):
                self.state = ProcessState.STOPPING
        return run

    def terminate(self, run: Run, grace: float) -> None:
        """Stop signal to the tree, up to ``grace`` seconds, then SIGKILL (or at once if forced)."""
        run.signal(self.spec.stop_signal)
        wait_until(lambda: not run.alive(), grace, self.hub.forced)
        if run.alive():
            run.signal(signal.SIGKILL)
            wait_until(lambda: not run.alive(), KILL_WAIT, None)


def wait_until(
    condition: Callable[[], bool], timeout: float, interrupt: threading.Event | None
) -> bool:
    """Poll ``condition`` every 50 ms for ``timeout`` s; stop early once ``interrupt`` is set."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        remaining = deadline - time.monotonic()
        if remaining <= 0 or (interrupt is not None and interrupt.is_set()):
            return False
        if interrupt is not None:
            interrupt.wait(min(0.05, remaining))
        else:
            time.sleep(min(0.05, remaining))
