"""Registry-less shipping at real image sizes: only the layers a host lacks, gzipped.

A ~200 MB base (the Debian image of ``stagecraft.testing.images``) with an app
layer that changes per version, shipped to real sandbox hosts (own dockerd and
sshd each, dockerd 20.10 with the classic image store).
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import tarfile
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Iterator

import pytest

from stagecraft.deploy import ship
from stagecraft.deploy.ship import stream
from stagecraft.localhosts.sandbox import Sandbox
from stagecraft.runtime import process
from stagecraft.testing import images
from stagecraft.testing.images import ensure_debian_image

pytestmark = [pytest.mark.integration, pytest.mark.sandbox]
OVERHEAD = 64 * 1024  # per host: layer directories' json, the config, the manifest, gzip framing


def _gzip_size_of_top_layer(tag: str) -> int:
    """What gzip (level 6) makes of ``tag``'s top layer: the least a transfer can send."""
    saved = subprocess.run(["docker", "save", tag], capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(saved)) as archive:
        listing = archive.extractfile("manifest.json")
        assert listing is not None
        top = archive.extractfile(json.load(listing)[0]["Layers"][-1])
        assert top is not None
        packer = zlib.compressobj(6, zlib.DEFLATED, 31)
        return len(packer.compress(top.read()) + packer.flush())


@pytest.fixture(scope="module")
def app() -> Iterator[dict[str, str]]:
    """v1 and v2 of an app on the Debian base, on the local daemon only."""
    base = ensure_debian_image()
    name = f"shiplayers/app{uuid.uuid4().hex[:6]}"
    tags = {"v1": f"{name}:v1", "v2": f"{name}:v2"}
    ids = {v: images.build_with_layer(base, tag, os.urandom(1 << 20)) for v, tag in tags.items()}
    yield {**tags, **{f"{v}_id": ids[v] for v in ids}}
    process.run(["docker", "image", "rm", "-f", *tags.values()], check=False)


def _remote_id(sandbox: Sandbox, host: str, tag: str) -> str | None:
    found = sandbox.docker(host, "image", "inspect", "--format", "{{.Id}}", tag, check=False)
    return found.stdout.strip() if found.returncode == 0 else None


def test_a_redeploy_sends_only_the_changed_layer_and_a_host_with_it_receives_nothing(
    sandbox_factory: Callable[[int], Sandbox], app: dict[str, str]
) -> None:
    sandbox3 = sandbox_factory(3)  # hosts with no image at all
    names = [h.name for h in sandbox3.hosts[:3]]
    hosts = [sandbox3.ssh_host(n) for n in names]
    try:
        first = ship.ship([app["v1"]], hosts, parallel=3)
        first.raise_for_failures()
        base_bytes = {n: first.hosts[n].bytes_sent for n in names}
        # The whole image once per host, compressed: under its size (~200 MB raw).
        assert all(20_000_000 < b < 150_000_000 for b in base_bytes.values()), base_bytes

        # The third host already has v2, under another name.
        sandbox3.docker(names[2], "image", "rm", "-f", app["v1_id"], check=False)
        third = ship.ship([app["v2"]], hosts[2:], parallel=1)
        third.raise_for_failures()
        sandbox3.docker(names[2], "tag", app["v2"], "other/name:v2")
        sandbox3.docker(names[2], "image", "rm", app["v2"])

        layer = _gzip_size_of_top_layer(app["v2"])
        second = ship.ship([app["v2"]], hosts, parallel=3)
        second.raise_for_failures()
        for name in names[:2]:
            shipment = second.hosts[name]
            assert shipment.transfer is not None and shipment.transfer.layers == 1
            assert shipment.bytes_sent < 1.1 * layer + OVERHEAD, (shipment.bytes_sent, layer)
            assert shipment.transfer.kept >= 1
        assert second.hosts[names[2]].tagged == (app["v2"],)
        assert second.hosts[names[2]].bytes_sent == 0
        for name in names:
            assert _remote_id(sandbox3, name, app["v2"]) == app["v2_id"]
    finally:
        for host in hosts:
            host.close()


def test_a_cut_transfer_leaves_no_image_and_the_rerun_sends_what_is_missing(
    sandbox_factory: Callable[[int], Sandbox], app: dict[str, str]
) -> None:
    sandbox3 = sandbox_factory(1)  # a host with no image: the whole ~200 MB must travel
    name = sandbox3.hosts[0].name
    host = sandbox3.ssh_host(name)
    try:
        assert _remote_id(sandbox3, name, app["v2"]) is None
        cut = threading.Event()

        def cut_when_streaming(host_name: str, sending: stream.Sending) -> None:
            if sending.bytes > 5_000_000 and not cut.is_set():
                cut.set()
                _kill_load_connections(sandbox3.hosts[0].address)

        started = time.monotonic()
        result = ship.ship_over_ssh_many(
            [(host, [app["v2"]])], progress=cut_when_streaming, timeout=300
        )
        assert cut.is_set(), "the transfer ended before it could be cut"
        assert result.outcomes[0].error is not None
        assert time.monotonic() - started < 120
        # Nothing half-loaded: neither the image nor its tag exist.
        assert _remote_id(sandbox3, name, app["v2"]) is None
        assert _remote_id(sandbox3, name, app["v2_id"]) is None

        again = ship.ship_over_ssh(host, [app["v2"]], timeout=300)
        assert again.sent == (app["v2"],) and again.transfer is not None
        assert _remote_id(sandbox3, name, app["v2"]) == app["v2_id"]
    finally:
        host.close()


def _kill_load_connections(address: str) -> None:
    """Kill the local ssh processes that carry a ``docker load`` to ``address``."""
    for proc in os.listdir("/proc"):
        if not proc.isdigit():
            continue
        try:
            with open(f"/proc/{proc}/cmdline", "rb") as handle:
                argv = handle.read().split(b"\0")
        except OSError:
            continue
        line = b" ".join(argv)
        if (
            argv
            and argv[0].endswith(b"ssh")
            and address.encode() in line
            and b"docker load" in line
        ):
            os.kill(int(proc), signal.SIGKILL)


def test_images_sharing_layers_get_one_copy_of_each_and_load_whole(
    sandbox3: Sandbox, app: dict[str, str]
) -> None:
    """An image built on another saves their shared top layer as a symlink (docker 20.10)."""
    name = sandbox3.hosts[1].name
    host = sandbox3.ssh_host(name)
    base = ensure_debian_image()
    child = app["v1"].replace(":v1", ":child")
    child_id = images.build_with_layer(app["v1"], child, os.urandom(1 << 16))
    sandbox3.docker(name, "image", "rm", "-f", app["v1_id"], app["v2_id"], child_id, check=False)
    try:
        both = ship.ship_over_ssh(host, [app["v1"], child, app["v2"]], timeout=300)
        assert both.transfer is not None
        assert _remote_id(sandbox3, name, app["v1"]) == app["v1_id"]
        assert _remote_id(sandbox3, name, child) == child_id
        assert _remote_id(sandbox3, name, app["v2"]) == app["v2_id"]
        sandbox3.docker(name, "image", "rm", child)
        again = ship.ship_over_ssh(host, [child], timeout=300)
        assert again.transfer is not None and again.transfer.layers == 1
        assert again.bytes_sent < (1 << 16) * 1.1 + OVERHEAD
        assert _remote_id(sandbox3, name, child) == child_id
    finally:
        host.close()
        process.run(["docker", "image", "rm", "-f", child], check=False)
        sandbox3.docker(name, "image", "rm", "-f", app["v1_id"], app["v2_id"], base, check=False)
