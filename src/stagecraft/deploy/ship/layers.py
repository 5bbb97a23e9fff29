"""What each side has, and what each host needs: layer-level shipping's plan.

One round trip per host learns what it has (:func:`host_images`: its engine,
its platform, its tags, and the chain of layers of every image on it);
:func:`needs` turns that into, per host, the images to send, to tag, to skip,
and the layer chains to send (:class:`Need`), refusing an image built for
another platform than the host's. :mod:`.stream` then sends them.

A host whose engine uses the containerd image store gets whole images, with a
warning saying why (loading a partial archive is not documented to work there).

Example::

    local = local_images(["shop/api:3f2a9c1d0e4b"])
    plans = needs([(web1, local), (web2, local)], parallel=4)
    plans["web-1"].value.chains      # the layer chains web-1 lacks
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from stagecraft.deploy.ship.archive import (
    chain_ids,
)
from stagecraft.errors import StagecraftError
from stagecraft.runtime import process
from stagecraft.runtime.fanout import GroupResult, fan_out
from stagecraft.runtime.ssh import SSHHost

logger = logging.getLogger(__name__)

CONTAINERD_STORE = "io.containerd.snapshotter"

_STATE_SCRIPT = r"""
v=$(docker version --format '{{.Server.Version}} {{.Server.Os}}/{{.Server.Arch}}') || exit 5
printf 'V %s\n' "${v% *}"
printf 'A %s\n' "${v##* }"
all=yes
while [ "$#" -gt 1 ]; do
  cur=$(docker image inspect --format '{{.Id}}' "$1" 2>/dev/null) || cur=-
  printf 'T %s %s\n' "$1" "$cur"
  [ "$cur" = "$2" ] || all=no
  shift 2
done
[ "$all" = yes ] && exit 0
printf 'D %s\n' "$(docker info --format '{{.Driver}} {{json .DriverStatus}}' 2>/dev/null)"
docker image ls -aq --no-trunc | sort -u | xargs -r docker image inspect \
  --format 'L {{.Id}} {{range .RootFS.Layers}}{{.}} {{end}}'
"""


@dataclass(frozen=True)
class LocalImage:
    """An image on the local daemon: tag, ID, layer diff IDs (bottom first)."""

    tag: str
    id: str
    layers: tuple[str, ...]
    platform: str = ""  # "linux/amd64" ("" when the daemon did not say)

    @property
    def chains(self) -> tuple[str, ...]:
        return chain_ids(self.layers)


@dataclass(frozen=True)
class HostImages:
    """What one host has: engine version, image store, tags, image IDs, layer chains."""

    version: str
    containerd_store: bool
    platform: str
    tags: Mapping[str, str | None]
    ids: frozenset[str]
    chains: frozenset[str]


@dataclass(frozen=True)
class Need:
    """What one host needs: images to send, tag or skip; the layer chains to send."""

    host: SSHHost
    send: tuple[str, ...]
    tag: tuple[str, ...]
    skip: tuple[str, ...]
    chains: frozenset[str] = frozenset()
    kept: int = 0  # layers of the sent images the host already has
    whole: str | None = None  # why whole images are sent (None: only missing layers)


class ShipLayersError(StagecraftError):
    """An image reached a host with another ID than the local one, or could not be read."""


# -- what each side has ------------------------------------------------------------


def local_images(tags: Sequence[str]) -> dict[str, LocalImage]:
    """``tag -> LocalImage`` from the local daemon (one ``docker image inspect``).

    :class:`~stagecraft.deploy.ship.ShipError` names the first tag it lacks.
    """
    images = inspect_present(tags)
    missing = [tag for tag in tags if tag not in images]
    if missing:
        from stagecraft.deploy.ship import ShipError

        raise ShipError(
            f"image {missing[0]} is not on the local Docker daemon",
            hint="build the release first (`stagecraft build`), or check the version",
        )
    return images


def inspect_present(
    tags: Sequence[str], environ: Mapping[str, str] | None = None
) -> dict[str, LocalImage]:
    """``tag -> LocalImage`` of the ``tags`` the local daemon has; one call when it has all.

    What a deploy asks first (which release images are here to ship, their IDs)
    and what shipping needs (their layers) are this one answer.
    """
    unique = list(dict.fromkeys(tags))
    if not unique:
        return {}
    found = _inspect(unique, environ)
    if len(found) == len(unique):
        return dict(zip(unique, found, strict=True))
    images: dict[str, LocalImage] = {}
    for tag in unique:  # some are missing: Docker's answer no longer lines up with the tags
        one = _inspect([tag], environ)
        if one:
            images[tag] = one[0]
    return images


def _inspect(tags: Sequence[str], environ: Mapping[str, str] | None) -> list[LocalImage]:
    result = process.run(
        ["docker", "image", "inspect", *tags], env=environ, check=False, timeout=60
    )
    try:
        found = json.loads(result.stdout or "[]")
    except ValueError:
        return []
    if not isinstance(found, list) or (result.returncode != 0 and len(tags) == 1):
        return []
    images = []
    for tag, item in zip(tags, found, strict=False):
        layers = tuple(item.get("RootFS", {}).get("Layers") or ())
        platform = "/".join(p for p in (item.get("Os"), item.get("Architecture")) if p)
        images.append(LocalImage(tag, item["Id"], layers, platform))
    return images


def host_images(host: SSHHost, wanted: Mapping[str, str]) -> HostImages:
    """What ``host`` has of ``wanted`` (tag -> image ID), in one round trip.

    When every tag already names its wanted image, the host's image store (its
    layers, driver) is not listed: there is nothing to send.
    """
    pairs = [part for tag, image_id in wanted.items() for part in (tag, image_id)]
    result = host.run(["sh", "-c", _STATE_SCRIPT, "sh", *pairs])
    return parse_host_images(result.stdout)


def parse_host_images(text: str) -> HostImages:
    """The output of the state script as a :class:`HostImages` (pure)."""
    version, driver, platform = "", "", ""
    current: dict[str, str | None] = {}
    ids: set[str] = set()
    chains: set[str] = set()
    for line in text.splitlines():
        kind, _, rest = line.partition(" ")
        if kind == "V":
            version = rest.strip()
        elif kind == "D":
            driver = rest
        elif kind == "A":
            platform = rest.strip()
        elif kind == "T":
            tag, _, image_id = rest.rpartition(" ")
            current[tag] = None if image_id in ("-", "") else image_id
        elif kind == "L":
            image_id, *layers = rest.split()
            ids.add(image_id)
            chains.update(chain_ids(layers))
    return HostImages(
        version, CONTAINERD_STORE in driver, platform, current, frozenset(ids), frozenset(chains)
    )


def need(host: SSHHost, local: Mapping[str, LocalImage], has: HostImages) -> Need:
    """Skip what ``host`` has, tag what it has under another name, send the rest's new layers."""
    send: list[str] = []
    tag: list[str] = []
    skip: list[str] = []
    chains: set[str] = set()
    kept = 0
    for name, image in local.items():
        if has.tags.get(name) == image.id:
            skip.append(name)
            continue
        check_platform(host, image, has)
        if image.id in has.ids:
            tag.append(name)
        else:
            send.append(name)
            missing = {c for c in image.chains if c not in has.chains}
            kept += len(image.chains) - len(missing)
            chains |= missing
    whole = None
    if send and has.containerd_store:
        whole = "its Docker uses the containerd image store (layer-level loading not supported)"
    return Need(host, tuple(send), tuple(tag), tuple(skip), frozenset(chains), kept, whole)


class PlatformMismatch(ShipLayersError):
    """An image built for another CPU architecture or OS than the host's."""


def check_platform(host: SSHHost, image: LocalImage, has: HostImages) -> None:
    """Refuse to ship ``image`` to a host it cannot run on (an arm64 laptop, an amd64 host)."""
    if not image.platform or not has.platform or image.platform == has.platform:
        return
    raise PlatformMismatch(
        f"{host.name}: image {image.tag} is built for {image.platform}, but the host runs "
        f"{has.platform}",
        hint=f"build it for the host: `platform: {has.platform}` on the service in the compose "
        f"file, or `docker build --platform {has.platform}`",
    )


def needs(
    wants: Sequence[tuple[SSHHost, Mapping[str, LocalImage]]], *, parallel: int = 4
) -> GroupResult[Need]:
    """:func:`need` of every host, compared in parallel; images it has elsewhere are tagged."""

    def one(want: tuple[SSHHost, Mapping[str, LocalImage]]) -> Need:
        host, local = want
        found = need(host, local, host_images(host, {t: i.id for t, i in local.items()}))
        for name in found.tag:
            host.docker("tag", local[name].id, name)
        return found

    return fan_out(list(wants), one, name=lambda w: w[0].name, parallel=parallel)
