"""Layer-level shipping's stream: one ``docker save``, each entry to the hosts that need it.

:func:`send` runs **one** ``docker save`` of every image any host needs and
reads it as a stream (:mod:`.archive`): each entry goes to the hosts that need
it (a host gets one file of each layer it lacks, :class:`_Routing`),
compressed once as a gzip member (a gzip stream may be a sequence of members,
which ``docker load`` reads whole), written to each host's ``ssh HOST docker
load``. A host's ``manifest.json`` lists only its images, each layer at the
file it got. After the load, the host prints the image IDs it now has; an ID
that differs from the local one is an error for that host, never a different
image.

Nothing of image size is written to disk on this side; on the host, ``docker
load`` unpacks what it receives into a temporary directory of its own (and
removes it), and a cut stream loads nothing, so the next deploy sends the same
layers again. A layer entry that cannot be identified goes to every host.

Example::

    sent = send([plan_web1, plan_web2], local)   # the :class:`~.layers.Need` of each host
    sent["web-1"].bytes          # compressed bytes on the wire to web-1
"""

from __future__ import annotations

import contextvars
import hashlib
import io
import json
import logging
import queue
import threading
import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from stagecraft import log
from stagecraft.deploy.ship.archive import (
    END_OF_ARCHIVE,
    ArchiveError,
    Entry,
    TarReader,
    header,
    legacy_chain,
)
from stagecraft.deploy.ship.layers import LocalImage, Need, ShipLayersError
from stagecraft.errors import CommandFailed, StagecraftError
from stagecraft.runtime import process

logger = logging.getLogger(__name__)

Progress = Callable[[str, "Sending"], None]
"""``progress(host, sending)``: called as bytes go out (at most every ``PROGRESS_EVERY`` s)."""

LEVEL = 6  # gzip's default: the first deploy sends at most `docker save | gzip`
CHUNK = 1 << 20
QUEUE_CHUNKS = 16
PROGRESS_EVERY = 1.0

_LOAD_SCRIPT = r"""
docker load >&2 || exit $?
for t in "$@"; do printf 'ID %s %s\n' "$t" "$(docker image inspect --format '{{.Id}}' "$t")"; done
"""


@dataclass
class Sending:
    """One host's transfer so far (and in the end): bytes, layers, the outcome."""

    images: tuple[str, ...]
    layers_total: int
    kept: int
    whole: str | None
    bytes: int = 0
    layers: int = 0
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None
    error: StagecraftError | None = None

    @property
    def seconds(self) -> float:
        return (self.finished or time.monotonic()) - self.started

    @property
    def rate(self) -> float:
        """Bytes per second so far."""
        return self.bytes / self.seconds if self.seconds > 0 else 0.0

    def to_json(self) -> dict[str, object]:
        return {
            "images": list(self.images),
            "bytes": self.bytes,
            "layers_sent": self.layers,
            "layers_kept": self.kept,
            "whole_images": self.whole,
            "seconds": round(self.seconds, 3),
        }


# -- the stream ----------------------------------------------------------------------


class _Feed(io.RawIOBase):
    """The stdin of one host's ``docker load``: chunks from a bounded queue, then EOF."""

    def __init__(self) -> None:
        self.queue: queue.Queue[bytes | None] = queue.Queue(QUEUE_CHUNKS)
        self.done = threading.Event()  # the load ended (well or not): stop feeding it
        self._left = b""
        self._ended = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        while not self._left:
            if self._ended:
                return 0
            chunk = self.queue.get()
            if chunk is None:
                self._ended = True  # EOF stays EOF: a buffered reader asks again
                return 0
            self._left = chunk
        size = min(len(buffer), len(self._left))
        buffer[:size] = self._left[:size]
        self._left = self._left[size:]
        return size

    def put(self, chunk: bytes | None) -> bool:
        """Queue ``chunk`` (None: end); False once the load has ended without it."""
        while not self.done.is_set():
            try:
                self.queue.put(chunk, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False


@dataclass
class _Host:
    need: Need
    sending: Sending
    feed: _Feed = field(default_factory=_Feed)
    thread: threading.Thread | None = None
    ids: dict[str, str] = field(default_factory=dict)
    seen: float = 0.0


class _Fan:
    """Compress entries once per audience (one gzip member per run of entries) and fan out."""

    def __init__(self, hosts: Mapping[str, _Host], progress: Progress | None) -> None:
        self.hosts = hosts
        self.progress = progress
        self.audience: tuple[str, ...] = ()
        self.zip: zlib._Compress | None = None

    def write(self, audience: tuple[str, ...], data: bytes) -> None:
        if audience != self.audience:
            self.close_member()
            self.audience = audience
        if not audience:
            return
        if self.zip is None:
            self.zip = zlib.compressobj(LEVEL, zlib.DEFLATED, 31)
        self._out(self.zip.compress(data))

    def close_member(self) -> None:
        if self.zip is not None:
            self._out(self.zip.flush())
            self.zip = None

    def send_raw(self, name: str, data: bytes) -> None:
        """Bytes for one host alone (its manifest, the archive's end), as their own member."""
        self.close_member()
        self.audience = ()
        packer = zlib.compressobj(LEVEL, zlib.DEFLATED, 31)
        self._deliver((name,), packer.compress(data) + packer.flush())

    def _out(self, data: bytes) -> None:
        if data:
            self._deliver(self.audience, data)

    def _deliver(self, names: tuple[str, ...], data: bytes) -> None:
        now = time.monotonic()
        for name in names:
            host = self.hosts[name]
            if host.sending.error is None and host.feed.put(data):
                host.sending.bytes += len(data)
                if self.progress is not None and now - host.seen >= PROGRESS_EVERY:
                    host.seen = now
                    self.progress(name, host.sending)


def send(
    plans: Sequence[Need],
    local: Mapping[str, LocalImage],
    *,
    progress: Progress | None = None,
    timeout: float | None = None,
) -> dict[str, Sending]:
    """Stream to every host of ``plans`` what it needs, from one ``docker save``.

    Per host, the :class:`Sending` (its ``error`` set when that host failed).
    Raises :class:`CommandFailed` when the local export itself fails.
    """
    hosts = {
        p.host.name: _Host(p, Sending(p.send, len(p.chains), p.kept, p.whole))
        for p in plans
        if p.send
    }
    if not hosts:
        return {}
    images = sorted({name for h in hosts.values() for name in h.need.send})
    for host in hosts.values():
        if host.need.whole is not None:
            log.event(
                logger,
                logging.WARNING,
                f"sending whole images: {host.need.whole}",
                host=host.need.host.name,
                phase="ship",
            )
    with process.cancel_scope() as scope:
        context = contextvars.copy_context()  # the loads run in this scope
        for host in hosts.values():
            host.thread = threading.Thread(
                target=context.copy().run, args=(_load, host, local, timeout), daemon=True
            )
            host.thread.start()
        try:
            _export(images, local, hosts, progress)
        except BaseException:
            scope.cancel(grace=0.5)
            for host in hosts.values():
                host.feed.done.set()
            raise
        finally:
            for host in hosts.values():
                host.feed.put(None)
        for host in hosts.values():
            assert host.thread is not None
            host.thread.join()
    for host in hosts.values():
        host.sending.finished = host.sending.finished or time.monotonic()
        if progress is not None:
            progress(host.need.host.name, host.sending)
    return {name: host.sending for name, host in hosts.items()}


def _load(host: _Host, local: Mapping[str, LocalImage], timeout: float | None) -> None:
    """One host's ``docker load`` fed from its queue; then check the image IDs it reports."""
    ssh = host.need.host
    try:
        result = ssh.run(
            ["sh", "-c", _LOAD_SCRIPT, "sh", *host.need.send],
            input=io.BufferedReader(host.feed, CHUNK),
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            raise CommandFailed(
                ["docker load"],
                result.returncode,
                result.output,
                host=ssh.name,
                hint="check free disk space on the host and that its Docker daemon runs",
            )
        for line in result.stdout.splitlines():
            kind, _, rest = line.partition(" ")
            if kind == "ID":
                tag, _, image_id = rest.rpartition(" ")
                host.ids[tag] = image_id
        wrong = [t for t in host.need.send if host.ids.get(t) != local[t].id]
        if wrong:
            raise ShipLayersError(
                f"{ssh.name}: image {wrong[0]} was loaded with ID {host.ids.get(wrong[0]) or '?'}"
                f", not the local {local[wrong[0]].id}",
                hint="run the deploy again; if it repeats, report it with `docker version` "
                "of both daemons",
            )
    except StagecraftError as exc:
        host.sending.error = exc
    finally:
        host.sending.finished = time.monotonic()
        host.feed.done.set()


def _export(
    images: Sequence[str],
    local: Mapping[str, LocalImage],
    hosts: Mapping[str, _Host],
    progress: Progress | None,
) -> None:
    """Read one ``docker save`` of ``images`` and send each entry to the hosts that need it.

    Layer files are routed by diff ID: a host gets one file of each layer it
    lacks (a layer in several images is one file, or a symlink to it in the
    legacy layout), and its ``manifest.json`` points every image at the files
    it got.
    """
    route = _Routing(images, local, hosts)
    fan = _Fan(hosts, progress)
    manifest = b""
    with process.reading(["docker", "save", *images], hint="check the images exist locally") as out:
        reader = TarReader(out)
        try:
            for entry in reader:
                if not any(h.sending.error is None for h in hosts.values()):
                    break  # every host failed: stop exporting
                if entry.name == "manifest.json":
                    manifest = b"".join(reader.data(entry))[: entry.size]
                    continue
                if entry.name.endswith("/json") and entry.size < (1 << 20):
                    data = b"".join(reader.data(entry))
                    route.learn(entry.name, data[: entry.size])
                    fan.write(route.everyone, entry.header + data)
                    continue
                diff = route.diff(entry)
                audience = route.audience(entry, diff)
                fan.write(audience, entry.header)
                digest = hashlib.sha256()
                left = entry.size
                for part in reader.data(entry):
                    digest.update(part[: max(0, left)])
                    left -= len(part)
                    fan.write(audience, part)
                if diff is not None and entry.regular:
                    if "sha256:" + digest.hexdigest() != diff:
                        raise ArchiveError(f"{entry.name} was taken for layer {diff} but is not")
                    route.sent(entry.name, diff, audience)
            else:
                fan.close_member()
                for name, host in hosts.items():
                    fan.send_raw(name, _manifest_for(host, manifest, local, route.paths[name]))
        except ArchiveError as exc:
            raise CommandFailed(["docker save", *images], 1, str(exc)) from None


class _Routing:
    """Which archive entry goes to which host (see :func:`_export`)."""

    def __init__(
        self, images: Sequence[str], local: Mapping[str, LocalImage], hosts: Mapping[str, _Host]
    ) -> None:
        self.hosts = hosts
        self.everyone = tuple(hosts)
        self.candidates = list(dict.fromkeys(c for name in images for c in local[name].chains))
        self.diff_of = {
            chain: diff
            for name in images
            for chain, diff in zip(local[name].chains, local[name].layers, strict=True)
        }
        self.wanted = {
            name: {self.diff_of[c] for c in host.need.chains if c in self.diff_of}
            for name, host in hosts.items()
        }
        self.dirs: dict[str, str | None] = {}  # legacy layer directory -> its diff ID
        self.paths: dict[str, dict[str, str]] = {name: {} for name in hosts}  # host: diff -> file

    def learn(self, name: str, data: bytes) -> None:
        """A legacy ``<v1 id>/json`` entry: which layer its directory holds."""
        directory = name.rsplit("/", 1)[0]
        chain = legacy_chain(directory, data.decode("utf-8", "replace"), self.candidates)
        self.dirs[directory] = self.diff_of.get(chain) if chain else None

    def diff(self, entry: Entry) -> str | None:
        """The diff ID of a layer entry; None for any other entry (or one not identified)."""
        if entry.name.endswith("/layer.tar"):
            return self.dirs.get(entry.name.rsplit("/", 1)[0])
        if entry.name.startswith("blobs/sha256/"):
            diff = "sha256:" + entry.name.rsplit("/", 1)[1]
            return diff if diff in self.diff_of.values() else None
        return None

    def audience(self, entry: Entry, diff: str | None) -> tuple[str, ...]:
        """Hosts lacking the layer (once each), whole-image hosts; everyone for other entries."""
        if diff is None and not entry.name.endswith("/layer.tar"):
            return self.everyone  # configs, directories, VERSION, OCI index: small
        if diff is None:
            return self.everyone  # a layer not identified: correct everywhere, only larger
        whole = tuple(n for n, h in self.hosts.items() if h.need.whole is not None)
        if not entry.regular:  # a symlink to the same layer's file elsewhere in the archive
            return whole
        lacking = tuple(
            name
            for name, host in self.hosts.items()
            if host.need.whole is None
            and diff in self.wanted[name]
            and diff not in self.paths[name]
        )
        return tuple(n for n in self.everyone if n in whole or n in lacking)

    def sent(self, name: str, diff: str, audience: tuple[str, ...]) -> None:
        for host in audience:
            self.paths[host].setdefault(diff, name)
            self.hosts[host].sending.layers += 1


def _manifest_for(
    host: _Host, manifest: bytes, local: Mapping[str, LocalImage], paths: Mapping[str, str]
) -> bytes:
    """``manifest.json`` for one host (its images, each layer at the file it got), as tar bytes."""
    try:
        items = json.loads(manifest) if manifest else []
    except ValueError as exc:
        raise ArchiveError(f"the archive's manifest.json is not JSON: {exc}") from None
    wanted = set(host.need.send)
    own = []
    for item in items:
        tags = [t for t in item.get("RepoTags") or [] if t in wanted]
        if not tags:
            continue
        entry = {**item, "RepoTags": tags}
        if host.need.whole is None:
            diffs = local[tags[0]].layers
            entry["Layers"] = [
                paths.get(diff, path)
                for diff, path in zip(diffs, item.get("Layers") or [], strict=False)
            ]
        own.append(entry)
    data = json.dumps(own).encode()
    padding = b"\0" * (-len(data) % 512)
    return header("manifest.json", len(data)) + data + padding + END_OF_ARCHIVE


def describe(sending: Sending) -> str:
    """One line about a host's transfer: what went, how much, how fast."""
    mb = sending.bytes / 1e6
    how = (
        f"whole images ({sending.whole})"
        if sending.whole
        else f"{sending.layers} layer(s), kept {sending.kept} it had"
    )
    return (
        f"sent {len(sending.images)} image(s): {how}; {mb:.1f} MB in {sending.seconds:.1f}s "
        f"({sending.rate / 1e6:.1f} MB/s)"
    )
