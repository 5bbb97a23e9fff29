"""runtime.fanout: bounded parallelism, input order, aggregate results, interrupts."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from stagecraft.errors import CommandFailed, ExitCode, HostUnreachable, Interrupted
from stagecraft.runtime.fanout import GroupError, GroupResult, Outcome, fan_out
from stagecraft.runtime.process import run, stop_requested


def test_outcomes_come_back_in_input_order_whatever_the_finish_order() -> None:
    delays = {"a": 0.15, "b": 0.0, "c": 0.05}
    result = fan_out(
        list(delays),
        lambda key: time.sleep(delays[key]) or key.upper(),
        name=str,
        parallel=3,
    )
    assert [o.name for o in result.outcomes] == ["a", "b", "c"]
    assert [o.value for o in result.outcomes] == ["A", "B", "C"]
    assert result.ok and len(result.succeeded) == 3 and result.failed == ()
    assert all(o.duration >= 0 for o in result.outcomes)


def test_at_most_parallel_items_run_at_once() -> None:
    lock = threading.Lock()
    running = 0
    peak = 0

    def work(item: int) -> int:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.03)
        with lock:
            running -= 1
        return item

    result = fan_out(list(range(12)), work, name=str, parallel=3)
    assert peak == 3
    assert [o.value for o in result.outcomes] == list(range(12))


def test_parallel_runs_really_overlap() -> None:
    started = time.monotonic()
    fan_out([1, 2, 3, 4], lambda _: time.sleep(0.3), name=str, parallel=4)
    assert time.monotonic() - started < 1.0


def test_one_failure_keeps_every_other_result() -> None:
    def work(host: str) -> str:
        if host == "web-2":
            raise HostUnreachable(host, "cannot connect to 10.0.0.2:22: connection refused")
        return f"{host} ok"

    result = fan_out(["web-1", "web-2", "web-3"], work, name=str)
    assert not result.ok
    assert [o.value for o in result.succeeded] == ["web-1 ok", "web-3 ok"]
    (failed,) = result.failed
    assert failed.name == "web-2" and isinstance(failed.error, HostUnreachable)
    assert result["web-3"].value == "web-3 ok"
    with pytest.raises(KeyError):
        result["web-9"]


def test_group_error_names_every_failure_once_with_a_common_exit_code() -> None:
    result = fan_out(
        ["web-1", "web-2", "web-3"],
        lambda h: (
            (_ for _ in ()).throw(HostUnreachable(h, "connection refused"))
            if h != "web-1"
            else "ok"
        ),
        name=str,
    )
    with pytest.raises(GroupError) as info:
        result.raise_for_failures()
    error = info.value
    assert (
        error.message == "2 of 3 hosts failed: web-2: connection refused; web-3: connection refused"
    )
    assert error.lines() == [
        "2 of 3 hosts failed:",
        "  web-2: connection refused",
        "  web-3: connection refused",
    ]
    assert error.exit_code == ExitCode.UNREACHABLE
    assert set(error.errors) == {"web-2", "web-3"}


def test_group_error_with_different_failures_exits_failed_and_reports_bugs() -> None:
    def work(item: str) -> None:
        if item == "a":
            raise CommandFailed(["docker", "ps"], 1, "boom", host="a")
        raise ValueError("bad value")

    result = fan_out(["a", "b"], work, name=str)
    error = GroupError(result.failed, total=2, what="services")
    assert error.message.startswith("2 of 2 services failed: a: on a: `docker ps` exited with 1")
    assert "b: unexpected ValueError: bad value" in error.message
    assert error.exit_code == ExitCode.FAILED


def test_the_single_failure_message_matches_the_documented_shape() -> None:
    outcomes = (
        Outcome("web-1", "ok", None, 0.1),
        Outcome("web-2", None, HostUnreachable("web-2", "connection refused"), 0.1),
        Outcome("web-3", "ok", None, 0.1),
    )
    with pytest.raises(GroupError, match=r"^1 of 3 hosts failed: web-2: connection refused$"):
        GroupResult(outcomes).raise_for_failures()
    GroupResult(outcomes[:1]).raise_for_failures()


def test_on_done_is_called_in_the_calling_thread_for_each_item() -> None:
    seen: list[tuple[str, bool, bool]] = []
    main = threading.get_ident()
    fan_out(
        ["x", "y"],
        lambda item: 1 / 0 if item == "y" else item,
        name=str,
        on_done=lambda o: seen.append((o.name, o.ok, threading.get_ident() == main)),
    )
    assert sorted(seen) == [("x", True, True), ("y", False, True)]


def test_no_items_and_bad_parallel() -> None:
    assert fan_out([], lambda item: item, name=str).outcomes == ()
    with pytest.raises(ValueError, match="parallel"):
        fan_out([1], lambda item: item, name=str, parallel=0)


def test_ctrl_c_stops_running_processes_skips_pending_items_and_propagates(
    tmp_path: Path,
) -> None:
    """An interrupt in the caller kills in-flight `run` processes and never starts the rest."""
    started: list[str] = []
    pidfile = tmp_path / "slow.pid"

    def work(item: str) -> str:
        started.append(item)
        if item == "fast":
            return "done"
        run(["sh", "-c", f"echo $$ > {pidfile}; exec sleep 30"])
        return "never"

    def interrupt(outcome: Outcome[str]) -> None:
        if outcome.name == "fast":
            assert wait_for(pidfile.exists), "the slow item never started"
            raise KeyboardInterrupt

    began = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        fan_out(
            ["slow", "fast", "pending-1", "pending-2"],
            work,
            name=str,
            parallel=2,
            on_done=interrupt,
        )
    assert time.monotonic() - began < 10
    sleeper = int(pidfile.read_text())
    assert wait_for(lambda: not alive(sleeper)), "the in-flight process survived Ctrl-C"
    assert "pending-2" not in started


def test_cancelled_work_sees_stop_requested_and_run_refuses_to_start() -> None:
    observed: list[bool] = []
    gate = threading.Event()

    def work(item: str) -> None:
        if item == "trigger":
            return
        gate.wait(5)
        observed.append(stop_requested())
        with pytest.raises(Interrupted):
            run(["true"])

    def interrupt(outcome: Outcome[None]) -> None:
        if outcome.name == "trigger":
            threading.Timer(0.2, gate.set).start()
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fan_out(["loop", "trigger"], work, name=str, parallel=2, on_done=interrupt)
    assert observed == [True]


def wait_for(condition: object, timeout: float = 5.0) -> bool:
    assert callable(condition)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return bool(condition())


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().rsplit(")", 1)[-1].split()[0] == "Z")
