"""SIGTERM and SIGHUP stop a command like Ctrl-C (cli/signals.py), also mid fan-out."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from types import FrameType

import pytest

from stagecraft.cli import signals as cli_signals
from stagecraft.cli.signals import interrupts_like_ctrl_c
from stagecraft.runtime import process
from stagecraft.runtime.fanout import fan_out


def _send_soon(sig: signal.Signals, after: float = 0.3) -> threading.Timer:
    """Signal this process from another thread, as `kill` from outside would."""
    timer = threading.Timer(after, os.kill, args=(os.getpid(), sig))
    timer.start()
    return timer


def _wait_for_signal(seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.01)


@pytest.fixture(autouse=True)
def _no_terminal_games(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """SIGHUP drops output to a terminal; under test only record that it would."""
    dropped: list[bool] = []
    monkeypatch.setattr(cli_signals, "drop_terminal_output", lambda: dropped.append(True))
    return dropped


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_and_sighup_raise_keyboard_interrupt_and_are_restored(
    sig: signal.Signals, _no_terminal_games: list[bool]
) -> None:
    with pytest.raises(KeyboardInterrupt), interrupts_like_ctrl_c() as caught:
        os.kill(os.getpid(), sig)
        _wait_for_signal()
    assert caught.received == sig
    assert signal.getsignal(sig) == signal.SIG_DFL
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert _no_terminal_games == ([True] if sig == signal.SIGHUP else [])


def test_a_later_sigterm_does_not_cut_the_cleanup_short_but_a_second_ctrl_c_does(
    capsys: pytest.CaptureFixture[str],
) -> None:
    cleaned = False
    with pytest.raises(KeyboardInterrupt), interrupts_like_ctrl_c() as caught:
        try:
            os.kill(os.getpid(), signal.SIGINT)
            _wait_for_signal()
        except KeyboardInterrupt:
            os.kill(os.getpid(), signal.SIGTERM)  # CI: SIGINT, then SIGTERM
            time.sleep(0.2)
            cleaned = True
            os.kill(os.getpid(), signal.SIGINT)
            _wait_for_signal()
    assert cleaned and caught.received == signal.SIGINT
    assert "SIGTERM while stopping after SIGINT" in capsys.readouterr().err


def test_a_handler_the_caller_installed_is_kept() -> None:
    seen: list[int] = []

    def mine(signum: int, _frame: FrameType | None) -> None:
        seen.append(signum)

    previous = signal.signal(signal.SIGTERM, mine)
    try:
        with interrupts_like_ctrl_c():
            assert signal.getsignal(signal.SIGTERM) is mine
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.1)
        assert seen == [signal.SIGTERM]
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_sigterm_while_waiting_on_a_fan_out_stops_its_processes() -> None:
    """The main thread waits on workers that each run a process: all stop, like Ctrl-C."""
    marker = f"stagecraft-signal-test-{os.getpid()}"
    started = time.monotonic()
    timer = _send_soon(signal.SIGTERM, after=0.5)
    try:
        with pytest.raises(KeyboardInterrupt), interrupts_like_ctrl_c():
            fan_out(
                [1, 2, 3],
                lambda _: process.run(["sh", "-c", f"sleep 30; echo {marker}"], timeout=60),
                name=str,
                parallel=3,
            )
    finally:
        timer.join()
    assert time.monotonic() - started < 10
    left = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True).stdout
    assert left.strip() == ""


def test_sighup_drops_output_to_a_terminal_only() -> None:
    """After a hang-up, writes to the gone terminal would fail the cleanup with EIO."""
    script = (
        "import os, pty\n"
        "from stagecraft.cli.signals import drop_terminal_output\n"
        "master, slave = pty.openpty()\n"
        "os.dup2(slave, 2)\n"
        "drop_terminal_output()\n"
        "print(os.readlink('/proc/self/fd/2'))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout
    assert out.split() == ["/dev/null"]  # stderr was the pty; stdout, a pipe, still works


def test_sigterm_while_the_main_thread_waits_on_a_process_stops_it() -> None:
    marker = f"stagecraft-signal-wait-{os.getpid()}"
    timer = _send_soon(signal.SIGTERM, after=0.5)
    started = time.monotonic()
    try:
        with pytest.raises(KeyboardInterrupt), interrupts_like_ctrl_c():
            process.run(["sh", "-c", f"sleep 30; echo {marker}"], timeout=60)
    finally:
        timer.join()
    assert time.monotonic() - started < 10
    left = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True).stdout
    assert left.strip() == ""
