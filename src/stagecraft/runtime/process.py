"""Run local processes: capture or stream output, timeouts, env, process groups.

Every child starts in its own session (process group), so a timeout or an
interrupt can stop the whole tree it spawned (node, esbuild, ...), not just
the direct child.
"""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from stagecraft import log
from stagecraft.errors import CommandFailed, CommandTimeout, Interrupted, PrerequisiteMissing

logger = logging.getLogger(__name__)

LineCallback = Callable[[str, str], None]
"""Called as ``on_line(stream, line)`` with stream ``"stdout"`` or ``"stderr"``."""


@dataclass(frozen=True)
class Completed:
    """The outcome of a finished process."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    duration: float

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def output(self) -> str:
        """stdout and stderr together, for error messages."""
        return "\n".join(part for part in (self.stdout, self.stderr) if part)


def which(program: str) -> str | None:
    """Full path of ``program`` on PATH, or None."""
    return shutil.which(program)


def run(
    argv: Sequence[str],
    *,
    cwd: Path | str | None = None,
    env: Mapping[str, str] | None = None,
    extra_env: Mapping[str, str] | None = None,
    input: str | bytes | IO[bytes] | None = None,
    timeout: float | None = None,
    check: bool = True,
    on_line: LineCallback | None = None,
    host: str | None = None,
    hint: str | None = None,
) -> Completed:
    """Run ``argv`` to completion and return its :class:`Completed`.

    ``env`` replaces the environment; ``extra_env`` is added on top of it (or of
    ``os.environ``). With ``on_line`` each output line is passed on as it arrives
    (and still captured). On timeout the whole process group is killed and
    :class:`CommandTimeout` raised. With ``check`` a non-zero exit raises
    :class:`CommandFailed` (naming ``host`` when given). A missing executable
    raises :class:`PrerequisiteMissing`. ``input`` may also be a binary file object,
    streamed to stdin without reading it into memory.

    Inside a :func:`cancel_scope` (``fan_out`` opens one), cancelling the scope
    stops the process group and the call raises :class:`Interrupted`.
    """
    argv = tuple(str(a) for a in argv)
    scope = _SCOPE.get()
    if scope is not None and scope.cancelled:
        raise Interrupted(f"`{' '.join(argv)[:120]}` not started: interrupted")
    full_env = dict(os.environ if env is None else env)
    if extra_env:
        full_env.update(extra_env)
    data = input.encode() if isinstance(input, str) else input
    log.event(logger, logging.DEBUG, f"$ {shlex.join(argv)}", host=host, phase="run")
    started = time.monotonic()
    try:
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=full_env,
            stdin=subprocess.PIPE if data is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
    except FileNotFoundError:
        if cwd is not None and not Path(cwd).is_dir():
            raise CommandFailed(
                argv, 127, f"working directory {cwd} does not exist", host=host, hint=hint
            ) from None
        raise PrerequisiteMissing(
            f"`{argv[0]}` is not installed or not on PATH", hint=hint
        ) from None
    except PermissionError:
        raise PrerequisiteMissing(f"`{argv[0]}` is not executable", hint=hint) from None
    if scope is not None:
        scope.register(proc)
    try:
        result = _collect(
            proc,
            argv=argv,
            data=data,
            timeout=timeout,
            on_line=on_line,
            started=started,
            host=host,
            hint=hint,
        )
    finally:
        if scope is not None:
            scope.unregister(proc)
    if scope is not None and scope.cancelled and result.returncode != 0:
        raise Interrupted(f"{'on ' + host + ': ' if host else ''}`{' '.join(argv)[:120]}` stopped")
    if check and result.returncode != 0:
        raise CommandFailed(argv, result.returncode, result.output, host=host, hint=hint)
    return result


def _collect(
    proc: subprocess.Popen[bytes],
    *,
    argv: tuple[str, ...],
    data: bytes | IO[bytes] | None,
    timeout: float | None,
    on_line: LineCallback | None,
    started: float,
    host: str | None,
    hint: str | None,
) -> Completed:
    """Pump the output of a started ``proc`` and wait for it (or kill it on timeout)."""
    out_chunks: list[bytes] = []
    err_chunks: list[bytes] = []
    readers = [
        threading.Thread(
            target=_pump, args=(proc.stdout, out_chunks, "stdout", on_line), daemon=True
        ),
        threading.Thread(
            target=_pump, args=(proc.stderr, err_chunks, "stderr", on_line), daemon=True
        ),
    ]
    for reader in readers:
        reader.start()
    if data is not None:
        threading.Thread(target=_feed, args=(proc, data), daemon=True).start()
    try:
        returncode = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(proc)
        for reader in readers:
            reader.join(timeout=2)
        raise CommandTimeout(
            f"{'on ' + host + ': ' if host else ''}`{' '.join(argv)[:120]}` "
            f"did not finish within {timeout:g}s",
            hint=hint,
        ) from None
    except BaseException:
        kill_group(proc)
        raise
    for reader in readers:
        reader.join()
    result = Completed(
        argv=argv,
        returncode=returncode,
        stdout=b"".join(out_chunks).decode(errors="replace"),
        stderr=b"".join(err_chunks).decode(errors="replace"),
        duration=time.monotonic() - started,
    )
    log.event(
        logger,
        logging.DEBUG,
        f"exit {returncode} after {result.duration:.2f}s: {argv[0]}",
        host=host,
        phase="run",
    )
    return result


@contextmanager
def reading(
    argv: Sequence[str],
    *,
    extra_env: Mapping[str, str] | None = None,
    hint: str | None = None,
) -> Iterator[IO[bytes]]:
    """Run ``argv`` and give its stdout to the block as a stream (``docker save``).

    When the block read the stream to its end, a non-zero exit raises
    :class:`CommandFailed` with stderr; when it stopped early or raised, the
    process group is stopped and nothing more is said. The process belongs to
    the current :func:`cancel_scope`.
    """
    argv = tuple(str(a) for a in argv)
    log.event(logger, logging.DEBUG, f"$ {shlex.join(argv)} |", phase="run")
    try:
        proc = subprocess.Popen(
            argv,
            env={**os.environ, **(extra_env or {})},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
    except FileNotFoundError:
        raise PrerequisiteMissing(f"`{argv[0]}` is not installed or not on PATH") from None
    errors: list[bytes] = []
    pump = threading.Thread(target=_pump, args=(proc.stderr, errors, "stderr", None), daemon=True)
    pump.start()
    scope = _SCOPE.get()
    if scope is not None:
        scope.register(proc)
    assert proc.stdout is not None
    try:
        yield proc.stdout
        if proc.stdout.read(BLOCK_PEEK):  # the caller stopped before the end
            kill_group(proc, grace=0.5)
            return
        returncode = proc.wait()
        pump.join()
        if returncode != 0:
            stderr = b"".join(errors).decode(errors="replace")
            raise CommandFailed(argv, returncode, stderr, hint=hint)
    except BaseException:
        kill_group(proc, grace=0.5)
        raise
    finally:
        proc.stdout.close()
        if scope is not None:
            scope.unregister(proc)


BLOCK_PEEK = 1 << 16


def kill_group(proc: subprocess.Popen[bytes], grace: float = 2.0) -> None:
    """SIGTERM the process group of ``proc``, then SIGKILL it after ``grace`` seconds."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            return
        try:
            proc.wait(timeout=wait)
            # The leader is gone; make sure no straggler in its group survives.
            os.killpg(proc.pid, signal.SIGKILL)
        except subprocess.TimeoutExpired:
            continue
        except (ProcessLookupError, PermissionError):
            return
        return


def _feed(proc: subprocess.Popen[bytes], data: bytes | IO[bytes]) -> None:
    assert proc.stdin is not None
    try:
        if isinstance(data, bytes):
            proc.stdin.write(data)
        else:
            shutil.copyfileobj(data, proc.stdin, 1 << 20)
        proc.stdin.close()
    except (BrokenPipeError, OSError):
        pass


def _pump(stream: object, sink: list[bytes], name: str, on_line: LineCallback | None) -> None:
    assert hasattr(stream, "readline")
    for raw in iter(stream.readline, b""):
        sink.append(raw)
        if on_line is not None:
            on_line(name, raw.decode(errors="replace").rstrip("\r\n"))
    stream.close()  # type: ignore[attr-defined]


class CancelScope:
    """Child processes started by :func:`run` in one context, stoppable together.

    ``fan_out`` opens a scope around its workers; on Ctrl-C it cancels the
    scope, which stops every process group still running in it (SIGTERM, then
    SIGKILL after ``grace``). Scopes nest: cancelling one cancels its children.
    """

    def __init__(self, parent: CancelScope | None = None) -> None:
        self._lock = threading.Lock()
        self._procs: set[subprocess.Popen[bytes]] = set()
        self._children: list[CancelScope] = []
        self._cancelled = threading.Event()
        self.parent = parent
        if parent is not None:
            parent._adopt(self)

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set() or (self.parent is not None and self.parent.cancelled)

    def register(self, proc: subprocess.Popen[bytes]) -> None:
        """Track ``proc``; a scope that is already cancelled stops it at once."""
        with self._lock:
            self._procs.add(proc)
        if self.cancelled:
            _terminate([proc], grace=0.5)

    def unregister(self, proc: subprocess.Popen[bytes]) -> None:
        with self._lock:
            self._procs.discard(proc)

    def cancel(self, grace: float = 2.0) -> None:
        """Mark the scope (and its children) cancelled and stop their processes."""
        scopes = self._subtree()
        procs: list[subprocess.Popen[bytes]] = []
        for scope in scopes:
            scope._cancelled.set()
            with scope._lock:
                procs.extend(scope._procs)
        _terminate(procs, grace=grace)

    def _adopt(self, child: CancelScope) -> None:
        with self._lock:
            self._children.append(child)

    def _subtree(self) -> list[CancelScope]:
        with self._lock:
            children = list(self._children)
        return [self, *(s for child in children for s in child._subtree())]


_SCOPE: ContextVar[CancelScope | None] = ContextVar("stagecraft_cancel_scope", default=None)


@contextmanager
def cancel_scope() -> Iterator[CancelScope]:
    """Open a :class:`CancelScope` (nested in the current one) for this context."""
    scope = CancelScope(_SCOPE.get())
    token = _SCOPE.set(scope)
    try:
        yield scope
    finally:
        _SCOPE.reset(token)


def stop_requested() -> bool:
    """True when the current cancel scope was cancelled: long work should return early."""
    scope = _SCOPE.get()
    return scope is not None and scope.cancelled


def _terminate(procs: Sequence[subprocess.Popen[bytes]], grace: float) -> None:
    """SIGTERM every process group in ``procs`` at once, SIGKILL those left after ``grace``."""
    for proc in procs:
        _signal_group(proc, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for proc in procs:
        with suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        _signal_group(proc, signal.SIGKILL)


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


class Spawned:
    """A long-lived child process started by :func:`spawn` (a tunnel, a daemon).

    It runs in its own session; :meth:`stop` signals its whole process group.
    Output goes to ``log_path`` when given, else the last 64 KiB are kept in memory
    and returned by :meth:`output`.
    """

    def __init__(self, proc: subprocess.Popen[bytes], argv: tuple[str, ...], log_path: Path | None):
        self.proc = proc
        self.argv = argv
        self.log_path = log_path
        self._tail = bytearray()
        self._tail_lock = threading.Lock()
        self._lines: list[Callable[[str], None]] = []
        self._reader: threading.Thread | None = None
        if proc.stdout is not None:
            self._reader = threading.Thread(target=self._drain, daemon=True)
            self._reader.start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait(self, timeout: float | None = None) -> int | None:
        """Wait up to ``timeout`` seconds; the exit code, or None if still running."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, grace: float = 5.0) -> int | None:
        """SIGTERM the process group, SIGKILL it after ``grace``; return the exit code."""
        if self.alive():
            kill_group(self.proc, grace=grace)
        else:
            _signal_group(self.proc, signal.SIGKILL)
        code = self.wait(timeout=5.0)
        if self._reader is not None:
            self._reader.join(timeout=2.0)
        return code

    def output(self) -> str:
        """What the process printed so far (its log file's tail when logging to a file)."""
        if self.log_path is not None:
            try:
                with self.log_path.open("rb") as fh:
                    fh.seek(max(0, self.log_path.stat().st_size - _TAIL_BYTES))
                    return fh.read().decode(errors="replace")
            except OSError:
                return ""
        with self._tail_lock:
            return bytes(self._tail).decode(errors="replace")

    def _drain(self) -> None:
        stream = self.proc.stdout
        assert stream is not None
        for raw in iter(stream.readline, b""):
            with self._tail_lock:
                self._tail.extend(raw)
                del self._tail[: max(0, len(self._tail) - _TAIL_BYTES)]
        stream.close()


_TAIL_BYTES = 64 * 1024


def spawn(
    argv: Sequence[str],
    *,
    cwd: Path | str | None = None,
    env: Mapping[str, str] | None = None,
    extra_env: Mapping[str, str] | None = None,
    log_path: Path | None = None,
    hint: str | None = None,
) -> Spawned:
    """Start ``argv`` in the background (own session) and return a :class:`Spawned`.

    stdin is /dev/null; stdout and stderr go together to ``log_path`` (appended) or
    to an in-memory tail. The caller stops it::

        tunnel = spawn(["ssh", "-N", "-L", "5433:localhost:5432", "db-1"])
        try:
            ...
        finally:
            tunnel.stop()
    """
    argv = tuple(str(a) for a in argv)
    full_env = dict(os.environ if env is None else env)
    if extra_env:
        full_env.update(extra_env)
    log.event(logger, logging.DEBUG, f"& {shlex.join(argv)}", phase="spawn")
    sink: IO[bytes] | int = subprocess.PIPE
    handle: IO[bytes] | None = None
    if log_path is not None:
        handle = log_path.open("ab")
        sink = handle
    try:
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=full_env,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    except FileNotFoundError:
        raise PrerequisiteMissing(
            f"`{argv[0]}` is not installed or not on PATH", hint=hint
        ) from None
    finally:
        if handle is not None:
            handle.close()
    return Spawned(proc, argv, log_path)
