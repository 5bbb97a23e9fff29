"""Shipping images to real sandbox hosts: over SSH (only what is missing) and via a registry."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from stagecraft.deploy import ship
from stagecraft.deploy.ship import RegistryTarget, layers
from stagecraft.errors import HostUnreachable
from stagecraft.localhosts.sandbox import Sandbox
from stagecraft.providers.secrets import SecretValue
from stagecraft.runtime import process
from stagecraft.testing.registry import LocalRegistry, local_registry

pytestmark = [pytest.mark.integration, pytest.mark.sandbox]


@pytest.fixture
def unique_image(busybox_image: str) -> Iterator[str]:
    """A fresh local image (busybox plus a unique label) no host has; removed afterwards."""
    tag = f"shiptest/app{uuid.uuid4().hex[:8]}:v1"
    dockerfile = f"FROM {busybox_image}\nLABEL stagecraft.test={uuid.uuid4().hex}\n"
    process.run(
        ["docker", "build", "-q", "-t", tag, "-"],
        input=dockerfile,
        extra_env={"DOCKER_BUILDKIT": "0"},
    )
    yield tag
    process.run(["docker", "image", "rm", "-f", tag], check=False)


def local_saves_since(since: float) -> int:
    """How many ``docker save`` exports the local daemon made since ``since``."""
    until = str(int(time.time()) + 1)
    argv = ["docker", "events", "--since", f"{since:.3f}", "--until", until]
    argv += ["--filter", "type=image", "--filter", "event=save", "--format", "{{.ID}}"]
    result = process.run(argv)
    return len(result.stdout.split())


def loads_since(sandbox: Sandbox, host: str, since: float) -> int:
    """How many image load events the host's daemon reported since ``since`` (unix time)."""
    return len(sandbox.image_events(host, "load", since))


def test_ssh_ship_sends_to_two_hosts_then_nothing(sandbox3: Sandbox, unique_image: str) -> None:
    hosts = [sandbox3.ssh_host("h1"), sandbox3.ssh_host("h2")]
    local_id = process.run(
        ["docker", "image", "inspect", "--format", "{{.Id}}", unique_image]
    ).stdout.strip()
    since = time.time() - 1
    try:
        first = ship.ship([unique_image], hosts, parallel=2)
        first.raise_for_failures()
        for name in ("h1", "h2"):
            shipment = first.hosts[name]
            assert shipment.sent == (unique_image,) and shipment.skipped == ()
            transfer = shipment.transfer
            assert transfer is not None and shipment.bytes_sent > 0
            # busybox's layers travel (gzipped) unless an earlier test left them on the host
            assert transfer.layers + transfer.kept == 2
            assert (transfer.layers == 0) or shipment.bytes_sent > 500_000
            remote = sandbox3.docker(name, "image", "inspect", "--format", "{{.Id}}", unique_image)
            assert remote.stdout.strip() == local_id
        assert [loads_since(sandbox3, n, since) for n in ("h1", "h2")] == [1, 1]
        assert local_saves_since(since) == 1  # one export, streamed to both hosts

        second = ship.ship([unique_image], hosts, parallel=2)
        second.raise_for_failures()
        for name in ("h1", "h2"):
            shipment = second.hosts[name]
            assert shipment.sent == () and shipment.skipped == (unique_image,)
            assert shipment.bytes_sent == 0
        assert [loads_since(sandbox3, n, since) for n in ("h1", "h2")] == [1, 1]

        # Known under another name only: tagged on the host, nothing sent.
        sandbox3.docker("h1", "tag", local_id, unique_image + "-old")
        sandbox3.docker("h1", "image", "rm", unique_image)
        third = ship.ship([unique_image], hosts[:1])
        assert third.hosts["h1"].tagged == (unique_image,) and third.hosts["h1"].sent == ()
        assert loads_since(sandbox3, "h1", since) == 1
    finally:
        for name in ("h1", "h2"):
            sandbox3.docker(name, "image", "rm", "-f", local_id, check=False)


def test_a_host_that_is_down_fails_alone_and_the_other_gets_the_images(
    sandbox_factory: Callable[[int], Sandbox], unique_image: str
) -> None:
    sandbox = sandbox_factory(2)
    up, down = sandbox.ssh_host("h1"), sandbox.ssh_host("h2")
    try:
        down.run(["true"])  # a live control connection, then the host dies
        sandbox.stop_host("h2")
        result = ship.ship_over_ssh_many([(down, [unique_image]), (up, [unique_image])])
        assert isinstance(result["h2"].error, HostUnreachable), result["h2"].error
        shipped = result["h1"].value
        assert shipped is not None and shipped.sent == (unique_image,)
        assert shipped.bytes_sent > 500_000  # the busybox layer, gzipped
        assert sandbox.image_events("h1", "load", 0) != []
        again = ship.ship_over_ssh_many([(up, [unique_image])])
        assert again["h1"].value is not None and again["h1"].value.skipped == (unique_image,)
    finally:
        up.close()
        down.close()


def test_ssh_ship_reports_a_missing_local_image(sandbox3: Sandbox) -> None:
    with pytest.raises(ship.ShipError, match="not on the local Docker daemon"):
        ship.ship(["shiptest/never-built:v0"], [sandbox3.ssh_host("h1")])


@pytest.fixture
def registry(sandbox3: Sandbox, tmp_path: Path) -> Iterator[LocalRegistry]:
    """The test registry on the sandbox bridge (hosts pull) and localhost (we push)."""
    with local_registry(sandbox3.bridge_address, tmp_path) as running:
        yield running


def test_registry_ship_round_trip(
    sandbox3: Sandbox, registry: LocalRegistry, unique_image: str
) -> None:
    name = unique_image.split("/", 1)[1]
    image = f"{registry.host_address}/{name}"
    process.run(["docker", "tag", unique_image, image])
    hosts = [sandbox3.ssh_host("h2"), sandbox3.ssh_host("h3")]
    target = RegistryTarget(
        registry.host_address,
        username=registry.username,
        password=SecretValue(registry.password, name="REGISTRY_PASSWORD"),
        push_registry=registry.local_address,
    )
    try:
        result = ship.ship([image], hosts, registry=target)
        result.raise_for_failures()
        assert result.mode == "registry" and result.pushed == (image,)
        for host in ("h2", "h3"):
            assert result.hosts[host].sent == (image,)
            pulled = sandbox3.docker(host, "image", "inspect", "--format", "{{.Id}}", image)
            assert pulled.stdout.strip() == ship.local_image_ids([image])[image]
            config = sandbox3.ssh_host(host).run(["sh", "-c", "cat ~/.docker/config.json || true"])
            assert registry.password not in config.stdout  # throw-away DOCKER_CONFIG

        again = ship.ship([image], hosts, registry=target)
        assert all(again.hosts[h].skipped == (image,) for h in ("h2", "h3"))

        wrong = RegistryTarget(
            registry.host_address,
            username="ci",
            password=SecretValue("wrong-password"),
            push_registry=registry.local_address,
        )
        with pytest.raises(Exception, match="docker login"):
            ship.ship([image], hosts, registry=wrong)
    finally:
        process.run(["docker", "image", "rm", image], check=False)
        for host in ("h2", "h3"):
            sandbox3.docker(host, "image", "rm", "-f", image, check=False)


def _retagged_for(image: str, architecture: str, tag: str) -> str:
    """``image`` loaded locally as ``tag`` with its config saying ``architecture`` (its new ID)."""
    import hashlib
    import io
    import json
    import subprocess
    import tarfile

    saved = subprocess.run(["docker", "save", image], capture_output=True, check=True).stdout
    out = io.BytesIO()
    with (
        tarfile.open(fileobj=io.BytesIO(saved)) as source,
        tarfile.open(fileobj=out, mode="w") as new,
    ):
        listing = source.extractfile("manifest.json")
        assert listing is not None
        manifest = json.load(listing)
        old = source.extractfile(manifest[0]["Config"])
        assert old is not None
        config = json.load(old)
        config["architecture"] = architecture
        raw = json.dumps(config).encode()
        digest = hashlib.sha256(raw).hexdigest()
        manifest = [{**manifest[0], "Config": f"{digest}.json", "RepoTags": [tag]}]
        for member in source.getmembers():
            if "/" not in member.name and member.name not in ("VERSION",) and not member.isdir():
                continue  # the top-level manifest, repositories and config: written anew
            new.addfile(member, source.extractfile(member) if member.isfile() else None)
        for name, data in (
            (f"{digest}.json", raw),
            ("manifest.json", json.dumps(manifest).encode()),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            new.addfile(info, io.BytesIO(data))
    subprocess.run(["docker", "load"], input=out.getvalue(), capture_output=True, check=True)
    return "sha256:" + digest


def test_an_image_for_another_architecture_is_refused_before_anything_is_sent(
    sandbox3: Sandbox, busybox_image: str
) -> None:
    """Issue 12 item 7: an arm64 image never reaches an amd64 host (or the other way round)."""
    host = sandbox3.ssh_host("h1")
    native = process.run(["docker", "version", "--format", "{{.Server.Arch}}"]).stdout.strip()
    foreign = "arm64" if native != "arm64" else "amd64"
    tag = f"shiptest/foreign{uuid.uuid4().hex[:6]}:v1"
    image_id = _retagged_for(busybox_image, foreign, tag)
    since = time.time() - 1
    try:
        result = ship.ship_over_ssh_many([(host, [tag])])
        error = result["h1"].error
        assert isinstance(error, layers.PlatformMismatch), error
        assert error.message == (
            f"h1: image {tag} is built for linux/{foreign}, but the host runs linux/{native}"
        )
        assert loads_since(sandbox3, "h1", since) == 0  # nothing was sent
    finally:
        host.close()
        process.run(["docker", "image", "rm", "-f", image_id], check=False)
