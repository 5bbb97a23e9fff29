"""SIGTERM and SIGHUP stop a command the way Ctrl-C does.

CI cancelling a job, ``timeout``, ``kill`` and a closed terminal send SIGTERM or
SIGHUP, not SIGINT. While a command runs, :func:`interrupts_like_ctrl_c` makes
both raise ``KeyboardInterrupt`` in the main thread, exactly where Ctrl-C would:
the engine's Ctrl-C paths (``runtime.fanout`` stops its workers' processes, a
rollout finishes or undoes its running step, the deploy records an
``interrupted`` release and releases its lock) then run unchanged, and the
command exits 130 (``ExitCode.INTERRUPTED``) whichever signal it was.

Only the first interrupt starts stopping. A later SIGTERM or SIGHUP while the
command cleans up is reported and ignored (CI sends SIGINT, then SIGTERM a few
seconds later; that must not cut the cleanup short); a second Ctrl-C still
stops at once, as before; SIGKILL is what forces. After SIGHUP, output meant for
the (closed) terminal is dropped instead of failing the cleanup with EIO.
Handlers are installed only in the main thread and only over the default ones
(a caller that set its own keeps it), and restored afterwards.

Example::

    with interrupts_like_ctrl_c() as caught:
        run_the_command()          # SIGTERM here raises KeyboardInterrupt
    caught.received                # signal.SIGTERM, or None
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

STOPPING = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class InterruptSignals:
    """The handlers while a command runs, and the first interrupting signal received."""

    def __init__(self) -> None:
        self.received: signal.Signals | None = None
        self._previous: dict[signal.Signals, Any] = {}

    def install(self) -> None:
        """Take over SIGINT, SIGTERM and SIGHUP where their handler is still the default."""
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in STOPPING:
            current = signal.getsignal(sig)
            default = signal.default_int_handler if sig == signal.SIGINT else signal.SIG_DFL
            if current is default:
                self._previous[sig] = signal.signal(sig, self._handle)

    def restore(self) -> None:
        """Put back the handlers :meth:`install` replaced."""
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        sig = signal.Signals(signum)
        if sig == signal.SIGHUP:
            drop_terminal_output()
        if self.received is None:
            self.received = sig
            raise KeyboardInterrupt
        if sig == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C stops at once, as without us
        with contextlib.suppress(OSError, ValueError):
            sys.stderr.write(
                f"stagecraft: {sig.name} while stopping after {self.received.name}: "
                "finishing the running step first (SIGKILL forces)\n"
            )
            sys.stderr.flush()


@contextlib.contextmanager
def interrupts_like_ctrl_c() -> Iterator[InterruptSignals]:
    """SIGTERM and SIGHUP raise ``KeyboardInterrupt`` in the ``with`` body; see the module."""
    signals = InterruptSignals()
    signals.install()
    try:
        yield signals
    finally:
        signals.restore()


def drop_terminal_output() -> None:
    """Point stdout and stderr that are terminals at /dev/null: a hung-up tty raises EIO."""
    for fd in (1, 2):
        try:
            if not os.isatty(fd):
                continue
            null = os.open(os.devnull, os.O_WRONLY)
            try:
                os.dup2(null, fd)
            finally:
                os.close(null)
        except OSError:
            continue
