"""The deploy lock on a real sandbox host: racing acquirers, release on error, the CLI."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from stagecraft.cli.main import run
from stagecraft.deploy.state import lock
from stagecraft.deploy.state.layout import app_dir, lock_path
from stagecraft.deploy.state.lock import LockInfo, LockToken
from stagecraft.errors import ExitCode, LockHeld
from stagecraft.localhosts.sandbox import Sandbox, ssh_options_for
from stagecraft.runtime.ssh import SSHHost

pytestmark = [pytest.mark.integration, pytest.mark.sandbox]


@pytest.fixture
def project(sandbox3: Sandbox) -> Iterator[str]:
    """A project name unique to this test; its state is removed from h1 afterwards."""
    name = "lk" + uuid.uuid4().hex[:8]
    yield name
    sandbox3.ssh_host("h1").run(["rm", "-rf", app_dir(name, "staging").rsplit("/", 1)[0]])


def info_for(project: str, command: str = "deploy") -> LockInfo:
    return LockInfo.create(project, "staging", host="h1", command=command, version="abc123def456")


def test_two_racing_acquirers_exactly_one_wins(sandbox3: Sandbox, project: str) -> None:
    hosts = [SSHHost(sandbox3.hosts[0].target(), ssh_options_for(sandbox3)) for _ in range(2)]
    infos = [info_for(project, "deploy"), info_for(project, "rollback")]
    barrier = threading.Barrier(2)
    won: list[LockToken] = []
    lost: list[LockHeld] = []

    def contend(index: int) -> None:
        barrier.wait()
        try:
            won.append(lock.acquire(hosts[index], infos[index]))
        except LockHeld as exc:
            lost.append(exc)

    for _ in range(3):  # race a few times: each round exactly one winner
        won.clear()
        lost.clear()
        threads = [threading.Thread(target=contend, args=(i,)) for i in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert len(won) == 1 and len(lost) == 1
        winner = won[0].info
        assert f"held by {winner.holder} since {winner.started_at} ({winner.command}" in (
            lost[0].message
        )
        assert lock.status(hosts[0], project, "staging") == winner
        lock.release(hosts[0], won[0])
        assert lock.status(hosts[0], project, "staging") is None


def test_lock_is_released_on_error_and_waiters_get_it(sandbox3: Sandbox, project: str) -> None:
    host = sandbox3.ssh_host("h1")
    with pytest.raises(RuntimeError), lock.held(host, info_for(project)):
        assert host.read_file(lock_path(project, "staging")) is not None
        raise RuntimeError("deploy failed")
    assert lock.status(host, project, "staging") is None

    first = lock.acquire(host, info_for(project))
    releaser = threading.Timer(1.0, lock.release, args=(host, first))
    releaser.start()
    second = lock.acquire(host, info_for(project, "rollback"), wait=20, poll=0.2)
    releaser.join()
    assert lock.status(host, project, "staging") == second.info
    with pytest.raises(LockHeld, match=r"waited 0.5s"):
        lock.acquire(host, info_for(project), wait=0.5, poll=0.1)
    lock.release(host, second)


def write_config(root: Path, project: str, sandbox: Sandbox) -> Path:
    h1, h2 = sandbox.hosts[0], sandbox.hosts[1]
    (root / "compose.yaml").write_text("services:\n  web:\n    image: busybox\n")
    config = root / "stagecraft.yml"
    config.write_text(
        f"project: {project}\n"
        "environments:\n"
        "  staging:\n"
        "    hosts:\n"
        f"      h1: {{address: {h1.address}, roles: [web]}}\n"
        f"      h2: {{address: {h2.address}, roles: [web]}}\n"
        "    roles: {web: [web]}\n"
    )
    return config


def test_docs_lock_commands(
    sandbox3: Sandbox,
    project: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """docs/releases.md: `lock status` and `lock release` against a held lock."""
    write_config(tmp_path, project, sandbox3)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("STAGECRAFT_SSH_CONFIG", str(sandbox3.ssh_config))
    host = sandbox3.ssh_host("h1")
    held = lock.acquire(host, info_for(project))

    assert run(["lock", "status", "--env", "staging"]) == ExitCode.OK
    out = capsys.readouterr().out
    assert f"held by {held.info.describe()}" in out

    assert run(["lock", "release", "--env", "staging"]) == ExitCode.USAGE  # no tty, no --yes
    assert "pass --yes" in capsys.readouterr().err
    assert lock.status(host, project, "staging") == held.info

    assert run(["lock", "release", "--env", "staging", "--yes"]) == ExitCode.OK
    assert f"released the deploy lock held by {held.info.holder}" in capsys.readouterr().out
    assert run(["--json", "lock", "status", "--env", "staging"]) == ExitCode.OK
    assert '"held": false' in capsys.readouterr().out


def test_many_waiting_acquirers_each_get_the_lock_exactly_once(
    sandbox3: Sandbox, project: str
) -> None:
    """--lock-wait under contention: a holder releasing mid-attempt means "try again"."""
    count = 14
    hosts = [SSHHost(sandbox3.hosts[0].target(), ssh_options_for(sandbox3)) for _ in range(count)]
    barrier = threading.Barrier(count)
    guard = threading.Lock()
    holding: list[int] = []
    acquired: list[int] = []
    errors: list[BaseException] = []

    def contend(index: int) -> None:
        barrier.wait()
        try:
            token = lock.acquire(hosts[index], info_for(project), wait=120, poll=0.02)
            with guard:
                holding.append(index)
                acquired.append(index)
                assert len(holding) == 1, f"two holders at once: {holding}"
            assert lock.status(hosts[index], project, "staging") == token.info
            with guard:
                holding.remove(index)
            lock.release(hosts[index], token)
        except BaseException as exc:  # every failure is reported, not lost in a thread
            errors.append(exc)

    threads = [threading.Thread(target=contend, args=(i,)) for i in range(count)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=180)
    finally:
        for host in hosts:
            host.close()
    assert errors == []
    assert sorted(acquired) == list(range(count))
    assert lock.status(sandbox3.ssh_host("h1"), project, "staging") is None
