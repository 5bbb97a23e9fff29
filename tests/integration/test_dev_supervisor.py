"""The dev supervisor against real processes: readiness, crashes, restarts, clean stops.

Every test checks through /proc that no process of the trees it started
survives, grandchildren (and a grandchild that escaped into its own session)
included.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from stagecraft.dev import proctree
from stagecraft.dev.model import ProcessEvent
from stagecraft.dev.supervisor import (
    DevProcessError,
    EventKind,
    ProcessSpec,
    ProcessState,
    RestartPolicy,
    Supervisor,
)
from stagecraft.providers.backend import Readiness

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


class Recorder:
    """Collects output lines and events from the supervisor's threads."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str, str]] = []
        self.events: list[ProcessEvent] = []
        self._lock = threading.Lock()

    def output(self, name: str, stream: str, line: str) -> None:
        with self._lock:
            self.lines.append((name, stream, line))

    def event(self, event: ProcessEvent) -> None:
        with self._lock:
            self.events.append(event)

    def kinds(self, name: str) -> list[EventKind]:
        with self._lock:
            return [e.kind for e in self.events if e.name == name]

    def first(self, name: str, kind: EventKind) -> ProcessEvent:
        with self._lock:
            return next(e for e in self.events if e.name == name and e.kind == kind)


def poll(condition: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_get(port: int, path: str = "/") -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
        return int(response.status)


def trees(sup: Supervisor) -> list[proctree.ProcInfo]:
    """Every process of every running tree the supervisor started, as /proc shows it."""
    table = proctree.process_table()
    found: list[proctree.ProcInfo] = []
    for status in sup.status():
        if status.pid is not None:
            found.extend(proctree.tree_of(status.pid, table))
    return found


def assert_all_gone(procs: list[proctree.ProcInfo]) -> None:
    survivors = [p for p in procs if proctree.is_alive(p)]
    assert not survivors, f"processes survived: {[(p.pid, p.comm) for p in survivors]}"


def http_server(port: int, name: str = "web") -> ProcessSpec:
    # sh stays the leader; sleep is a grandchild-level sibling in the same group.
    script = f"sleep 300 & {sys.executable} -m http.server {port} --bind 127.0.0.1"
    return ProcessSpec(
        name=name,
        argv=("sh", "-c", script),
        port=port,
        readiness=Readiness(http_path="/", timeout=20),
        stop_timeout=5,
    )


def shell_loop(name: str = "worker") -> ProcessSpec:
    script = "sleep 300 & echo 'worker is ready'; while true; do echo tick; sleep 0.1; done"
    return ProcessSpec(
        name=name,
        argv=("sh", "-c", script),
        readiness=Readiness(log_pattern=r"is ready", timeout=20),
        stop_timeout=5,
    )


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    yield Recorder()


def test_two_processes_become_ready_and_stop_leaves_no_process(recorder: Recorder) -> None:
    port = free_port()
    sup = Supervisor(
        [http_server(port), shell_loop()], on_output=recorder.output, on_event=recorder.event
    )
    with sup:
        sup.start()
        sup.wait_ready(timeout=30)
        assert http_get(port) == 200
        assert [s.state for s in sup.status()] == [ProcessState.READY, ProcessState.READY]
        poll(lambda: any(line == "tick" for _, _, line in recorder.lines), what="worker output")
        started = trees(sup)
        assert {p.comm for p in started} >= {"sh", "sleep"}
        assert len(started) >= 5  # 2 shells, 2 sleeps, python
        sup.stop()
    assert_all_gone(started)
    assert [s.state for s in sup.status()] == [ProcessState.STOPPED, ProcessState.STOPPED]
    assert recorder.kinds("web") == [EventKind.STARTED, EventKind.READY, EventKind.STOPPED]
    assert ("web", "stderr") in {(n, s) for n, s, _ in recorder.lines}  # http.server logs there


def test_crash_is_reported_while_the_other_keeps_serving(recorder: Recorder) -> None:
    port = free_port()
    sup = Supervisor(
        [http_server(port), shell_loop()], on_output=recorder.output, on_event=recorder.event
    )
    with sup:
        sup.start()
        sup.wait_ready(timeout=30)
        worker = next(s for s in sup.status() if s.name == "worker")
        assert worker.pid is not None
        worker_tree = proctree.tree_of(worker.pid, proctree.process_table())
        leader = next(p for p in worker_tree if p.pid == worker.pid)
        proctree.signal_process(leader, signal.SIGKILL)
        poll(lambda: EventKind.CRASHED in recorder.kinds("worker"), what="crash event")
        crash = recorder.first("worker", EventKind.CRASHED)
        assert crash.exit_code == -9
        assert "was killed by SIGKILL" in crash.message
        assert crash.last_lines and crash.last_lines[-1] == "tick"
        assert len(crash.last_lines) <= 20
        # The rest of the crashed tree (its sleep) is cleaned up; the web server serves on.
        poll(lambda: not any(proctree.is_alive(p) for p in worker_tree), what="worker tree gone")
        assert http_get(port) == 200
        assert {s.name: s.state for s in sup.status()} == {
            "web": ProcessState.READY,
            "worker": ProcessState.CRASHED,
        }
        web_tree = trees(sup)
    assert_all_gone(web_tree)


def test_on_failure_restarts_a_crashed_process_up_to_its_limit(recorder: Recorder) -> None:
    policy = RestartPolicy(mode="on-failure", max_restarts=2, backoff=0.1)
    spec = ProcessSpec(
        name="flaky",
        argv=("sh", "-c", "echo up; sleep 0.3; echo 'oops' >&2; exit 3"),
        readiness=Readiness(log_pattern="^up$", timeout=10),
        restart=policy,
    )
    with Supervisor([spec], on_output=recorder.output, on_event=recorder.event) as sup:
        sup.start()
        sup.wait_ready(timeout=10)
        poll(lambda: sup.status()[0].state == ProcessState.CRASHED, what="giving up")
        status = sup.status()[0]
        assert (status.restarts, status.exit_code) == (2, 3)
    kinds = recorder.kinds("flaky")
    assert kinds == [
        EventKind.STARTED,
        EventKind.READY,
        EventKind.CRASHED,
        EventKind.RESTARTING,
        EventKind.STARTED,
        EventKind.READY,
        EventKind.CRASHED,
        EventKind.RESTARTING,
        EventKind.STARTED,
        EventKind.READY,
        EventKind.CRASHED,
    ]
    last = [e for e in recorder.events if e.kind == EventKind.CRASHED][-1]
    assert "exited with code 3; gave up after 2 restarts" in last.message
    assert last.last_lines[-1] == "oops"


def test_stop_kills_a_tree_that_ignores_the_stop_signal_and_escaped_children(
    tmp_path: Path,
) -> None:
    pidfile = tmp_path / "escaped.pid"
    # The grandchild moves into its own session (setsid): outside the process group.
    script = (
        f"setsid sh -c 'echo $$ > {pidfile}; exec sleep 300' & "
        "trap '' TERM; echo started; while true; do sleep 0.1; done"
    )
    spec = ProcessSpec(
        name="stubborn",
        argv=("sh", "-c", script),
        readiness=Readiness(log_pattern="started", timeout=10),
        stop_timeout=1.0,
    )
    sup = Supervisor([spec], track_interval=0.1)
    with sup:
        sup.start()
        sup.wait_ready(timeout=10)
        poll(lambda: pidfile.exists() and pidfile.read_text().strip() != "", what="escapee")
        escaped = proctree.read_proc(int(pidfile.read_text()))
        assert escaped is not None and escaped.sid == escaped.pid  # its own session
        poll(lambda: any(p.pid == escaped.pid for p in trees(sup)), what="escapee in tree")
        time.sleep(0.3)  # let the tracker sample the tree at least once more
        before = trees(sup)
        started = time.monotonic()
        sup.stop()
        took = time.monotonic() - started
    assert 0.9 <= took < 5, took  # waited the stop timeout, then killed
    assert_all_gone([*before, escaped])


def test_a_second_stop_kills_at_once() -> None:
    spec = ProcessSpec(
        name="slow",
        argv=("sh", "-c", "trap '' TERM; echo started; while true; do sleep 0.1; done"),
        readiness=Readiness(log_pattern="started", timeout=10),
        stop_timeout=60,
    )
    sup = Supervisor([spec])
    sup.start()
    sup.wait_ready(timeout=10)
    before = trees(sup)
    first = threading.Thread(target=sup.stop)
    started = time.monotonic()
    first.start()
    poll(lambda: sup.stopping, what="first stop")
    time.sleep(0.2)
    sup.stop()  # the second Ctrl-C
    first.join(timeout=10)
    assert not first.is_alive()
    assert time.monotonic() - started < 5
    assert_all_gone(before)


def test_readiness_timeout_names_the_url_and_leaves_nothing_running(
    recorder: Recorder,
) -> None:
    port = free_port()
    spec = ProcessSpec(
        name="api",
        argv=("sh", "-c", "sleep 300 & echo 'booting...'; sleep 300"),
        port=port,
        readiness=Readiness(http_path="/healthz", timeout=1.0),
        stop_timeout=2,
    )
    with Supervisor([spec], on_event=recorder.event) as sup:
        sup.start()
        before = trees(sup)
        with pytest.raises(DevProcessError) as info:
            sup.wait_ready(timeout=20)
        # The failed process is ended at once, before stop() runs.
        poll(lambda: not any(proctree.is_alive(p) for p in before), what="tree gone")
    message = info.value.message
    assert message == (
        f"api: not ready after 1s: timed out waiting for http://127.0.0.1:{port}/healthz "
        "(last answer: connection refused)"
    )
    assert info.value.last_lines == ("booting...",)
    assert info.value.hint and f"127.0.0.1:{port}" in info.value.hint
    assert recorder.kinds("api") == [EventKind.STARTED, EventKind.FAILED]


def test_log_readiness_timeout_names_the_pattern() -> None:
    spec = ProcessSpec(
        name="web",
        argv=("sh", "-c", "echo compiling; sleep 300"),
        readiness=Readiness(log_pattern=r"Local:\s+http", timeout=0.5),
        stop_timeout=2,
    )
    with Supervisor([spec]) as sup, pytest.raises(DevProcessError) as info:
        sup.start()
        sup.wait_ready()
    assert "timed out waiting for a line matching /Local:\\s+http/" in info.value.message
    assert "ready.log" in (info.value.hint or "")


def test_exit_before_ready_reports_code_and_last_lines() -> None:
    spec = ProcessSpec(
        name="api",
        argv=("sh", "-c", "echo 'Error: cannot find module express' >&2; exit 3"),
        readiness=Readiness(log_pattern="listening", timeout=30),
    )
    with Supervisor([spec]) as sup, pytest.raises(DevProcessError) as info:
        sup.start()
        sup.wait_ready()
    assert info.value.message == "api: exited with code 3 before it was ready"
    assert info.value.last_lines == ("Error: cannot find module express",)
    assert info.value.lines()[-1] == "  Error: cannot find module express"


def test_missing_command_fails_before_anything_starts(recorder: Recorder) -> None:
    specs = [
        shell_loop(),
        ProcessSpec(name="api", argv=("stagecraft-no-such-dev-server", "--watch")),
    ]
    sup = Supervisor(specs, on_event=recorder.event)
    with pytest.raises(DevProcessError) as info:
        sup.start()
    assert info.value.message == "api: command `stagecraft-no-such-dev-server` not found on PATH"
    assert recorder.events == []  # the valid one was not started either
    assert all(s.pid is None for s in sup.status())


def test_missing_working_directory_is_named(tmp_path: Path) -> None:
    spec = ProcessSpec(name="web", argv=("sh", "-c", "true"), cwd=tmp_path / "web")
    with pytest.raises(DevProcessError) as info:
        Supervisor([spec]).start()
    assert info.value.message == f"web: working directory {tmp_path / 'web'} does not exist"


def test_port_already_taken_names_the_port_and_its_holder() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = int(holder.getsockname()[1])
        spec = http_server(port, name="api")
        sup = Supervisor([spec])
        with pytest.raises(DevProcessError) as info:
            sup.start()
    assert info.value.message.startswith(
        f"api: port {port} is already in use by pid {os.getpid()} ("
    )
    assert "another port" in (info.value.hint or "")
    assert sup.status()[0].pid is None


def test_a_restart_that_never_becomes_ready_counts_as_a_failure(
    tmp_path: Path, recorder: Recorder
) -> None:
    marker = tmp_path / "ran-once"
    # First run: ready, then crashes. Restarted: never ready (prints nothing).
    script = f"if [ -e {marker} ]; then sleep 300; fi; touch {marker}; echo up; sleep 0.2; exit 1"
    spec = ProcessSpec(
        name="api",
        argv=("sh", "-c", script),
        readiness=Readiness(log_pattern="^up$", timeout=0.5),
        restart=RestartPolicy(mode="on-failure", max_restarts=1, backoff=0.05),
        stop_timeout=2,
    )
    with Supervisor([spec], on_event=recorder.event) as sup:
        sup.start()
        sup.wait_ready(timeout=10)
        poll(lambda: sup.status()[0].state == ProcessState.CRASHED, what="giving up")
        assert sup.status()[0].pid is None
    crashes = [e for e in recorder.events if e.kind == EventKind.CRASHED]
    assert crashes[0].message == "exited with code 1; restart 1/1"
    assert crashes[1].message == (
        "not ready after 0.5s: timed out waiting for a line matching /^up$/; "
        "gave up after 1 restart"
    )


def test_wait_ready_overall_timeout_names_who_is_not_ready() -> None:
    port = free_port()
    specs = [
        ProcessSpec(
            name="api",
            argv=("sh", "-c", "sleep 300"),
            port=port,
            readiness=Readiness(http_path="/healthz", timeout=60),
        ),
        ProcessSpec(
            name="web",
            argv=("sh", "-c", "sleep 300"),
            readiness=Readiness(log_pattern="ready", timeout=60),
        ),
    ]
    with Supervisor(specs) as sup:
        sup.start()
        before = trees(sup)
        with pytest.raises(DevProcessError) as info:
            sup.wait_ready(timeout=0.5)
    assert info.value.message == (
        f"api: not ready after 0.5s: timed out waiting for http://127.0.0.1:{port}/healthz "
        "(also not ready: web)"
    )
    assert_all_gone(before)
