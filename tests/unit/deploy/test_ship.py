"""Unit tests of ship decisions and host-side commands, with fake hosts and runner."""

from __future__ import annotations

import re

import pytest

from stagecraft.deploy import ship
from stagecraft.deploy.ship import Decision, RegistryTarget, ShipError
from stagecraft.errors import CommandFailed
from stagecraft.providers.secrets import SecretValue
from stagecraft.testing.fakes import FakeRunner, FakeSSHHost

LOCAL = {"shop/api:v2": "sha256:aaa", "shop/web:v2": "sha256:bbb", "shop/job:v2": "sha256:ccc"}


def test_decide_skips_tags_and_sends() -> None:
    remote = {
        "shop/api:v2": ("sha256:aaa", True),  # has it
        "shop/web:v2": ("sha256:old", True),  # has our image under another tag
        "shop/job:v2": (None, False),  # lacks it
    }
    assert ship.decide(LOCAL, remote) == Decision(
        send=("shop/job:v2",), tag=("shop/web:v2",), skip=("shop/api:v2",)
    )
    stale = {"shop/api:v2": ("sha256:old", False)}
    assert ship.decide({"shop/api:v2": "sha256:aaa"}, stale).send == ("shop/api:v2",)


def test_remote_state_parses_the_inspect_script() -> None:
    host = FakeSSHHost("web-1").expect(
        re.compile(r"docker image inspect"),
        stdout="shop/api:v2 sha256:aaa 1\nshop/web:v2 - 0\n",
    )
    state = ship.remote_state(host, {"shop/api:v2": "sha256:aaa", "shop/web:v2": "sha256:bbb"})
    assert state == {"shop/api:v2": ("sha256:aaa", True), "shop/web:v2": (None, False)}
    assert "'shop/api:v2 sha256:aaa'" in host.commands[0]


def test_ship_over_ssh_sends_nothing_when_the_host_has_everything() -> None:
    host = FakeSSHHost("web-1").expect(
        re.compile("inspect"),
        stdout="".join(f"{tag} {iid} 1\n" for tag, iid in LOCAL.items()),
    )
    shipment = ship.ship_over_ssh(host, LOCAL)
    assert shipment.sent == () and shipment.bytes_sent == 0
    assert shipment.skipped == tuple(LOCAL) and len(host.commands) == 1


def test_ship_over_ssh_tags_an_image_the_host_has_under_another_name() -> None:
    host = FakeSSHHost("web-1").expect(re.compile("inspect"), stdout="shop/api:v2 - 1\n")
    host.expect("docker tag sha256:aaa shop/api:v2")
    shipment = ship.ship_over_ssh(host, {"shop/api:v2": "sha256:aaa"})
    assert shipment.tagged == ("shop/api:v2",) and shipment.sent == ()


def test_local_images_must_exist(monkeypatch: pytest.MonkeyPatch) -> None:
    runner = FakeRunner().expect(re.compile("inspect"), returncode=1, stderr="No such image")
    monkeypatch.setattr("stagecraft.deploy.ship.process.run", runner)
    with pytest.raises(ShipError, match="shop/api:v2 is not on the local Docker daemon"):
        ship.local_image_ids(["shop/api:v2"])


def test_push_refuses_images_named_for_another_registry() -> None:
    with pytest.raises(ShipError, match=r"not named for registry ghcr\.io/acme"):
        ship.push(["shop/api:v2"], RegistryTarget("ghcr.io/acme"))


def test_push_logs_in_on_stdin_and_pushes_through_push_registry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    runner = FakeRunner()
    runner.expect(re.compile(r"^docker login --username acme --password-stdin localhost:5000$"))
    runner.expect("docker tag 10.0.0.1:5000/shop/api:v2 localhost:5000/shop/api:v2")
    runner.expect("docker push localhost:5000/shop/api:v2")
    runner.expect("docker image rm localhost:5000/shop/api:v2")
    monkeypatch.setattr("stagecraft.deploy.ship.process.run", runner)
    target = RegistryTarget(
        "10.0.0.1:5000",
        username="acme",
        password=SecretValue("s3cret-token", name="TOKEN"),
        push_registry="localhost:5000",
    )
    assert ship.push(["10.0.0.1:5000/shop/api:v2"], target) == ("10.0.0.1:5000/shop/api:v2",)
    runner.assert_all_used()
    assert runner.calls[0].input == b"s3cret-token"
    assert all("s3cret-token" not in call.line for call in runner.calls)


def test_pull_on_host_logs_in_with_stdin_and_pulls_only_what_is_missing() -> None:
    host = FakeSSHHost("web-1").expect(
        re.compile("inspect"), stdout="r:5000/api:v2 - 0\nr:5000/web:v2 sha256:bbb 1\n"
    )
    host.expect(re.compile(r"docker login --username acme --password-stdin r:5000.*docker pull"))
    local = {"r:5000/api:v2": "sha256:aaa", "r:5000/web:v2": "sha256:bbb"}
    target = RegistryTarget("r:5000", username="acme", password=SecretValue("tok-123456"))
    shipment = ship.pull_on_host(host, local, target)
    assert shipment.sent == ("r:5000/api:v2",) and shipment.skipped == ("r:5000/web:v2",)
    pull = host.calls[1]
    assert pull.input == b"tok-123456" and "tok-123456" not in pull.line
    assert pull.line.endswith("r:5000/api:v2")


def test_without_gnu_tee_each_host_gets_its_own_export(monkeypatch: pytest.MonkeyPatch) -> None:
    """macOS's tee has no -p: one broken host pipe would stop the others, so no sharing."""
    from stagecraft.deploy import ship_stream

    runner = FakeRunner().expect(re.compile(r"^bash -c "), times=None)
    monkeypatch.setattr("stagecraft.deploy.ship_stream.process.run", runner)
    monkeypatch.setattr(ship_stream, "tee_splits", lambda: False)
    hosts = [FakeSSHHost("web-1", "192.0.2.1"), FakeSSHHost("web-2", "192.0.2.2")]

    ship_stream.stream_to_hosts(hosts, ["shop/api:v2"])

    scripts = [call.argv[2] for call in runner.calls]
    assert len(scripts) == 2 and all("| tee " in s and "tee -p" not in s for s in scripts)
    assert sorted("192.0.2.1" in script for script in scripts) == [False, True]  # one each


def test_hosts_lacking_the_same_images_share_one_teed_export(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from stagecraft.deploy import ship_stream

    runner = FakeRunner().expect(re.compile(r"^bash -c "))
    monkeypatch.setattr("stagecraft.deploy.ship_stream.process.run", runner)
    monkeypatch.setattr(ship_stream, "tee_splits", lambda: True)
    hosts = [FakeSSHHost("web-1", "192.0.2.1"), FakeSSHHost("web-2", "192.0.2.2")]

    sent = ship_stream.stream_to_hosts(hosts, ["shop/api:v2"])

    (script,) = [call.argv[2] for call in runner.calls]
    assert script.count('docker save "$@"') == 1 and "tee -p" in script
    assert script.count("docker load") == 2
    assert all(isinstance(value, CommandFailed) for value in sent.values())  # no rc files
