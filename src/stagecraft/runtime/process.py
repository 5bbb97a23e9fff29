"""Run local processes: capture or stream output, timeouts, env, process groups.

Every child starts in its own session (process group), so a timeout or an
interrupt can stop the whole tree it spawned (node, esbuild, ...), not just
the direct child.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from stagecraft.errors import CommandFailed, CommandTimeout, PrerequisiteMissing

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
    input: str | bytes | None = None,
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
    raises :class:`PrerequisiteMissing`.
    """
    argv = tuple(str(a) for a in argv)
    full_env = dict(os.environ if env is None else env)
    if extra_env:
        full_env.update(extra_env)
    data = input.encode() if isinstance(input, str) else input
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
        raise PrerequisiteMissing(
            f"`{argv[0]}` is not installed or not on PATH", hint=hint
        ) from None
    except PermissionError:
        raise PrerequisiteMissing(f"`{argv[0]}` is not executable", hint=hint) from None

    out_chunks: list[bytes] = []
    err_chunks: list[bytes] = []
    readers = [
        threading.Thread(target=_pump, args=(proc.stdout, out_chunks, "stdout", on_line), daemon=True),
        threading.Thread(target=_pump, args=(proc.stderr, err_chunks, "stderr", on_line), daemon=True),
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
    if check and returncode != 0:
        raise CommandFailed(argv, returncode, result.output, host=host, hint=hint)
    return result


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


def _feed(proc: subprocess.Popen[bytes], data: bytes) -> None:
    assert proc.stdin is not None
    try:
        proc.stdin.write(data)
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
