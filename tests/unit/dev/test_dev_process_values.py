"""Pure parts of the supervisor: specs, errors, /proc parsing, tree walking, preflight checks."""

from __future__ import annotations

import os
import signal
import socket
from pathlib import Path

import pytest

from stagecraft.dev import proctree
from stagecraft.dev.model import DevProcessError, ProcessSpec, describe_exit
from stagecraft.dev.readiness import LogMatcher, describe
from stagecraft.dev.restart import RestartPolicy
from stagecraft.dev.supervisor import Supervisor, preflight, resolve_command
from stagecraft.providers.backend import DevProcess, Readiness


def info(pid: int, ppid: int, pgid: int | None = None, sid: int | None = None) -> proctree.ProcInfo:
    return proctree.ProcInfo(pid, ppid, pgid or pid, sid or pid, "S", 1000 + pid, f"p{pid}")


def test_spec_from_a_provider_dev_process_keeps_every_setting(tmp_path: Path) -> None:
    dev = DevProcess(
        name="backend",
        argv=("node", "server.js"),
        cwd=tmp_path,
        env={"SECRET_TOKEN": "s3cr3t"},
        port=4000,
        readiness=Readiness(http_path="/healthz", timeout=5),
        stop_signal="SIGINT",
        stop_timeout=3,
    )
    spec = ProcessSpec.from_dev_process(dev, RestartPolicy.parse("on-failure:2"))
    assert (spec.name, spec.argv, spec.cwd, spec.port) == ("backend", dev.argv, tmp_path, 4000)
    assert (spec.stop_signal, spec.stop_timeout) == (signal.SIGINT, 3)
    assert spec.readiness == dev.readiness and spec.restart.max_restarts == 2
    assert "s3cr3t" not in repr(spec)  # env may hold secrets


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": ""}, "non-empty word"),
        ({"name": "my api"}, "non-empty word"),
        ({"argv": ()}, "empty command"),
        ({"port": 70000}, "out of range"),
        ({"readiness": Readiness(http_path="/")}, "needs a port"),
        ({"stop_timeout": 0}, "stop_timeout"),
    ],
)
def test_spec_validation(kwargs: dict[str, object], message: str) -> None:
    values: dict[str, object] = {"name": "api", "argv": ("true",), **kwargs}
    with pytest.raises(ValueError, match=message):
        ProcessSpec(**values)  # type: ignore[arg-type]


def test_duplicate_names_are_rejected() -> None:
    spec = ProcessSpec(name="api", argv=("true",))
    with pytest.raises(ValueError, match="duplicate dev process names: api"):
        Supervisor([spec, spec])


def test_error_lines_show_the_last_output_under_the_message() -> None:
    error = DevProcessError("api", "exited with code 1 before it was ready", last_lines=["a", "b"])
    assert error.message == "api: exited with code 1 before it was ready"
    assert error.lines() == [error.message, "last output of api:", "  a", "  b"]
    assert DevProcessError("api", "x").lines() == ["api: x"]


def test_exit_descriptions() -> None:
    assert describe_exit(0) == "exited with code 0"
    assert describe_exit(3) == "exited with code 3"
    assert describe_exit(-9) == "was killed by SIGKILL"
    assert describe_exit(-200) == "was killed by signal 200"


def test_readiness_descriptions_and_log_matching() -> None:
    assert describe(Readiness(http_path="/healthz"), 4000) == "http://127.0.0.1:4000/healthz"
    assert describe(Readiness(log_pattern="ready in"), None) == "a line matching /ready in/"
    assert describe(Readiness(), None) == "the process to start"
    vite = (
        "  \x1b[32m➜\x1b[39m  \x1b[1mLocal\x1b[22m:   \x1b[36mhttp://localhost:\x1b[1m5173\x1b[22m/"
    )
    assert LogMatcher(r"Local:\s+http://localhost:5173").matches(vite)
    assert not LogMatcher(r"^ready$").matches("not ready")


def test_parse_stat_handles_spaces_and_parens_in_the_command_name() -> None:
    fields = " ".join(["S", "1", "42", "42"] + ["0"] * 15 + ["98765"] + ["0"] * 20)
    parsed = proctree.parse_stat(f"4242 (node (worker) 1) {fields}")
    assert parsed == proctree.ProcInfo(4242, 1, 42, 42, "S", 98765, "node (worker) 1")
    me = proctree.read_proc(os.getpid())
    assert me is not None and me.pid == os.getpid() and me.ppid == os.getppid()
    assert proctree.is_alive(me)
    assert not proctree.is_alive(proctree.ProcInfo(me.pid, 0, 0, 0, "S", me.starttime + 1, "x"))


def test_tree_of_finds_descendants_group_and_session_members() -> None:
    table = {
        p.pid: p
        for p in [
            info(10, 1),  # leader
            info(11, 10, pgid=10, sid=10),  # child in the group
            info(12, 11, sid=12),  # grandchild that escaped (setsid), still linked
            info(13, 1, pgid=10, sid=10),  # orphaned group member (parent died)
            info(14, 1, pgid=14, sid=10),  # own group, same session
            info(20, 1),  # unrelated
            info(21, 20),  # unrelated child
        ]
    }
    assert sorted(p.pid for p in proctree.tree_of(10, table)) == [10, 11, 12, 13, 14]
    assert sorted(p.pid for p in proctree.descendants([10], table)) == [11, 12]


def test_preflight_names_a_taken_port_and_its_holder() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        assert proctree.port_in_use(port)
        holders = proctree.port_holders(port)
        assert [h.pid for h in holders] == [os.getpid()]
        spec = ProcessSpec(name="api", argv=("true",), port=port)
        with pytest.raises(DevProcessError, match=f"api: port {port} is already in use by pid"):
            preflight(spec)
    assert not proctree.port_in_use(port)
    preflight(spec)


def test_resolve_command_checks_paths_relative_to_the_working_directory(tmp_path: Path) -> None:
    script = tmp_path / "bin" / "serve"
    script.parent.mkdir()
    script.write_text("#!/bin/sh\n")
    spec = ProcessSpec(name="api", argv=("./bin/serve",), cwd=tmp_path)
    with pytest.raises(DevProcessError, match=r"api: command `./bin/serve` is not executable"):
        resolve_command(spec)
    script.chmod(0o755)
    assert resolve_command(spec) == str(tmp_path / "bin" / "serve")
    gone = ProcessSpec(name="api", argv=("./bin/nope",), cwd=tmp_path)
    with pytest.raises(DevProcessError, match="does not exist"):
        resolve_command(gone)


def test_resolve_command_uses_the_spec_path(tmp_path: Path) -> None:
    tool = tmp_path / "devtool"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    spec = ProcessSpec(name="web", argv=("devtool",), env={"PATH": str(tmp_path)})
    assert resolve_command(spec) == str(tool)
    with pytest.raises(DevProcessError, match="web: command `devtool` not found on PATH") as err:
        resolve_command(ProcessSpec(name="web", argv=("devtool",)))
    assert err.value.hint == "install devtool, or fix the command in stagecraft.yml"
