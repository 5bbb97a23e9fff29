"""Get release images onto the hosts that need them, all hosts in parallel.

Two transfers (SPEC 6 phase 4, ``environments.<e>.images.transfer``):

- ``ssh`` (no registry): per host, one round trip learns its images and their
  layers; an image it has is skipped, one it has under another name is only
  tagged there, and of the others it gets only the layers it lacks, gzipped,
  from one local ``docker save`` however many hosts need them
  (:mod:`.layers` plans it, :mod:`.stream` sends it; no temporary files here).
- ``registry``: push from the local daemon (``docker login --password-stdin``
  with a throw-away ``DOCKER_CONFIG``, so credentials never persist or reach a
  command line), then each host logs in the same way and pulls what it lacks.

The result is a value: per host, which images were sent, tagged or skipped and
how many bytes (and layers) went over the wire.

Example::

    result = ship(["shop/api:3f2a9c1d0e4b", "shop/web:3f2a9c1d0e4b"], hosts, parallel=4)
    result.raise_for_failures()              # GroupError naming each failed host
    result.hosts["web-1"].sent               # ("shop/api:3f2a9c1d0e4b", ...)

    registry = RegistryTarget("ghcr.io/acme", username="acme", password=secrets["GHCR_TOKEN"])
    ship(["ghcr.io/acme/api:3f2a9c1d0e4b"], hosts, registry=registry)
"""

from __future__ import annotations

import logging
import shlex
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from stagecraft import log
from stagecraft.deploy.ship import layers, stream
from stagecraft.errors import StagecraftError
from stagecraft.providers.secrets import SecretValue
from stagecraft.runtime import process
from stagecraft.runtime.fanout import GroupResult, Outcome, fan_out
from stagecraft.runtime.ssh import SSHHost

logger = logging.getLogger(__name__)

_INSPECT_SCRIPT = (
    "docker version --format '{{.Server.Version}}' >/dev/null || exit 5; "
    'for pair in "$@"; do t=${pair%% *}; i=${pair#* }; '
    "cur=$(docker image inspect --format '{{.Id}}' \"$t\" 2>/dev/null) || cur=-; "
    'if docker image inspect "$i" >/dev/null 2>&1; then has=1; else has=0; fi; '
    'printf "%s %s %s\\n" "$t" "$cur" "$has"; done'
)


class ShipError(StagecraftError):
    """Images cannot be shipped: missing locally, or not named for the registry."""


@dataclass(frozen=True)
class RegistryTarget:
    """A registry to ship through, and how to log in to it.

    ``registry`` is the prefix the image tags carry and the hosts pull from;
    ``push_registry`` (optional) is another address of the same registry that
    the local daemon pushes to (a tunnel, a mirror endpoint, ``localhost:PORT``).
    """

    registry: str
    username: str | None = None
    password: SecretValue | None = None
    push_registry: str | None = None


@dataclass(frozen=True)
class Decision:
    """What one host needs: images to transfer, to tag from an image it has, to skip."""

    send: tuple[str, ...]
    tag: tuple[str, ...]
    skip: tuple[str, ...]


@dataclass(frozen=True)
class HostShipment:
    """What shipping did on one host."""

    host: str
    sent: tuple[str, ...]
    tagged: tuple[str, ...]
    skipped: tuple[str, ...]
    bytes_sent: int
    transfer: stream.Sending | None = None  # ssh mode: layers, bytes, time


@dataclass(frozen=True)
class ShipResult:
    """The aggregate of one ship: mode, images pushed (registry mode), per-host outcomes."""

    mode: str
    pushed: tuple[str, ...]
    group: GroupResult[HostShipment]

    @property
    def ok(self) -> bool:
        return self.group.ok

    @property
    def hosts(self) -> dict[str, HostShipment]:
        """The shipments of the hosts that succeeded, by host name."""
        return {o.name: o.value for o in self.group.succeeded if o.value is not None}

    def raise_for_failures(self) -> None:
        """Raise :class:`~stagecraft.runtime.fanout.GroupError` when any host failed."""
        self.group.raise_for_failures("hosts")


def ship(
    images: Sequence[str],
    hosts: Sequence[SSHHost],
    *,
    registry: RegistryTarget | None = None,
    parallel: int = 4,
    timeout: float | None = None,
    progress: stream.Progress | None = None,
) -> ShipResult:
    """Put ``images`` (tags on the local daemon) on every host; see the module docstring."""
    wanted = list(dict.fromkeys(images))
    if registry is None:
        group = ship_over_ssh_many(
            [(h, wanted) for h in hosts], parallel=parallel, timeout=timeout, progress=progress
        )
        return ShipResult("ssh", (), group)
    local = local_image_ids(wanted)
    pushed = push(wanted, registry, timeout=timeout)
    group = fan_out(
        list(hosts),
        lambda h: pull_on_host(h, local, registry, timeout=timeout),
        name=lambda h: h.name,
        parallel=parallel,
    )
    return ShipResult("registry", pushed, group)


def local_image_ids(images: Sequence[str]) -> dict[str, str]:
    """``tag -> image ID`` on the local daemon; :class:`ShipError` names any missing image."""
    ids: dict[str, str] = {}
    for image in images:
        result = process.run(
            ["docker", "image", "inspect", "--format", "{{.Id}}", image], check=False
        )
        if result.returncode != 0 or not result.stdout.strip():
            raise ShipError(
                f"image {image} is not on the local Docker daemon",
                hint="build the release first (`stagecraft build`), or check the version",
            )
        ids[image] = result.stdout.strip()
    return ids


def remote_state(host: SSHHost, local: Mapping[str, str]) -> dict[str, tuple[str | None, bool]]:
    """Per image: the host's ID for that tag (None if absent), and whether it has our ID."""
    pairs = [f"{tag} {image_id}" for tag, image_id in local.items()]
    if not pairs:
        return {}
    result = host.run(["sh", "-c", _INSPECT_SCRIPT, "sh", *pairs])
    state: dict[str, tuple[str | None, bool]] = {}
    for line in result.stdout.splitlines():
        parts = line.split()
        if len(parts) == 3:
            state[parts[0]] = (None if parts[1] == "-" else parts[1], parts[2] == "1")
    return state


def decide(local: Mapping[str, str], remote: Mapping[str, tuple[str | None, bool]]) -> Decision:
    """Skip what the host has, tag what it has under another name, send the rest."""
    send: list[str] = []
    tag: list[str] = []
    skip: list[str] = []
    for image, image_id in local.items():
        current, has_id = remote.get(image, (None, False))
        if current == image_id:
            skip.append(image)
        elif has_id:
            tag.append(image)
        else:
            send.append(image)
    return Decision(tuple(send), tuple(tag), tuple(skip))


def ship_over_ssh_many(
    wants: Sequence[tuple[SSHHost, Sequence[str]]],
    *,
    parallel: int = 4,
    timeout: float | None = None,
    progress: stream.Progress | None = None,
    local: Mapping[str, layers.LocalImage] | None = None,
) -> GroupResult[HostShipment]:
    """Per host, the images (local tags) it lacks, layer by layer (:mod:`.layers`, :mod:`.stream`).

    Hosts are compared in parallel; then one ``docker save`` of every image any
    host lacks is streamed, each host getting only the layers it does not have.
    ``local`` is what the caller already read of the local images
    (:func:`.layers.inspect_present`); the others are read here.
    """
    tags = sorted({tag for _, tags in wants for tag in tags})
    known = dict(local or {})
    if any(tag not in known for tag in tags):
        known.update(layers.local_images([t for t in tags if t not in known]))
    local = known
    hosts = [host for host, _ in wants]
    checked = layers.needs(
        [(host, {tag: local[tag] for tag in tags}) for host, tags in wants], parallel=parallel
    )
    plans = [o.value for o in checked.outcomes if o.value is not None]
    sent = stream.send(plans, local, progress=progress, timeout=timeout)
    outcomes: list[Outcome[HostShipment]] = []
    for host, first in zip(hosts, checked.outcomes, strict=True):
        if first.value is None:
            outcomes.append(Outcome(host.name, None, first.error, first.duration))
            continue
        plan = first.value
        sending = sent.get(host.name)
        if sending is not None and sending.error is not None:
            outcomes.append(Outcome(host.name, None, sending.error, first.duration))
            continue
        shipment = HostShipment(
            host.name,
            plan.send,
            plan.tag,
            plan.skip,
            sending.bytes if sending else 0,
            sending,
        )
        _report(host, shipment)
        outcomes.append(Outcome(host.name, shipment, None, first.duration))
    return GroupResult(tuple(outcomes))


def ship_over_ssh(
    host: SSHHost, images: Sequence[str], *, timeout: float | None = None
) -> HostShipment:
    """Send ``host`` the layers of ``images`` it lacks (see :func:`ship_over_ssh_many`)."""
    outcome = ship_over_ssh_many([(host, images)], timeout=timeout).outcomes[0]
    if outcome.error is not None:
        raise outcome.error
    assert outcome.value is not None
    return outcome.value


def push(
    images: Sequence[str], registry: RegistryTarget, *, timeout: float | None = None
) -> tuple[str, ...]:
    """Push ``images`` from the local daemon (through ``push_registry`` when set)."""
    prefix = registry.registry.rstrip("/") + "/"
    wrong = [image for image in images if not image.startswith(prefix)]
    if wrong:
        raise ShipError(
            f"image {wrong[0]} is not named for registry {registry.registry}",
            hint="image tags must start with the environment's images.registry",
        )
    via = (registry.push_registry or registry.registry).rstrip("/")
    with tempfile.TemporaryDirectory(prefix="stagecraft-docker-") as config:
        env = {"DOCKER_CONFIG": config}
        if registry.password is not None:
            _login_locally(via, registry, env)
        for image in images:
            alias = via + "/" + image[len(prefix) :]
            if alias != image:
                process.run(["docker", "tag", image, alias])
            try:
                process.run(["docker", "push", alias], extra_env=env, timeout=timeout)
            finally:
                if alias != image:
                    process.run(["docker", "image", "rm", alias], check=False)
            log.event(logger, logging.INFO, f"pushed {image}", phase="ship")
    return tuple(images)


def pull_on_host(
    host: SSHHost,
    local: Mapping[str, str],
    registry: RegistryTarget,
    *,
    timeout: float | None = None,
) -> HostShipment:
    """Log in on ``host`` (throw-away DOCKER_CONFIG) and pull the images it lacks."""
    decision = decide(local, remote_state(host, local))
    _tag_on_host(host, decision.tag, local)
    if decision.send:
        login = ""
        secret: bytes | None = None
        if registry.password is not None:
            user = shlex.quote(registry.username or "")
            login = (
                f"docker login --username {user} --password-stdin "
                f"{shlex.quote(registry_server(registry.registry))} >/dev/null; "
            )
            secret = registry.password.reveal().encode()
        script = (
            'set -e; c=$(mktemp -d); trap \'rm -rf "$c"\' EXIT; export DOCKER_CONFIG="$c"; '
            f'{login}for i in "$@"; do docker pull "$i" >/dev/null; done'
        )
        host.run(["sh", "-c", script, "sh", *decision.send], input=secret, timeout=timeout)
    shipment = HostShipment(host.name, decision.send, decision.tag, decision.skip, 0)
    _report(host, shipment)
    return shipment


def registry_server(reference: str) -> str:
    """The server part of a registry prefix (what ``docker login`` takes): ``ghcr.io``."""
    return reference.split("/", 1)[0]


def _login_locally(via: str, registry: RegistryTarget, env: Mapping[str, str]) -> None:
    assert registry.password is not None
    server = registry_server(via)
    process.run(
        ["docker", "login", "--username", registry.username or "", "--password-stdin", server],
        input=registry.password.reveal(),
        extra_env=env,
        hint="check images.username and the password secret of the environment",
    )


def _tag_on_host(host: SSHHost, images: Sequence[str], local: Mapping[str, str]) -> None:
    for image in images:
        host.docker("tag", local[image], image)


def _report(host: SSHHost, shipment: HostShipment) -> None:
    if shipment.transfer is not None:
        text = stream.describe(shipment.transfer)
    else:
        text = f"pulled {len(shipment.sent)} image(s)"
    text += f", tagged {len(shipment.tagged)}, skipped {len(shipment.skipped)}"
    log.event(logger, logging.INFO, text, host=host.name, phase="ship")
