"""runtime.process extensions: spawn() for long-lived children, cancel scopes, file input."""

from __future__ import annotations

import contextvars
import os
import threading
import time
from pathlib import Path

import pytest

from stagecraft.errors import Interrupted, PrerequisiteMissing
from stagecraft.runtime.process import cancel_scope, run, spawn, stop_requested


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().rsplit(")", 1)[-1].split()[0] == "Z"


def eventually(condition: object, timeout: float = 5.0) -> bool:
    assert callable(condition)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return bool(condition())


def test_spawn_keeps_the_output_tail_and_stop_kills_the_whole_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    child = spawn(["sh", "-c", f"echo ready; echo oops >&2; sleep 60 & echo $! > {pidfile}; wait"])
    assert eventually(lambda: "ready\noops\n" in child.output())
    # `echo $! > file` creates the file before it writes the pid
    assert eventually(lambda: pidfile.exists() and pidfile.read_text().strip() != "")
    grandchild = int(pidfile.read_text())
    assert child.alive()
    assert child.wait(timeout=0.1) is None
    code = child.stop(grace=1.0)
    assert code is not None and code < 0
    assert not child.alive()
    assert eventually(lambda: gone(grandchild))


def test_spawn_appends_to_a_log_file(tmp_path: Path) -> None:
    log = tmp_path / "daemon.log"
    log.write_text("earlier\n")
    child = spawn(["sh", "-c", "echo started"], log_path=log)
    assert child.wait(timeout=5) == 0
    assert log.read_text() == "earlier\nstarted\n"
    assert child.output().endswith("started\n")
    assert child.stop() == 0


def test_spawn_of_a_missing_program_is_a_prerequisite_error() -> None:
    with pytest.raises(PrerequisiteMissing, match="not installed"):
        spawn(["no-such-stagecraft-daemon"], hint="install it")


def test_run_streams_a_binary_file_to_stdin(tmp_path: Path) -> None:
    data = os.urandom(3 * 1024 * 1024)
    source = tmp_path / "blob"
    source.write_bytes(data)
    with source.open("rb") as fh:
        result = run(["sh", "-c", "wc -c"], input=fh)
    assert int(result.stdout) == len(data)


def test_cancelling_a_scope_stops_its_processes_and_nested_scopes(tmp_path: Path) -> None:
    failures: list[BaseException] = []
    pidfile = tmp_path / "sleep.pid"

    def worker() -> None:
        with cancel_scope():  # nested in the outer scope (copied context)
            try:
                run(["sh", "-c", f"echo $$ > {pidfile}; exec sleep 30"])
            except BaseException as exc:
                failures.append(exc)

    with cancel_scope() as outer:
        context = contextvars.copy_context()
        thread = threading.Thread(target=context.run, args=(worker,))
        thread.start()
        assert eventually(lambda: pidfile.exists() and pidfile.read_text().strip() != "")
        began = time.monotonic()
        outer.cancel(grace=1.0)
        thread.join(10)
        assert time.monotonic() - began < 5
        assert outer.cancelled
    assert gone(int(pidfile.read_text()))
    assert len(failures) == 1 and isinstance(failures[0], Interrupted)
    assert not stop_requested()


def test_run_in_a_cancelled_scope_does_not_start() -> None:
    with cancel_scope() as scope:
        scope.cancel()
        assert stop_requested()
        with pytest.raises(Interrupted, match="not started"):
            run(["true"])
