"""Unit tests of the deploy lock's record, messages and release logic (fake host)."""

from __future__ import annotations

import json
import re

import pytest

from stagecraft.deploy.state import lock
from stagecraft.deploy.state.lock import LockInfo, LockLost, LockToken
from stagecraft.errors import ExitCode, HostUnreachable, LockHeld
from stagecraft.testing.fakes import FakeSSHHost


def make_info(**changes: object) -> LockInfo:
    info = LockInfo.create(
        "shop", "staging", host="web-1", command="deploy", version="abc123", release="r1"
    )
    return LockInfo(**{**info.__dict__, **changes})


def test_record_carries_holder_host_pid_time_command_version_release() -> None:
    info = LockInfo.create(
        "shop", "staging", host="web-1", command="deploy", version="abc123", release="r1"
    )
    data = json.loads(info.to_json())
    assert data["holder"] == lock.local_identity() and "@" in data["holder"]
    assert data["host"] == "web-1" and data["command"] == "deploy"
    assert data["version"] == "abc123" and data["release"] == "r1"
    assert data["pid"] > 0 and data["started_at"].endswith("+00:00")
    assert len(data["token"]) == 32
    assert LockInfo.from_json(info.to_json()) == info


def test_acquire_writes_the_record_exclusively() -> None:
    host = FakeSSHHost("web-1").expect(re.compile(r"ln \"\$t\""))
    info = make_info()
    token = lock.acquire(host, info)
    assert token.path == "/var/lib/stagecraft/apps/shop/staging/lock.json"
    assert host.calls[0].input == (info.to_json() + "\n").encode()


def test_held_lock_names_holder_since_and_command() -> None:
    other = make_info(holder="bob@ci", started_at="2026-11-23T10:00:00+00:00", pid=77)
    host = FakeSSHHost("web-1").expect(
        re.compile(r"ln \"\$t\""), returncode=3, stdout=other.to_json(), times=None
    )
    with pytest.raises(LockHeld) as caught:
        lock.acquire(host, make_info())
    message = caught.value.message
    assert "bob@ci since 2026-11-23T10:00:00+00:00 (deploy abc123, pid 77)" in message
    assert "on web-1" in message and caught.value.exit_code == ExitCode.LOCK_HELD
    assert caught.value.hint is not None and "--lock-wait" in caught.value.hint


def test_wait_polls_until_free() -> None:
    other = make_info(holder="bob@ci")
    host = FakeSSHHost("web-1")
    host.expect(re.compile(r"ln \"\$t\""), returncode=3, stdout=other.to_json(), times=2)
    host.expect(re.compile(r"ln \"\$t\""))
    token = lock.acquire(host, make_info(), wait=5, poll=0.01)
    assert len(host.commands) == 3 and token.host == "web-1"


def test_unreadable_lock_file_counts_as_held() -> None:
    host = FakeSSHHost("web-1").expect(re.compile(r"ln \"\$t\""), returncode=3, stdout='{"hol')
    with pytest.raises(LockHeld, match="unreadable lock file"):
        lock.acquire(host, make_info())


def test_release_checks_our_token() -> None:
    info = make_info()
    host = FakeSSHHost("web-1").expect(re.compile(info.token))
    lock.release(host, LockToken("web-1", "/x/lock.json", info))
    other = FakeSSHHost("web-1").expect(re.compile("grep"), returncode=4)
    with pytest.raises(LockLost, match="no longer ours"):
        lock.release(other, LockToken("web-1", "/x/lock.json", info))


def test_held_releases_on_error_and_keyboard_interrupt() -> None:
    for error in (RuntimeError("boom"), KeyboardInterrupt()):
        host = FakeSSHHost("web-1").expect(re.compile(r"ln \"\$t\"")).expect(re.compile("rm -f"))
        with pytest.raises(type(error)), lock.held(host, make_info()):
            raise error
        host.assert_all_used()


def test_held_reports_a_failed_release_without_hiding_the_error() -> None:
    lost = HostUnreachable("web-1", "cannot connect to 192.0.2.1:22: connection refused")
    host = (
        FakeSSHHost("web-1").expect(re.compile(r"ln \"\$t\"")).expect(re.compile("rm"), raises=lost)
    )
    with pytest.raises(RuntimeError) as caught, lock.held(host, make_info()):
        raise RuntimeError("boom")
    notes = getattr(caught.value, "__notes__", [])
    assert any("could not release the deploy lock on web-1" in n for n in notes)
    assert any("stagecraft lock release --env staging" in n for n in notes)


def test_held_raises_when_release_fails_after_success() -> None:
    lost = HostUnreachable("web-1", "connection refused")
    host = (
        FakeSSHHost("web-1").expect(re.compile(r"ln \"\$t\"")).expect(re.compile("rm"), raises=lost)
    )
    with pytest.raises(HostUnreachable), lock.held(host, make_info()):
        pass


def test_force_release_returns_the_previous_holder() -> None:
    other = make_info(holder="bob@ci")
    host = FakeSSHHost("web-1").expect(re.compile("cat"), stdout=other.to_json())
    assert lock.force_release(host, "shop", "staging") == other
    free = FakeSSHHost("web-1").expect(re.compile("cat"), returncode=4)
    assert lock.force_release(free, "shop", "staging") is None
