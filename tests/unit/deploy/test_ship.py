"""Unit tests of ship decisions and host-side commands, with fake hosts and runner."""

from __future__ import annotations

import json
import re

import pytest

from stagecraft.deploy import ship
from stagecraft.deploy.ship import Decision, RegistryTarget, ShipError, layers
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


A, B, C = ("sha256:" + c * 64 for c in "abc")
IMAGES = {
    "shop/api:v2": layers.LocalImage("shop/api:v2", "sha256:aaa", (A, B)),
    "shop/web:v2": layers.LocalImage("shop/web:v2", "sha256:bbb", (A, C)),
}


def _state(tags: dict[str, str], images: dict[str, tuple[str, ...]]) -> str:
    lines = ["V 20.10.24", 'D overlay2 [["Backing Filesystem","extfs"]]']
    lines += [f"T {tag} {image_id}" for tag, image_id in tags.items()]
    lines += [f"L {image_id} {' '.join(diffs)} " for image_id, diffs in images.items()]
    return "\n".join(lines) + "\n"


def test_the_state_script_output_is_parsed() -> None:
    has = layers.parse_host_images(
        _state({"shop/api:v2": "sha256:aaa", "shop/web:v2": "-"}, {"sha256:aaa": (A, B)})
    )
    assert has.version == "20.10.24" and not has.containerd_store
    assert has.tags == {"shop/api:v2": "sha256:aaa", "shop/web:v2": None}
    assert has.ids == {"sha256:aaa"} and has.chains == set(layers.chain_ids((A, B)))
    containerd = layers.parse_host_images(
        'V 27.0.1\nD overlayfs [["driver-type","io.containerd.snapshotter.v1"]]\n'
    )
    assert containerd.containerd_store


def test_a_host_gets_only_the_layers_it_lacks() -> None:
    host = FakeSSHHost("web-1")
    # It runs api (layers A, B); web shares A and adds C.
    has = layers.parse_host_images(_state({"shop/api:v2": "sha256:aaa"}, {"sha256:aaa": (A, B)}))
    need = layers.need(host, IMAGES, has)
    assert need.send == ("shop/web:v2",) and need.skip == ("shop/api:v2",)
    assert need.chains == {layers.chain_ids((A, C))[1]} and need.kept == 1
    assert need.whole is None


def test_a_layer_under_another_parent_is_not_counted_as_had() -> None:
    host = FakeSSHHost("web-1")
    has = layers.parse_host_images(_state({}, {"sha256:zzz": (C,)}))  # C alone, at the bottom
    need = layers.need(host, {"shop/web:v2": IMAGES["shop/web:v2"]}, has)
    assert need.chains == set(layers.chain_ids((A, C))) and need.kept == 0


def test_an_image_the_host_has_under_another_name_is_tagged_not_sent() -> None:
    has = layers.parse_host_images(_state({"shop/api:v2": "-"}, {"sha256:aaa": (A, B)}))
    need = layers.need(FakeSSHHost("web-1"), {"shop/api:v2": IMAGES["shop/api:v2"]}, has)
    assert need.tag == ("shop/api:v2",) and need.send == () and need.chains == frozenset()


def test_a_containerd_image_store_gets_whole_images_and_says_why() -> None:
    has = layers.parse_host_images(
        'V 27.0.1\nD overlayfs [["driver-type","io.containerd.snapshotter.v1"]]\n'
    )
    need = layers.need(FakeSSHHost("web-1"), IMAGES, has)
    assert need.whole is not None and "containerd image store" in need.whole


def test_ship_over_ssh_sends_nothing_when_the_host_has_everything(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    inspect = [
        {"Id": image.id, "RootFS": {"Layers": list(image.layers)}} for image in IMAGES.values()
    ]
    runner = FakeRunner().expect(re.compile("docker image inspect"), stdout=json.dumps(inspect))
    monkeypatch.setattr("stagecraft.deploy.ship.layers.process.run", runner)
    host = FakeSSHHost("web-1").expect(
        re.compile("docker version"),
        stdout=_state(
            {"shop/api:v2": "sha256:aaa", "shop/web:v2": "sha256:bbb"},
            {"sha256:aaa": (A, B), "sha256:bbb": (A, C)},
        ),
    )
    shipment = ship.ship_over_ssh(host, list(IMAGES))
    assert shipment.sent == () and shipment.bytes_sent == 0 and shipment.transfer is None
    assert shipment.skipped == tuple(IMAGES) and len(host.commands) == 1


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


def test_an_image_for_another_platform_fails_that_host_with_the_fix() -> None:
    arm = layers.LocalImage("shop/api:v2", "sha256:aaa", (A, B), "linux/arm64")
    has = layers.parse_host_images("V 20.10.24\nA linux/amd64\n")
    with pytest.raises(layers.PlatformMismatch) as caught:
        layers.need(FakeSSHHost("web-1"), {"shop/api:v2": arm}, has)
    assert caught.value.message == (
        "web-1: image shop/api:v2 is built for linux/arm64, but the host runs linux/amd64"
    )
    assert "platform: linux/amd64" in (caught.value.hint or "")
    same = layers.LocalImage("shop/api:v2", "sha256:aaa", (A, B), "linux/amd64")
    assert layers.need(FakeSSHHost("web-1"), {"shop/api:v2": same}, has).send == ("shop/api:v2",)
    # An image the host already runs is not questioned.
    running = layers.parse_host_images("V 20.10.24\nA linux/amd64\nT shop/api:v2 sha256:aaa\n")
    assert layers.need(FakeSSHHost("web-1"), {"shop/api:v2": arm}, running).skip == ("shop/api:v2",)


def test_one_local_inspect_answers_which_images_are_here_and_their_layers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from stagecraft.deploy.ship.layers import inspect_present

    def item(image_id: str) -> dict[str, object]:
        return {"Id": image_id, "RootFS": {"Layers": ["sha256:a"]}, "Os": "linux"}

    both = FakeRunner().expect(
        "docker image inspect shop/api:v2 caddy:2", stdout=json.dumps([item("i1"), item("i2")])
    )
    monkeypatch.setattr("stagecraft.deploy.ship.layers.process.run", both)
    found = inspect_present(["shop/api:v2", "caddy:2"])
    assert {t: i.id for t, i in found.items()} == {"shop/api:v2": "i1", "caddy:2": "i2"}
    assert len(both.calls) == 1

    one_missing = (
        FakeRunner()
        .expect("docker image inspect shop/api:v2 caddy:2", returncode=1, stdout="[]")
        .expect("docker image inspect shop/api:v2", stdout=json.dumps([item("i1")]))
        .expect("docker image inspect caddy:2", returncode=1, stdout="[]")
    )
    monkeypatch.setattr("stagecraft.deploy.ship.layers.process.run", one_missing)
    assert list(inspect_present(["shop/api:v2", "caddy:2"])) == ["shop/api:v2"]
